"""Which folders the web UI may read and write: confine(path) refuses anything outside them.

The CLI may read any path its user types; the UI serves whoever reaches the port, so every path a UI
handler touches goes through confine(). Symlinks are resolved first, so a link inside data/ that points
at /etc is refused like /etc itself.
"""
from __future__ import annotations

import os
from pathlib import Path


class PathError(ValueError):
    """A path the UI may not touch; the message names the allowed folders."""


def allowed_roots() -> list[Path]:
    """data/ (the project's and WORKBENCH_DATA), outputs/, templates/ and WORKBENCH_ALLOWED_ROOTS."""
    from workbench.data.sources import data_dir
    from workbench.runs import outputs_dir
    from workbench.templates import PROJECT_ROOT, templates_dir

    roots = [PROJECT_ROOT / "data", data_dir(), outputs_dir(), templates_dir()]
    extra = os.environ.get("WORKBENCH_ALLOWED_ROOTS", "")
    roots += [Path(p).expanduser() for p in extra.split(os.pathsep) if p.strip()]
    unique: list[Path] = []
    for root in roots:
        r = root.resolve()
        if r not in unique:
            unique.append(r)
    return unique


def confine(path: str | Path) -> Path:
    """The resolved path if it lies under an allowed root; PathError otherwise.

    A relative path is looked up from the working directory first, then from the project root
    (as the engine does), so "data/x.jsonl" means the project's data folder.
    """
    from workbench.templates import PROJECT_ROOT

    text = str(path).strip()
    if not text:
        raise PathError("no path given")
    p = Path(text).expanduser()
    if not p.is_absolute() and not p.exists():
        p = PROJECT_ROOT / p
    resolved = p.resolve()
    roots = allowed_roots()
    if not any(resolved == r or resolved.is_relative_to(r) for r in roots):
        shown = ", ".join(_show(r) for r in roots)
        raise PathError(f"'{text}' is outside the folders this app may read ({shown}); copy the file into "
                        "data/ or add its folder to WORKBENCH_ALLOWED_ROOTS")
    return resolved


def _show(root: Path) -> str:
    from workbench.templates import PROJECT_ROOT

    try:
        return str(root.relative_to(PROJECT_ROOT.resolve())) + "/"
    except ValueError:
        return str(root)


def display(path: str | Path) -> str:
    """A path as the user should type it back: relative to the project root when it is inside it."""
    return _show(Path(path).resolve()).rstrip("/")
