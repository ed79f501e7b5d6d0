"""How many optimizer steps a run will take: train.max_steps, or epochs over the training rows when the data
is a local file that can be counted (a hub dataset is not downloaded for an estimate)."""
from __future__ import annotations

import functools
import math
from pathlib import Path

from workbench.config.run import RunConfig


def planned_steps(cfg: RunConfig, train_rows: int | None = None, data_file: str | None = None) -> int | None:
    """max_steps, or epochs x batches per epoch. `data_file` is the Plan's resolved local file, if any;
    without it the config's data.source is resolved here. None when the rows cannot be counted."""
    t = cfg.train
    if t.max_steps > 0:
        return t.max_steps
    rows = train_rows if train_rows is not None else count_train_rows(cfg, data_file)
    if rows is None:
        return None
    return max(1, math.ceil(t.epochs * math.ceil(rows / (t.batch_size * t.grad_accum))))


def count_train_rows(cfg: RunConfig, data_file: str | None = None) -> int | None:
    """Rows left for training after data.max_rows and the validation/test hold-outs."""
    if data_file is None:
        from workbench.core.paths import resolve_local
        from workbench.data.read import is_local

        if not is_local(cfg.data.source):
            return None
        data_file = str(resolve_local(cfg.data.source.strip()))
    path = Path(data_file)
    if not path.is_file():
        return None
    rows = _rows_in_file(str(path), path.stat().st_mtime)  # mtime in the key: an edited file is counted again
    if rows is None:
        return None
    if cfg.data.max_rows:
        rows = min(rows, cfg.data.max_rows)
    return max(0, round(rows * (1 - cfg.data.val_size - cfg.data.test_size)))


@functools.lru_cache(maxsize=32)
def _rows_in_file(path: str, mtime: float) -> int | None:
    from workbench.core.errors import DataError
    from workbench.data.read import load_raw

    try:
        return len(load_raw(path))
    except (DataError, OSError, ValueError):  # unreadable here: the estimate goes without a total time
        return None
