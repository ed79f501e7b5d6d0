"""What the UI shows of the queue, from the files and the database alone (the UI never runs a job):
the jobs table, one job's live snapshot (progress, metrics, log), and the Train tab's current run."""
from __future__ import annotations

import json
import time

from workbench.core.formatting import clock
from workbench.jobs import queue
from workbench.jobs.queue import Job
from workbench.jobs.submit import job_folder
from workbench.jobs.supervisor import log_tail
from workbench.runs.folder import RunDir

COLUMNS = ["id", "kind", "name", "owner", "state", "progress", "elapsed", "ETA", "processes", "executor",
           "slurm_job_id", "node", "error"]
LOG_LINES = 200


def _progress(job: Job) -> tuple[int, int, float | None]:
    """(done, total, eta_s) from the run's status.json (training) or the job's progress.json."""
    if job.kind == "train":
        status = RunDir(job.run_dir).read_status()
        return int(status.get("step") or 0), int(status.get("max_steps") or 0), status.get("eta_s")
    try:
        p = json.loads((job_folder(job.id) / "progress.json").read_text(encoding="utf-8"))
        done, total = int(p.get("done", 0)), int(p.get("total", 0))
    except (OSError, ValueError):
        return 0, 0, None
    started = job.started_at or time.time()
    eta = (time.time() - started) / done * (total - done) if done and total else None
    return done, total, eta


def progress_note(job: Job) -> str:
    """What a non-training job says it is doing now (the `what` of its progress.json), or ""."""
    try:
        return str(json.loads((job_folder(job.id) / "progress.json").read_text(encoding="utf-8")).get("what", ""))
    except (OSError, ValueError):
        return ""


def elapsed(job: Job) -> float | None:
    if not job.started_at:
        return None
    return (job.finished_at or time.time()) - job.started_at


def row(job: Job) -> dict:
    done, total, eta = _progress(job)
    return {"id": job.id, "kind": job.kind, "name": job.name, "owner": job.user or "", "state": job.state,
            "progress": f"{done}/{total}" if total else "", "elapsed": clock(elapsed(job)),
            "ETA": clock(eta) if job.state in queue.ACTIVE else "", "processes": job.processes,
            "executor": job.executor or "local", "slurm_job_id": job.slurm_job_id or "", "node": job.node or "",
            "error": (job.error or "").splitlines()[0] if job.error else _waiting(job)}


def _waiting(job: Job) -> str:
    """A job Slurm has not started yet says why, in the scheduler's words (Resources, Priority, ...)."""
    if job.state in queue.ACTIVE and job.reason and job.executor == "slurm":
        return f"Slurm: {job.reason}" if job.reason != "submitted" else "submitted to Slurm"
    return ""


def table(limit: int = 200) -> list[dict]:
    return [row(j) for j in queue.list_jobs(limit=limit)]


def snapshot(job: Job | None) -> dict:
    """Everything a live view needs, as JSON-able data (the shape /training_status has always returned)."""
    if job is None:
        return {"state": "idle", "active": False, "job_id": None, "run_id": None, "run_dir": None, "step": 0,
                "max_steps": 0, "elapsed_s": 0.0, "eta_s": None, "metrics": [], "log": [], "error": None,
                "adapter": None}
    run = RunDir(job.run_dir)
    done, total, eta = _progress(job)
    saved = run.saved_model() if job.kind == "train" else None
    state = job.state
    if job.kind == "train" and state == "cancelled" and run.read_status().get("state") == "stopped":
        state = "stopped"  # stopped by its user at a step boundary: resumable, as the run folder says
    return {
        "state": state, "active": job.state in ("queued", *queue.ACTIVE), "job_id": job.id, "kind": job.kind,
        "run_id": run.id, "run_dir": str(run.path), "step": done, "max_steps": total,
        "elapsed_s": round(elapsed(job) or 0.0, 1), "eta_s": eta if job.state in queue.ACTIVE else None,
        "metrics": run.read_metrics() if job.kind == "train" else [],
        "log": log_tail(job.id, LOG_LINES).splitlines(), "error": job.error,
        "adapter": str(saved) if saved else None, "executor": job.executor, "slurm_job_id": job.slurm_job_id,
        "node": job.node, "reason": job.reason, "result": result(job),
    }


def result(job: Job) -> dict | None:
    """A finished evaluation's summary and its rows file (what the Jobs tab shows instead of a loss chart)."""
    if job.kind != "eval" or job.state != "completed":
        return None
    from workbench.evaluation.results import eval_dir, list_results

    done = list_results(job.run_dir)
    if not done:
        return None
    return {**done[0], "rows_file": str(eval_dir(RunDir(job.run_dir)) / f"{done[0]['name']}.jsonl")}


def latest(kind: str = "train") -> Job | None:
    """The job a Train tab shows: the running one, else the newest of that kind."""
    jobs = [j for j in queue.list_jobs(limit=200) if j.kind == kind]
    active = [j for j in jobs if j.state in queue.ACTIVE]
    return (active or jobs or [None])[0]
