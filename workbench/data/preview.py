"""What the model is trained on for one row: rendered prompt and target, token counts, and the token
sequence with trained and masked tokens told apart (labels exactly as training builds them)."""
from __future__ import annotations

import functools
import html
from dataclasses import dataclass
from pathlib import Path

from workbench.prompts import rendering
from workbench.prompts.rendering import IGNORE_INDEX

TRAINED_COLOR = "#c8f7c5"  # green: the loss is computed on these tokens
MASKED_COLOR = "#e4e7ec"  # grey: context only (label -100)
CUT_COLOR = "#f9c6c6"  # red: past max_length, dropped


def tokenizer_for(model: str = "default", confined: bool = True):
    """The tokenizer of a model name ('default', a local folder or a cached hub id), loaded once.
    A folder path typed in the UI must lie under the allowed folders (paths.confine), as everywhere."""
    model = (model or "").strip() or "default"
    if confined and (model.startswith((".", "/", "~")) or Path(model).expanduser().is_dir()):
        from workbench.core.paths import confine

        model = str(confine(model))
    return _load_tokenizer(model)


@functools.lru_cache(maxsize=2)
def _load_tokenizer(model: str):
    from workbench.models.load import load_tokenizer

    return load_tokenizer(model)


@dataclass
class Preview:
    prompt: str  # the text the model is given (everything before the trained response)
    target: str  # the trained text (responses, with the end-of-turn tokens the template trains)
    input_ids: list  # all tokens, before truncation
    labels: list  # -100 where masked, before truncation
    max_length: int

    @property
    def total(self) -> int:
        return len(self.input_ids)

    @property
    def prompt_tokens(self) -> int:
        return sum(1 for x in self.labels if x == IGNORE_INDEX)

    @property
    def target_tokens(self) -> int:
        return self.total - self.prompt_tokens

    @property
    def cut(self) -> int:
        return max(0, self.total - self.max_length)

    @property
    def trained_tokens_lost(self) -> int:
        return sum(1 for x in self.labels[self.max_length:] if x != IGNORE_INDEX)

    def counts_markdown(self) -> str:
        text = (f"**{self.prompt_tokens:,}** prompt (masked) + **{self.target_tokens:,}** target (trained) = "
                f"**{self.total:,}** tokens of max_length {self.max_length:,}")
        if not self.cut:
            return text
        lost = self.trained_tokens_lost
        if not lost:
            effect = "only masked (prompt) tokens are lost."
        elif lost == self.target_tokens:
            effect = f"{lost:,} of them trained: the row trains on nothing."
        else:
            effect = f"{lost:,} of them trained: the end of the answer is never learned."
        return (f"{text}  \n⚠️ **Truncated**: the last {self.cut:,} tokens are cut; {effect} "
                "Raise data.max_length or shorten the row.")


def preview(template, row: dict, tokenizer, max_length: int = 512, train_on: str = "responses") -> Preview:
    segs = rendering.render(template, row, tokenizer, train_on)
    enc = rendering.tokenize(segs, tokenizer, None)
    prompt = rendering.prompt_text(template, row, tokenizer)
    target = "".join(t for t, trained in segs if trained)
    return Preview(prompt, target, enc["input_ids"], enc["labels"], int(max_length))


def tokens_html(p: Preview, tokenizer) -> str:
    """Each token as a span coloured trained / masked / cut, with a legend. Token text is escaped."""
    def span(i, tok_id, label):
        color = CUT_COLOR if i >= p.max_length else MASKED_COLOR if label == IGNORE_INDEX else TRAINED_COLOR
        text = tokenizer.decode([tok_id])
        shown = html.escape(text).replace("\n", "↵<br>") or "∅"
        state = "cut" if i >= p.max_length else "masked" if label == IGNORE_INDEX else "trained"
        return (f'<span class="tok tok-{state}" title="#{i} id {tok_id} · {state}" style="background:{color};'
                f'border-radius:3px;padding:0 1px;margin:0 1px 1px 0;white-space:pre-wrap;'
                f'font-family:monospace;color:#111">{shown}</span>')

    legend = (f'<div style="margin-bottom:6px;font-size:0.9em">'
              f'<span style="background:{TRAINED_COLOR};padding:0 6px;color:#111">trained</span> '
              'loss on these tokens · '
              f'<span style="background:{MASKED_COLOR};padding:0 6px;color:#111">masked</span> label -100'
              + (f' · <span style="background:{CUT_COLOR};padding:0 6px;color:#111">cut</span> past max_length'
                 if p.cut else "") + "</div>")
    body = "".join(span(i, t, lab) for i, (t, lab) in enumerate(zip(p.input_ids, p.labels)))
    return f'<div class="token-preview" style="line-height:1.7">{legend}<div>{body}</div></div>'
