"""Batched generation for many prompts (evaluation, and later dataset generation): left-padded batches of
similar length, results in input order."""
from __future__ import annotations

from contextlib import nullcontext
from typing import Callable

from workbench.config.decoding import GenerationConfig
from workbench.generation.chat_model import ChatModel
from workbench.generation.decoding import generate_kwargs, reply_text, stop_strings
from workbench.prompts import schema


def generate_batch(cm: ChatModel, prompts: list[str], settings: GenerationConfig, template: schema.Template,
                   batch_size: int = 8, use_adapter: bool = True,
                   progress: Callable[[int, int], None] | None = None) -> list[str]:
    """Generate for many prompts, `batch_size` at a time, left-padded so every row's new tokens start at
    the same position. Prompts are grouped by length (less padding), results come back in input order."""
    import torch

    tok = cm.tokenizer
    stops = stop_strings(template, tok)
    kwargs = dict(generate_kwargs(settings, tok), stopping_criteria=cm.stopping(stops))
    order = sorted(range(len(prompts)), key=lambda i: len(prompts[i]))
    out: list[str] = [""] * len(prompts)
    done = 0
    batch_size = max(1, int(batch_size))
    with cm.lock, (nullcontext() if use_adapter else cm.base_only()), torch.inference_mode():
        if settings.do_sample:
            torch.manual_seed(int(settings.seed))
        for start in range(0, len(order), batch_size):
            idx = order[start:start + batch_size]
            enc = tok([prompts[i] for i in idx], return_tensors="pt", padding=True, padding_side="left",
                      add_special_tokens=False).to(cm.model.device)
            gen = cm.model.generate(**enc, **kwargs)
            new = gen[:, enc["input_ids"].shape[1]:]
            for i, ids in zip(idx, new):
                out[i] = reply_text(tok, ids.tolist(), stops).strip()
            done += len(idx)
            if progress:
                progress(done, len(prompts))
    return out
