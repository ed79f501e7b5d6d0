"""Train / validation / test split: one shuffle with the seed, then cut test, validation and train."""
from __future__ import annotations

from workbench.core.errors import DataError


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
