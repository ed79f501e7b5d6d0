"""Submitting, cancelling and resuming jobs: what the UI, the API and the CLI call. Nothing here runs a job;
the supervisor does."""
from __future__ import annotations

import json
import logging
import shutil
import signal
import time
from pathlib import Path

from workbench.config.fields import Settings
from workbench.core.errors import ConfigError
from workbench.core.files import atomic_write_text
from workbench.core.paths import outputs_dir
from workbench.core.policy import caller, current
from workbench.jobs import boundary, queue
from workbench.jobs.kinds import get_kind
from workbench.jobs.queue import Job, JobError

log = logging.getLogger(__name__)
MAX_PROCESSES = 64


def jobs_dir() -> Path:
    """outputs/jobs/<job-id>/: the config a job runs with, its worker.log and its progress."""
    return outputs_dir() / "jobs"


def job_folder(job_id: str) -> Path:
    return jobs_dir() / job_id


def config_file(job_id: str) -> Path:
    return job_folder(job_id) / "config.yaml"


def parse_config(kind: str, config: str | Settings) -> Settings:
    """A kind's config from YAML / JSON text (or a config object); ConfigError names what is wrong."""
    k = get_kind(kind)
    if isinstance(config, Settings):
        if not isinstance(config, k.config_class):
            raise ConfigError(f"a {kind} job takes a {k.config_class.__name__}, not a {type(config).__name__}")
        return config.copy()
    return k.config_class.from_text(config or "")


def submit(kind: str, config: str | Settings, *, processes: int = 1, sweep_id: str | None = None,
           executor: str | None = None) -> Job:
    """Check the config (as the kind's preflight does) and queue the job in one transaction.

    An invalid config raises its ConfigError, a path or key the caller may not use a PathError / PolicyError,
    and nothing is queued or written. Under --auth the job records the signed-in user as its owner."""
    k = get_kind(kind)
    cfg = parse_config(kind, config)
    processes = int(processes or 1)
    if not 1 <= processes <= MAX_PROCESSES:
        raise ConfigError(f"processes must be between 1 and {MAX_PROCESSES}; got {processes}")
    if processes > 1 and not k.distributed:
        raise ConfigError(f"{kind} jobs run as one process; processes must be 1")
    boundary.check(k, cfg)  # the trust boundary first: nothing below creates anything for a forbidden path
    if executor not in (None, "", "local", "slurm"):
        raise ConfigError(f"unknown executor '{executor}'; choose local or slurm")
    if executor and hasattr(cfg, "executor"):
        cfg.executor = executor  # a training config carries it (the job's row says it for every kind)
    if hasattr(cfg, "distributed"):
        _check_strategy(cfg, processes)
    prepared = k.prepare(cfg)
    job = Job(id=queue.new_id(), kind=kind, name=prepared.name, config=prepared.config.to_yaml(), state="queued",
              run_dir=str(prepared.run_dir), processes=processes, sweep_id=sweep_id, user=caller(),
              executor=executor or getattr(cfg, "executor", "") or "local")
    try:
        atomic_write_text(config_file(job.id), job.config)  # the worker reads its config from this file
        if prepared.plan is not None:  # and the plan made here, instead of planning again
            atomic_write_text(plan_file(job.id), json.dumps(prepared.plan, indent=2))
        return queue.insert(job)
    except BaseException:
        shutil.rmtree(job_folder(job.id), ignore_errors=True)  # a refused insert (busy, full) leaves nothing
        raise


def plan_file(job_id: str) -> Path:
    return job_folder(job_id) / "plan.json"


def job_plan(job_id: str):
    """The preflight Plan a training job was queued with (None for other kinds)."""
    from workbench.config.preflight import Plan

    try:
        return Plan.from_dict(json.loads(plan_file(job_id).read_text(encoding="utf-8"))["plan"])
    except (OSError, ValueError, KeyError):
        return None


