"""Preference data: detect the usual pair formats, map them to canonical pairs, drop the unusable ones.

Canonical rows are {history, prompt, chosen, rejected} (pairs) or {history, prompt, completion, label} (KTO's
thumbs-up / thumbs-down). `history` holds the turns before the last user message (a multi-turn prompt); the
prompt is that last user message, rendered later with the run's template (prompts/preference.py), so a
preference run sees its prompts exactly as the SFT run and the chat tab do.

Formats, most specific first:
  pairs          prompt, chosen, rejected: strings or message lists (TRL's standard and conversational forms)
  alpaca_pairs   instruction, chosen, rejected (+ input)
  sharegpt_pairs conversations (the prompt turns) with chosen / rejected final turns
  implicit_pairs chosen, rejected as whole conversations sharing the prompt turns (TRL's implicit prompt)
  kto            prompt, completion, label
"""
from __future__ import annotations

import difflib
import logging
from dataclasses import dataclass, field

from workbench.core.errors import DataError
from workbench.data.formats import _SHAREGPT_ROLES, CHAT_KEYS, rename
from workbench.data.read import read_raw

log = logging.getLogger(__name__)

PAIR_FORMATS = {
    "pairs": {"prompt", "chosen", "rejected"},
    "alpaca_pairs": {"instruction", "chosen", "rejected"},
    "sharegpt_pairs": {"conversations", "chosen", "rejected"},
    "implicit_pairs": {"chosen", "rejected"},
    "kto": {"prompt", "completion", "label"},
}
PAIRED = ("pairs", "alpaca_pairs", "sharegpt_pairs", "implicit_pairs")
_TRUE = {"true", "1", "yes", "good", "up", "thumbs_up", "👍", "desirable", "chosen"}
_FALSE = {"false", "0", "no", "bad", "down", "thumbs_down", "👎", "undesirable", "rejected"}


@dataclass
class PairSet:
    """Canonical preference rows and what happened on the way: the format, and the rows dropped and why."""
    format: str
    rows: list[dict]
    total: int
    dropped: dict = field(default_factory=dict)  # reason → count
    notes: list = field(default_factory=list)
    kept: int | None = None  # source rows kept, when rows were derived from them (KTO rows from pairs)

    @property
    def paired(self) -> bool:
        return self.format in PAIRED

    def message(self) -> str:
        kept = len(self.rows) if self.kept is None else self.kept
        parts = [f"format {self.format}: {kept:,} of {self.total:,} rows kept", *self.notes]
        parts += [f"dropped {n:,} {reason}" for reason, n in self.dropped.items() if n]
        return "; ".join(parts)


def detect(columns, method: str = "dpo") -> str:
    """The preference format of these columns, or a DataError saying what is missing for `method`."""
    cols = set(columns)
    for fmt, required in PAIR_FORMATS.items():
        if required <= cols:
            if fmt == "kto" and method in ("dpo", "orpo"):
                raise DataError(f"train.method {method} needs pairs (prompt, chosen, rejected); this dataset has "
                                "single answers with a label (KTO's format)", "use train.method kto for this data")
            return fmt
    near = [f"{fmt} needs {', '.join(sorted(req))} (missing {', '.join(sorted(req - cols))})"
            for fmt, req in PAIR_FORMATS.items() if req & cols]
    raise DataError(f"train.method {method} needs preference data, but the columns are "
                    f"{', '.join(sorted(cols)) or 'none'}" + (f": {'; '.join(near)}" if near else ""),
                    "give a file with prompt / chosen / rejected columns (or prompt / completion / label for kto), "
                    "or build pairs from an evaluation in the Evaluate tab")


def _text(value) -> str:
    """A field as text: a string, or the content of the last turn of a message list / one message."""
    if value is None:
        return ""
    if isinstance(value, dict):
        return _text(value.get("content", value.get("value")))
    if isinstance(value, (list, tuple)):
        return _text(value[-1]) if value else ""
    return str(value)


def _turns(value) -> list[dict]:
    """A message list (messages or ShareGPT spelling) as [{role, content}]; a string is one user turn."""
    if isinstance(value, str):
        return [{"role": "user", "content": value}] if value else []
    out = []
    for t in value or []:
        if not isinstance(t, dict):
            continue
        if "from" in t:
            out.append({"role": _SHAREGPT_ROLES.get(str(t["from"]).lower(), "user"), "content": _text(t.get("value"))})
        else:
            out.append({"role": str(t.get("role") or "user"), "content": _text(t.get("content"))})
    return out


def _split_prompt(turns: list[dict]) -> tuple[list[dict], str]:
    """(history, last user message) of the prompt turns."""
    last = max((i for i, t in enumerate(turns) if t["role"] == "user"), default=None)
    if last is None:
        return turns, ""
    return turns[:last], turns[last]["content"]


def label_value(value) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)) and value in (0, 1):
        return bool(value)
    text = str(value).strip().lower() if value is not None else ""
    return True if text in _TRUE else False if text in _FALSE else None


