"""Small helpers shared by the user-level suites (browser journey, bad input, faults).

Kept out of conftest.py so these suites stay self-contained; nothing here mocks the model or the engine.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

from conftest import ROOT

# Tiny but real run settings for /start_training (keyword names are the form's section__key).
TINY_API = dict(data__max_rows=48, data__max_length=128, train__batch_size=2, train__max_steps=3,
                train__save_steps=2, train__eval_steps=0, train__logging_steps=1)


# -- waiting ---------------------------------------------------------------------------------------

def wait_for(condition, timeout: float = 300, interval: float = 0.25, what: str = "condition"):
    """Poll `condition()` until it returns something truthy; that value is returned."""
    deadline = time.time() + timeout
    last = None
    while time.time() < deadline:
        last = condition()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}; last value: {last!r}")


def run_queued(job_id: str, timeout: float, what: str, **supervisor):
    """Start a supervisor (Supervisor(**supervisor)), wait until the job has ended, close it; the final job row."""
    from workbench.jobs import queue
    from workbench.jobs.supervisor import Supervisor

    sup = Supervisor(poll_s=0.2, **supervisor).start()
    try:
        wait_for(lambda: queue.get(job_id).state in queue.FINISHED, timeout=timeout, what=what)
    finally:
        sup.close()
    return queue.get(job_id)


def wait_idle(client, timeout: float = 600) -> dict:
    """Until the app's training job is not running (one job per app process, shared by all test modules)."""
    return wait_for(lambda: (s := client.predict(api_name="/training_status")) and not s["active"] and s,
                    timeout, 0.5, "the training job to be idle")


# -- "nothing changed" -----------------------------------------------------------------------------

# The job queue's database changes under its own supervisor's polling (SQLite's WAL and shared-memory files
# come and go as connections open and close); it is not a file a refused request could have written.
QUEUE_FILES = ("jobs.sqlite3", "jobs.sqlite3-wal", "jobs.sqlite3-shm", "jobs.sqlite3-journal")


def tree_snapshot(*roots: Path) -> dict[str, tuple[int, int]]:
    """path → (size, mtime_ns) of every file under the roots (missing roots give nothing), the job queue's
    own database files excepted."""
    out: dict[str, tuple[int, int]] = {}
    for root in roots:
        root = Path(root)
        if not root.exists():
            continue
        for dirpath, _dirs, files in os.walk(root):
            for name in files:
                if name in QUEUE_FILES:
                    continue
                p = Path(dirpath) / name
                try:
                    st = p.stat()
                except FileNotFoundError:  # removed while walking
                    continue
                out[str(p)] = (st.st_size, st.st_mtime_ns)
    return out


def leftovers(*roots: Path) -> list[str]:
    """Temp files a half-finished write would leave: hidden names (.x.tmpXXXX) or names holding '.tmp'. The
    marker a finished folder carries (core/files.MARKER: 'the workbench wrote this') is no leftover."""
    from workbench.core.files import MARKER

    found = []
    for root in roots:
        for p in Path(root).rglob("*") if Path(root).exists() else []:
            if p.is_file() and (p.name.startswith(".") and p.name not in (".gitkeep", MARKER) or ".tmp" in p.name):
                found.append(str(p))
    return found


def watched_roots() -> list[Path]:
    """The project's data/ and templates/ plus the outputs folder the app writes runs to."""
    from workbench.core.paths import data_dir, outputs_dir, templates_dir

    roots = [ROOT / "data", data_dir(), outputs_dir(), templates_dir()]
    unique = []
    for r in roots:
        if r.resolve() not in [u.resolve() for u in unique]:
            unique.append(r)
    return unique


def diff_snapshots(before: dict, after: dict) -> dict:
    added = sorted(set(after) - set(before))
    removed = sorted(set(before) - set(after))
    changed = sorted(p for p in set(before) & set(after) if before[p] != after[p])
    return {k: v for k, v in (("added", added), ("removed", removed), ("changed", changed)) if v}


def run_steps(metrics: list[dict]) -> list[int]:
    """The steps that logged a training loss, in file order."""
    return [r["step"] for r in metrics if "loss" in r]
