"""The outputs/<run-id>/ folder: its layout, status, metrics, listing, and the one way to name a run.

    config.yaml     the resolved RunConfig
    status.json     state (+ error, pid, step, times, the preflight plan); written atomically
    metrics.jsonl   one row per logging step, appended as it happens
    run.log         the run's log lines
    checkpoints/    resumable Trainer checkpoints
    adapter/        a standard PEFT folder (or model/ for full fine-tuning)
    split/          the held-out validation and test rows; split.json their counts
"""
from __future__ import annotations

import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from workbench.core.errors import PathError, RunError
from workbench.core.files import atomic_write_text, unique_path
from workbench.core.formatting import timestamped
from workbench.core.paths import confine, outputs_dir, resolve_local

STATES = ("queued", "running", "stopping", "stopped", "completed", "failed", "interrupted")
ACTIVE = ("queued", "running", "stopping")
RESUMABLE = ("stopped", "interrupted")
FINISHED = ("stopped", "completed", "failed", "interrupted")


def _pid_alive(pid: int) -> bool:
    """A process that runs (a zombie, killed but not yet reaped by its parent, does not)."""
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
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
    split_dir = property(lambda self: self.path / "split")
    split_file = property(lambda self: self.path / "split.json")
    log_file = property(lambda self: self.path / "run.log")
    owner_file = property(lambda self: self.path / "owner")  # the signed-in user who queued it (under --auth)

    def exists(self) -> bool:
        return self.status_file.is_file() or self.config_file.is_file()

    def config(self):
        """The run's RunConfig (RunError when config.yaml is missing or unreadable)."""
        from workbench.config.run import RunConfig
        from workbench.core.errors import ConfigError

        if not self.config_file.is_file():
            raise RunError(f"{self.path} is not a run folder (no config.yaml)")
        try:
            return RunConfig.load(self.config_file)
        except ConfigError as e:
            raise RunError(f"{self.config_file}: {e}") from None

    # -- status ------------------------------------------------------------------------------
    def read_status(self) -> dict:
        try:
            return json.loads(self.status_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return {"state": "unknown"}

    def write_status(self, state: str, **extra) -> dict:
        assert state in STATES, state
        status = {k: v for k, v in self.read_status().items() if k not in ("error", "traceback")}
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

    def owner(self) -> str | None:
        try:
            return self.owner_file.read_text(encoding="utf-8").strip() or None
        except OSError:
            return None

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


def resolve_run(choice: str | Path, *, confined: bool = False) -> RunDir:
    """A run id (a folder name under outputs/) or a run folder path → RunDir, or RunError.

    confined=True (every UI and API handler) applies the app's one confinement rule (core.paths.confine):
    the web form cannot point at folders outside the allowed roots. The CLI reads any path its user types.
    """
    text = str(choice or "").strip()
    if not text:
        raise RunError("choose a run")
    is_id = "/" not in text and text not in (".", "..") and not text.startswith("~")
    path = outputs_dir() / text if is_id else resolve_local(text)
    if confined:
        try:
            path = confine(path)
        except PathError as e:
            raise RunError(f"'{text}' is not a run this app may use: {e}") from None
    run = RunDir(path)
    if not run.exists():
        raise RunError(f"no run named '{text}' (no config.yaml or status.json in {path})")
    return run


def new_run_path(name: str = "", output_dir: str | Path = "") -> Path:
    """outputs/<timestamp>-<name>, made unique (-2, -3 …); or output_dir as given, if it holds no run yet."""
    if output_dir:
        path = Path(output_dir)
        if RunDir(path).exists():
            raise RunError(f"output_dir {path} already holds a run", "clear output_dir to get a new folder")
        return path
    return unique_path(outputs_dir() / timestamped(name or "run"))


def resumable_runs() -> list[str]:
    """Run ids that Resume can continue: stopped or interrupted, with a checkpoint."""
    return [r.id for r in list_runs() if r.state() in RESUMABLE and r.last_checkpoint() is not None]
