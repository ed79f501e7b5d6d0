"""Where things live, and which folders the web UI may touch.

Every root is decided here (project, data/, outputs/, templates/, the model cache), each overridable by an
environment variable. The CLI may read any path its user types; the UI serves whoever reaches the port, so
every path a UI handler or a queued job touches goes through confine() (core/policy.py applies it at the
job boundary). Symlinks are resolved first, so a link inside data/
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


def _unique(paths) -> list[Path]:
    out: list[Path] = []
    for p in paths:
        r = Path(p).expanduser().resolve()
        if r not in out:
            out.append(r)
    return out


def operator_roots() -> list[Path]:
    """Folders the operator allowed when starting the app (--allow-path, kept in WORKBENCH_ALLOWED_ROOTS)."""
    return _unique(p for p in os.environ.get("WORKBENCH_ALLOWED_ROOTS", "").split(os.pathsep) if p.strip())


def allowed_roots() -> list[Path]:
    """Where a caller over HTTP or the queue may read: data/ (the project's and WORKBENCH_DATA), outputs/,
    templates/, the model cache and the operator's folders."""
    return _unique([PROJECT_ROOT / "data", data_dir(), outputs_dir(), templates_dir(), cache_dir(),
                    *operator_roots()])


def writable_roots() -> list[Path]:
    """Where a caller over HTTP or the queue may write: data/, outputs/ and the operator's folders."""
    return _unique([PROJECT_ROOT / "data", data_dir(), outputs_dir(), *operator_roots()])


def confine(path: str | Path, setting: str = "", *, write: bool = False) -> Path:
    """The resolved path (symlinks followed, so a link inside data/ that points at /etc is refused like /etc)
    if it lies under an allowed root; PathError naming the setting, the path and how to allow it otherwise.
    Nothing is created."""
    text = str(path).strip()
    named = f"{setting}: " if setting else ""
    if not text:
        raise PathError(f"{named}no path given")
    if "\x00" in text:
        raise PathError(f"{named}a path may not contain NUL bytes")
    resolved = resolve_local(text).resolve()
    roots = writable_roots() if write else allowed_roots()
    if any(resolved == r or resolved.is_relative_to(r) for r in roots):
        return resolved
    shown = ", ".join(display(r) + "/" for r in roots)
    verb = "write to" if write else "read"
    raise PathError(f"{named}'{text}' is outside the folders this app may {verb} ({shown})",
                    f"move it under one of them, or ask the operator to start the app with --allow-path "
                    f"{resolved if resolved.is_dir() else resolved.parent}")


def display(path: str | Path) -> str:
    """A path as the user should type it back: relative to the project root when it is inside it."""
    resolved = Path(path).resolve()
    try:
        return str(resolved.relative_to(PROJECT_ROOT.resolve()))
    except ValueError:
        return str(resolved)
