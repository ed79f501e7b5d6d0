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
import signal
import tempfile
import threading
import time
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
    with _sigterm_raises():  # a job cancelled mid-write leaves no temporary file behind
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


MARKER = ".workbench"  # left in every folder atomic_dir makes: only such a folder may be replaced
_TMP, _OLD = ".tmp-", ".old-"


def made_here(folder: Path) -> bool:
    return (Path(folder) / MARKER).is_file()


def check_replaceable(folder: str | Path, protected=()) -> None:
    """FileExistsError unless `folder` is one the workbench wrote (its marker file) and is none of `protected`
    (the app's own roots) nor holds a run folder: an overwrite never destroys what the workbench did not make."""
    folder = Path(folder).resolve()
    if not folder.is_dir() or not any(folder.iterdir()):
        return
    if folder in {Path(p).resolve() for p in protected}:
        raise FileExistsError(f"{folder} is one of the app's own folders and is never replaced")
    if not made_here(folder):
        raise FileExistsError(f"{folder} was not written by the workbench (no {MARKER} marker); it is never "
                              "replaced")
    if next(folder.rglob("status.json"), None) is not None:
        raise FileExistsError(f"{folder} is or holds a run folder; it is never replaced")


@contextlib.contextmanager
def _sigterm_raises():
    """While a temporary folder exists, SIGTERM (a cancelled or killed job) raises SystemExit in the main thread,
    so the cleanup below runs instead of the process vanishing and leaving the folder behind."""
    if threading.current_thread() is not threading.main_thread() or \
            signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield  # only the main thread sets handlers; a handler of the caller's own is left alone
        return

    def stop(signum, frame):
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextlib.contextmanager
def atomic_dir(final: str | Path, *, replace: bool = False, protected=()) -> Iterator[Path]:
    """Yield a temporary sibling folder to fill; on success it becomes `final`, on any error (SIGTERM included)
    it is removed.

    Without replace, `final` must not exist or be an empty folder (FileExistsError otherwise). With replace,
    an existing `final` must be a folder this function made (check_replaceable); it is swapped out and removed
    only after the new folder is in place. Temporary names carry the pid, so sweep_stale() can tell a dead
    process's leftovers from a live one's.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    if final.exists() and (not final.is_dir() or any(final.iterdir())):
        if not replace:
            raise FileExistsError(str(final))
        check_replaceable(final, protected)
    with _sigterm_raises():
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}{_TMP}{os.getpid()}-", dir=final.parent))
        try:
            (tmp / MARKER).write_text(f"written by the workbench (pid {os.getpid()})\n", encoding="utf-8")
            yield tmp
            old = None
            if final.exists():
                if replace and any(final.iterdir()):
                    old = final.with_name(f".{final.name}{_OLD}{os.getpid()}-{int(time.time())}")
                    os.replace(final, old)
                else:
                    final.rmdir()  # an empty folder made beforehand
            os.replace(tmp, final)
            if old is not None:
                shutil.rmtree(old, ignore_errors=True)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise


def sweep_stale(root: str | Path, depth: int = 3) -> list[Path]:
    """Remove temporary folders of atomic_dir (".<name>.tmp-<pid>-…", ".<name>.old-<pid>-…") under `root` whose
    process is gone: what a killed export, merge or generation left. Returns what was removed."""
    import psutil

    removed: list[Path] = []
    root = Path(root)
    if not root.is_dir():
        return removed
    for level in range(depth):
        for path in root.glob("/".join(["*"] * level + [".*"])):
            for mark in (_TMP, _OLD):
                if path.is_dir() and mark in path.name:
                    pid = path.name.split(mark, 1)[1].split("-", 1)[0]
                    if pid.isdigit() and not psutil.pid_exists(int(pid)):
                        shutil.rmtree(path, ignore_errors=True)
                        removed.append(path)
    return removed
