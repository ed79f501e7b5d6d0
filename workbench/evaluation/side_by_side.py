"""Side-by-side evaluation: generated vs ground truth for many held-out rows, with ROUGE-L and BLEU.

The metrics come from the reference libraries (rouge-score, sacrebleu), never re-implemented here.
Every evaluation is saved into the run folder: eval/<name>.jsonl (one row per example) and
eval/<name>.json (the summary), so a result can be reopened, compared and exported later.
"""
from __future__ import annotations

import csv
import io
import json
import random
import re
import time
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Callable

from workbench.prompts import registry, rendering
from workbench.core.errors import ConfigError
from workbench.config.generation import GenerationConfig
from workbench.config.run import RunConfig
from workbench.generation.inference import CACHE, ModelCache, generate_batch, row_input
from workbench.runs.folder import RunDir
from workbench.core.files import atomic_write_text
from workbench.core.errors import EvalError

COLUMNS = ["input", "generated", "base_generated", "ground_truth", "rouge_l", "bleu", "base_rouge_l", "base_bleu"]
SPLITS = ("test", "validation")


@dataclass
class EvalResult:
    rows: list[dict]
    summary: dict
    name: str = ""
    files: dict = field(default_factory=dict)


# -- metrics ------------------------------------------------------------------------------------------

@lru_cache(maxsize=1)
def _rouge():
    from rouge_score import rouge_scorer

    return rouge_scorer.RougeScorer(["rougeL"], use_stemmer=True)


def rouge_l(generated: str, reference: str) -> float:
    """ROUGE-L F1 in [0, 1] (rouge-score, Porter stemming as in the original ROUGE)."""
    if not (generated or "").strip() or not (reference or "").strip():
        return 0.0
    return float(_rouge().score(reference, generated)["rougeL"].fmeasure)


def bleu(generated: str, reference: str) -> float:
    """Sentence BLEU scaled to [0, 1] (sacrebleu; effective order, so short sentences are not zeroed)."""
    import sacrebleu

    if not (generated or "").strip() or not (reference or "").strip():
        return 0.0
    return float(sacrebleu.sentence_bleu(generated, [reference]).score) / 100.0


def aggregate(rows: list[dict]) -> dict:
    """Mean scores: the CLI summary keys adapter_rouge_l, base_rouge_l, adapter_bleu, base_bleu, n."""
    def mean(key):
        vals = [r[key] for r in rows if r.get(key) is not None]
        return round(sum(vals) / len(vals), 4) if vals else None

    return {"adapter_rouge_l": mean("rouge_l"), "base_rouge_l": mean("base_rouge_l"),
            "adapter_bleu": mean("bleu"), "base_bleu": mean("base_bleu"), "n": len(rows)}


# -- rows ---------------------------------------------------------------------------------------------

def run_config(run: RunDir) -> RunConfig:
    if not run.config_file.is_file():
        raise EvalError(f"{run.path} is not a run folder (no config.yaml)")
    try:
        return RunConfig.load(run.config_file)
    except ConfigError as e:
        raise EvalError(f"{run.config_file}: {e}") from None


def load_rows(run: RunDir, split: str = "test", data: str | Path | None = None, cfg: RunConfig | None = None
              ) -> list[dict]:
    """Canonical rows: the run's held-out split, or a file in any supported format (mapped with the
    run's data format settings when they apply, else auto-detected)."""
    if data:
        from workbench.core.errors import DataError
        from workbench.data.load import load_canonical

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


def sort_rows(rows: list[dict], by: str = "rouge_l", best_first: bool = True) -> list[dict]:
    return sorted(rows, key=lambda r: (r.get(by) is None, -(r.get(by) or 0) if best_first else (r.get(by) or 0)))


# -- the evaluation -----------------------------------------------------------------------------------

def default_name(split: str, data: str | Path | None, n: int | None, seed: int) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "-", Path(str(data)).stem) if data else split
    return f"{stem}-{'all' if not n or n <= 0 else f'n{n}'}-seed{seed}"


