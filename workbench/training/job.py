"""TrainingJob: one training run at a time per app process, in a background thread.

The UI never holds a request open for a whole run: it starts the job, then polls `snapshot()` (a plain dict
built from status.json, metrics.jsonl and the job's own log lines). Every browser tab, and a reloaded page,
asks the same module-level job, so all of them see the same run and its whole chart so far.

States (the run's status.json, plus 'idle' before the first run):
    idle → queued (loading model and data) → running → stopping → stopped | completed | failed
A run of an app process that was killed is 'interrupted' (runs.mark_interrupted_runs at app start).
"""
from __future__ import annotations

import collections
import logging
import os
import sys
import threading
import time
from pathlib import Path

from workbench.config.preflight import Plan, preflight
from workbench.config.run import RunConfig
from workbench.core.errors import RunError
from workbench.runs.folder import ACTIVE, FINISHED, RESUMABLE, RunDir, new_run_path, resolve_run

log = logging.getLogger(__name__)
LOG_LINES = 200
TRAINING_NICENESS = 10  # how far below the request threads the training thread runs (see yield_cpu_to_requests)


class JobBusy(RunError):
    """A run is already going; the message names it."""


class TrainingJob:
    """The background training thread and what the UI needs to show it."""

    _instance: "TrainingJob | None" = None
    _instance_lock = threading.Lock()

    @classmethod
    def instance(cls) -> "TrainingJob":
        """The app-wide job: every session and every tab of this process shares it."""
        with cls._instance_lock:
            if cls._instance is None:
                cls._instance = cls()
            return cls._instance

    def __init__(self):
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self.run: RunDir | None = None
        self.result = None
        self.error: str | None = None
        self.started_at: float | None = None
        self.finished_at: float | None = None
        self.log: collections.deque[str] = collections.deque(maxlen=LOG_LINES)
        self._log_lock = threading.Lock()  # the training thread appends while UI threads read

    # -- control -------------------------------------------------------------------------------
    def is_active(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def start(self, cfg: RunConfig, *, extra_callbacks: list | None = None) -> RunDir:
        """Preflight, then train in the background. Raises JobBusy or a WorkbenchError; never blocks on training."""
        cfg = cfg.copy()  # the job owns its copy; the form may change meanwhile
        with self._lock:
            self._refuse_if_busy()
            cfg.output_dir = str(new_run_path(cfg.run_name, cfg.output_dir))
            plan = preflight(cfg)  # refuse a bad config now, with its message, before any thread or folder exists
            return self._launch(cfg, plan, None, extra_callbacks,
                                f"run {Path(cfg.output_dir).name}: loading the model '{cfg.model.name}' and the data")

    def resume(self, run_dir: str | Path, *, extra_callbacks: list | None = None) -> RunDir:
        """Continue a stopped or interrupted run from its last checkpoint up to its planned final step."""
        run = resolve_run(run_dir, confined=True)
        state = run.state()
        if state not in RESUMABLE:
            raise RunError(f"run {run.id} is {state}; only a stopped or interrupted run can be resumed")
        checkpoint = run.last_checkpoint()
        if checkpoint is None:
            raise RunError(f"run {run.id} has no checkpoint to resume from (it stopped before the first save)")
        cfg = run.config()
        cfg.output_dir = str(run.path)
        plan = preflight(cfg)  # e.g. its data file has gone since: say so now, not from the background thread
        with self._lock:
            self._refuse_if_busy()
            return self._launch(cfg, plan, run.path, extra_callbacks, f"resuming run {run.id} from {checkpoint.name}")

    def stop(self) -> str | None:
        """Ask the run to end at the next step boundary (it saves a checkpoint and the adapter there).
        Returns the run id, or None when nothing is running."""
        if not self.is_active():
            return None
        if not self._stop.is_set():
            self._stop.set()
            self._log("stop requested: finishing the current step, then saving a checkpoint and the adapter")
        return self.run.id if self.run else None

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends (tests, CLI-like use); True when it has ended."""
        thread = self._thread
        if thread is not None:
            thread.join(timeout)
        return not self.is_active()

    def _refuse_if_busy(self) -> None:
        if self.is_active():
            raise JobBusy(f"run {self.run.id} is {self._state()}: one run at a time; stop it or wait for it "
                          "to finish")

    def _launch(self, cfg: RunConfig, plan: Plan, resume, extra_callbacks, first_line: str) -> RunDir:
        self._stop = threading.Event()
        self.run = RunDir(cfg.output_dir)
        self.result, self.error = None, None
        self.started_at, self.finished_at = time.time(), None
        with self._log_lock:
            self.log.clear()
        self._log(first_line)
        from workbench.training.callbacks import LogLinesCallback  # transformers loads here, not at app start

        callbacks = [LogLinesCallback(self._log), *(extra_callbacks or [])]
        self._thread = threading.Thread(target=self._work, args=(cfg, plan, resume, callbacks),
                                        name=f"training-{self.run.id}", daemon=True)
        self._thread.start()
        return self.run

    def _work(self, cfg: RunConfig, plan: Plan, resume, callbacks) -> None:
        from workbench.training.engine import train

        yield_cpu_to_requests()
        try:
            # train() turns training failures (OOM, NaN loss, bad data) into state 'failed' itself.
            self.result = train(cfg, plan=plan, resume=resume, stop=self._stop, progress_bar=False,
                                extra_callbacks=callbacks)
            self.error = self.result.error
        except Exception as e:  # a failure before training began (e.g. the run folder): keep the app serving
            log.exception("run %s failed before training began", self.run.id)
            self.error = f"{type(e).__name__}: {e}"
            if self.run.path.is_dir():
                self.run.write_status("failed", error=self.error)
        finally:
            self.finished_at = time.time()
            state = self.result.state if self.result is not None else "failed"
            self._log(f"{state}" + (f": {self.error}" if self.error else ""))

    def _log(self, line: str) -> None:
        with self._log_lock:
            self.log.append(f"{time.strftime('%H:%M:%S')} {line}")

    def log_lines(self) -> list[str]:
        with self._log_lock:
            return list(self.log)

    # -- what the UI shows ---------------------------------------------------------------------
    def _state(self, status: dict | None = None) -> str:
        if self.run is None:
            return "idle"
        status = status if status is not None else self.run.read_status()
        status_state = status.get("state", "queued")
        if self.is_active():
            if self._stop.is_set() and status_state in ACTIVE:
                return "stopping"
            if status_state in ACTIVE or status.get("updated_at", 0) >= (self.started_at or 0):
                return status_state  # written by this job's run (possibly its final state, as the thread ends)
            return "queued"  # a resumed run whose status.json still holds the previous ending
        if self.result is not None:
            return self.result.state
        return "failed" if self.error else status_state

    def snapshot(self) -> dict:
        """Everything a view needs, as plain JSON-able data: state, progress, metrics rows, log lines, error."""
        if self.run is None:
            return {"state": "idle", "active": False, "run_id": None, "run_dir": None, "step": 0, "max_steps": 0,
                    "elapsed_s": 0.0, "eta_s": None, "metrics": [], "log": [], "error": None, "adapter": None}
        status = self.run.read_status()
        state = self._state(status)
        end = self.finished_at or time.time()
        error = self.error or (status.get("error") if state == "failed" else None)
        return {
            "state": state,
            "active": self.is_active(),
            "run_id": self.run.id,
            "run_dir": str(self.run.path),
            "step": int(status.get("step") or 0),
            "max_steps": int(status.get("max_steps") or 0),
            "elapsed_s": round(end - (self.started_at or end), 1),
            "eta_s": None if state in FINISHED else status.get("eta_s"),
            "metrics": self.run.read_metrics(),
            "log": self.log_lines(),
            "error": error,
            "adapter": str(self.run.saved_model()) if self.run.saved_model() else None,
        }


def yield_cpu_to_requests(niceness: int = TRAINING_NICENESS) -> None:
    """Run this (training) thread at a lower CPU priority than the web server's request threads.

    Training keeps every core busy; at equal priority a 20 ms page request waits behind it for CPU. Linux
    applies setpriority to a single thread given its id, and the OpenMP workers torch starts from this
    thread inherit the value, so requests preempt training and only their own CPU time slows it
    (benchmarks/ui_latency.py).
    """
    if sys.platform != "linux":  # elsewhere setpriority takes a process id, not a thread's
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + niceness))
    except OSError:  # not allowed here: train at normal priority
        pass