def _check_strategy(cfg, processes: int) -> None:
    from workbench.jobs.processes import gpu_ids
    from workbench.training.launch import check_strategy

    on_slurm = cfg.executor == "slurm"
    check_strategy(cfg, processes, gpus=cfg.slurm.gpus_per_node > 0 if on_slurm else bool(gpu_ids()))


def cancel(job_id: str) -> str:
    """Cancel a queued job, or stop a running one (gracefully: checkpoint and adapter at the next step
    boundary; the supervisor escalates if the worker does not end). Returns what happened, as a sentence."""
    job = queue.get(job_id)
    current().check_manage(job.user, "cancel or stop")
    if job.state == "queued":
        if queue.set_state(job.id, "cancelled", only_from=("queued",)):
            return f"job {job.id} cancelled before it started"
        job = queue.get(job_id)  # a supervisor claimed it meanwhile: stop it instead
    if job.state == "running":
        if queue.set_state(job.id, "stopping", only_from=("running",), error=None):
            request_stop(job)
            return f"stopping job {job.id}: it saves a checkpoint and its adapter at the next step, then ends"
        job = queue.get(job_id)
    if job.state == "stopping":
        return f"job {job.id} is already stopping"
    raise JobError(f"job {job.id} already ended ({job.state}); there is nothing to cancel",
                   "resume an interrupted or cancelled training job instead" if job.kind == "train" else "")


def request_stop(job: Job) -> None:
    """The graceful stop: a file the worker's stop watcher looks for at every step (signals would also hit
    accelerate's launcher, which has its own ideas about them)."""
    stop_file(job).write_text(time.strftime("%Y-%m-%d %H:%M:%S"), encoding="utf-8")


def stop_file(job: Job | str) -> Path:
    return job_folder(job.id if isinstance(job, Job) else job) / "STOP"


def resume(job_id: str) -> Job:
    """Queue an interrupted or cancelled job again: training continues from its last checkpoint up to the same
    final step, a generation labels what it had not yet labelled."""
    job = queue.get(job_id)
    current().check_manage(job.user, "resume")
    kind = get_kind(job.kind)
    if kind.can_resume is None:
        raise JobError(f"job {job.id} is a {job.kind} job, which does not resume (submit it again)")
    if job.state not in ("interrupted", "cancelled", "failed"):
        raise JobError(f"job {job.id} is {job.state}; only an interrupted, cancelled or failed job can be resumed")
    kind.can_resume(Path(job.run_dir))
    stop_file(job).unlink(missing_ok=True)
    queue.set_state(job.id, "queued", only_from=(job.state,), resume=1, error=None, finished_at=None, pid=None)
    return queue.get(job.id)


def resume_run(choice: str) -> Job:
    """Resume a stopped or interrupted run (by run id or folder): its job again, or a new resume job for a run
    that never was one (trained from the CLI, or before the queue existed)."""
    from workbench.runs.folder import RESUMABLE, resolve_run

    run = resolve_run(choice, confined=True)
    for job in queue.list_jobs():
        if job.kind == "train" and Path(job.run_dir).resolve() == run.path.resolve():
            if job.state in ("queued", *queue.ACTIVE):
                raise JobError(f"run {run.id} is already {job.state} as job {job.id}")
            return resume(job.id)
    if run.state() not in RESUMABLE:
        raise JobError(f"run {run.id} is {run.state()}; only a stopped or interrupted run can be resumed")
    if run.last_checkpoint() is None:
        raise JobError(f"run {run.id} has no checkpoint to resume from (it stopped before the first save)")
    cfg = run.config()
    current().check_manage(run.owner(), "resume")
    job = Job(id=queue.new_id(), kind="train", name=run.id, config=cfg.to_yaml(), state="queued",
              run_dir=str(run.path), resume=True, user=run.owner() or caller())
    atomic_write_text(config_file(job.id), job.config)
    return queue.insert(job)


def kill_group(pid: int, sig: signal.Signals) -> bool:
    """Send `sig` to the worker's process group only (it leads its own session)."""
    import os

    try:
        os.killpg(pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False
