"""Executors: where the supervisor runs a job it claimed, and how it follows and stops it.

    local   the job's worker command as a process (group) on this machine (pid + start time identify it)
    slurm   the same command inside an sbatch script (training/cluster.py writes it); the Slurm job id identifies
            it, squeue / scontrol / sacct say where it is, the run folder on the shared filesystem says how far

Both poll() the same way: None while it runs, else its exit code (-1: ended, code unknown). A Slurm job that
the cluster took away (node failure, preemption, requeue, time limit) sets `Worker.interrupted`: such a job is
resumable from its checkpoint, not failed.
"""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from workbench.core.files import atomic_write_text
from workbench.core.paths import PROJECT_ROOT, outputs_dir
from workbench.jobs import queue, slurm
from workbench.jobs.kinds import get_kind
from workbench.jobs.processes import same_process_alive, start_time
from workbench.jobs.queue import Job
from workbench.jobs.submit import config_file, job_folder

log = logging.getLogger(__name__)
EXECUTORS = ("local", "slurm")
WORKER_NICENESS = 10  # local workers yield the CPU to the web server's requests (benchmarks/ui_latency.py)
SLURM_POLL_S = float(os.environ.get("WORKBENCH_SLURM_POLL_S", "2"))  # one scontrol call per job at most this often
EXIT_FILE = "slurm-exit"  # the sbatch script writes its exit code here (job folder, shared filesystem)


@dataclass
class Worker:
    job_id: str
    pid: int | None
    started: float | None
    devices: tuple[int, ...]
    proc: subprocess.Popen | None = None  # None when re-attached after a restart (not our child)
    stop_sent_at: float | None = None
    signals: list = field(default_factory=list)
    executor: str = "local"
    slurm_id: str | None = None
    interrupted: str | None = None  # why the cluster ended it (resumable), set by poll()
    pending: bool = False  # Slurm has not started it yet
    checked_at: float = 0.0

    def exit_code(self) -> int | None:
        """The exit code once it ended (None while it runs; -1 when ended but its code is unknown)."""
        if self.executor == "slurm":
            return slurm_poll(self)
        if self.proc is not None:
            return self.proc.poll()
        return None if same_process_alive(self.pid, self.started) else -1


def job_settings(job: Job) -> dict:
    """The parts of a training job's config the executors read (executor, slurm, distributed), {} otherwise."""
    if job.kind != "train":
        return {}
    try:
        cfg = yaml.safe_load(job.config) or {}
    except yaml.YAMLError:
        return {}
    return cfg if isinstance(cfg, dict) else {}


def executor_of(job: Job, default: str = "local") -> str:
    """slurm when the job asked for it (its row or its config), local when its config says so, else the
    supervisor's default (`--executor`)."""
    if job.executor == "slurm":
        return "slurm"
    return job_settings(job).get("executor") or default


def python_command(job: Job, *, niceness: int | None = None) -> list[str]:
    """`python -m workbench`, or the same under accelerate launch for several processes (ddp, or fsdp with its
    accelerate config written into the run folder; on a machine without CUDA the processes use gloo)."""
    nice = ["nice", "-n", str(niceness)] if niceness is not None else []
    if job.processes <= 1:
        return [*nice, sys.executable, "-m", "workbench"]
    accelerate = Path(sys.executable).with_name("accelerate")
    launch = [str(accelerate) if accelerate.exists() else "accelerate", "launch"]
    strategy = (job_settings(job).get("distributed") or {}).get("strategy") or "ddp"
    if strategy == "ddp":
        launch += ["--multi_gpu", "--num_processes", str(job.processes)]
    else:
        launch += ["--config_file", str(write_accelerate_config(job, strategy)), "--num_processes", str(job.processes)]
    return [*nice, *launch, "--main_process_port", "0", "-m", "workbench"]


