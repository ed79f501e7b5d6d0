"""The one way a dataset is opened for showing and for training: read, rename, detect, check the rows.

open_source gives the raw rows and their Detection (format, reason, how the file was read, unusable rows);
the Data tab browses that (browse.open_view), the engine trains on load_canonical's canonical rows. Both
go through the same steps, so the row the Data tab shows is the row training uses. Then the train /
validation / test split: one shuffle with the seed, then cut test, validation and train; split_sizes is the
one arithmetic of it (training, the Data tab and the estimate count rows with it).
"""
from __future__ import annotations

import logging

import numpy as np

from workbench.core.errors import DataError
from workbench.data.formats import Detection, detect_or_check, rename, to_canonical
from workbench.data.read import read_raw
from workbench.data.validity import find_invalid

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
