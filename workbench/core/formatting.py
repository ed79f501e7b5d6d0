"""How sizes, durations and counts read in the UI and the CLI, written once; and the one rule for names the
workbench turns into file names (runs, configs, templates, uploads, results): 1-80 characters of letters,
digits, '_', '-' and '.', starting with a letter or digit: safe on every file system, never a path (no '/'),
never hidden (no leading '.')."""
from __future__ import annotations

import re
import time

from workbench.core.errors import WorkbenchError


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


NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,79}$")
_OUTSIDE = re.compile(r"[^A-Za-z0-9_.-]+")


def safe_name(text: str, default: str = "unnamed", max_len: int = 80) -> str:
    """Any text as a name: characters outside the alphabet become '-', ends trimmed ("My data!" → "My-data")."""
    clean = _OUTSIDE.sub("-", str(text or "")).strip("._-")[:max_len].rstrip("._-")
    return clean or default


def check_name(text: str, what: str = "name", error: type[WorkbenchError] = WorkbenchError) -> str:
    """`text` when it already is a valid name; otherwise `error` saying what a name may contain."""
    text = (text or "").strip()
    if not NAME.match(text):
        raise error(f"{what} {text!r} must be 1-80 letters, digits, '_', '-' or '.', starting with a letter "
                    "or digit (no folders)")
    return text


def timestamped(label: str = "run") -> str:
    """A new run id: the start time, then the label ("20261203-061500-cpu-demo")."""
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{safe_name(label.lower(), 'run', 40)}"
