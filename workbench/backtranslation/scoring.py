"""Scores a user can curate pairs on.

The back-translation score asks the forward question: given the generated instruction, how likely is the
original text under the base model (adapter off)? It is the mean log-likelihood of the text's tokens under
the Alpaca prompt, reported as 100·exp(mean), the geometric mean of the tokens' probabilities, on 0-100 like
the judge's scores. Flags mark instructions that are empty, copy the text, or repeat across rows.
"""
from __future__ import annotations

import math
import re
from collections import Counter

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
