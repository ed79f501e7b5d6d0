"""Concurrent requests become batches: the first request waits a few milliseconds for others to join,
then every waiting row with the same model and sampling settings is generated in one call (generate_rows).
One thread loads the models and generates, so requests queue behind a running batch and never interleave
inside one output. At most `max_queue` requests wait; one more is refused (the server answers 429).

The one call: left-padded prompts, each row with its own token budget, stop strings and cancel flag, its text
handed out as it grows. A per-row stopping criterion does the bookkeeping (transformers calls it once per step,
with every row's new token), so rows never mix: each row's deltas come only from its own column of the batch."""
from __future__ import annotations

import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from workbench.config.decoding import GenerationConfig
from workbench.generation.decoding import ReplyText, generate_kwargs
from workbench.serving.registry import ModelRegistry, Served

log = logging.getLogger(__name__)
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




@dataclass
class Pending:
    served: Served
    rows: list[Row]
    settings: GenerationConfig
    seeded: bool = True  # False: a sampled request that gave no seed gets a fresh one (per generate call)

    def key(self) -> tuple:
        s = self.settings
        sampling = (s.temperature, s.top_p, s.top_k, s.seed if self.seeded else None) if s.do_sample else ()
        return self.served.name, s.do_sample, s.repetition_penalty, sampling


class QueueFull(Exception):
    """More requests are waiting than the server was started to hold."""


class Batcher:
    """`load` runs on the batcher's own thread, which then does every forward pass of the served model.
    Why one thread: torch's CPU ops run on an OpenMP team kept per calling thread, and while two teams are
    alive on a machine with few cores (say the loader's and the generator's), libgomp stops spin-waiting and
    every op waits for its sleeping workers: a batch of 8 took 1.6x longer per token (benchmarks/NOTES.md)."""

    def __init__(self, load: Callable[[], ModelRegistry], max_batch: int, wait_ms: int, max_queue: int = 64):
        self.max_batch, self.wait_s = max(1, int(max_batch)), max(0, wait_ms) / 1000
        self.max_queue = max(1, int(max_queue))
        self._count = threading.Lock()
        self.waiting = 0  # requests submitted and not yet taken into a batch
        self.cancelled = 0  # rows that ended because their client went away (the tests read it)
        self._queue: queue.Queue[Pending | None] = queue.Queue()
        self._held: list[Pending] = []  # collected but of another model or settings: first in the next round
        self.batches = 0  # generate calls made (the benchmark and the tests read it)
        self.registry: ModelRegistry
        loaded: queue.Queue[BaseException | None] = queue.Queue(maxsize=1)
        self._thread = threading.Thread(target=self._main, args=(load, loaded), name="workbench-serve-batcher",
                                        daemon=True)
        self._thread.start()
        failure = loaded.get()
        if failure is not None:
            raise failure  # the load's own error (ModelError, RunError, ...), raised in the caller's thread

    def _main(self, load: Callable[[], ModelRegistry], loaded: queue.Queue) -> None:
        try:
            self.registry = load()
        except BaseException as e:  # handed to the constructor, which raises it
            loaded.put(e)
            return
        loaded.put(None)
        self._loop()

    def submit(self, pending: Pending) -> None:
        """Queue a request, or raise QueueFull when `max_queue` are already waiting."""
        with self._count:
            if self.waiting >= self.max_queue:
                raise QueueFull(self.waiting)
            self.waiting += 1
        self._queue.put(pending)

    def _taken(self, pending: Pending) -> Pending:
        with self._count:
            self.waiting -= 1
        return pending

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=30)

    def _collect(self) -> list[Pending] | None:
        waiting = self._held or []
        self._held = []
        if not waiting:
            first = self._queue.get()
            if first is None:
                return None
            waiting = [self._taken(first)]
        deadline = time.monotonic() + self.wait_s
        while sum(len(p.rows) for p in waiting) < self.max_batch:
            left = deadline - time.monotonic()
            try:
                item = self._queue.get(timeout=left) if left > 0 else self._queue.get_nowait()
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # seen again once this round is done
                break
            waiting.append(self._taken(item))
        return waiting

    def _loop(self) -> None:
        while (waiting := self._collect()) is not None:
            key = waiting[0].key()
            group = [p for p in waiting if p.key() == key]
            self._held = [p for p in waiting if p.key() != key]
            rows = [r for p in group for r in p.rows]
            for start in range(0, len(rows), self.max_batch):
                self._run(group[0], rows[start:start + self.max_batch])

    def _run(self, first: Pending, rows: list[Row]) -> None:
        cm = self.registry.cm
        settings = first.settings
        if settings.do_sample and not first.seeded:  # no request's seed to repeat: a fresh one per call
            settings = settings.with_values(seed=secrets.randbits(31))
        try:
            with cm.lock, self.registry.activate(first.served):
                self.batches += 1
                generate_rows(cm.model, cm.tokenizer, rows, settings)
            self.cancelled += sum(r.finish == "cancelled" for r in rows)
        except Exception:
            log.exception("generation failed for a batch of %d rows", len(rows))
            for r in rows:
                r.end("error")
