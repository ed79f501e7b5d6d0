"""The one rule for names the workbench turns into file names (runs, configs, templates, uploads, results).

A name is 1-80 characters of letters, digits, '_', '-' and '.', starting with a letter or digit: safe on
every file system, never a path (no '/'), never hidden (no leading '.').
"""
from __future__ import annotations

import re
import time

from workbench.core.errors import WorkbenchError

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
