"""The kinds of job and what each needs: its config dataclass, the check made at submit time, and the worker
command (`python -m workbench <kind> ...`: the worker is the CLI). Later kinds (generate, judge, export) join
by calling register(); the supervisor never changes for them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from workbench.config.fields import Settings
from workbench.core.errors import ConfigError


@dataclass(frozen=True)
class Prepared:
    config: Settings  # the config as it will run (e.g. with its run folder fixed)
    run_dir: Path  # where the job's results go
    name: str  # what the queue shows


@dataclass(frozen=True)
class JobKind:
    name: str
    config_class: type[Settings]
    prepare: Callable[[Settings], Prepared]  # validate (and preflight) at submit: a bad config is never queued
    command: Callable[[Path, Path, bool], list[str]]  # (config file, run dir, resume) → CLI arguments
    distributed: bool = False  # may run as several processes under accelerate launch
    describe: str = ""


KINDS: dict[str, JobKind] = {}


def register(kind: JobKind) -> JobKind:
    KINDS[kind.name] = kind
    return kind


def get_kind(name: str) -> JobKind:
    _load_builtin()
    if name not in KINDS:
        raise ConfigError(f"unknown job kind '{name}'; known: {', '.join(sorted(KINDS))}")
    return KINDS[name]


def kind_names() -> list[str]:
    _load_builtin()
    return sorted(KINDS)


def _load_builtin() -> None:
    # Imported here, not at the top: each kind module imports its engine side, which this registry must not.
    from workbench.jobs import builtin_kinds  # noqa: F401  (registers train, eval, merge)
