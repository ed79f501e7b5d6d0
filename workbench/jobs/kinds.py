"""The kinds of job and what each needs: its config dataclass, the check made at submit time, and the worker
command (`python -m workbench <kind> ...`: the worker is the CLI). Later kinds (generate, judge, export) join
by calling register(); the supervisor never changes for them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from workbench.config.fields import Settings
from workbench.config.run import RunConfig
from workbench.config.tasks import EvalConfig, MergeConfig
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
    if name not in KINDS:
        raise ConfigError(f"unknown job kind '{name}'; known: {', '.join(sorted(KINDS))}")
    return KINDS[name]


def kind_names() -> list[str]:
    return sorted(KINDS)


# -- the kinds of the first round: train, eval, merge -------------------------------------------------

def _prepare_train(cfg: RunConfig) -> Prepared:
    from workbench.config.preflight import preflight
    from workbench.runs.folder import new_run_path

    cfg = cfg.copy()
    run_dir = new_run_path(cfg.run_name, cfg.output_dir)
    cfg.output_dir = str(run_dir)
    preflight(cfg)  # a config that cannot run here is refused now, with its message; nothing is queued
    # Reserve the folder name now: two jobs queued in the same second must not get the same run folder.
    run_dir.mkdir(parents=True, exist_ok=True)
    return Prepared(cfg, run_dir, run_dir.name)


def _train_command(config_file: Path, run_dir: Path, resume: bool) -> list[str]:
    if resume:
        return ["train", "--resume", str(run_dir), "--no-progress"]
    return ["train", "--config", str(config_file), "--no-progress"]


def _prepare_eval(cfg: EvalConfig) -> Prepared:
    from workbench.runs.folder import resolve_run

    cfg.check_ranges()
    run = resolve_run(cfg.run)
    if run.saved_model() is None:
        raise ConfigError(f"run {run.id} has no saved adapter yet (state: {run.state()}); evaluate a finished run")
    cfg = cfg.copy()
    cfg.run = str(run.path)
    return Prepared(cfg, run.path, f"eval {run.id} ({cfg.data or cfg.split}, n={cfg.n or 'all'})")


def _prepare_merge(cfg: MergeConfig) -> Prepared:
    cfg.check_ranges()
    if not cfg.run.strip() or not cfg.out.strip():
        raise ConfigError("a merge job needs run and out", "run: a run folder; out: a new output folder")
    out = Path(cfg.out).expanduser()
    if out.exists() and any(out.iterdir()):
        raise ConfigError(f"{out} already exists and is not empty; pick a new folder")
    return Prepared(cfg, out, f"merge {Path(cfg.run).name} → {out.name}")


def _task_command(name: str):
    def command(config_file: Path, run_dir: Path, resume: bool) -> list[str]:
        return [name, "--config", str(config_file)]
    return command


register(JobKind("train", RunConfig, _prepare_train, _train_command, distributed=True,
                 describe="train a LoRA / QLoRA / full fine-tune"))
register(JobKind("eval", EvalConfig, _prepare_eval, _task_command("eval"),
                 describe="side-by-side evaluation of a run"))
register(JobKind("merge", MergeConfig, _prepare_merge, _task_command("merge"),
                 describe="merge an adapter into its base model"))
