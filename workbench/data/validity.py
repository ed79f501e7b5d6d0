"""Rows that cannot be trained on: an instruction or output that is missing (null), empty or not text.

Such rows are never trained on silently: they are counted and the first few named (by row number, as the
Data tab numbers them) in the load message; training then drops them (data.drop_invalid, the default) or
refuses the dataset. For chat rows the instruction is a user message and the output an assistant message,
each with some text. Flat string columns are checked with Arrow kernels (no Python loop over the rows).
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from workbench.data.formats import CHAT_FORMATS, CHAT_KEYS, FIELD_SOURCES, chat_turns

NAMED_ROWS = 5  # rows named in a message; the count covers all of them
BATCH = 10_000


@dataclass
class InvalidRows:
    rows: np.ndarray  # row numbers (0-based, as in the Data tab), ascending
    total: int  # rows in the dataset
    why: list = field(default_factory=list)  # (row, what is wrong) for the first NAMED_ROWS rows

    @property
    def count(self) -> int:
        return len(self.rows)

    def named(self) -> str:
        shown = "; ".join(f"#{r}: {why}" for r, why in self.why)
        more = f" (and {self.count - len(self.why):,} more)" if self.count > len(self.why) else ""
        return shown + more

    def summary(self) -> str:
        """What is wrong with how many rows, and which (load message)."""
        which = "every row" if self.count == self.total else \
            f"{self.count:,} of {self.total:,} row{'s' if self.total != 1 else ''}"
        return (f"{which} {'has' if self.count == 1 else 'have'} a missing, empty or non-text instruction or "
                f"output — {self.named()}")


def find_invalid(raw, fmt: str) -> InvalidRows | None:
    """The rows of a raw Dataset (format `fmt`) that cannot be trained on; None when every row can."""
    if getattr(raw, "_indices", None) is not None:
        raw = raw.flatten_indices()  # the checks below read the Arrow table, which ignores a selection
    n = len(raw)
    bad = np.zeros(n, dtype=bool)
    if fmt in CHAT_FORMATS:
        column = CHAT_KEYS[fmt][0]
        for start, values in _batches(raw, column):
            bad[start:start + len(values)] = [_chat_problem({column: v}, fmt) is not None for v in values]
    else:
        for name in ("instruction", "output"):
            bad |= _flat_mask(raw, FIELD_SOURCES[fmt][name])
    rows = np.flatnonzero(bad)
    if not len(rows):
        return None
    found = InvalidRows(rows, n)
    for r in rows[:NAMED_ROWS]:
        row = raw[int(r)]
        found.why.append((int(r), _chat_problem(row, fmt) if fmt in CHAT_FORMATS else _flat_problem(row, fmt)))
    return found


def _batches(raw, column: str):
    start = 0
    for batch in raw.select_columns([column]).iter(batch_size=BATCH):
        values = batch[column]
        yield start, values
        start += len(values)


def _flat_mask(raw, column: str) -> np.ndarray:
    """True where the column's value is null, empty or whitespace, or not a string."""
    import pyarrow as pa
    import pyarrow.compute as pc

    col = raw.data.table[column]
    if pa.types.is_string(col.type) or pa.types.is_large_string(col.type):
        blank = pc.fill_null(pc.match_substring_regex(col, r"^\s*$"), True)
        return blank.to_numpy(zero_copy_only=False).astype(bool)
    # Any other type (numbers, lists, JSON of mixed types): look at each value as Python sees it.
    mask = np.zeros(len(raw), dtype=bool)
    for start, values in _batches(raw, column):
        mask[start:start + len(values)] = [_text_problem(v) is not None for v in values]
    return mask


def _text_problem(value) -> str | None:
    if value is None:
        return "is missing (null)"
    if not isinstance(value, str):
        shown = repr(value)
        shown = shown if len(shown) <= 40 else shown[:40] + "…"
        return f"is a {type(value).__name__} ({shown}), not text"
    return "is empty" if not value.strip() else None


def _flat_problem(row: dict, fmt: str) -> str:
    problems = []
    for name in ("instruction", "output"):
        src = FIELD_SOURCES[fmt][name]
        why = _text_problem(row.get(src))
        if why:
            problems.append(f"{name} ({src}) {why}" if src != name else f"{name} {why}")
    return ", ".join(problems)


def _chat_problem(row: dict, fmt: str) -> str | None:
    turns = chat_turns(row, fmt)
    if not turns:
        return "has no messages"
    missing = [who for who, role in (("user", "user"), ("assistant", "assistant"))
               if not any(r == role and isinstance(c, str) and c.strip() for r, c in turns)]
    return f"has no {' and no '.join(missing)} message with text" if missing else None
