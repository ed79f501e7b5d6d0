"""The kinds of job and what each needs: its config dataclass, the check made at submit time, and the worker
command (`python -m workbench <kind> ...`: the worker is the CLI). Each kind joins by calling register(); the
supervisor never changes for them.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from workbench.config.fields import Settings
from workbench.config.generate import GenerateConfig
from workbench.config.run import RunConfig
from workbench.config.tasks import EvalConfig, ExportConfig, MergeConfig, ServeConfig
from workbench.core.errors import ConfigError
from workbench.jobs.boundary import READ, WRITE, local, run_location


@dataclass(frozen=True)
class Prepared:
    config: Settings  # the config as it will run (e.g. with its run folder fixed)
    run_dir: Path  # where the job's results go
    name: str  # what the queue shows
    plan: dict | None = None  # what the kind's check decided, saved with the job for its worker (plan.json)


@dataclass(frozen=True)
class JobKind:
    name: str
    config_class: type[Settings]
    prepare: Callable[[Settings], Prepared]  # validate (and preflight) at submit: a bad config is never queued
    command: Callable[[Path, Path, bool], list[str]]  # (config file, run dir, resume) → CLI arguments
    distributed: bool = False  # may run as several processes under accelerate launch
    # Queued again after a stop or a crash: a check that raises JobError when this job cannot continue, or None
    # for kinds that are simply submitted again.
    can_resume: Callable[[Path], None] | None = None
    describe: str = ""
    # On a CPU, jobs that use every core run one at a time; a job that mostly waits (serve) runs beside them.
    cpu_exclusive: bool = True
    # The settings that name paths, for the trust boundary (jobs/boundary.py): cfg → [(setting, value, mode)].
    paths: Callable[[Settings], list[tuple[str, str, str]]] | None = None


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
    from workbench.config.preflight import preflight, world_of
    from workbench.core.files import atomic_write_text
    from workbench.core.policy import caller
    from workbench.runs.folder import RunDir, new_run_path

    cfg = cfg.copy()
    run_dir = new_run_path(cfg.run_name, cfg.output_dir)
    cfg.output_dir = str(run_dir)
    plan = preflight(cfg)  # a config that cannot run here is refused now, with its message; nothing is queued
    # Reserve the folder name now: two jobs queued in the same second must not get the same run folder.
    run_dir.mkdir(parents=True, exist_ok=True)
    if caller():
        atomic_write_text(RunDir(run_dir).owner_file, caller())
    return Prepared(cfg, run_dir, run_dir.name, {"plan": plan.to_dict(), "world": world_of(plan)})


def _train_paths(cfg: RunConfig) -> list[tuple[str, str, str]]:
    from workbench.data.read import is_local

    return [("data.source", cfg.data.source if is_local(cfg.data.source) else "", READ),
            ("model.name", local(cfg.model.name), READ),
            ("model.adapter_from", run_location(cfg.model.adapter_from) if cfg.model.adapter_from.strip() else "",
             READ),
            ("pref.ref_model", local(cfg.pref.ref_model), READ),
            ("output_dir", cfg.output_dir, WRITE)]


def _train_command(config_file: Path, run_dir: Path, resume: bool) -> list[str]:
    if resume:
        return ["train", "--resume", str(run_dir), "--no-progress"]
    return ["train", "--config", str(config_file), "--no-progress"]


def _train_can_resume(run_dir: Path) -> None:
    from workbench.jobs.queue import JobError
    from workbench.runs.folder import RunDir

    run = RunDir(run_dir)
    if run.state() == "completed":
        raise JobError(f"run {run.id} already completed; there is nothing left to train")
    if run.last_checkpoint() is None:
        raise JobError(f"run {run.id} has no checkpoint to resume from (it ended before the first save)",
                       "submit it again to start over")


def _prepare_eval(cfg: EvalConfig) -> Prepared:
    from workbench.runs.folder import resolve_run

    cfg.check_ranges()
    from workbench.core.policy import current

    cfg.judge.check_policy(current()).validate()  # an offered key only, to an allowed endpoint; before the rest
    run = resolve_run(cfg.run)
    if run.saved_model() is None:
        raise ConfigError(f"run {run.id} has no saved adapter yet (state: {run.state()}); evaluate a finished run")
    cfg = cfg.copy()
    cfg.run = str(run.path)
    return Prepared(cfg, run.path, f"eval {run.id} ({cfg.data or cfg.split}, n={cfg.n or 'all'})")


def _eval_paths(cfg: EvalConfig) -> list[tuple[str, str, str]]:
    # An evaluation writes into the run's eval/ folder, so the run must be writable, not only readable.
    return [("run", run_location(cfg.run) if cfg.run.strip() else "", WRITE), ("data", cfg.data, READ),
            ("baseline", run_location(cfg.baseline) if cfg.baseline.strip() else "", READ)]


def _merge_paths(cfg: MergeConfig) -> list[tuple[str, str, str]]:
    return [("run", run_location(cfg.run) if cfg.run.strip() else "", READ), ("out", cfg.out, WRITE),
            ("base", local(cfg.base), READ)]


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


register(JobKind("train", RunConfig, _prepare_train, _train_command, distributed=True, can_resume=_train_can_resume,
                 describe="train a LoRA / QLoRA / full fine-tune", paths=_train_paths))
register(JobKind("eval", EvalConfig, _prepare_eval, _task_command("eval"),
                 describe="side-by-side evaluation of a run", paths=_eval_paths))
register(JobKind("merge", MergeConfig, _prepare_merge, _task_command("merge"),
                 describe="merge an adapter into its base model", paths=_merge_paths))


def _prepare_generate(cfg):
    from workbench.backtranslation.plan import plan
    from workbench.core.policy import current

    cfg.judge.check_policy(current())  # an offered key only, to an allowed endpoint
    # A run that is not reverse-instruction, an existing output, a name taken by other settings: refused before
    # queueing. Claiming the work folder now reserves the name, like a run folder.
    p = plan(cfg, claim=True)
    return Prepared(cfg, p.work.path, f"generate {p.work.name} with {p.run.id}")


def _generate_paths(cfg: GenerateConfig) -> list[tuple[str, str, str]]:
    return [("run", run_location(cfg.run) if cfg.run.strip() else "", READ), ("texts", cfg.texts, READ),
            ("out", cfg.out, WRITE)]


register(JobKind("generate", GenerateConfig, _prepare_generate, _task_command("generate"), paths=_generate_paths,
                 can_resume=lambda work: None,  # the worker labels only the chunks its work folder lacks
                 describe="label your texts with a reverse-instruction run into an instruction dataset"))


def _prepare_serve(cfg):
    """Serve: every run must have its adapter, a key must exist when binding beyond loopback, the port free."""
    from workbench.runs.folder import resolve_run
    from workbench.core.policy import current
    from workbench.serving.server import check_port

    cfg = cfg.copy().check_policy(current()).validate()  # an offered key name only, before it is looked up
    runs = [resolve_run(r) for r in cfg.runs()]
    for run in runs:
        if run.saved_model() is None:
            raise ConfigError(f"run {run.id} has no saved adapter yet (state: {run.state()}); serve a finished run")
    check_port(cfg.host, cfg.port)
    cfg.run = ",".join(str(r.path) for r in runs)
    return Prepared(cfg, runs[0].path, f"serve {', '.join(r.id for r in runs)} at {cfg.host}:{cfg.port}")


def _serve_paths(cfg: ServeConfig) -> list[tuple[str, str, str]]:
    return [("run", run_location(r), READ) for r in cfg.runs()]


register(JobKind("serve", ServeConfig, _prepare_serve, _task_command("serve"), cpu_exclusive=False, paths=_serve_paths,
                 describe="serve runs' adapters on an OpenAI-compatible API until cancelled"))


def _prepare_export(cfg):
    """Export: every refusal of plan_export (unfinished run, quantization, architecture, existing or read-only
    output, disk space) happens at submit, before anything is queued."""
    from workbench.export.bundle import plan_export

    plan = plan_export(cfg)
    cfg = cfg.copy()
    cfg.run, cfg.out = str(plan.run.path), str(plan.out)
    what = f"{cfg.format} {','.join(plan.quants)}".strip()
    return Prepared(cfg, plan.run.path, f"export {plan.run.id} ({what}) → {plan.out.name}",
                    {"export": plan.to_dict()})


def _export_paths(cfg: ExportConfig) -> list[tuple[str, str, str]]:
    run = run_location(cfg.run) if cfg.run.strip() else None
    # The default output is <run>/export: then the run folder itself must be writable.
    out = cfg.out if str(cfg.out or "").strip() else (run / "export" if run else "")
    return [("run", run or "", READ), ("out", out, WRITE)]


register(JobKind("export", ExportConfig, _prepare_export, _task_command("export"), paths=_export_paths,
                 describe="export a run: merged folder, GGUF + Ollama Modelfile, model cards, checked"))
