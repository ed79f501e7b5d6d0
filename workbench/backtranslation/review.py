"""Curation before saving: the scores and flags a user curates pairs on, the review table's rows (keep, scores,
flags, the editable instruction), the threshold that decides the default keep, sorting, and turning the
reviewed table back into pairs.

The back-translation score asks the forward question: given the generated instruction, how likely is the
original text under the base model (adapter off)? It is the mean log-likelihood of the text's tokens under
the Alpaca prompt, reported as 100·exp(mean), the geometric mean of the tokens' probabilities, on 0-100 like
the judge's scores. Flags mark instructions that are empty, copy the text, or repeat across rows.
"""
from __future__ import annotations

import math
import re
from collections import Counter
from dataclasses import dataclass

from workbench.backtranslation.workdir import WorkDir
from workbench.core.errors import DataError
from workbench.generation.chat_model import ChatModel
from workbench.prompts import registry
from workbench.prompts.rendering import IGNORE_INDEX, encode_row

FORWARD_TEMPLATE = "alpaca"  # the layout the forward model is trained with (the Train button's choice too)
COPY_NGRAM = 4
COPY_SHARE = 0.5  # an instruction whose word 4-grams are at least half from the text copies it
_WORD = re.compile(r"\w+")


def backtranslation_scores(cm: ChatModel, pairs: list[tuple[str, str]], batch_size: int = 8,
                           max_length: int = 1024) -> list[float]:
    """For each (instruction, text): 100·exp(mean log p(text tokens | instruction)) under the base model."""
    import torch

    template = registry.load(FORWARD_TEMPLATE)
    tok = cm.tokenizer
    pad = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    encoded = [encode_row(template, {"instruction": ins, "input": "", "output": text}, tok, max_length)
               for ins, text in pairs]
    order = sorted(range(len(encoded)), key=lambda i: len(encoded[i]["input_ids"]))
    scores = [0.0] * len(encoded)
    with cm.lock, cm.base_only(), torch.inference_mode():
        for start in range(0, len(order), max(1, batch_size)):
            idx = order[start:start + batch_size]
            width = max(len(encoded[i]["input_ids"]) for i in idx)
            ids = torch.full((len(idx), width), pad, dtype=torch.long)
            labels = torch.full((len(idx), width), IGNORE_INDEX, dtype=torch.long)
            mask = torch.zeros((len(idx), width), dtype=torch.long)
            for row, i in enumerate(idx):
                n = len(encoded[i]["input_ids"])
                ids[row, :n] = torch.tensor(encoded[i]["input_ids"])
                labels[row, :n] = torch.tensor(encoded[i]["labels"])
                mask[row, :n] = 1
            device = cm.model.device
            logits = cm.model(input_ids=ids.to(device), attention_mask=mask.to(device)).logits
            target = labels[:, 1:].to(device)
            nll = torch.nn.functional.cross_entropy(logits[:, :-1].float().transpose(1, 2), target,
                                                    ignore_index=IGNORE_INDEX, reduction="none")
            trained = target != IGNORE_INDEX
            mean = -(nll * trained).sum(-1) / trained.sum(-1).clamp(min=1)
            for row, i in enumerate(idx):
                scores[i] = round(100.0 * math.exp(float(mean[row])), 2)
    return scores


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def copies_text(instruction: str, text: str) -> bool:
    """The instruction is mostly lifted from the text instead of asking for it."""
    ins = words(instruction)
    if not ins:
        return False
    src = words(text)
    if len(ins) < COPY_NGRAM:
        return " ".join(ins) in " ".join(src)
    grams = {tuple(src[i:i + COPY_NGRAM]) for i in range(len(src) - COPY_NGRAM + 1)}
    own = [tuple(ins[i:i + COPY_NGRAM]) for i in range(len(ins) - COPY_NGRAM + 1)]
    return sum(g in grams for g in own) / len(own) >= COPY_SHARE


def normalized(instruction: str) -> str:
    return " ".join(words(instruction))


def flags(instruction: str, text: str) -> dict:
    return {"empty": not instruction.strip(), "copies_text": copies_text(instruction, text)}


def mark_repeats(pairs: list[dict]) -> None:
    """pairs[i]['repeated'] = its instruction (normalised) also labels another row."""
    counts = Counter(normalized(p["instruction"]) for p in pairs if p["instruction"].strip())
    for p in pairs:
        p["repeated"] = bool(p["instruction"].strip()) and counts[normalized(p["instruction"])] > 1


def best_candidate(candidates: list[dict]) -> dict:
    """The highest score among clean candidates (not empty, not a copy); the highest overall if none is clean."""
    clean = [c for c in candidates if not c["empty"] and not c["copies_text"]]
    return max(clean or candidates, key=lambda c: c["score"])


