"""Logging setup: one logger per module (logging.getLogger(__name__)), configured here only.

The app writes outputs/workbench.log (rotated); each run also writes its own run.log through
run_log(); the CLI and the app take --log-level. A job's worker.log (shown in the Train and Jobs tabs) is
the worker's stdout and stderr, so third-party output a user cannot act on is filtered here, at its source,
each filter with its reason (quiet_libraries).
"""
from __future__ import annotations

import contextlib
import logging
import logging.handlers
import os
import sys
import warnings
from pathlib import Path
from typing import Iterator

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
_MAX_BYTES, _BACKUPS = 5 * 1024 * 1024, 3


class _CurrentStderr(logging.StreamHandler):
    """Writes to whatever sys.stderr is at the time of the record (a test runner swaps it per test)."""

    def __init__(self):
        super().__init__(sys.stderr)

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value):  # logging.StreamHandler.__init__ assigns it; the property ignores that
        pass


def setup_logging(level: str = "INFO", log_file: str | Path | None = None, console: bool = True) -> None:
    """Configure the root logger once for this process: console (stderr) and optionally a rotated file."""
    root = logging.getLogger()
    root.setLevel(level.upper())
    for handler in list(root.handlers):
        if getattr(handler, "_workbench", False):
            root.removeHandler(handler)
            handler.close()
    handlers: list[logging.Handler] = []
    if console:
        console_handler = _CurrentStderr()
        console_handler.setLevel(level.upper())  # a run's run.log may lower the workbench logger; not the console
        handlers.append(console_handler)
    if log_file is not None:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.handlers.RotatingFileHandler(log_file, maxBytes=_MAX_BYTES, backupCount=_BACKUPS,
                                                             encoding="utf-8"))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(FORMAT))
        handler._workbench = True  # ours to replace on a second call
        root.addHandler(handler)
    # Libraries that log every HTTP request or file read at INFO drown ours.
    for noisy in ("httpx", "urllib3", "filelock", "asyncio"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    quiet_libraries()


class _DropPrefix(logging.Filter):
    def __init__(self, prefix: str):
        super().__init__()
        self.prefix = prefix

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.prefix)


BNB_CPU_KERNELS = "Failed to load CPU gemm_4bit_forward"


def quiet_libraries() -> None:
    """Third-party lines a user can do nothing about, stopped where they start (idempotent); anything else
    they warn about still shows."""
    # bitsandbytes logs on import, on every CPU machine, that the optional `kernels` package for its 4-bit CPU
    # matmul is missing. Runs on a CPU train in float32 (the estimate advises against 4-bit there), so it asks
    # for a package nothing here needs; bitsandbytes' other warnings pass.
    cpu_ops = logging.getLogger("bitsandbytes.backends.cpu.ops")
    if not any(isinstance(f, _DropPrefix) for f in cpu_ops.filters):
        cpu_ops.addFilter(_DropPrefix(BNB_CPU_KERNELS))
    # transformers' FutureWarnings announce removals to the libraries that call it (TRL and PEFT call
    # `is_gradient_checkpointing`): the versions are pinned in requirements.txt, and a user cannot change
    # TRL's code. FutureWarnings from any other package, ours included, still show.
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"transformers(\.|$)")
    # transformers' "Loading weights" bar (and the hub's download bars) redraw themselves with '\r': in a file,
    # such as a job's worker.log, that is one long line of frames. A terminal keeps them.
    if not _is_terminal(sys.stderr):
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"  # read when transformers and huggingface_hub load
        if "huggingface_hub" in sys.modules:  # imported before this call (a warm worker, before its job arrived)
            from huggingface_hub.utils import disable_progress_bars

            disable_progress_bars()
        if "transformers" in sys.modules:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()


def _is_terminal(stream) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


@contextlib.contextmanager
def run_log(path: str | Path, level: int = logging.INFO) -> Iterator[logging.Handler]:
    """While inside, every workbench log record also goes to `path` (a run's run.log)."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter(FORMAT))
    handler.setLevel(level)
    target = logging.getLogger("workbench")
    before = target.level
    if target.getEffectiveLevel() > level:
        target.setLevel(level)  # the run's own log keeps INFO lines even when the console shows only warnings
    target.addHandler(handler)
    try:
        yield handler
    finally:
        target.removeHandler(handler)
        target.setLevel(before)
        handler.close()
