"""Side-by-side evaluation: generate for held-out rows with the adapter (and the base model with the adapter
off), and score each against the ground truth. The rows come from the run's saved split or a file; the
result is saved with the run (evaluation/results.py)."""
from __future__ import annotations

import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from workbench.config.decoding import GenerationConfig
from workbench.config.tasks import JudgeConfig
from workbench.config.run import RunConfig
from workbench.core.errors import DataError, EvalError, RunError, WorkbenchError
from workbench.core.formatting import safe_name
from workbench.evaluation.results import aggregate, bleu, rouge_l, save_result
from workbench.generation.decoding import generate_batch
from workbench.generation.chat_model import CACHE, ModelCache, row_input
from workbench.prompts import registry, rendering
from workbench.runs.folder import RunDir, resolve_run

SPLITS = ("test", "validation")


@dataclass
class EvalResult:
    rows: list[dict]
    summary: dict
    name: str = ""
    files: dict = field(default_factory=dict)

def run_config(run: RunDir) -> RunConfig:
    """The run's config, or an EvalError naming what is wrong with the folder."""
    try:
        return run.config()
    except RunError as e:
        raise EvalError(str(e)) from None


def load_rows(run: RunDir, split: str = "test", data: str | Path | None = None, cfg: RunConfig | None = None
              ) -> list[dict]:
    """Canonical rows: the run's held-out split, or a file in any supported format (mapped with the
    run's data format settings when they apply, else auto-detected)."""
    if data:
        from workbench.data.load import load_canonical  # pandas / datasets load only when a file is given

        cfg = cfg or run_config(run)
        try:
            fmt = cfg.data.format if Path(str(data)).resolve() == _resolved(cfg.data.source) else "auto"
            column_map = cfg.data.column_map if fmt != "auto" else {}
            ds, _ = load_canonical(str(data), fmt, column_map)
        except DataError as e:
            raise EvalError(str(e)) from None
        return [dict(r) for r in ds]
    if split not in SPLITS:
        raise EvalError(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    path = run.path / "split" / f"{split}.jsonl"
    if not path.is_file():
        raise EvalError(f"run {run.id} has no saved {split} split ({path.name} missing); evaluate a file instead")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    if not rows:
        raise EvalError(f"the {split} split of run {run.id} is empty (data.test_size / val_size was 0); "
                        "evaluate the other split or a file")
    return rows

def baseline_run(choice: str, cfg: RunConfig, run: RunDir) -> RunDir:
    """The run whose adapter answers beside `run`'s: finished with an adapter, on the same base model, and
    not `run` itself; an EvalError saying which of these fails, before any model loads."""
    from workbench.models.resolve import check_adapter_base, find_adapter

    try:
        other = resolve_run(choice)
    except RunError as e:
        raise EvalError(f"baseline: {e}") from None
    if other.path.resolve() == run.path.resolve():
        raise EvalError("baseline: that is the evaluated run itself", "pick another run, or the base model")
    if other.saved_model() is None:
        raise EvalError(f"baseline: run {other.id} has no saved adapter (state: {other.state()})")
    try:
        check_adapter_base(find_adapter(str(other.path)), cfg.model.name)
    except WorkbenchError as e:
        raise EvalError(f"baseline: run {other.id}: {e}", e.hint) from None
    return other


def _resolved(source: str) -> Path | None:
    from workbench.core.paths import resolve_local
    from workbench.data.read import is_local

    return resolve_local(source).resolve() if is_local(source) else None

def sample(rows: list[dict], n: int | None, seed: int = 0) -> list[dict]:
    """n rows drawn with the seed (the same seed gives the same rows); n <= 0 or None keeps all rows."""
    if not n or n <= 0 or n >= len(rows):
        return list(rows)
    picked = sorted(random.Random(seed).sample(range(len(rows)), n))
    return [rows[i] for i in picked]

def default_name(split: str, data: str | Path | None, n: int | None, seed: int, baseline: str = "") -> str:
    """<split or file>-<n>-seed<S>, and -vs-<run> when another run's adapter is the baseline (so comparing
    with the base model and with an SFT run keeps both results)."""
    stem = safe_name(Path(str(data)).stem, "data") if data else split
    versus = f"-vs-{safe_name(Path(baseline).name, 'run')}" if baseline else ""
    return f"{stem}-{'all' if not n or n <= 0 else f'n{n}'}-seed{seed}{versus}"

def evaluate(run_dir: str | Path, *, split: str = "test", data: str | Path | None = None, n: int | None = 8,
             seed: int = 0, batch_size: int = 8, compare_base: bool = True, baseline: str = "",
             max_new_tokens: int | None = None,
             settings: GenerationConfig | None = None, name: str | None = None, save: bool = True,
             progress: Callable[[int, int, str], None] | None = None, cache: ModelCache | None = None,
             judge: JudgeConfig | dict | None = None) -> EvalResult:
    """Generate for n held-out rows with the adapter (and the base model, or the `baseline` run's adapter),
    score against the ground truth (and with the judge, when one is given), and save eval/<name>.jsonl +
    eval/<name>.json into the run folder. The baseline's answers fill the base_* columns either way; the
    summary's `baseline` says whose they are."""
    # The config's `judge:` section (a JudgeConfig, or its dict from EvalConfig.to_dict()), checked before any
    # generation.
    judge = (judge if isinstance(judge, JudgeConfig) else JudgeConfig.from_dict(judge)).validate()
    if judge.enabled:
        from workbench.judging.rubric import for_mode

        for_mode(judge.mode, judge.rubric)  # a missing or wrong rubric is refused before any generation
        if judge.mode == "pairwise" and not compare_base:
            raise EvalError("pairwise judging compares the adapter with the base model: keep compare_base on",
                            "drop --no-base, or use --judge-mode score")
    run = RunDir(run_dir)
    cfg = run_config(run)
    if run.saved_model() is None:
        raise EvalError(f"run {run.id} has no saved adapter yet (state: {run.state()})")
    other = baseline_run(baseline, cfg, run) if compare_base and baseline else None
    template = registry.load(cfg.data.template)
    rows = sample(load_rows(run, split, data, cfg), n, seed)
    settings = settings or cfg.gen
    if max_new_tokens:
        settings = settings.with_values(max_new_tokens=int(max_new_tokens)).validate()
    cache = cache or CACHE
    cm = cache.get(cfg.model.name, str(run.path))
    # (key, whose answers, the model, adapter on, template): the baseline is the base model (this run's adapter
    # switched off) or another run's adapter with its own template, loaded after this run's answers are in
    # (the cache holds one model at a time).
    passes = [("adapter", "adapter model", lambda: cm, True, template)]
    if other is not None:
        passes.append(("base", f"adapter of run {other.id}", lambda: cache.get(cfg.model.name, str(other.path)),
                       True, registry.load(other.config().data.template)))
    elif compare_base and cm.has_adapter:
        passes.append(("base", "base model", lambda: cm, False, template))
    total = len(rows) * len(passes)
    outputs: dict[str, list[str]] = {}
    t0 = time.time()
    for i, (key, who, model, use_adapter, tpl) in enumerate(passes):
        def step(done, _total, i=i, who=who):
            if progress:
                progress(i * len(rows) + done, total, f"generating with the {who}")
        chosen = model()
        prompts = [rendering.prompt_text(tpl, r, chosen.tokenizer) for r in rows]
        outputs[key] = generate_batch(chosen, prompts, settings, tpl, batch_size, use_adapter, step)
    result_rows = []
    for k, row in enumerate(rows):
        truth = rendering.target_text(template, row)
        gen = outputs["adapter"][k]
        out = {"input": row_input(template, row), "generated": gen, "base_generated": None,
               "ground_truth": truth, "rouge_l": round(rouge_l(gen, truth), 4), "bleu": round(bleu(gen, truth), 4),
               "base_rouge_l": None, "base_bleu": None}
        if "base" in outputs:
            b = outputs["base"][k]
            out.update(base_generated=b, base_rouge_l=round(rouge_l(b, truth), 4), base_bleu=round(bleu(b, truth), 4))
        result_rows.append(out)
    summary = aggregate(result_rows)
    if judge.enabled:
        from workbench.judging.run import judge_rows

        def judged(done, total):
            if progress:
                progress(done, total, "judging")
        summary["judge"] = judge_rows(result_rows, judge, progress=judged)
    summary.update(run=run.id, baseline=other.id if other else "base" if "base" in outputs else None,
                   source=str(data) if data else f"split:{split}", seed=seed, template=template.name,
                   max_new_tokens=settings.max_new_tokens, seconds=round(time.time() - t0, 1))
    result = EvalResult(result_rows, summary, name or default_name(split, data, n, seed, other.id if other else ""))
    if save:
        result.files = save_result(run, result)
    return result
