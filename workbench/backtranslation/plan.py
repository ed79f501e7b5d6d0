"""What a generation will do, decided once before any model loads (the CLI, the job's submit and the worker
all call plan()): the run and its reverse-instruction template, the work folder, the output file."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from workbench.backtranslation.workdir import WorkDir, generated_root, work_name
from workbench.config.generate import GenerateConfig
from workbench.core.errors import ConfigError, PathError, RunError
from workbench.core.paths import confine, display
from workbench.prompts import registry
from workbench.prompts.registry import Template
from workbench.runs.folder import RunDir, resolve_run


@dataclass(frozen=True)
class GenerationPlan:
    run: RunDir
    adapter: Path
    base: str
    template: Template
    work: WorkDir
    out: Path | None


def is_reverse_instruction(t: Template) -> bool:
    """A template whose prompt shows the row's text ({output}) and whose trained response is its instruction."""
    return t.kind == "instruction" and "{instruction}" in t.response and \
        "{output}" in t.prompt + t.prompt_no_input and "{output}" not in t.response


def reverse_run(choice: str, confined: bool = False) -> tuple[RunDir, Path, Template]:
    """A finished run trained with a reverse-instruction template; ConfigError saying why another is refused.
    confined: the UI's rule (runs under the allowed folders only); the CLI reads any run its user names."""
    try:
        run = resolve_run(choice, confined=confined)
        cfg = run.config()
    except (RunError, PathError) as e:
        raise ConfigError(str(e.message), e.hint) from None
    saved = run.saved_model()
    if saved is None:
        raise ConfigError(f"run {run.id} has no saved adapter (state: {run.state()})",
                          "choose a finished run, or wait for this one to finish")
    template = registry.load(cfg.data.template)
    if not is_reverse_instruction(template):
        raise ConfigError(f"run {run.id} was trained with template '{template.name}', which writes answers, not "
                          "instructions: generating a dataset needs a reverse-instruction run (its prompt shows "
                          "the text as {output}, its response is the {instruction})",
                          "train a run with the default recipe (template reverse_instruction) first")
    return run, saved, template


def output_path(text: str) -> Path:
    try:
        return confine(text)
    except PathError as e:
        raise ConfigError(e.message, e.hint) from None


def plan(cfg: GenerateConfig, claim: bool = False) -> GenerationPlan:
    """Check everything a generation needs; `claim` also starts (or re-enters) its work folder."""
    if cfg.validate().judge.enabled:
        from workbench.judging.rubric import for_mode

        for_mode("pair", cfg.judge.rubric)  # a missing rubric, or one for evaluations, is refused before labelling
    run, saved, template = reverse_run(cfg.run)
    out = output_path(cfg.out) if cfg.out.strip() else None
    if out is not None and out.exists() and not cfg.overwrite:
        raise ConfigError(f"{display(out)} already exists", "choose another name, or set overwrite to replace it")
    work = WorkDir(generated_root() / work_name(cfg))
    if claim:
        work.claim(cfg)
    else:
        work.check(cfg)  # a conflicting earlier generation of that name is refused before anything is queued
    base = run.config().model.name
    return GenerationPlan(run, saved, base, template, work, out)
