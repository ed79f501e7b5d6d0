"""The queue's SQLite file: opening it, its schema (and the migration of an older one), and telling a damaged
file from one that is merely busy, full or read-only.

Only a file that really is damaged (SQLite says it is not a database or is corrupt, or `PRAGMA integrity_check`
finds a fault) is set aside: it is copied byte for byte, with its -wal and -shm, to `<name>.damaged-<time>`
before a fresh queue takes its name, and `damaged_note()` says where the copy is. Every other SQLite failure
(busy past the busy timeout, disk full, read-only, cannot open, I/O) fails only the call that met it, as a
JobError with a hint; the file and its committed jobs are left as they are.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import shutil
import sqlite3
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Iterator

from workbench.jobs.queue_faults import JobError, as_job_error, busy_timeout, is_damage

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
_SCHEMA = ("""
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    name TEXT NOT NULL,
    config TEXT NOT NULL,          -- the full config as submitted (YAML)
    state TEXT NOT NULL,
    run_dir TEXT NOT NULL,         -- the folder the job writes (a run folder for train)
    processes INTEGER NOT NULL DEFAULT 1,
    resume INTEGER NOT NULL DEFAULT 0,
    sweep_id TEXT,
    devices TEXT,                  -- CUDA_VISIBLE_DEVICES given to it, '' on CPU
    owner TEXT,                    -- the supervisor that claimed it
    pid INTEGER,                   -- the worker's process (group leader)
    pid_started REAL,              -- that process's start time: a pid alone can be reused
    error TEXT,
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    user TEXT,                     -- the signed-in user who submitted it (under --auth), else NULL
    executor TEXT NOT NULL DEFAULT 'local',  -- local (a worker process here) or slurm
    slurm_job_id TEXT,             -- the executor's handle on a cluster
    node TEXT,                     -- where it runs (Slurm's node list)
    reason TEXT                    -- why it waits (Slurm's pending reason: Resources, Priority, ...)
)""", "CREATE INDEX IF NOT EXISTS jobs_state ON jobs(state, created_at)")
# Columns added after schema 1, with their SQL type: an older queue file gains them in place (its jobs kept).
_ADDED = {"user": "TEXT", "executor": "TEXT NOT NULL DEFAULT 'local'", "slurm_job_id": "TEXT", "node": "TEXT",
          "reason": "TEXT"}
_COLUMNS = {"id", "kind", "name", "config", "state", "run_dir", "processes", "resume", "sweep_id", "devices",
            "owner", "pid", "pid_started", "error", "created_at", "started_at", "finished_at", *_ADDED}

_damaged: list[str] = []  # notes about queue files set aside in this process
_init_lock = threading.Lock()
_ready: set[str] = set()


class _Damaged(Exception):
    """The file is not a usable database; the reason is the message."""


def damaged_note() -> str | None:
    """What happened to a damaged queue file in this process, for the UI to say."""
    return _damaged[-1] if _damaged else None


def open_db(path: Path) -> sqlite3.Connection:
    timeout = busy_timeout()
    conn = sqlite3.connect(path, timeout=timeout, isolation_level=None)  # autocommit; transactions are explicit
    conn.row_factory = sqlite3.Row
    conn.execute(f"PRAGMA busy_timeout = {int(timeout * 1000)}")
    return conn


@contextlib.contextmanager
def translated(path: Path) -> Iterator[None]:
    """Turn SQLite failures inside the block into JobErrors (damage found mid-use re-checks the file next time)."""
    try:
        yield
    except sqlite3.Error as e:
        if is_damage(e):
            _ready.discard(str(path))
        raise as_job_error(e, path) from e


def initialise(path: Path) -> None:
    """Check the file once per process: create it, migrate an older schema, or set a damaged one aside."""
    with _init_lock:
        if str(path) in _ready:
            return
        try:
            if not path.parent.is_dir():
                path.parent.mkdir(parents=True, exist_ok=True)
            try:
                _prepare(path)
            except _Damaged as e:
                _set_aside(path, str(e))
        except (sqlite3.Error, OSError) as e:
            raise as_job_error(e, path) from e
        _ready.add(str(path))


def _check(path: Path) -> bool:
    """Read-only look at an existing file: raises _Damaged, else whether it needs a write (new file, old
    schema, not yet WAL). Read-only, so a damaged file's WAL is not checkpointed into it before it is copied,
    and a healthy file is checked without waiting for the write lock another process holds."""
    if not path.exists() or path.stat().st_size == 0:
        return True
    uri = "file:" + urllib.parse.quote(str(path.resolve())) + "?mode=ro"
    try:
        conn = sqlite3.connect(uri, uri=True, timeout=busy_timeout(), isolation_level=None)
        try:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            faults = [r[0] for r in conn.execute("PRAGMA integrity_check(5)").fetchall()]
            if faults != ["ok"]:
                raise _Damaged("integrity check: " + "; ".join(faults))
            journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
            columns = {r[1] for r in conn.execute("PRAGMA table_info(jobs)").fetchall()}
        finally:
            conn.close()
    except sqlite3.DatabaseError as e:
        if is_damage(e):
            raise _Damaged(str(e)) from e
        return True  # e.g. no -shm can be made read-only: the read-write open below says what is wrong
    _refuse_newer(path, version)
    return version != SCHEMA_VERSION or journal != "wal" or not _COLUMNS <= columns


def _prepare(path: Path) -> None:
    if not _check(path):
        return  # nothing to write: a busy or read-only queue can still be read
    conn = open_db(path)
    try:
        try:
            conn.execute("PRAGMA journal_mode = WAL")  # readers never block the writer, nor the writer them
            conn.execute("BEGIN IMMEDIATE")  # schema and migration in one transaction: all or nothing
            _refuse_newer(path, conn.execute("PRAGMA user_version").fetchone()[0])
            for statement in _SCHEMA:
                conn.execute(statement)
            _migrate(conn)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
    except sqlite3.DatabaseError as e:
        if is_damage(e):
            raise _Damaged(str(e)) from e
        raise
    finally:
        conn.close()


def _refuse_newer(path: Path, version: int) -> None:
    if version > SCHEMA_VERSION:
        raise JobError(f"{path} was written by a newer workbench (schema {version} > {SCHEMA_VERSION})",
                       "use that workbench version, or point WORKBENCH_JOBS_DB at another file")


def _migrate(conn: sqlite3.Connection) -> None:
    have = {r[1] for r in conn.execute("PRAGMA table_info(jobs)").fetchall()}
    for column, sql_type in _ADDED.items():
        if column not in have:
            conn.execute(f"ALTER TABLE jobs ADD COLUMN {column} {sql_type}")


def _set_aside(path: Path, reason: str) -> None:
    """Copy the damaged file (and its -wal, -shm) aside, then start a fresh queue under its name.

    One process at a time (an flock): the others wait, then find the fresh file healthy. If the copy cannot be
    made (e.g. a full disk), nothing changes and the call fails with that reason."""
    with open(path.with_name(path.name + ".setaside.lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            try:
                _check(path)
                aside = None  # another process set it aside meanwhile
            except _Damaged:
                aside = _aside_name(path)
            if aside is not None:
                _copy_aside_and_start_fresh(path, aside, reason)
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    if aside is not None:
        note = (f"the job queue {path.name} was damaged ({reason}); a copy of it was set aside as {aside.name} "
                f"(with its -wal and -shm, if any) in {path.parent}, and a new, empty queue was started")
        log.error(note)
        _damaged.append(note)
    _prepare(path)


def _copy_aside_and_start_fresh(path: Path, aside: Path, reason: str) -> None:
    """Copy the file and its -wal / -shm byte for byte (fsynced), then put a fresh queue under its name."""
    fresh = path.with_name(f".{path.name}.fresh-{os.getpid()}")
    made = [Path(str(aside) + s) for s in ("", "-wal", "-shm") if Path(str(path) + s).exists()] + [fresh]
    try:
        for copy in made[:-1]:
            _copy(Path(str(path) + copy.name[len(aside.name):]), copy)
        fresh.unlink(missing_ok=True)  # a leftover of this pid's earlier crash, never a queue
        _build_fresh(fresh)
    except (OSError, sqlite3.Error) as e:  # e.g. a full disk: leave the damaged file where it is
        for p in made:
            p.unlink(missing_ok=True)  # only our own partial copies
        raise JobError(f"the job queue {path} is damaged ({reason}), and a copy could not be set aside "
                       f"({e}); nothing was changed", "free space on that disk (or make it writable), "
                       "then try again; or move the file away yourself") from e
    # The live -wal and -shm must go before the fresh file takes the name, or SQLite would replay the
    # old WAL into it; their bytes are already in the fsynced copies.
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    os.replace(fresh, path)
    _fsync(path.parent)


def _aside_name(path: Path) -> Path:
    base = f"{path.name}.damaged-{time.strftime('%Y%m%d-%H%M%S')}"
    aside, n = path.with_name(base), 1
    while any(Path(str(aside) + s).exists() for s in ("", "-wal", "-shm")):
        n += 1
        aside = path.with_name(f"{base}-{n}")
    return aside


def _copy(source: Path, target: Path) -> None:
    shutil.copyfile(source, target)
    _fsync(target)
    if target.stat().st_size != source.stat().st_size:
        raise OSError(f"the copy {target} of {source} is incomplete")


def _build_fresh(fresh: Path) -> None:
    conn = sqlite3.connect(fresh, isolation_level=None)
    try:
        for statement in _SCHEMA:
            conn.execute(statement)
        conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
    finally:
        conn.close()
    _fsync(fresh)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
