"""Generation with a base model and (optionally) a trained adapter: streaming chat and batched generation.

One `ModelCache` keeps at most one base model (+ adapter) in memory and frees it when another is asked
for. "Compare with base" reuses the same weights through PEFT's `disable_adapter()` instead of loading
the base a second time. No gradio here: the UI, the CLI and the benchmarks call the same functions.
"""
from __future__ import annotations

import dataclasses
import gc
import threading
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from workbench.prompts import registry, rendering, schema
from workbench.config.generation import GenerationConfig
from workbench.core.errors import ModelError
from workbench.models.adapters import AdapterSource, adapter_tokenizer, check_adapter_base, find_adapter
from workbench.models.resolve import canonical_model

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


# -- prompts ------------------------------------------------------------------------------------------

def template_for(source: AdapterSource, choice: str = "auto") -> schema.Template:
    """'auto': the run's template when the adapter comes from a run, else the model's chat template."""
    name = choice if choice and choice != "auto" else (source.template or "model")
    return registry.load(name)


def prompt_fields(template: schema.Template) -> list[str]:
    """Row fields that the prompt shows and the response does not: what a user types in chat, and the
    'input' column of an evaluation (for reverse_instruction that is the response text)."""
    used = lambda text: [m.group(1) for m in schema.PLACEHOLDER.finditer(text)]  # noqa: E731
    answer = set(used(template.response))
    seen: list[str] = []
    for f in used(template.prompt) + used(template.prompt_no_input):
        if f not in answer and f not in seen and f in ("instruction", "input", "output"):
            seen.append(f)
    return seen or ["instruction"]


def response_field(template: schema.Template) -> str:
    found = [m.group(1) for m in schema.PLACEHOLDER.finditer(template.response)]
    return found[0] if found else "output"


def row_input(template: schema.Template, row: dict) -> str:
    """The variable part of the prompt for a row: what a reader needs to judge the generated text."""
    if template.kind == "instruction" and not row.get("messages"):
        return "\n\n".join(str(row.get(f) or "") for f in prompt_fields(template) if row.get(f))
    msgs = [m for m in rendering.row_messages(row) if m["role"] == "user"]
    return msgs[-1]["content"] if msgs else ""


def chat_prompt(template: schema.Template, history: list[dict], message: str, tokenizer) -> str:
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


# -- generation ---------------------------------------------------------------------------------------

def stop_strings(template: schema.Template, tokenizer) -> list[str]:
    stops = [s for s in template.stop if s]
    eos = getattr(tokenizer, "eos_token", None)
    return [s for s in stops if s != eos]  # EOS is stopped on by id; decoded text skips it anyway


def cut_at_stop(text: str, stops: list[str]) -> str:
    """The reply without the stop string (and anything after it) the model may have produced."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:cut]


def _held_back(text: str, stops: list[str]) -> int:
    """How many trailing characters could be the start of a stop string (not shown until resolved)."""
    return max((n for s in stops for n in range(min(len(s) - 1, len(text)), 0, -1) if text.endswith(s[:n])),
               default=0)


def generate_kwargs(settings: GenerationConfig, tokenizer) -> dict:
    kw = dict(max_new_tokens=int(settings.max_new_tokens), do_sample=bool(settings.do_sample),
              repetition_penalty=float(settings.repetition_penalty), eos_token_id=tokenizer.eos_token_id,
              pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
    if settings.do_sample:
        kw.update(temperature=float(settings.temperature), top_p=float(settings.top_p), top_k=int(settings.top_k))
    else:  # greedy: keep sampling knobs out so transformers does not warn they are unused
        kw.update(temperature=None, top_p=None, top_k=None)
    return kw


class _EventStop:
    """A stopping criterion that ends generation (every row) once any of the events is set."""

    def __init__(self, events):
        self.events = events

    def __call__(self, input_ids, scores, **kwargs):
        import torch

        done = any(e.is_set() for e in self.events)
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)


def settings_from(**values) -> GenerationConfig:
    """A GenerationConfig from UI / API values (None = the default), checked against its ranges."""
    return GenerationConfig().with_values(**{k: v for k, v in values.items() if v is not None}).validate()


def stream_reply(cm: ChatModel, prompt: str, settings: GenerationConfig, template: schema.Template,
                 stop: threading.Event | None = None, use_adapter: bool = True) -> Iterator[str]:
    """Yield the reply as it grows. Generation runs in a thread feeding a TextIteratorStreamer; setting
    `stop` (the user's Stop) or closing this generator (a cancelled request) ends that thread at the
    next token. `stop` is only read here, so after the call it still tells whether the user stopped."""
    import torch
    from transformers import TextIteratorStreamer

    stop = stop or threading.Event()
    finished = threading.Event()  # set when this reader is done, for whatever reason
    tok = cm.tokenizer
    stops = stop_strings(template, tok)
    inputs = tok(prompt, return_tensors="pt", add_special_tokens=False).to(cm.model.device)
    streamer = TextIteratorStreamer(tok, skip_prompt=True, skip_special_tokens=True, timeout=600)
    kwargs = dict(**inputs, **generate_kwargs(settings, tok), streamer=streamer,
                  stopping_criteria=cm.stopping(stops, stop, finished))
    errors: list[BaseException] = []

    def work():
        try:
            with cm.lock, (nullcontext() if use_adapter else cm.base_only()), torch.inference_mode():
                if settings.do_sample:
                    torch.manual_seed(int(settings.seed))
                cm.model.generate(**kwargs)
        except BaseException as e:  # surfaced to the reader below instead of dying silently in the thread
            errors.append(e)
            streamer.on_finalized_text("", stream_end=True)

    thread = threading.Thread(target=work, daemon=True, name="workbench-generate")
    thread.start()
    text, shown = "", ""
    try:
        for piece in streamer:
            text += piece
            visible = cut_at_stop(text, stops)
            if len(visible) < len(text):  # a stop string arrived: the reply is complete
                finished.set()
                shown = visible
                yield shown
                break
            visible = visible[:len(visible) - _held_back(visible, stops)]
            if visible != shown:
                shown = visible
                yield shown
        else:
            final = cut_at_stop(text, stops)
            if final != shown:
                yield final
    finally:
        finished.set()  # also reached when the consumer is cancelled: the thread stops at the next token
    thread.join(timeout=60)
    if errors:
        raise errors[0]


def chat_stream(cm: ChatModel, history: list[dict], message: str, settings: GenerationConfig,
                template: schema.Template, stop: threading.Event | None = None,
                use_adapter: bool = True) -> Iterator[str]:
    turns = [{"role": m["role"], "content": message_text(m.get("content"))} for m in history or []]
    prompt = chat_prompt(template, turns, message, cm.tokenizer)
    yield from stream_reply(cm, prompt, settings, template, stop, use_adapter)


def chat_once(cm: ChatModel, history: list[dict], message: str, settings: GenerationConfig,
              template: schema.Template, use_adapter: bool = True) -> str:
    reply = ""
    for reply in chat_stream(cm, history, message, settings, template, use_adapter=use_adapter):
        pass
    return reply


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
                out[i] = cut_at_stop(tok.decode(ids, skip_special_tokens=True), stops).strip()
            done += len(idx)
            if progress:
                progress(done, len(prompts))
    return out