def write_accelerate_config(job: Job, strategy: str) -> Path:
    from workbench.config.run import RunConfig
    from workbench.training.launch import accelerate_config

    cfg = RunConfig.from_text(job.config)
    settings = accelerate_config(strategy, job.processes, cfg)
    if not _has_gpu():
        settings.update(use_cpu=True, mixed_precision="no")  # gloo on the CPU (see training/distributed.py)
    path = Path(job.run_dir) / f"accelerate-{strategy}.yaml"
    atomic_write_text(path, yaml.safe_dump(settings, sort_keys=False))
    return path


def _has_gpu() -> bool:
    from workbench.jobs.processes import gpu_ids

    return bool(gpu_ids())


def worker_env(job: Job) -> dict[str, str]:
    """What a worker needs to know besides its arguments (its job folder: the STOP file, progress.json)."""
    env = {"WORKBENCH_JOB_ID": job.id, "WORKBENCH_JOB_DIR": str(job_folder(job.id)),
           "WORKBENCH_OUTPUTS": str(outputs_dir()), "PYTHONUNBUFFERED": "1"}
    if os.environ.get("HF_HUB_OFFLINE"):
        env["HF_HUB_OFFLINE"] = os.environ["HF_HUB_OFFLINE"]
    return env


def job_args(job: Job) -> list[str]:
    return get_kind(job.kind).command(config_file(job.id), Path(job.run_dir), job.resume)


# -- local ------------------------------------------------------------------------------------------------

