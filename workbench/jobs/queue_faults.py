"""What a failed queue call means: SQLite's result codes sorted into damage (the file is set aside, see
queue_file) and everything else (busy, full, read-only, cannot open, I/O), which fails only that call with a
JobError whose message says what happened and whose hint says what to do; nothing is set aside for those."""
from __future__ import annotations

import errno
import os
import sqlite3
from pathlib import Path

from workbench.core.errors import WorkbenchError

# SQLite's primary result codes (the low byte of sqlite_errorcode).
_BUSY, _LOCKED, _READONLY, _IOERR, _CORRUPT, _FULL, _CANTOPEN, _NOTADB = 5, 6, 8, 10, 11, 13, 14, 26
_DAMAGE = (_CORRUPT, _NOTADB)


class JobError(WorkbenchError):
    """A job operation that cannot be done (unknown id, cancel of a finished job, a bad submission, a queue
    that is busy, full or read-only)."""


def busy_timeout() -> float:
    """Seconds a call waits for another process's write lock: WORKBENCH_JOBS_BUSY_TIMEOUT, default 30."""
    raw = os.environ.get("WORKBENCH_JOBS_BUSY_TIMEOUT", "").strip()
    try:
        value = float(raw) if raw else 30.0
    except ValueError:
        value = -1.0
    if not 0 <= value <= 3600:
        raise JobError(f"WORKBENCH_JOBS_BUSY_TIMEOUT must be a number of seconds between 0 and 3600; got '{raw}'",
                       "unset it for the default (30 s)")
    return value


def _code(e: sqlite3.Error) -> int | None:
    code = getattr(e, "sqlite_errorcode", None)
    return None if code is None else code & 0xFF


def _disk_state(path: Path) -> int | None:
    """_FULL or _READONLY when the queue's disk (or its folder or file) is so now, else None."""
    try:
        disk = os.statvfs(path.parent)
    except OSError:
        return None
    if disk.f_flag & os.ST_RDONLY:
        return _READONLY
    if disk.f_bavail * disk.f_frsize < 64 * 1024:  # less than the WAL index (32 KiB) and a few pages need
        return _FULL
    writable = os.access(path.parent, os.W_OK) and (not path.exists() or os.access(path, os.W_OK))
    return None if writable else _READONLY


def is_damage(e: BaseException) -> bool:  # not a database, or a corrupt one: nothing else is damage
    return isinstance(e, sqlite3.DatabaseError) and _code(e) in _DAMAGE


def as_job_error(e: sqlite3.Error | OSError, path: Path) -> JobError:
    """A clear message and hint for an SQLite (or file) failure that is not damage: nothing was set aside."""
    code = _code(e) if isinstance(e, sqlite3.Error) else None
    if isinstance(e, OSError):
        code = {errno.ENOSPC: _FULL, errno.EROFS: _READONLY, errno.EACCES: _READONLY}.get(e.errno, _IOERR)
    if code in (_IOERR, _CANTOPEN, _FULL, _READONLY):
        code = _disk_state(path) or code  # SQLite often says only "disk I/O error" when the -shm cannot grow
    kept = "the jobs already queued are kept"
    if code in (_BUSY, _LOCKED):
        return JobError(f"the job queue is busy: another process held its write lock for more than "
                        f"{busy_timeout():g} s ({path}); nothing was changed",
                        f"try again in a moment ({kept}); if it stays busy, look for a stuck process using this "
                        "outputs/ folder, or raise WORKBENCH_JOBS_BUSY_TIMEOUT (seconds)")
    if code == _FULL:
        return JobError(f"the disk holding the job queue is full ({path}); nothing was changed",
                        f"free some space on that disk, then try again; {kept}")
    if code == _READONLY:
        return JobError(f"the job queue is read-only ({path}; {e}); nothing was changed",
                        "make the file, its -wal and -shm and its folder writable by the user running the "
                        f"workbench (or mount that disk read-write); {kept}")
    if code == _CANTOPEN:
        return JobError(f"the job queue file cannot be opened ({path}): {e}",
                        "check that its folder exists and is readable and writable by the user running the "
                        "workbench (WORKBENCH_JOBS_DB / WORKBENCH_OUTPUTS choose where it is)")
    if code in _DAMAGE:
        return JobError(f"the job queue file looks damaged ({path}): {e}",
                        "try again: the next use checks it and, if it is damaged, sets a copy aside")
    return JobError(f"the job queue could not be read or written ({path}): {e}",
                    f"check that disk (space, permissions, I/O errors); {kept}")
