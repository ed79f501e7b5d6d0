"""The one way a dataset is opened for showing and for training: read, rename, detect, check the rows.

open_source gives the raw rows and their Detection (format, reason, how the file was read, unusable rows);
the Data tab browses that (browse.open_view), the engine trains on load_canonical's canonical rows. Both
go through the same steps, so the row the Data tab shows is the row training uses. Then the train /
validation / test split: one shuffle with the seed, then cut test, validation and train; split_sizes is the
one arithmetic of it (training, the Data tab and the estimate count rows with it).

Checking the rows: a row with an instruction or output that is missing (null), empty or not text cannot be
trained on. Such rows are never trained on silently: they are counted and the first few named (by row number, as the
Data tab numbers them) in the load message; training then drops them (data.drop_invalid, the default) or
refuses the dataset. For chat rows the instruction is a user message and the output an assistant message,
each with some text. Flat string columns are checked with Arrow kernels (no Python loop over the rows).

Before all of it, a browser upload: copy the temp file Gradio hands over into data/uploads/ under a new name.

The copy is what gets loaded (and what a run's config points at), so a run can be reproduced after
Gradio has cleaned its temp folder. A file never replaces another: a taken name gets -2, -3, ... and the
copy appears under its name only once it is complete.
"""
from __future__ import annotations

import logging
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from workbench.core.errors import DataError
from workbench.core.files import unique_path
from workbench.core.formatting import safe_name
from workbench.core.paths import data_dir
from workbench.data.formats import (CHAT_FORMATS, CHAT_KEYS, FIELD_SOURCES, Detection, chat_turns, detect_or_check,
                                    rename, to_canonical)
from workbench.data.read import FILE_TYPES, read_raw

log = logging.getLogger(__name__)


def open_source(source: str, fmt: str = "auto", column_map: dict | None = None, hub_config: str = "",
                hub_split: str = "train") -> tuple[object, Detection]:
    """(the raw Dataset with the column map applied, its Detection with notes and unusable rows)."""
    raw, notes = read_raw(source, hub_config, hub_split)
    raw = rename(raw, column_map)
    detection = detect_or_check(raw.column_names, fmt)
    detection.notes = list(notes)
    detection.invalid = find_invalid(raw, detection.format)
    return raw, detection


def canonical_rows(raw, detection: Detection, drop_invalid: bool = True):
    """The canonical Dataset to train on: unusable rows dropped (and said so), or a DataError naming them."""
    invalid = detection.invalid
    if invalid is not None:
        if not drop_invalid:
            raise DataError(f"{invalid.summary()}; training never uses such rows silently",
                            "fix those rows in the file, or set data.drop_invalid to true to drop them")
        if invalid.count == invalid.total:
            raise DataError(f"no row can be trained on: {invalid.summary()}",
                            "map the right columns (column map) or fix the file")
        raw = raw.select(np.setdiff1d(np.arange(invalid.total), invalid.rows))
        detection.notes.append(f"dropped {invalid.count:,} unusable row{'s' if invalid.count != 1 else ''} "
                               "before training (data.drop_invalid)")
    canonical = raw.map(lambda r: to_canonical(r, detection.format), remove_columns=raw.column_names,
                        desc=None, load_from_cache_file=False)
    if len(canonical) == 0:
        raise DataError("the dataset has no rows")
    return canonical


def load_canonical(source: str, fmt: str = "auto", column_map: dict | None = None, hub_config: str = "",
                   hub_split: str = "train", *, drop_invalid: bool = True):
    """(canonical Dataset, Detection) for training or evaluation; Detection.message() says what happened."""
    raw, detection = open_source(source, fmt, column_map, hub_config, hub_split)
    canonical = canonical_rows(raw, detection, drop_invalid)
    log.info("loaded %s: %s rows, %s", source, f"{len(canonical):,}", detection.message())
    return canonical, detection


def split_sizes(n: int, val_size: float, test_size: float) -> dict:
    """Rows in train / validation / test for n rows (the same arithmetic split() uses)."""
    n_test = int(round(n * test_size))
    n_val = int(round(n * val_size))
    if n - n_test - n_val < 1:
        raise DataError(f"{n} rows are too few for val_size={val_size} and test_size={test_size}")
    return {"train": n - n_test - n_val, "validation": n_val, "test": n_test}


def split(ds, val_size: float, test_size: float, seed: int):
    """Shuffle once with the seed, then cut test, validation and train (85/10/5 by default)."""
    sizes = split_sizes(len(ds), val_size, test_size)
    n, n_test, n_val = len(ds), sizes["test"], sizes["validation"]
    ds = ds.shuffle(seed=seed)
    return {"train": ds.select(range(n_test + n_val, n)),
            "validation": ds.select(range(n_test, n_test + n_val)),
            "test": ds.select(range(n_test))}


def split_markdown(n: int, val_size: float, test_size: float, seed: int) -> str:
    """The split of n rows in words, for the Data tab."""
    s = split_sizes(n, val_size, test_size)
    return (f"Split with seed {seed}: **train {s['train']:,}** · validation {s['validation']:,} · "
            f"test {s['test']:,} rows. Training shuffles with the seed and cuts in this order; the validation "
            "and test rows are saved with the run (split/). Set data.val_size, data.test_size and data.seed "
            "in the Train tab to change them.")


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


DEFAULT_MAX_MB = 200


def max_upload_bytes() -> int:
    """WORKBENCH_MAX_UPLOAD_MB (default 200) in bytes."""
    raw = os.environ.get("WORKBENCH_MAX_UPLOAD_MB", "") or str(DEFAULT_MAX_MB)
    try:
        return int(float(raw) * 1024 * 1024)
    except ValueError:
        return DEFAULT_MAX_MB * 1024 * 1024


def uploads_dir() -> Path:
    return data_dir() / "uploads"


def save_upload(temp_path: str | Path, original_name: str = "", file_types=FILE_TYPES,
                folder: Path | None = None) -> Path:
    """Check type and size, then copy an uploaded file to data/uploads/<name> (or `folder`; a fresh name)."""
    src = Path(temp_path)
    if not src.is_file():
        raise DataError("the upload did not arrive (no file); try again")
    name = Path(original_name or src.name).name
    suffix = Path(name).suffix.lower()
    if suffix not in file_types:
        raise DataError(f"{name}: unsupported file type; upload one of {', '.join(file_types)}")
    size, limit = src.stat().st_size, max_upload_bytes()
    if size > limit:
        raise DataError(f"{name} is {size / 2**20:.1f} MB, over the {limit / 2**20:.0f} MB upload limit "
                        "(WORKBENCH_MAX_UPLOAD_MB); put large files in data/ directly")
    folder = folder or uploads_dir()
    folder.mkdir(parents=True, exist_ok=True)
    wanted = folder / f"{safe_name(Path(name).stem, 'upload')}{suffix}"
    # Bytes, not text, so core.files.create_text does not fit; the same way: a temp file, then a hard link
    # under a free name, which fails (and the next name is tried) if the name was taken meanwhile.
    fd, tmp = tempfile.mkstemp(prefix=".upload.", dir=folder)
    try:
        os.chmod(tmp, 0o644)
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
        while True:
            target = unique_path(wanted)
            try:
                os.link(tmp, target)
                return target
            except FileExistsError:
                continue
    finally:
        Path(tmp).unlink(missing_ok=True)
