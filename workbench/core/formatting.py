"""How sizes, durations and counts read in the UI and the CLI, written once."""
from __future__ import annotations


def human_size(n: float | None) -> str:
    """Bytes as "512 B", "3.4 MB", "1.2 GB"."""
    if n is None:
        return "?"
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if abs(n) < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"


def duration(s: float | None) -> str:
    """Seconds as "4.2 s", "12 min", "3.5 h", "2.0 days"."""
    if s is None:
        return "?"
    if s < 90:
        return f"{s:.1f} s" if s < 10 else f"{s:.0f} s"
    if s < 90 * 60:
        return f"{s / 60:.0f} min"
    if s < 48 * 3600:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"


def clock(s: float | None) -> str:
    """Seconds as a clock, "1:05:09" or "5:09", for progress lines; "—" when unknown."""
    if s is None or s < 0:
        return "—"
    s = int(round(s))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def count(n: int) -> str:
    """A large count as "134.5M", "7.0B"."""
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def number(x: float | None, digits: int = 4) -> str:
    """A metric for a table or a summary line; "–" when missing."""
    return "–" if x is None else f"{x:.{digits}g}" if abs(x) >= 1e4 or (x and abs(x) < 1e-3) else f"{x:.{digits}f}"
