"""The supervisor: a thread (in the app, or in `python -m workbench worker`) that claims queued jobs, starts
each as a worker process in its own process group, watches it, and records how it ended.

    queued ──claim──► running ──worker exits 0──► completed
                         │  └───worker dies (any code, a signal, OOM)──► failed (last lines of its log)
                         └─cancel─► stopping ──► cancelled        (STOP file → SIGTERM → SIGKILL)
    app restart: running + worker alive (pid and start time) → re-attached; worker gone → interrupted

Devices come from a pool: on a GPU machine each job gets CUDA_VISIBLE_DEVICES for the processes it asked
for, so two 1-GPU jobs run side by side on two GPUs; on a CPU one job runs at a time.

Executors (jobs/executors.py): `local` runs the worker here; `slurm` submits the same command with sbatch, and
Slurm schedules it (no local devices are held). Per job (its config's `executor`) or per supervisor (--executor).
"""
from __future__ import annotations

import json
import logging
import os
import signal
import threading
import time
from pathlib import Path

from workbench.core.errors import ConfigError
from workbench.core.files import sweep_stale
from workbench.core.paths import outputs_dir
from workbench.jobs import queue
from workbench.jobs.executors import (EXECUTORS, Worker, executor_of, reattach_slurm, slurm_stop, start_local,
                                      start_slurm)
from workbench.jobs.processes import devices_for, gpu_ids, own_identity, owner_alive, same_process_alive
from workbench.jobs.queue import Job
from workbench.jobs.standby import WarmWorker, close_pipes
from workbench.jobs.submit import job_folder, kill_group, request_stop

log = logging.getLogger(__name__)

POLL_S = 0.5
STOP_GRACE_S = float(os.environ.get("WORKBENCH_STOP_GRACE_S", "300"))  # a step on a big model can take minutes
KILL_AFTER_S = 15.0  # after SIGTERM, before SIGKILL
LOG_TAIL_LINES = 20
# A warm standby worker saves a fresh process's imports (~8 s) per job; CPU machines only (see standby.py).
WARM_WORKER = os.environ.get("WORKBENCH_WARM_WORKER", "1") not in ("0", "false", "no")
WARM_AFTER_IDLE_S = 10.0  # not during the app's own start-up, nor between back-to-back jobs


