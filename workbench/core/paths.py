"""Where things live, and which folders the web UI may touch.

Every root is decided here (project, data/, outputs/, templates/, the model cache), each overridable by an
environment variable. The CLI may read any path its user types; the UI serves whoever reaches the port, so
every path a UI handler touches goes through confine(). Symlinks are resolved first, so a link inside data/
that points at /etc is refused like /etc itself.
"""
from __future__ import annotations

import os
from pathlib import Path

from workbench.core.errors import PathError

PROJECT_ROOT = Path(__file__).resolve().parent.parent.parent


def _env_dir(var: str, default: Path) -> Path:
    return Path(os.environ.get(var) or default)


def data_dir() -> Path:
    return _env_dir("WORKBENCH_DATA", PROJECT_ROOT / "data")


def outputs_dir() -> Path:
    return _env_dir("WORKBENCH_OUTPUTS", PROJECT_ROOT / "outputs")


def templates_dir() -> Path:
    return _env_dir("WORKBENCH_TEMPLATES", PROJECT_ROOT / "templates")


def cache_dir() -> Path:
    """Where converted models live; WORKBENCH_CACHE overrides ~/.cache/workbench."""
    return _env_dir("WORKBENCH_CACHE", Path.home() / ".cache" / "workbench")


def resolve_local(text: str | Path) -> Path:
    """A relative path is looked up from the working directory first, then from the project root (so
    "data/x.jsonl" means the project's data folder wherever the command runs)."""
    p = Path(str(text).strip()).expanduser()
    if not p.is_absolute() and not p.exists():
        p = PROJECT_ROOT / p
    return p


def is_local_path(text: str | Path, suffixes: tuple[str, ...] = ()) -> bool:
    """The one test of "is this a path on this machine, or a hub id?" for models and datasets alike:
    it starts like a path, exists, or ends in one of `suffixes` (e.g. a data file type). "org/name" that
    exists nowhere here is a hub id."""
    text = str(text or "").strip()
    if not text:
        return False
    if text.startswith((".", "/", "~")):
        return True
    if suffixes and Path(text).suffix.lower() in suffixes:
        return True
    return resolve_local(text).exists()


def allowed_roots() -> list[Path]:
    """data/ (the project's and WORKBENCH_DATA), outputs/, templates/ and WORKBENCH_ALLOWED_ROOTS."""
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
    """The resolved path if it lies under an allowed root; PathError otherwise."""
    text = str(path).strip()
    if not text:
        raise PathError("no path given")
    resolved = resolve_local(text).resolve()
    roots = allowed_roots()
    if not any(resolved == r or resolved.is_relative_to(r) for r in roots):
        shown = ", ".join(display(r) + "/" for r in roots)
        raise PathError(f"'{text}' is outside the folders this app may read ({shown})",
                        "copy the file into data/ or add its folder to WORKBENCH_ALLOWED_ROOTS")
    return resolved


def display(path: str | Path) -> str:
    """A path as the user should type it back: relative to the project root when it is inside it."""
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(PROJECT_ROOT.resolve()))
    except ValueError:
        return str(resolved)