def to_canonical(row: dict, fmt: str) -> dict:
    if fmt == "alpaca_pairs":
        user = _text(row.get("instruction"))
        if row.get("input"):
            user = f"{user}\n\n{_text(row['input'])}" if user else _text(row["input"])
        history, prompt = [], user
    elif fmt == "implicit_pairs":
        chosen, rejected = _turns(row.get("chosen")), _turns(row.get("rejected"))
        n = 0
        while n < min(len(chosen), len(rejected)) - 1 and chosen[n] == rejected[n]:
            n += 1
        history, prompt = _split_prompt(chosen[:n])
    else:
        column = CHAT_KEYS["sharegpt"][0] if fmt == "sharegpt_pairs" else "prompt"
        history, prompt = _split_prompt(_turns(row.get(column)))
    out = {"history": history, "prompt": prompt}
    if fmt == "kto":
        return {**out, "completion": _text(row.get("completion")), "label": label_value(row.get("label"))}
    return {**out, "chosen": _text(row.get("chosen")), "rejected": _text(row.get("rejected"))}


def difference(a: str, b: str) -> float:
    """How much two answers differ: 0 identical, 1 nothing in common (1 - difflib's similarity ratio)."""
    if a == b:
        return 0.0
    return 1.0 - difflib.SequenceMatcher(None, a, b, autojunk=False).ratio()


def why_unusable(row: dict, min_difference: float = 0.0) -> str | None:
    """The reason a canonical row cannot be trained on, or None."""
    if not row["prompt"].strip():
        return "rows with an empty prompt"
    if "label" in row:
        if row["label"] is None:
            return "rows whose label is not true/false"
        return "rows with an empty completion" if not row["completion"].strip() else None
    if not row["chosen"].strip() or not row["rejected"].strip():
        return "pairs with an empty answer"
    if row["chosen"].strip() == row["rejected"].strip():
        return "pairs whose answers are identical"
    if min_difference and difference(row["chosen"], row["rejected"]) < min_difference:
        return f"pairs whose answers differ by less than {min_difference:.0%}"
    return None


def from_rows(raw_rows, columns, method: str = "dpo", min_difference: float = 0.0) -> PairSet:
    """Map and filter raw rows (any iterable of dicts with these columns) for `method`."""
    fmt = detect(columns, method)
    kept, dropped, total = [], {}, 0
    for raw in raw_rows:
        total += 1
        row = to_canonical(raw, fmt)
        reason = why_unusable(row, min_difference)
        if reason:
            dropped[reason] = dropped.get(reason, 0) + 1
        else:
            kept.append(row)
    pairs = PairSet(fmt, kept, total, dropped)
    if method == "kto":
        pairs = as_unpaired(pairs)
    if not pairs.rows:
        raise DataError(f"no usable preference row left: {pairs.message()}", "check the data file")
    return pairs


def as_unpaired(pairs: PairSet) -> PairSet:
    """KTO's rows: each pair gives a thumbs-up (chosen) and a thumbs-down (rejected) row; one label only fails."""
    if pairs.paired:
        rows = [{"history": r["history"], "prompt": r["prompt"], "completion": r[key], "label": key == "chosen"}
                for r in pairs.rows for key in ("chosen", "rejected")]
        pairs = PairSet(pairs.format, rows, pairs.total, pairs.dropped,
                        [*pairs.notes, f"each pair gives one desirable and one undesirable row ({len(rows):,} rows)"],
                        kept=len(pairs.rows))
    labels = {r["label"] for r in pairs.rows}
    if len(labels) < 2:
        only = "desirable (true)" if True in labels else "undesirable (false)"
        raise DataError(f"train.method kto needs both labels, but every usable row is {only}",
                        "add examples of the other label (KTO learns from the contrast)")
    return pairs


def load_pairs(source: str, method: str = "dpo", column_map: dict | None = None, hub_config: str = "",
               hub_split: str = "train", min_difference: float = 0.0) -> PairSet:
    """Read a dataset (file or hub id) as canonical preference rows for `method` (DataError when it cannot be)."""
    raw, notes = read_raw(source, hub_config, hub_split)
    raw = rename(raw, column_map)
    pairs = from_rows(raw, raw.column_names, method, min_difference)
    pairs.notes[:0] = list(notes)
    log.info("loaded %s for %s: %s", source, method, pairs.message())
    return pairs


def is_preference_data(columns) -> bool:
    return any(req <= set(columns) for req in PAIR_FORMATS.values())


def table(pairs: PairSet, start: int = 0, n: int = 25) -> tuple[list[str], list[list]]:
    """(columns, rows) of a page for the Data tab: the prompt once, both answers side by side, their lengths."""
    if pairs.paired:
        columns = ["#", "prompt", "chosen", "rejected", "chosen chars", "rejected chars"]
        rows = [[i, r["prompt"], r["chosen"], r["rejected"], len(r["chosen"]), len(r["rejected"])]
                for i, r in enumerate(pairs.rows[start:start + n], start)]
    else:
        columns = ["#", "prompt", "completion", "label", "completion chars"]
        rows = [[i, r["prompt"], r["completion"], "👍" if r["label"] else "👎", len(r["completion"])]
                for i, r in enumerate(pairs.rows[start:start + n], start)]
    return columns, rows
