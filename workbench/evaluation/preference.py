"""Preference data from the workbench's own evaluations, and preference accuracy on held-out pairs.

pairs_from_eval: a saved side-by-side evaluation (eval/<name>.jsonl) becomes a pair file that trains like any
other: the reference answer is `chosen` and the model's answer `rejected`, or, when the evaluation was
judged pairwise, the answer the judge preferred (adapter vs base) is `chosen`. A filter keeps only pairs
whose answers differ enough (data/preference.py difference).

preference_accuracy: how often a model's own log-likelihood prefers `chosen` (the sum of the answer tokens'
log-probabilities after the rendered prompt, the quantity DPO's implicit reward is built on), with the
adapter and with it disabled (the base), on the same pairs.
"""
from __future__ import annotations

import json
import logging
from pathlib import Path

from workbench.core.errors import EvalError
from workbench.core.files import atomic_write_text, create_text
from workbench.data.preference import difference, load_pairs
from workbench.evaluation.results import read_rows

log = logging.getLogger(__name__)
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
    from workbench.training.pref_sequences import sequences

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
