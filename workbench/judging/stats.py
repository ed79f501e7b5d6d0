"""Intervals for what a judge reports: Wilson score intervals for win / tie / loss rates (sound at small n
and at rates near 0 or 1, where the normal approximation leaves [0, 1]), and a normal interval for a mean."""
from __future__ import annotations

import math

Z95 = 1.959963984540054


def wilson(k: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """95% Wilson interval of a proportion k/n; None when nothing was counted."""
    if n <= 0:
        return None
    p = k / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4)


def mean_ci(values: list[float], z: float = Z95) -> tuple[float, float] | None:
    """95% normal interval of a mean (sample standard deviation); None below two values."""
    n = len(values)
    if n < 2:
        return None
    m = sum(values) / n
    sd = math.sqrt(sum((v - m) ** 2 for v in values) / (n - 1))
    half = z * sd / math.sqrt(n)
    return round(m - half, 2), round(m + half, 2)


def pairwise_summary(verdicts: list[str]) -> dict:
    """win / tie / loss rates of the adapter with their 95% intervals, over the rows judged."""
    n = len(verdicts)
    out: dict = {"judged_rows": n}
    for outcome in ("win", "tie", "loss"):
        k = verdicts.count(outcome)
        out[f"{outcome}_rate"] = round(k / n, 4) if n else None
        ci = wilson(k, n)
        out[f"{outcome}_rate_ci"] = list(ci) if ci else None
    return out
