"""The loaded model for generation: a base with an optional adapter, its tokenizer and its lock, and the
app-wide cache that keeps at most one such model in memory.

"Compare with base" reuses the same weights through PEFT's `disable_adapter()` instead of loading the base a
second time.
"""
from __future__ import annotations

import gc
import threading
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from workbench.core.errors import ModelError
from workbench.models.resolve import AdapterSource, adapter_tokenizer, check_adapter_base, find_adapter
from workbench.models.resolve import canonical_model


class _EventStop:
    """A stopping criterion that ends generation (every row) once any of the events is set."""

    def __init__(self, events):
        self.events = events

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        done = any(e.is_set() for e in self.events)
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)

@dataclass
class ChatModel:
    """A base model with an optional adapter, its tokenizer, and the lock that serialises generation
    (generation threads share the weights, and disable_adapter() flips state on them)."""
    model: object
    tokenizer: object
    base: str
    adapter: AdapterSource
    lock: threading.Lock = field(default_factory=threading.Lock)
    _stop_criteria: dict = field(default_factory=dict, repr=False)

    @property
    def has_adapter(self) -> bool:
        return self.adapter.path is not None and not self.adapter.full_model

    def base_only(self):
        """Context in which the model runs without its adapter (the plain base model)."""
        return self.model.disable_adapter() if self.has_adapter else nullcontext()

    def stopping(self, stops: list[str], *events: threading.Event):
        """Stopping criteria: the template's stop strings, and any of `events` being set.

        transformers' StopStringCriteria scans the whole vocabulary each time it is built (~0.5 s here,
        even with its own cache, whose key hashes the vocabulary), so it is built once per stop list."""
        from transformers import StoppingCriteriaList
        from transformers.generation.stopping_criteria import StopStringCriteria

        criteria = StoppingCriteriaList()
        if stops:
            key = tuple(stops)
            if key not in self._stop_criteria:
                self._stop_criteria[key] = StopStringCriteria(self.tokenizer, list(stops))
            criteria.append(self._stop_criteria[key])
        if events:
            criteria.append(_EventStop(events))
        return criteria

    def describe(self) -> str:
        if self.adapter.full_model:
            return f"full fine-tune {self.adapter.path}"
        if self.has_adapter:
            return f"{canonical_model(self.base)} + adapter {self.adapter.path}"
        return f"{canonical_model(self.base)} (no adapter)"

def load_chat_model(base: str, adapter: str | Path | None = None, quantization: str = "none") -> ChatModel:
    """Load base (+ adapter) for inference. The adapter folder's tokenizer wins: it is the one trained with."""
    from workbench.models.load import load_model

    source = find_adapter(adapter)
    base = (base or "").strip() or source.base or "default"
    if source.full_model:
        base = str(source.path)
    check_adapter_base(source, base)
    loaded = load_model(base, quantization=quantization)
    model, tok = loaded.model, loaded.tokenizer
    if source.path is not None and not source.full_model:
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, str(source.path))
        except (RuntimeError, ValueError) as e:  # size mismatch and the like, with the first line kept
            raise ModelError(f"the adapter does not fit {canonical_model(base)}: {str(e).splitlines()[0][:300]}") \
                from None
        tok = adapter_tokenizer(source.path) or tok
    model.eval()
    return ChatModel(model, tok, base, source)

class ModelCache:
    """Keeps at most one base (+ adapter) in memory; asking for another releases the current one first."""

    def __init__(self):
        self._lock = threading.Lock()
        self._key: tuple | None = None
        self._model: ChatModel | None = None

    def get(self, base: str, adapter: str | Path | None = None, quantization: str = "none") -> ChatModel:
        source = find_adapter(adapter)  # fail fast (and cheaply) on a bad choice, before any release
        base = (base or "").strip() or source.base or "default"
        key = (canonical_model(str(source.path) if source.full_model else base),
               str(source.path.resolve()) if source.path else None, _mtime(source.path), quantization)
        with self._lock:
            if self._key == key and self._model is not None:
                return self._model
            check_adapter_base(source, base)
            self.release()
            self._model = load_chat_model(base, adapter, quantization)
            self._key = key
            return self._model

    def current(self) -> ChatModel | None:
        return self._model

    def release(self) -> None:
        """Drop the cached model so its memory can be reclaimed (a running generation keeps its own ref)."""
        self._model, self._key = None, None
        gc.collect()
        try:
            import torch

            if torch.cuda.is_available():
                torch.cuda.empty_cache()
        except ImportError:
            pass

def _mtime(folder: Path | None) -> float | None:
    """When the weights in a folder last changed: a resumed run rewrites its adapter in place."""
    if folder is None:
        return None
    files = list(folder.glob("*.safetensors")) or list(folder.glob("*.bin"))
    return max((f.stat().st_mtime for f in files), default=None)

CACHE = ModelCache()  # shared by the UI tabs: one model in memory for the whole app
