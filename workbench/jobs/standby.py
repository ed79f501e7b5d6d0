"""A warm worker: a process that has already imported torch, transformers, TRL, PEFT and datasets, waiting
for the supervisor to hand it one job. It cuts the time from submit to the first step by the ~8 s a fresh
Python spends importing (benchmarks/job_start.py, benchmarks/NOTES.md).

Protocol: the supervisor writes one JSON line on stdin: {"argv": [...], "env": {...}, "log": "<worker.log>"};
the standby points its stdout and stderr at that log, sets the environment, and runs the CLI command exactly
as `python -m workbench <argv>` would. Used on machines without GPUs only: on a GPU machine a job's
CUDA_VISIBLE_DEVICES must be set before CUDA starts, and warm imports may start it.
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


def _warm_up() -> None:
    # transformers and TRL import their classes lazily, on first use: name them, or nothing is warm.
    from datasets import Dataset  # noqa: F401
    from peft import LoraConfig, PeftModel, get_peft_model  # noqa: F401
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback  # noqa: F401
    from trl import SFTConfig, SFTTrainer  # noqa: F401

    import workbench.cli.parser  # noqa: F401
    import workbench.data.sources  # noqa: F401
    import workbench.prompts.templates  # noqa: F401
    import workbench.training.callbacks  # noqa: F401
    import workbench.training.engine  # noqa: F401


def main() -> int:
    _warm_up()
    print("ready", flush=True)  # the supervisor hands a job only to a standby that said so
    line = sys.stdin.readline()
    if not line.strip():
        return 0  # the supervisor closed: nothing to do
    order = json.loads(line)
    os.environ.update(order["env"])
    log = os.open(order["log"], os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1, closefd=False)
    sys.stderr = os.fdopen(2, "w", buffering=1, closefd=False)
    from workbench.cli import main as cli_main

    return cli_main(order["argv"])


class WarmWorker:
    """The supervisor's side: keep one standby warming up, hand it a job, replace it."""

    def __init__(self, enabled: bool = True, niceness: int = 10):
        self.enabled, self.niceness = enabled, niceness
        self.proc: subprocess.Popen | None = None
        self.ready = threading.Event()

    def ensure(self) -> None:
        """Start a standby unless one is alive (it imports in the background, at low priority)."""
        if not self.enabled or (self.proc is not None and self.proc.poll() is None):
            return
        from workbench.core.paths import PROJECT_ROOT

        self.ready = threading.Event()
        self.proc = subprocess.Popen(
            ["nice", "-n", str(self.niceness), sys.executable, "-m", "workbench.jobs.standby"], cwd=PROJECT_ROOT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"}, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL, start_new_session=True, text=True)
        proc, ready = self.proc, self.ready

        def wait_ready():
            if proc.stdout.readline().strip() == "ready":
                ready.set()

        threading.Thread(target=wait_ready, name="workbench-standby-ready", daemon=True).start()

    def hand_over(self, argv: list[str], env: dict, log_file: Path) -> subprocess.Popen | None:
        """The standby process, now running `argv` as a job's worker; None when none is ready (start cold)."""
        proc = self.proc
        if proc is None or proc.poll() is not None or not self.ready.is_set():
            return None
        try:
            proc.stdin.write(json.dumps({"argv": argv, "env": env, "log": str(log_file)}) + "\n")
            proc.stdin.close()
        except OSError:
            return None
        self.proc, self.ready = None, threading.Event()
        log.info("handed %s to the warm worker (pid %s)", " ".join(argv), proc.pid)
        return proc

    def drop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None


if __name__ == "__main__":
    sys.exit(main())