def evaluate(run_dir: str | Path, *, split: str = "test", data: str | Path | None = None, n: int | None = 8,
             seed: int = 0, batch_size: int = 8, compare_base: bool = True, max_new_tokens: int | None = None,
             settings: GenerationConfig | None = None, name: str | None = None, save: bool = True,
             progress: Callable[[int, int, str], None] | None = None, cache: ModelCache | None = None
             ) -> EvalResult:
    """Generate for n held-out rows with the adapter (and the base model), score against the ground truth,
    and save eval/<name>.jsonl + eval/<name>.json into the run folder."""
    run = RunDir(run_dir)
    cfg = run_config(run)
    if run.saved_model() is None:
        raise EvalError(f"run {run.id} has no saved adapter yet (state: {run.state()})")
    template = registry.load(cfg.data.template)
    rows = sample(load_rows(run, split, data, cfg), n, seed)
    settings = settings or cfg.gen
    if max_new_tokens:
        settings = GenerationConfig(**{**settings.__dict__, "max_new_tokens": int(max_new_tokens)})
    cm = (cache or CACHE).get(cfg.model.name, str(run.path))
    prompts = [rendering.prompt_text(template, r, cm.tokenizer) for r in rows]
    passes = [("adapter", True)] + ([("base", False)] if compare_base and cm.has_adapter else [])
    total = len(rows) * len(passes)
    outputs: dict[str, list[str]] = {}
    t0 = time.time()
    for i, (label, use_adapter) in enumerate(passes):
        def step(done, _total, i=i, label=label):
            if progress:
                progress(i * len(rows) + done, total, f"generating with the {label} model")
        outputs[label] = generate_batch(cm, prompts, settings, template, batch_size, use_adapter, step)
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
    summary.update(run=run.id, source=str(data) if data else f"split:{split}", seed=seed, template=template.name,
                   max_new_tokens=settings.max_new_tokens, seconds=round(time.time() - t0, 1))
    result = EvalResult(result_rows, summary, name or default_name(split, data, n, seed))
    if save:
        result.files = save_result(run, result)
    return result


# -- files --------------------------------------------------------------------------------------------

def eval_dir(run: RunDir) -> Path:
    return run.path / "eval"


def _safe_name(name: str) -> str:
    clean = re.sub(r"[^A-Za-z0-9_.-]+", "-", name or "").strip(".-")
    if not clean:
        raise EvalError(f"invalid evaluation name {name!r}")
    return clean


def save_result(run: RunDir, result: EvalResult) -> dict:
    name = _safe_name(result.name)
    jsonl = eval_dir(run) / f"{name}.jsonl"
    summary = eval_dir(run) / f"{name}.json"
    atomic_write_text(jsonl, to_jsonl(result.rows))
    atomic_write_text(summary, json.dumps(result.summary, indent=2))
    return {"jsonl": jsonl, "summary": summary}


def to_jsonl(rows: list[dict]) -> str:
    return "".join(json.dumps({k: r.get(k) for k in COLUMNS}, ensure_ascii=False) + "\n" for r in rows)


def to_csv(rows: list[dict]) -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=COLUMNS, extrasaction="ignore")
    writer.writeheader()
    writer.writerows(rows)
    return buf.getvalue()


def export(run_dir: str | Path, rows: list[dict], name: str, fmt: str = "csv") -> Path:
    """Write the rows (as shown, e.g. sorted) to eval/<name>.<fmt> in the run folder."""
    if fmt not in ("csv", "jsonl"):
        raise EvalError(f"export format must be csv or jsonl; got {fmt!r}")
    run = RunDir(run_dir)
    if not run.config_file.is_file():
        raise EvalError(f"{run.path} is not a run folder")
    path = eval_dir(run) / f"{_safe_name(name)}.{fmt}"
    atomic_write_text(path, to_csv(rows) if fmt == "csv" else to_jsonl(rows))
    return path


def list_results(run_dir: str | Path) -> list[dict]:
    """The saved evaluation summaries of a run, newest first."""
    folder = eval_dir(RunDir(run_dir))
    out = []
    for p in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True) if folder.is_dir() else []:
        try:
            out.append({"name": p.stem, **json.loads(p.read_text(encoding="utf-8"))})
        except ValueError:
            continue
    return out


def read_rows(run_dir: str | Path, name: str) -> list[dict]:
    path = eval_dir(RunDir(run_dir)) / f"{_safe_name(name)}.jsonl"
    if not path.is_file():
        raise EvalError(f"no saved evaluation named {name!r} in this run")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
