"""The job queue: one SQLite file (WAL mode, a schema version), shared by every app and headless worker that
uses the same outputs/ folder.

Submitting writes one row in one transaction. A job is claimed by exactly one supervisor: the claim is an
UPDATE ... WHERE state = 'queued' inside BEGIN IMMEDIATE, so two processes racing for it cannot both win.
Supervisors and workers write rows; the UI only reads.

The file itself (schema, migration, faults) is `queue_file`: a busy, full or read-only queue fails only the call
that met it, with a JobError that says so (committed jobs stay); only a damaged file is set aside, as a copy
(its name and the reason are logged and returned by `damaged_note()`), and a fresh queue starts.
"""
from __future__ import annotations

import json
import logging
import contextlib
import os
import sqlite3
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

from workbench.core.paths import outputs_dir
from workbench.jobs.queue_file import SCHEMA_VERSION, JobError, damaged_note, initialise, open_db, translated

__all__ = ["SCHEMA_VERSION", "JobError", "damaged_note", "Job", "db_path", "connect", "transaction", "insert", "get",
           "list_jobs", "update", "set_state", "claim", "json_ready", "new_id"]

log = logging.getLogger(__name__)

STATES = ("queued", "running", "stopping", "completed", "failed", "interrupted", "cancelled")
ACTIVE = ("running", "stopping")
FINISHED = ("completed", "failed", "interrupted", "cancelled")


@dataclass
class Job:
    id: str
    kind: str
    name: str
    config: str
    state: str
    run_dir: str
    processes: int = 1
    resume: bool = False
    sweep_id: str | None = None
    devices: str | None = None
    owner: str | None = None
    pid: int | None = None
    pid_started: float | None = None
    error: str | None = None
    created_at: float = field(default_factory=time.time)
    started_at: float | None = None
    finished_at: float | None = None
    user: str | None = None
    executor: str = "local"
    slurm_job_id: str | None = None
    node: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def folder(self) -> Path:
        return Path(self.run_dir)


def db_path() -> Path:
    """WORKBENCH_JOBS_DB, or outputs/jobs.sqlite3."""
    return Path(os.environ.get("WORKBENCH_JOBS_DB") or outputs_dir() / "jobs.sqlite3")


@contextmanager
def connect() -> Iterator[sqlite3.Connection]:
    """A connection to the queue; SQLite failures inside become JobErrors that say what to do."""
    path = db_path()
    initialise(path)
    with translated(path):
        conn = open_db(path)
        try:
            yield conn
        finally:
            conn.close()


@contextmanager
def transaction() -> Iterator[sqlite3.Connection]:
    """BEGIN IMMEDIATE: takes the write lock now, so a read-then-write (a claim) cannot interleave."""
    with connect() as conn:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
            conn.execute("COMMIT")
        except BaseException:
            if conn.in_transaction:  # a failed COMMIT (disk full) may have rolled back already
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise


def _job(row: sqlite3.Row) -> Job:
    d = dict(row)
    d["resume"] = bool(d["resume"])
    return Job(**d)


def new_id() -> str:
    return time.strftime("%Y%m%d-%H%M%S-") + uuid.uuid4().hex[:6]


def insert(job: Job) -> Job:
    """Write a new job row (state queued) in one transaction."""
    cols = list(job.to_dict())
    with transaction() as conn:
        conn.execute(f"INSERT INTO jobs ({', '.join(cols)}) VALUES ({', '.join('?' * len(cols))})",
                     [int(v) if isinstance(v, bool) else v for v in job.to_dict().values()])
    log.info("job %s (%s) queued: %s", job.id, job.kind, job.name)
    return job


def get(job_id: str) -> Job:
    with connect() as conn:
        row = conn.execute("SELECT * FROM jobs WHERE id = ?", (str(job_id).strip(),)).fetchone()
    if row is None:
        raise JobError(f"no job with id '{job_id}'", "list the jobs to see their ids")
    return _job(row)


def list_jobs(states: tuple[str, ...] | None = None, limit: int = 500) -> list[Job]:
    """Newest first."""
    query, args = "SELECT * FROM jobs", []
    if states:
        query += f" WHERE state IN ({', '.join('?' * len(states))})"
        args = list(states)
    with connect() as conn:
        rows = conn.execute(query + " ORDER BY created_at DESC, id DESC LIMIT ?", [*args, limit]).fetchall()
    return [_job(r) for r in rows]


def update(job_id: str, **fields) -> None:
    sets = ", ".join(f"{k} = ?" for k in fields)
    with transaction() as conn:
        conn.execute(f"UPDATE jobs SET {sets} WHERE id = ?", [*fields.values(), job_id])


def set_state(job_id: str, state: str, *, only_from: tuple[str, ...] | None = None, **fields) -> bool:
    """Move a job to `state` (from one of `only_from`, if given); True when the row changed."""
    assert state in STATES, state
    if state in FINISHED:
        fields.setdefault("finished_at", time.time())
    sets = ", ".join(f"{k} = ?" for k in ("state", *fields))
    query, args = f"UPDATE jobs SET {sets} WHERE id = ?", [state, *fields.values(), job_id]
    if only_from:
        query += f" AND state IN ({', '.join('?' * len(only_from))})"
        args += list(only_from)
    with transaction() as conn:
        changed = conn.execute(query, args).rowcount
    if changed:
        log.info("job %s → %s%s", job_id, state, f": {fields['error']}" if fields.get("error") else "")
    return bool(changed)


def claim(owner: str, fits) -> Job | None:
    """The oldest queued job that can start, now 'running', owned by `owner`, with its devices recorded.

    `fits(job, active)` sees the jobs running now (every supervisor's, read inside this transaction) and
    returns the devices to give the job (() on a CPU), or None when it cannot start yet. Exactly one caller
    wins a job, and two supervisors never hand out the same GPU or run two jobs at once on one CPU."""
    with transaction() as conn:
        active = [_job(r) for r in conn.execute(
            f"SELECT * FROM jobs WHERE state IN ({', '.join('?' * len(ACTIVE))})", ACTIVE).fetchall()]
        rows = conn.execute("SELECT * FROM jobs WHERE state = 'queued' ORDER BY created_at, id").fetchall()
        for row in rows:
            job = _job(row)
            devices = fits(job, active)
            if devices is None:
                continue
            now = time.time()
            job.devices = ",".join(map(str, devices))
            conn.execute("UPDATE jobs SET state = 'running', owner = ?, started_at = ?, devices = ?, error = NULL, "
                         "pid = NULL WHERE id = ? AND state = 'queued'", (owner, now, job.devices, job.id))
            job.state, job.owner, job.started_at = "running", owner, now
            return job
    return None


def json_ready(job: Job) -> dict:
    """A job record for the API: JSON-serialisable, the config as text."""
    return json.loads(json.dumps(job.to_dict()))
