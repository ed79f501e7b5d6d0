"""Segments → input_ids + labels, with IGNORE_INDEX (-100) on every token that carries no loss."""
from __future__ import annotations

from workbench.prompts.rendering import Segments, render
from workbench.prompts.schema import Template

IGNORE_INDEX = -100  # labels value the loss skips (PyTorch CrossEntropyLoss default)


def tokenize(segs: Segments, tokenizer, max_length: int | None = None) -> dict:
    """input_ids + labels (-100 where not trained). Labels are NOT shifted: the model shifts them.

    Each segment is tokenized on its own so the trained/masked boundary falls exactly between
    segments; a BOS is prepended when the tokenizer would add one by itself and the text lacks it.
    """
    ids: list[int] = []
    labels: list[int] = []
    bos_id = getattr(tokenizer, "bos_token_id", None)
    if bos_id is not None and _adds_bos(tokenizer) and not (segs and segs[0][0].startswith(tokenizer.bos_token)):
        ids.append(bos_id)
        labels.append(IGNORE_INDEX)
    for text, trainable in segs:
        piece = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids += piece
        labels += piece if trainable else [IGNORE_INDEX] * len(piece)
    if max_length is not None:
        ids, labels = ids[:max_length], labels[:max_length]
    return {"input_ids": ids, "labels": labels}

def _adds_bos(tokenizer) -> bool:
    ids = tokenizer("a")["input_ids"]
    return bool(ids) and ids[0] == tokenizer.bos_token_id

def encode_row(template: Template, row: dict, tokenizer, max_length: int | None = None,
               train_on: str = "responses") -> dict:
    return tokenize(render(template, row, tokenizer, train_on), tokenizer, max_length)
