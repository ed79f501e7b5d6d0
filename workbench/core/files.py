"""Writing files and folders so that nothing already saved is lost or half-written.

Three ways to write, one place each:
  atomic_write_text  replace a file: temp file in the same folder, fsync, rename
  create_text        a new file that must not replace anything: temp file, then a hard link under its name,
                     which fails if the name was taken meanwhile
  atomic_dir         a new or replaced folder: written under a temporary sibling name, renamed at the end
plus unique_path for "name, name-2, name-3 …" when a taken name should not be an error.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterable, Iterator


def _write_temp(folder: Path, name: str, chunks: Iterable[str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=folder)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; outputs are meant to be shared like any file
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for chunk in chunks:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def atomic_write_text(path: str | Path, text: str | Iterable[str]) -> Path:
    """Replace `path` with `text` (a string or an iterable of strings): readers never see half a file."""
    path = Path(path)
    tmp = _write_temp(path.parent, path.name, [text] if isinstance(text, str) else text)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def create_text(path: str | Path, text: str | Iterable[str]) -> Path:
    """Write a new file; FileExistsError (and nothing written) if `path` exists, even if it appeared a moment
    ago from another process."""
    path = Path(path)
    tmp = _write_temp(path.parent, path.name, [text] if isinstance(text, str) else text)
    try:
        os.link(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def unique_path(path: str | Path, taken=None) -> Path:
    """`path`, or the first free of path-2, path-3 … (before the suffix for files: x.jsonl → x-2.jsonl)."""
    path = Path(path)
    taken = taken or (lambda p: p.exists())
    stem, suffix = (path.stem, path.suffix) if path.suffix and not path.is_dir() else (path.name, "")
    candidate, n = path, 1
    while taken(candidate):
        n += 1
        candidate = path.with_name(f"{stem}-{n}{suffix}")
    return candidate


@contextlib.contextmanager
def atomic_dir(final: str | Path, *, replace: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling folder to fill; on success it becomes `final`, on any error it is removed.

    Without replace, `final` must not exist or be an empty folder (FileExistsError otherwise). With replace,
    an existing `final` is swapped out and removed only after the new folder is in place.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists() and not replace and (not final.is_dir() or any(final.iterdir())):
        raise FileExistsError(str(final))
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.tmp-", dir=final.parent))
    try:
        yield tmp
        old = None
        if final.exists():
            if replace and any(final.iterdir()):
                old = final.with_name(f".{final.name}.old-{os.getpid()}")
                os.replace(final, old)
            else:
                final.rmdir()  # an empty folder made beforehand
        os.replace(tmp, final)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
