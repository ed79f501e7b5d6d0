"""How a reply is decoded: generation settings as transformers takes them, and stop strings (cut, and held
back while streaming until they resolve); generate_batch() decodes many prompts in left-padded batches of
similar length (evaluation, the judge, dataset generation), results in input order."""
from __future__ import annotations

from contextlib import nullcontext
from typing import TYPE_CHECKING, Callable

from workbench.config.decoding import GenerationConfig
from workbench.prompts.registry import Template

if TYPE_CHECKING:  # the type only: the loader stays out of what serve and chat import from here
    from workbench.generation.chat_model import ChatModel


def settings_from(**values) -> GenerationConfig:
    """A GenerationConfig from UI / API values (None = the default), checked against its ranges."""
    return GenerationConfig().with_values(**{k: v for k, v in values.items() if v is not None}).validate()

def generate_kwargs(settings: GenerationConfig, tokenizer) -> dict:
    kw = dict(max_new_tokens=int(settings.max_new_tokens), do_sample=bool(settings.do_sample),
              repetition_penalty=float(settings.repetition_penalty), eos_token_id=tokenizer.eos_token_id,
              pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
    if settings.do_sample:
        kw.update(temperature=float(settings.temperature), top_p=float(settings.top_p), top_k=int(settings.top_k))
    else:  # greedy: keep sampling knobs out so transformers does not warn they are unused
        kw.update(temperature=None, top_p=None, top_k=None)
    return kw

def stop_strings(template: Template, tokenizer) -> list[str]:
    stops = [s for s in template.stop if s]
    eos = getattr(tokenizer, "eos_token", None)
    return [s for s in stops if s != eos]  # EOS is stopped on by id; decoded text skips it anyway

def cut_at_stop(text: str, stops: list[str]) -> str:
    """The reply without the stop string (and anything after it) the model may have produced."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:cut]

def held_back(text: str, stops: list[str]) -> int:
    """How many trailing characters could be the start of a stop string (not shown until resolved)."""
    return max((n for s in stops for n in range(min(len(s) - 1, len(text)), 0, -1) if text.endswith(s[:n])),
               default=0)


class ReplyText:
    """One reply's text as its tokens arrive, for every path that decodes (the Chat tab's stream, batch
    generation, serve): the new text of each step, text that could be the start of a stop string held back
    until it resolves, and the reply cut at the first stop. Linear in the reply's length: each step decodes
    only a short window of tokens (the last emitted piece and the new ones, so byte-level pieces of one
    character and the tokenizer's spacing rules see their context) and searches for stops only in the text
    not yet shown, which is never longer than the longest stop plus one piece."""

    def __init__(self, tokenizer, stops: list[str]):
        self.tokenizer, self.stops = tokenizer, [s for s in stops if s]
        self.ids: list[int] = []
        self._prefix = 0  # window start: the piece emitted last, decoded again as context
        self._read = 0  # tokens already turned into text
        self._pending = ""  # decoded, not shown yet: a possible start of a stop string
        self._shown: list[str] = []
        self.stopped = False  # a stop string arrived: the reply is complete

    @property
    def text(self) -> str:
        """The reply shown so far (the whole reply after `close`)."""
        return "".join(self._shown)

    def add(self, ids) -> str:
        """Take new token ids (one step's, or a whole reply's at once); return the text that became visible."""
        if self.stopped:
            return ""
        self.ids.extend(int(i) for i in ids)
        decode = self.tokenizer.decode
        before = decode(self.ids[self._prefix:self._read], skip_special_tokens=True)
        now = decode(self.ids[self._prefix:], skip_special_tokens=True)
        if len(now) <= len(before) or now.endswith("\ufffd"):
            return ""  # nothing new, or a character whose bytes have not all arrived
        self._prefix, self._read = self._read, len(self.ids)
        return self._feed(now[len(before):], final=False)

    def close(self) -> str:
        """No more tokens: the rest (held-back text that never became a stop, an incomplete character)."""
        if self.stopped:
            return ""
        rest = self.tokenizer.decode(self.ids[self._prefix:], skip_special_tokens=True)
        before = self.tokenizer.decode(self.ids[self._prefix:self._read], skip_special_tokens=True)
        self._prefix = self._read = len(self.ids)
        return self._feed(rest[len(before):] if rest.startswith(before) else "", final=True)

    def _feed(self, new: str, final: bool) -> str:
        pending = self._pending + new
        cut = min((i for i in (pending.find(s) for s in self.stops) if i >= 0), default=-1)
        if cut >= 0:
            self.stopped, shown, self._pending = True, pending[:cut], ""
        else:
            keep = 0 if final else held_back(pending, self.stops)
            shown, self._pending = pending[:len(pending) - keep], pending[len(pending) - keep:]
        if shown:
            self._shown.append(shown)
        return shown


def reply_text(tokenizer, ids, stops: list[str]) -> str:
    """A finished reply's text from its token ids, cut at the first stop string (batch generation)."""
    reply = ReplyText(tokenizer, stops)
    reply.add(ids)
    reply.close()
    return reply.text



def generate_batch(cm: ChatModel, prompts: list[str], settings: GenerationConfig, template: Template,
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
