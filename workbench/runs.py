"""The outputs/<run-id>/ folder: its layout, atomic writes, status, metrics and listing.

    config.yaml     the resolved RunConfig
    status.json     state (+ error, pid, step, times); written atomically (temp file + rename)
    metrics.jsonl   one row per logging step, appended as it happens
    checkpoints/    resumable Trainer checkpoints
    adapter/        a standard PEFT folder (or model/ for full fine-tuning)
    split.json      which rows went to train / validation / test
"""
from __future__ import annotations

import json
import os
import re
import socket
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from workbench.templates import PROJECT_ROOT

STATES = ("queued", "running", "stopping", "stopped", "completed", "failed", "interrupted")
ACTIVE = ("queued", "running", "stopping")


def outputs_dir() -> Path:
    return Path(os.environ.get("WORKBENCH_OUTPUTS") or PROJECT_ROOT / "outputs")


def atomic_write_text(path: Path, text: str) -> None:
    """Write to a temp file in the same folder, fsync, then rename: readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; run files are meant to be shared like any output
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def new_run_id(name: str = "") -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", (name or "run").lower()).strip("-")[:40] or "run"
    return f"{time.strftime('%Y%m%d-%H%M%S')}-{slug}"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@dataclass
class RunDir:
    path: Path

    def __post_init__(self):
        self.path = Path(self.path)

    @property
    def id(self) -> str:
        return self.path.name

    config_file = property(lambda self: self.path / "config.yaml")
    status_file = property(lambda self: self.path / "status.json")
    metrics_file = property(lambda self: self.path / "metrics.jsonl")
    checkpoints = property(lambda self: self.path / "checkpoints")
    adapter = property(lambda self: self.path / "adapter")
    full_model = property(lambda self: self.path / "model")
    split_file = property(lambda self: self.path / "split.json")
    log_file = property(lambda self: self.path / "train.log")

    def exists(self) -> bool:
        return self.status_file.is_file() or self.config_file.is_file()

    # -- status ------------------------------------------------------------------------------
    def read_status(self) -> dict:
        try:
            return json.loads(self.status_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"state": "unknown"}

    def write_status(self, state: str, **extra) -> dict:
        assert state in STATES, state
        status = {k: v for k, v in self.read_status().items() if k != "error"}
        status.update(extra, state=state, updated_at=time.time(), pid=os.getpid(), host=socket.gethostname())
        status.setdefault("created_at", status["updated_at"])
        atomic_write_text(self.status_file, json.dumps(status, indent=2))
        return status

    def state(self) -> str:
        """The state, with a run whose process is gone reported as interrupted."""
        status = self.read_status()
        state = status.get("state", "unknown")
        if state in ACTIVE and status.get("host") == socket.gethostname() and status.get("pid") \
                and not _pid_alive(int(status["pid"])):
            return "interrupted"
        return state

    def mark_if_interrupted(self) -> bool:
        if self.read_status().get("state") in ACTIVE and self.state() == "interrupted":
            self.write_status("interrupted", error="the process running this run ended without finishing it")
            return True
        return False

    # -- metrics -----------------------------------------------------------------------------
    def append_metrics(self, row: dict) -> None:
        # One short line per write, opened in append mode: a reader sees whole lines or none.
        with open(self.metrics_file, "a", encoding="utf-8") as f:
            f.write(json.dumps(row) + "\n")
            f.flush()

    def read_metrics(self) -> list[dict]:
        if not self.metrics_file.is_file():
            return []
        rows = []
        for line in self.metrics_file.read_text(encoding="utf-8").splitlines():
            try:
                rows.append(json.loads(line))
            except ValueError:
                continue  # a line still being written
        return rows

    def truncate_metrics_after(self, step: int) -> None:
        """On resume, drop rows past the checkpoint step so the chart has no duplicated steps."""
        rows = [r for r in self.read_metrics() if r.get("step", 0) <= step]
        atomic_write_text(self.metrics_file, "".join(json.dumps(r) + "\n" for r in rows))

    def last_checkpoint(self) -> Path | None:
        if not self.checkpoints.is_dir():
            return None
        # The Trainer writes a checkpoint folder in place and trainer_state.json last: a process killed
        # mid-save leaves a folder without it, which cannot be resumed from, so it does not count.
        cps = [p for p in self.checkpoints.glob("checkpoint-*")
               if p.name.split("-")[-1].isdigit() and (p / "trainer_state.json").is_file()]
        return max(cps, key=lambda p: int(p.name.split("-")[-1]), default=None)

    def saved_model(self) -> Path | None:
        for p in (self.adapter, self.full_model):
            if (p / "config.json").is_file() or (p / "adapter_config.json").is_file():
                return p
        return None


def list_runs(root: Path | None = None) -> list[RunDir]:
    root = Path(root or outputs_dir())
    if not root.is_dir():
        return []
    runs = [RunDir(p) for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted((r for r in runs if r.exists()), key=lambda r: r.id, reverse=True)


def mark_interrupted_runs(root: Path | None = None) -> list[str]:
    """On app start: runs left running/stopping by a killed process become 'interrupted'."""
    return [r.id for r in list_runs(root) if r.mark_if_interrupted()]
