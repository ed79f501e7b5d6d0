"""Concurrent requests become batches: the first request waits a few milliseconds for others to join,
then every waiting row with the same model and sampling settings is generated in one call (engine.py).
One thread loads the models and generates, so requests queue behind a running batch and never interleave
inside one output. At most `max_queue` requests wait; one more is refused (the server answers 429)."""
from __future__ import annotations

import logging
import queue
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from workbench.config.decoding import GenerationConfig
from workbench.serving.engine import Row, generate_rows
from workbench.serving.registry import ModelRegistry, Served

log = logging.getLogger(__name__)


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
