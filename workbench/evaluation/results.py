"""An evaluation's files in its run folder: eval/<name>.jsonl (one row per example) and eval/<name>.json
(the summary), so a result can be reopened, compared and exported later; sorting its rows; and the scores
in them: ROUGE-L and BLEU of a generated text against its reference, from the reference libraries
(rouge-score, sacrebleu), never re-implemented, and their means over an evaluation."""
from __future__ import annotations

import csv
import io
import json
from functools import lru_cache
from pathlib import Path

from workbench.core.errors import EvalError
from workbench.core.files import atomic_write_text
from workbench.core.formatting import safe_name
from workbench.runs.folder import RunDir

COLUMNS = ["input", "generated", "base_generated", "ground_truth", "rouge_l", "bleu", "base_rouge_l", "base_bleu",
           # the optional LLM judge (judging/run.py): empty when the evaluation had no judge
           "judge_score", "base_judge_score", "judge_verdict", "judge_reason", "judge_status"]


def file_name(name: str) -> str:
    """An evaluation's name as a file name (the one name rule, core.formatting)."""
    clean = safe_name(name, default="")
    if not clean:
        raise EvalError(f"invalid evaluation name {name!r}")
    return clean


def sort_rows(rows: list[dict], by: str = "rouge_l", best_first: bool = True) -> list[dict]:
    return sorted(rows, key=lambda r: (r.get(by) is None, -(r.get(by) or 0) if best_first else (r.get(by) or 0)))

def eval_dir(run: RunDir) -> Path:
    return run.path / "eval"

def save_result(run: RunDir, result) -> dict:
    """Write an EvalResult's rows and summary (each atomically); returns their paths."""
    name = file_name(result.name)
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
    path = eval_dir(run) / f"{file_name(name)}.{fmt}"
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
    path = eval_dir(RunDir(run_dir)) / f"{file_name(name)}.jsonl"
    if not path.is_file():
        raise EvalError(f"no saved evaluation named {name!r} in this run")
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def baseline_label(summary: dict) -> str:
    """Whose answers the base_* columns hold, in words: the base model, or another run's adapter."""
    other = summary.get("baseline")
    return f"run {other}" if other and other != "base" else "base model"


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
