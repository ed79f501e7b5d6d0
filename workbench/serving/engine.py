"""One batched generate call for many requests' rows: left-padded prompts, each row with its own token
budget, stop strings and cancel flag, its text handed out as it grows. A per-row stopping criterion does the
bookkeeping (transformers calls it once per step, with every row's new token), so rows never mix: each
row's deltas come only from its own column of the batch."""
from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from workbench.config.decoding import GenerationConfig
from workbench.generation.decoding import ReplyText, generate_kwargs

Sink = Callable[[str, str | None, int], None]  # (delta text, finish reason or None, completion tokens so far)


@dataclass
class Row:
    prompt: str
    max_tokens: int
    stops: list[str]
    sink: Sink
    cancelled: threading.Event = field(default_factory=threading.Event)
    reply: ReplyText | None = None
    finish: str | None = None

    @property
    def done(self) -> bool:
        return self.finish is not None

    @property
    def tokens(self) -> int:
        return len(self.reply.ids) if self.reply is not None else 0

    def push(self, token: int, tokenizer, eos: set[int]) -> None:
        """Take this row's next token: emit what became visible; end the row at EOS, a stop string, its
        budget, or when its client went away."""
        if self.reply is None:
            self.reply = ReplyText(tokenizer, self.stops)
        if self.cancelled.is_set():
            return self.end("cancelled")
        if token in eos:
            return self.end("stop", self.reply.close())
        delta = self.reply.add([token])
        if self.reply.stopped:
            return self.end("stop", delta)
        if self.tokens >= self.max_tokens:
            return self.end("length", delta + self.reply.close())
        if delta:
            self.sink(delta, None, self.tokens)

    def end(self, reason: str, delta: str = "") -> None:
        if self.done:
            return
        self.finish = reason
        self.sink(delta, reason, self.tokens)


class _RowCriteria:
    """Stopping criterion that routes each step's new tokens to their rows; a row is done once it ended."""

    def __init__(self, rows: list[Row], tokenizer, eos: set[int]):
        self.rows, self.tokenizer, self.eos = rows, tokenizer, eos

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        for row, token in zip(self.rows, input_ids[:, -1].tolist()):
            if not row.done:
                row.push(int(token), self.tokenizer, self.eos)
        return torch.tensor([r.done for r in self.rows], dtype=torch.bool, device=input_ids.device)


def eos_ids(tokenizer) -> set[int]:
    eos = tokenizer.eos_token_id
    return set(eos if isinstance(eos, list) else [eos]) - {None}


def generate_rows(model, tokenizer, rows: list[Row], settings: GenerationConfig) -> None:
    """Generate every row in one call (the caller holds the model's lock and chose the adapter). The longest
    budget bounds the call; shorter rows stop at theirs (finished rows get padding, never output)."""
    import torch
    from transformers import StoppingCriteriaList

    live = [r for r in rows if not r.cancelled.is_set()]
    for r in rows:
        if r.cancelled.is_set():
            r.end("cancelled")
    if not live:
        return
    eos = eos_ids(tokenizer)
    enc = tokenizer([r.prompt for r in live], return_tensors="pt", padding=True, padding_side="left",
                    add_special_tokens=False).to(model.device)
    kwargs = generate_kwargs(settings.with_values(max_new_tokens=max(r.max_tokens for r in live)), tokenizer)
    criteria = StoppingCriteriaList([_RowCriteria(live, tokenizer, eos)])
    with torch.inference_mode():
        if settings.do_sample:
            torch.manual_seed(int(settings.seed))
        model.generate(**enc, **kwargs, stopping_criteria=criteria)
    for r in live:  # every row ends inside the loop; this only covers a model that stopped on its own
        if not r.done:
            r.end("length" if r.tokens >= r.max_tokens else "stop", r.reply.close() if r.reply else "")