COLUMNS = ["keep", "score", "judge", "instruction", "text", "flags", "tokens", "source", "id"]
SORTS = {"score, best first": ("score", True), "score, worst first": ("score", False),
         "judge score, best first": ("judge", True), "judge score, worst first": ("judge", False),
         "instruction length, longest first": ("tokens", True),
         "instruction length, shortest first": ("tokens", False),
         "flagged first": ("flags", True), "source order": ("id", None)}


def flag_text(pair: dict) -> str:
    return ", ".join(label for key, label in (("empty", "empty"), ("copies_text", "copies the text"),
                                              ("repeated", "repeated")) if pair.get(key))


@dataclass(frozen=True)
class Thresholds:
    """The review's two sliders: the back-translation score and (with a judge) the judge's score."""
    score: float = 0.0
    judge: float = 0.0

    def passes(self, pair: dict) -> bool:
        if float(pair["score"]) < self.score:
            return False
        judged = pair.get("judge_score")
        return self.judge <= 0 or (judged is not None and float(judged) >= self.judge)


def judge_result(judge: dict) -> str:
    """The judge's result in a few words (a weak judge may leave every reply unreadable: said so)."""
    failed = f"{judge['failed_rows']} replies unreadable or failed"
    if judge.get("mean_score") is None:
        return f"no pair could be scored ({failed})"
    return f"mean score {judge['mean_score']} ({failed})"


def judge_text(judge: dict) -> str:
    return f"judge {judge['model']}: {judge_result(judge)}"


def default_keep(pair: dict, limits: Thresholds) -> bool:
    """Kept unless below a threshold or empty (copies and repeats are shown flagged, the user decides)."""
    return limits.passes(pair) and not pair.get("empty")


def instruction_length(pair: dict) -> int:
    """The instruction's length in tokens of the run's tokenizer (a pair made before lengths were tokens has its
    word count)."""
    return int(pair.get("instruction_tokens", pair.get("instruction_words", 0)))


def table_rows(pairs: list[dict], limits: Thresholds) -> list[dict]:
    return [{"keep": default_keep(p, limits), "score": p["score"], "judge": p.get("judge_score"),
             "instruction": p["instruction"],
             "text": p["text"], "flags": flag_text(p), "tokens": instruction_length(p), "source": p["source"],
             "id": p["id"]} for p in pairs]


def rethreshold(rows: list[dict], pairs_by_id: dict[str, dict], limits: Thresholds) -> list[dict]:
    """A threshold moved: every row's keep follows them again (an edited instruction stays edited)."""
    return [{**r, "keep": default_keep({**pairs_by_id.get(r["id"], {}), "score": r["score"],
                                        "empty": not str(r["instruction"]).strip()}, limits)} for r in rows]


def sort_rows(rows: list[dict], sort: str, order: list[str] | None = None) -> list[dict]:
    key, best = SORTS.get(sort, ("score", True))
    if best is None:
        position = {rid: i for i, rid in enumerate(order or [])}
        return sorted(rows, key=lambda r: position.get(r["id"], len(position)))
    if key == "flags":
        return sorted(rows, key=lambda r: (not r["flags"], -float(r["score"])))
    return sorted(rows, key=lambda r: float(r[key] or 0), reverse=best)


def survivors(rows: list[dict]) -> str:
    kept = sum(bool(r["keep"]) for r in rows)
    return f"**{kept:,} of {len(rows):,} rows kept**" if rows else "no rows"


def curated(work: WorkDir, rows: list[dict], limits: Thresholds) -> tuple[list[dict], dict]:
    """The pairs to save (in source order) with the user's edits, and the counts the card reports."""
    pairs = {p["id"]: p for p in work.pairs()}
    unknown = [r["id"] for r in rows if r["id"] not in pairs]
    if unknown:
        raise DataError(f"{len(unknown)} rows of the table are not in generation '{work.name}' (e.g. {unknown[0]})",
                        "open the generation again")
    shown = {r["id"]: r for r in rows}
    kept, counts, count = [], {"below_threshold": 0, "dropped": 0, "edited": 0}, None
    for pid, pair in pairs.items():
        row = shown.get(pid)
        if row is None or not row["keep"]:
            counts["dropped" if limits.passes(pair) else "below_threshold"] += 1
            continue
        instruction = str(row["instruction"] or "").strip()
        edited = instruction != pair["instruction"].strip()
        counts["edited"] += edited
        fixed = {**pair, "instruction": instruction, "edited": edited}
        if edited:  # the flags and length follow the new text; the score stays the generated instruction's
            count = count or _token_counter(work)
            fixed.update(flags(instruction, pair["text"]), instruction_tokens=count(instruction))
        kept.append(fixed)
    mark_repeats(kept)
    return kept, counts


def _token_counter(work: WorkDir):
    """Tokens of the generation's base model (the run's tokenizer), loaded only when an instruction was edited."""
    from workbench.backtranslation.chunks import token_counter
    from workbench.models.load import load_tokenizer

    return token_counter(load_tokenizer(work.summary()["base"]))