class Supervisor:
    def __init__(self, *, poll_s: float = POLL_S, executor: str | None = None):
        self.executor = executor or os.environ.get("WORKBENCH_EXECUTOR") or "local"
        if self.executor not in EXECUTORS:
            raise ConfigError(f"unknown executor '{self.executor}'; choose one of {', '.join(EXECUTORS)}")
        self.owner = own_identity()
        self.poll_s = poll_s
        self.workers: dict[str, Worker] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.warm = WarmWorker(enabled=WARM_WORKER)
        self._idle_since = time.monotonic()
        self._recover_pending = False  # recover() met a busy / full queue at start: a later tick does it

    # -- lifecycle ------------------------------------------------------------------------------
    def start(self) -> "Supervisor":
        try:
            self.recover()
        except queue.JobError as e:  # the app must start and serve even while the queue is busy or full
            log.warning("supervisor start: %s; re-attaching on a later tick", e)
            self._recover_pending = True
        self._thread = threading.Thread(target=self._loop, name="workbench-supervisor", daemon=True)
        self._thread.start()
        log.info("supervisor %s watching %s", self.owner, queue.db_path())
        return self

    def close(self) -> None:
        """Stop watching (workers keep running; a later supervisor re-attaches them)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(10)
        self.warm.drop()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the supervisor must outlive any one bad job or a busy database
                log.exception("supervisor tick failed; retrying")
            self._stop.wait(self.poll_s)

    def serve_forever(self) -> None:
        """Headless worker: watch the queue until interrupted (Ctrl-C); workers keep running after it."""
        self.start()
        try:
            while not self._stop.wait(3600):
                pass
        finally:
            self.close()

    def run_until_empty(self) -> None:
        """Headless worker with --until-empty: run jobs until none is queued or running."""
        self.warm.enabled = False  # it would warm up only when idle, which here means done
        self.recover()
        while True:
            self.tick()
            if not self.workers and not queue.list_jobs(("queued",), limit=1):
                self.warm.drop()
                return
            time.sleep(self.poll_s)

    # -- one round --------------------------------------------------------------------------------
    def tick(self) -> None:
        with self._lock:
            if self._recover_pending:
                self.recover()
                self._recover_pending = False
            for worker in list(self.workers.values()):
                self._watch(worker)
            while (job := queue.claim(self.owner, self._fits)) is not None:
                self._spawn(job)
            if self.workers:
                self._idle_since = time.monotonic()
            elif not gpu_ids() and time.monotonic() - self._idle_since >= WARM_AFTER_IDLE_S:
                # Warm up while idle, never beside a running job: on a small CPU the standby's imports would
                # slow that job's first steps by more than they save (benchmarks/NOTES.md).
                self.warm.ensure()

    def recover(self) -> None:
        """On start: re-attach the jobs whose worker still runs; the others were interrupted."""
        for job in queue.list_jobs(queue.ACTIVE):
            if job.owner != self.owner and owner_alive(job.owner):
                continue  # another live supervisor (a second app, a headless worker) watches it
            if job.executor == "slurm" and job.slurm_job_id:
                queue.update(job.id, owner=self.owner)  # Slurm runs it whether or not anyone watched
                self.workers[job.id] = reattach_slurm(job)
                log.info("re-attached job %s (Slurm job %s)", job.id, job.slurm_job_id)
            elif same_process_alive(job.pid, job.pid_started):
                queue.update(job.id, owner=self.owner)
                devices = tuple(int(d) for d in (job.devices or "").split(",") if d)
                self.workers[job.id] = Worker(job.id, job.pid, job.pid_started, devices)
                log.info("re-attached job %s (worker pid %s)", job.id, job.pid)
            else:
                queue.set_state(job.id, "interrupted", only_from=queue.ACTIVE,
                                error="the worker ended while no supervisor watched it (the app was stopped)")
                _mark_run_interrupted(job)
        log.info("removed temporaries of killed jobs: %s", sweep_stale(outputs_dir()) or "none")

    # -- devices ------------------------------------------------------------------------------------
    def _fits(self, job: Job, active: list[Job]) -> tuple[int, ...] | None:
        if executor_of(job, self.executor) == "slurm":
            return ()  # Slurm schedules it; nothing of this machine is held
        return devices_for(job.kind, job.processes, [j for j in active if j.executor != "slurm"])

    # -- start ----------------------------------------------------------------------------------------
    def _spawn(self, job: Job) -> None:
        job_folder(job.id).mkdir(parents=True, exist_ok=True)
        if executor_of(job, self.executor) == "slurm":
            worker = start_slurm(job)
        else:
            worker = start_local(job, self.warm if not gpu_ids() else None)
        if worker is not None:
            self.workers[job.id] = worker

    # -- watch ------------------------------------------------------------------------------------------
    def _watch(self, worker: Worker) -> None:
        code = worker.exit_code()
        if code is not None:
            self._finish(worker, code)
            return
        job = queue.get(worker.job_id)
        if job.state != "stopping":
            return
        now = time.time()
        if worker.stop_sent_at is None:
            request_stop(job)  # also when the cancel came from another process
            worker.stop_sent_at = now
            if worker.executor == "slurm" and worker.pending:
                self._signal(worker, "KILL")  # not started in Slurm yet: nothing to save, take it off the queue
        elif now - worker.stop_sent_at > STOP_GRACE_S + KILL_AFTER_S and "KILL" not in worker.signals:
            self._signal(worker, "KILL")
        elif now - worker.stop_sent_at > STOP_GRACE_S and "TERM" not in worker.signals:
            log.warning("job %s did not stop within %.0f s: SIGTERM", job.id, STOP_GRACE_S)
            self._signal(worker, "TERM")

    @staticmethod
    def _signal(worker: Worker, sig: str) -> None:
        if worker.executor == "slurm":
            slurm_stop(worker, sig)
        else:
            kill_group(worker.pid, signal.SIGKILL if sig == "KILL" else signal.SIGTERM)
        worker.signals.append(sig)

    def _finish(self, worker: Worker, code: int) -> None:
        del self.workers[worker.job_id]
        if worker.proc is not None:
            close_pipes(worker.proc)  # a worker that was the warm standby still holds its pipes
        job = queue.get(worker.job_id)
        run_status = _run_status(job)
        if job.state == "stopping":
            state, error = "cancelled", None
        elif worker.interrupted and run_status.get("state") != "completed":
            state, error = "interrupted", worker.interrupted
        elif code == 0 or (code == -1 and run_status.get("state") == "completed"):  # -1: re-attached, exit unknown
            state, error = ("failed", run_status.get("error")) if run_status.get("state") == "failed" else \
                ("completed", None)
        else:
            state, error = "failed", _failure(job, code, run_status)
        if state != "completed":  # first: whoever sees the job ended must find its run folder saying so too
            _mark_run_interrupted(job)
        queue.set_state(job.id, state, only_from=queue.ACTIVE, error=error,
                        **({"reason": None} if job.executor == "slurm" else {}))


def _run_status(job: Job) -> dict:
    """A training job's run status.json (other kinds write into folders whose status is not theirs)."""
    if job.kind != "train":
        return {}
    try:
        return json.loads((Path(job.run_dir) / "status.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _failure(job: Job, code: int, run_status: dict) -> str:
    if code == -1:
        why = "the worker ended while the app was away and left no finished result"
    elif code < 0:
        why = f"the worker was killed by {signal.Signals(-code).name}"
        if -code == signal.SIGKILL:
            why += " (out of memory, or killed by hand)"
    else:
        why = f"the worker exited with code {code}"
    detail = run_status.get("error") if run_status.get("state") == "failed" else None
    tail = log_tail(job.id)
    return why + (f": {detail}" if detail else "") + (f"\n--- last lines of worker.log ---\n{tail}" if tail else "")


def log_tail(job_id: str, lines: int = LOG_TAIL_LINES) -> str:
    path = job_folder(job_id) / "worker.log"
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    # A progress bar redraws with carriage returns: keep what the last redraw shows.
    shown = [line.rsplit("\r", 1)[-1] for line in text.splitlines()]
    return "\n".join([line for line in shown if line.strip()][-lines:])


def _mark_run_interrupted(job: Job) -> None:
    """A training run whose worker is gone says so in its own folder too (resumable from its checkpoint)."""
    if job.kind == "train":
        from workbench.runs.folder import ACTIVE, RunDir

        run = RunDir(job.run_dir)
        if job.executor == "slurm" and run.read_status().get("state") in ACTIVE:
            # Its pid is on a node (or a zombie of a killed step): Slurm's word that the job ended is the proof.
            run.write_status("interrupted", error="its Slurm job ended without finishing the run")
        else:
            run.mark_if_interrupted()


_SUPERVISOR: Supervisor | None = None
_START_LOCK = threading.Lock()


def ensure_started() -> Supervisor:
    """The app's supervisor thread: one per process, started on first use."""
    global _SUPERVISOR
    with _START_LOCK:
        if _SUPERVISOR is None:
            _SUPERVISOR = Supervisor().start()  # WORKBENCH_EXECUTOR=slurm: the app's jobs go to Slurm
        return _SUPERVISOR


def shutdown() -> None:
    """Stop this process's supervisor thread (workers keep running), e.g. before its outputs folder goes."""
    global _SUPERVISOR
    with _START_LOCK:
        if _SUPERVISOR is not None:
            _SUPERVISOR.close()
            _SUPERVISOR = None