def start_local(job: Job, warm) -> Worker | None:
    folder = job_folder(job.id)
    args = job_args(job)
    devices = tuple(int(d) for d in (job.devices or "").split(",") if d)
    env = {**os.environ, **worker_env(job)}
    if devices:
        env["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, devices))
    proc = None
    if job.processes == 1 and not devices and warm is not None:
        proc = warm.hand_over(args, env, folder / "worker.log")
    if proc is None:
        command = [*python_command(job, niceness=WORKER_NICENESS), *args]
        log.info("job %s: starting %s", job.id, " ".join(command))
        try:
            with open(folder / "worker.log", "ab") as out:
                proc = subprocess.Popen(command, cwd=PROJECT_ROOT, env=env, stdin=subprocess.DEVNULL,
                                        stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        except OSError as e:
            queue.set_state(job.id, "failed", error=f"the worker could not start: {e}")
            return None
    started = start_time(proc.pid)
    queue.update(job.id, pid=proc.pid, pid_started=started, executor="local")
    return Worker(job.id, proc.pid, started, devices, proc)


# -- slurm ------------------------------------------------------------------------------------------------

def start_slurm(job: Job) -> Worker | None:
    """Write the job's sbatch script into its folder and submit it; the Slurm id goes into the job row."""
    from workbench.training.cluster import worker_script

    folder = job_folder(job.id)
    settings = job_settings(job)
    s = settings.get("slurm") or {}
    (folder / EXIT_FILE).unlink(missing_ok=True)  # a resumed job's previous Slurm job left its code here
    try:
        nodes = int(s.get("nodes") or 1)
        per_node = multinode_line(job, nodes) if nodes > 1 else None
        script = worker_script(
            [*python_command(job), *job_args(job)], job_name=f"wb-{job.id}", workdir=PROJECT_ROOT,
            log_path=folder / "worker.log", exit_file=folder / EXIT_FILE, env=worker_env(job), nodes=nodes,
            gpus_per_node=int(s.get("gpus_per_node") or 0), cpus_per_task=max(1, job.processes // nodes),
            time=str(s.get("time") or ""), partition=str(s.get("partition") or ""),
            account=str(s.get("account") or ""), extra=str(s.get("extra") or ""), per_node_command=per_node)
        path = folder / "slurm.sh"
        atomic_write_text(path, script)
        slurm_id = slurm.submit(path, folder)
    except Exception as e:  # noqa: BLE001 - a refusal by sbatch, a bad slurm.extra: the job fails with it
        message = getattr(e, "message", None) or str(e)
        hint = getattr(e, "hint", "")
        queue.set_state(job.id, "failed", executor="slurm",
                        error=f"the job could not be submitted to Slurm: {message}" + (f" ({hint})" if hint else ""))
        return None
    log.info("job %s: Slurm job %s", job.id, slurm_id)
    queue.update(job.id, executor="slurm", slurm_job_id=slurm_id, pid=None, pid_started=None, node=None,
                 reason="submitted")
    return Worker(job.id, None, None, (), executor="slurm", slurm_id=slurm_id, pending=True)


def multinode_line(job: Job, nodes: int) -> str:
    """One `accelerate launch` per node (machine rank from SLURM_NODEID, rendezvous at the first node)."""
    from workbench.training.cluster import multinode_command

    per_node = max(1, job.processes // nodes)
    accelerate = Path(sys.executable).with_name("accelerate")  # the shared venv's, as on this login node
    return multinode_command(config_file(job.id), num_machines=nodes, gpus_per_machine=per_node,
                             launcher=str(accelerate) if accelerate.exists() else "accelerate",
                             worker_args=job_args(job))


def reattach_slurm(job: Job) -> Worker:
    return Worker(job.id, None, None, (), executor="slurm", slurm_id=job.slurm_job_id, pending=bool(job.reason))


def _exit_file_code(worker: Worker) -> int | None:
    try:
        return int((job_folder(worker.job_id) / EXIT_FILE).read_text(encoding="utf-8").strip())
    except (OSError, ValueError):
        return None


def slurm_poll(worker: Worker) -> int | None:
    code = _exit_file_code(worker)
    if code is not None:
        return code
    now = time.monotonic()
    if now - worker.checked_at < SLURM_POLL_S:
        return None
    worker.checked_at = now
    try:
        info = slurm.query(worker.slurm_id)
    except slurm.SlurmError as e:
        _note(worker, reason=f"Slurm does not answer: {e.message}"[:200])
        return None
    if info is None:  # gone from the controller and from accounting: the exit file (read again) decides
        return _exit_file_code(worker) if _exit_file_code(worker) is not None else -1
    sid = worker.slurm_id
    if info.state in slurm.REQUEUE or (info.state in slurm.WAITING and info.restarts > 0):
        # Rerunning the script would start the run over: cancel the requeued copy; the job resumes instead.
        slurm.cancel(sid)
        worker.interrupted = f"Slurm requeued job {sid} ({info.reason or info.state}); resume it from its checkpoint"
        return -1
    if info.state in slurm.WAITING:
        worker.pending = True
        _note(worker, reason=info.reason or info.state.lower(), node=info.node or None)
        return None
    if info.state in slurm.RUNNING:
        worker.pending = False
        _note(worker, reason=None, node=info.node or None)
        return None
    code = _exit_file_code(worker)  # it may have ended between the two reads
    if code is not None:
        return code
    if info.state in slurm.LOST or (info.state == "CANCELLED" and not worker.stop_sent_at):
        worker.interrupted = (f"Slurm job {sid} ended {info.state}" + (f" ({info.reason})" if info.reason else "")
                              + (" on " + info.node if info.node else "") + "; resume it from its checkpoint")
        return -1
    if info.exit_code is not None and (info.exit_code or info.signal):
        return info.exit_code or 128 + info.signal
    return -1 if info.state != "COMPLETED" else 0


def _note(worker: Worker, **fields) -> None:
    """Write the Slurm reason / node into the job row when they changed (the Jobs tab reads them)."""
    job = queue.get(worker.job_id)
    changed = {k: v for k, v in fields.items() if getattr(job, k) != v}
    if changed:
        queue.update(worker.job_id, **changed)


def slurm_stop(worker: Worker, sig: str) -> None:
    """TERM: scancel --signal=TERM (the worker saves and ends); KILL: scancel."""
    slurm.cancel(worker.slurm_id, "TERM" if sig == "TERM" else None)
