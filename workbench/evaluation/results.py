"""An evaluation's files in its run folder: eval/<name>.jsonl (one row per example) and eval/<name>.json
(the summary), so a result can be reopened, compared and exported later; sorting its rows; and the scores
in them: ROUGE-L and BLEU of a generated text against its reference, from the reference libraries
(rouge-score, sacrebleu), never re-implemented, and their means over an evaluation.

What evaluations become: preference data from the workbench's own evaluations, and preference accuracy on
held-out pairs.

pairs_from_eval: a saved side-by-side evaluation (eval/<name>.jsonl) becomes a pair file that trains like any
other: the reference answer is `chosen` and the model's answer `rejected`, or, when the evaluation was
judged pairwise, the answer the judge preferred (adapter vs base) is `chosen`. A filter keeps only pairs
whose answers differ enough (data/preference.py difference).

preference_accuracy: how often a model's own log-likelihood prefers `chosen` (the sum of the answer tokens'
log-probabilities after the rendered prompt, the quantity DPO's implicit reward is built on), with the
adapter and with it disabled (the base), on the same pairs.
"""
from __future__ import annotations

import csv
import io
import json
import logging
from functools import lru_cache
from pathlib import Path

from workbench.core.errors import EvalError
from workbench.core.files import atomic_write_text, create_text
from workbench.core.formatting import safe_name
from workbench.data.preference import difference, load_pairs
from workbench.runs.folder import RunDir

log = logging.getLogger(__name__)

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


SOURCES = ("reference", "judge")


def pairs_from_eval(run_dir: str | Path, name: str, out: str | Path, source: str = "reference",
                    min_difference: float = 0.2, overwrite: bool = False) -> dict:
    """Write a prompt / chosen / rejected JSONL file from evaluation `name` of a run; returns the counts. An
    existing file is replaced only with overwrite."""
    if source not in SOURCES:
        raise EvalError(f"source must be one of {', '.join(SOURCES)}; got {source!r}")
    rows = read_rows(run_dir, name)
    pairs, skipped = [], {"no judge verdict": 0, "too similar": 0, "empty": 0}
    for r in rows:
        prompt = r.get("input") or ""
        if source == "judge":
            verdict = r.get("judge_verdict")
            if verdict not in ("win", "loss") or not r.get("base_generated"):
                skipped["no judge verdict"] += 1
                continue
            chosen, rejected = ((r["generated"], r["base_generated"]) if verdict == "win"
                                else (r["base_generated"], r["generated"]))
        else:
            chosen, rejected = r.get("ground_truth") or "", r.get("generated") or ""
        if not (prompt.strip() and chosen.strip() and rejected.strip()):
            skipped["empty"] += 1
        elif difference(chosen.strip(), rejected.strip()) < max(min_difference, 1e-9):
            skipped["too similar"] += 1
        else:
            pairs.append({"prompt": prompt, "chosen": chosen, "rejected": rejected})
    if not pairs:
        raise EvalError(f"no pair left from evaluation {name!r} ({len(rows)} rows; skipped: {_said(skipped)})",
                        "lower the minimum difference" + (", or judge the evaluation pairwise first"
                                                          if source == "judge" else ""))
    path, text = Path(out), "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in pairs)
    if overwrite:
        atomic_write_text(path, text)
    else:
        try:
            create_text(path, text)  # a dataset in data/ is never replaced without an explicit overwrite
        except FileExistsError:
            raise EvalError(f"{path.name} already exists; nothing was replaced",
                            "pick another file name, or tick overwrite") from None
    log.info("wrote %s pairs from %s/%s to %s", len(pairs), run_dir, name, path)
    return {"path": str(path), "pairs": len(pairs), "rows": len(rows), "skipped": skipped,
            "message": f"{len(pairs)} pairs from {len(rows)} rows written to {path} (skipped: {_said(skipped)})"}


def _said(counts: dict) -> str:
    return ", ".join(f"{n} {k}" for k, n in counts.items() if n) or "none"


def held_out_pairs(run_dir: str | Path | None = None, data: str | None = None, limit: int = 64) -> list[dict]:
    """Canonical pairs: a file (any preference format), or a preference run's held-out test / validation split."""
    if data:
        return load_pairs(str(data), "dpo").rows[:limit]
    if run_dir is None:
        raise EvalError("give a pair file or a preference run")
    for split in ("test", "validation"):
        path = Path(run_dir) / "split" / f"{split}_pairs.jsonl"
        rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.is_file() else []
        rows = [{**r, "history": json.loads(r["history"]) if isinstance(r.get("history"), str) else r.get("history")}
                for r in rows if "chosen" in r]
        if rows:
            return rows[:limit]
    raise EvalError(f"{run_dir} has no held-out pairs (not a dpo / orpo run, or no test / validation split)",
                    "give a pair file instead")


def preference_accuracy(adapter: str | Path, pairs: list[dict], template: str | None = None) -> dict:
    """{adapter: {accuracy, mean_margin}, base: {...}, pairs}: the log-likelihood preference of both."""
    import torch

    from workbench.generation.chat_model import load_chat_model
    from workbench.models.resolve import find_adapter
    from workbench.prompts import registry
    from workbench.training.preference import sequences

    source = find_adapter(adapter)
    if source.path is None:
        raise EvalError("choose an adapter (a run folder or a PEFT folder)")
    chat = load_chat_model(source.base or "default", source.path)
    tmpl = registry.load(template or source.template or "model")
    model, tok = chat.model, chat.tokenizer

    def answer_logp(prompt: str, answer: str) -> float:
        p_ids = tok(prompt, add_special_tokens=False)["input_ids"]
        ids = tok(prompt + answer, add_special_tokens=False, return_tensors="pt")["input_ids"].to(model.device)
        with torch.no_grad():
            logits = model(input_ids=ids).logits[0, :-1].float()
        logp = torch.log_softmax(logits, -1).gather(1, ids[0, 1:, None])[:, 0]
        return float(logp[len(p_ids) - 1:].sum())

    def score(rows) -> dict:
        margins = []
        for r in rows:
            seq = sequences(tmpl, r, tok)
            margins.append(answer_logp(seq["prompt"], seq["chosen"]) - answer_logp(seq["prompt"], seq["rejected"]))
        return {"accuracy": round(sum(m > 0 for m in margins) / len(margins), 4),
                "mean_margin": round(sum(margins) / len(margins), 4)}

    if not pairs:
        raise EvalError("no pairs to score")
    model.eval()
    result = {"pairs": len(pairs), "adapter": score(pairs)}
    with chat.base_only():
        result["base"] = score(pairs)
    log.info("preference accuracy on %s pairs: adapter %s, base %s", len(pairs), result["adapter"], result["base"])
    return result
