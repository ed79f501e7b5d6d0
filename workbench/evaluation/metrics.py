"""ROUGE-L and BLEU of a generated text against its reference, from the reference libraries (rouge-score,
sacrebleu), never re-implemented; and their means over an evaluation."""
from __future__ import annotations

from functools import lru_cache


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
