"""A warm worker, the supervisor's side: keep one standby process (workbench/cli/warm_worker.py) importing
torch, transformers, TRL, PEFT and datasets in the background, and hand it the next job. It saves the
seconds a fresh Python spends importing (benchmarks/job_start.py, benchmarks/NOTES.md).

Protocol: one JSON line on the standby's stdin: {"argv": [...], "env": {...}, "log": "<worker.log>"}.
Used on machines without GPUs only: on a GPU machine a job's CUDA_VISIBLE_DEVICES must be set before CUDA
starts, and warm imports may start it.
"""
from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

log = logging.getLogger(__name__)


class WarmWorker:
    """The supervisor's side: keep one standby warming up, hand it a job, replace it."""

    def __init__(self, enabled: bool = True, niceness: int = 10):
        self.enabled, self.niceness = enabled, niceness
        self.proc: subprocess.Popen | None = None
        self.ready = threading.Event()
        self.env: dict[str, str] = {}  # the environment the standby started with

    def ensure(self) -> None:
        """Start a standby unless one is alive (it imports in the background, at low priority)."""
        if not self.enabled or (self.proc is not None and self.proc.poll() is None):
            return
        from workbench.core.paths import PROJECT_ROOT

        self.ready = threading.Event()
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            ["nice", "-n", str(self.niceness), sys.executable, "-m", "workbench.cli.warm_worker"], cwd=PROJECT_ROOT,
            env=self.env, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, start_new_session=True, text=True)
        proc, ready = self.proc, self.ready

        def wait_ready():
            if proc.stdout.readline().strip() == "ready":
                ready.set()

        threading.Thread(target=wait_ready, name="workbench-standby-ready", daemon=True).start()

    def hand_over(self, argv: list[str], env: dict, log_file: Path) -> subprocess.Popen | None:
        """The standby process, now running `argv` with the job's full environment `env` as a job's worker;
        None when none is ready (start a fresh process instead)."""
        proc = self.proc
        if proc is None or proc.poll() is not None or not self.ready.is_set():
            return None
        changed = {k: v for k, v in env.items() if self.env.get(k) != v}  # e.g. the job's own variables
        gone = [k for k in self.env if k not in env]
        try:
            proc.stdin.write(json.dumps({"argv": argv, "env": changed, "unset": gone, "log": str(log_file)}) + "\n")
            proc.stdin.close()
        except OSError:
            return None
        self.proc, self.ready = None, threading.Event()
        log.info("handed %s to the warm worker (pid %s)", " ".join(argv), proc.pid)
        return proc

    def drop(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait(10)
            close_pipes(self.proc)
        self.proc = None


def close_pipes(proc: subprocess.Popen) -> None:
    """A standby's stdin / stdout pipes, once its process has ended (or was handed a job and ended)."""
    for pipe in (proc.stdin, proc.stdout):
        if pipe is not None and not pipe.closed:
            pipe.close()
