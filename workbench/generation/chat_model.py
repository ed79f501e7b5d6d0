"""The loaded model for generation: a base with an optional adapter, its tokenizer and its lock, and the
app-wide cache that keeps at most one such model in memory.

"Compare with base" reuses the same weights through PEFT's `disable_adapter()` instead of loading the base a
second time.

Beside the model, the text it continues: from a conversation (or a dataset row) under a run's prompt template,
and which row fields a user types for that template.
"""
from __future__ import annotations

import dataclasses
import gc
import threading
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

from workbench.core.errors import ModelError
from workbench.models.resolve import AdapterSource, adapter_tokenizer, check_adapter_base, find_adapter
from workbench.models.resolve import canonical_model
from workbench.prompts import registry, rendering


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


# The text the model continues, under a run's template.

def template_for(source: AdapterSource, choice: str = "auto") -> registry.Template:
    """'auto': the run's template when the adapter comes from a run, else the model's chat template."""
    name = choice if choice and choice != "auto" else (source.template or "model")
    return registry.load(name)

def prompt_fields(template: registry.Template) -> list[str]:
    """Row fields that the prompt shows and the response does not: what a user types in chat, and the
    'input' column of an evaluation (for reverse_instruction that is the response text)."""
    used = lambda text: [m.group(1) for m in registry.PLACEHOLDER.finditer(text)]  # noqa: E731
    answer = set(used(template.response))
    seen: list[str] = []
    for f in used(template.prompt) + used(template.prompt_no_input):
        if f not in answer and f not in seen and f in ("instruction", "input", "output"):
            seen.append(f)
    return seen or ["instruction"]

def response_field(template: registry.Template) -> str:
    found = [m.group(1) for m in registry.PLACEHOLDER.finditer(template.response)]
    return found[0] if found else "output"

def row_input(template: registry.Template, row: dict) -> str:
    """The variable part of the prompt for a row: what a reader needs to judge the generated text."""
    if template.kind == "instruction" and not row.get("messages"):
        return "\n\n".join(str(row.get(f) or "") for f in prompt_fields(template) if row.get(f))
    msgs = [m for m in rendering.row_messages(row) if m["role"] == "user"]
    return msgs[-1]["content"] if msgs else ""

def chat_prompt(template: registry.Template, history: list[dict], message: str, tokenizer) -> str:
    """The text the model continues for `message` after `history` ([{role, content}] turns)."""
    turns = [m for m in history if m.get("role") in ("user", "assistant", "system")]
    if template.kind != "instruction":
        row = {"messages": [*turns, {"role": "user", "content": message}]}
        return rendering.prompt_text(template, row, tokenizer)
    # Instruction templates describe one exchange; each past exchange is rendered in full, then the new
    # prompt. The user's text goes to the field the prompt shows (output for reverse_instruction).
    user_field, answer_field = prompt_fields(template)[0], response_field(template)
    parts, pending = [], None
    for m in turns:
        if m["role"] == "user":
            pending = m["content"]
        elif m["role"] == "assistant" and pending is not None:
            t = template if not parts else dataclasses.replace(template, preface="")
            row = {user_field: pending, answer_field: m["content"]}
            parts.append("".join(text for text, _ in rendering.render(t, row, tokenizer)))
            pending = None
    t = template if not parts else dataclasses.replace(template, preface="")
    parts.append(rendering.prompt_text(t, {user_field: message, answer_field: None}, tokenizer))
    return "".join(parts)

def message_text(content) -> str:
    """Chatbot message content as plain text (Gradio 6 gives a list of {type: text, text} parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return str(content.get("text") or "")
    if isinstance(content, (list, tuple)):
        return "".join(message_text(c) for c in content)
    return "" if content is None else str(content)
