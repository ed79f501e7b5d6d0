"""The worker's side of a job: it is the CLI command the supervisor started, and these helpers let that
command hear a stop request and report progress into the job's folder (outputs/jobs/<id>/)."""
from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

from workbench.core.files import atomic_write_text

WATCH_S = 0.5


def job_dir() -> Path | None:
    """This process's job folder when it runs as a job's worker (set by the supervisor), else None."""
    folder = os.environ.get("WORKBENCH_JOB_DIR")
    return Path(folder) if folder else None


def stop_event() -> threading.Event:
    """An Event the training loop checks at every step: set once the supervisor writes the STOP file."""
    event = threading.Event()
    folder = job_dir()
    if folder is None:
        return event

    def watch():
        while not event.is_set():
            if (folder / "STOP").exists():
                event.set()
                return
            time.sleep(WATCH_S)

    threading.Thread(target=watch, name="workbench-stop-watch", daemon=True).start()
    return event


def report_progress(done: int, total: int, what: str = "") -> None:
    """progress.json in the job folder (atomically replaced), read by the queue panel; a no-op outside a job."""
    folder = job_dir()
    if folder is None:
        return
    atomic_write_text(folder / "progress.json", json.dumps({"done": done, "total": total, "what": what,
                                                            "updated_at": time.time()}))


def saved_plan() -> dict | None:
    """The plan its submit saved (outputs/jobs/<id>/plan.json) when this process is a queued job's worker."""
    folder = job_dir()
    try:
        return json.loads((folder / "plan.json").read_text(encoding="utf-8")) if folder else None
    except (OSError, ValueError):
        return None
