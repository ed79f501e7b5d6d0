"""Logging setup: one logger per module (logging.getLogger(__name__)), configured here only.

The app writes outputs/workbench.log (rotated); each run also writes its own run.log through
run_log(); the CLI and the app take --log-level.
"""
from __future__ import annotations

import contextlib
import logging
import logging.handlers
import sys
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
