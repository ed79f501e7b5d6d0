"""A canonical preference row under a prompt template: the prompt text the model continues and each answer as
the text that follows it (the trained part), the same rendering SFT and chat use (generation/chat_prompts.py).

TRL's preference trainers take plain prompt / completion strings and score only the completion tokens, so
rendering here keeps the run's template (reverse_instruction, alpaca, chatml, the model's own) in charge.
"""
from __future__ import annotations

import dataclasses

from workbench.generation.chat_prompts import chat_prompt, prompt_fields, response_field
from workbench.prompts import rendering
from workbench.prompts.registry import Template


def _full_text(template: Template, row: dict, answer: str, tokenizer) -> tuple[str, str]:
    """(prompt, completion): the whole exchange rendered, split where the prompt ends."""
    prompt = chat_prompt(template, row.get("history") or [], row["prompt"], tokenizer)
    if template.kind == "instruction":
        # chat_prompt renders past exchanges, then the last prompt (its preface only when it is the first):
        # the same last exchange rendered with the answer replaces that tail.
        ask, say = prompt_fields(template)[0], response_field(template)
        t = template
        if prompt != rendering.prompt_text(template, {ask: row["prompt"], say: None}, tokenizer):
            t = dataclasses.replace(template, preface="")
        tail = rendering.prompt_text(t, {ask: row["prompt"], say: None}, tokenizer)
        last = "".join(text for text, _ in rendering.render(t, {ask: row["prompt"], say: answer}, tokenizer))
        full = prompt[: len(prompt) - len(tail)] + last
    else:
        history = [m for m in row.get("history") or [] if m.get("role") in ("user", "assistant", "system")]
        msgs = [*history, {"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": answer}]
        full = "".join(t for t, _ in rendering.render(template, {"messages": msgs}, tokenizer))
    if full.startswith(prompt):
        return prompt, full[len(prompt):]
    return prompt, answer  # a template that renders the prompt differently alone: the answer as written


def sequences(template: Template, row: dict, tokenizer) -> dict:
    """{prompt, chosen, rejected} (pairs) or {prompt, completion, label} (KTO) as the trainer gets them."""
    out = {}
    for key in ("chosen", "rejected", "completion"):
        if key in row:
            out["prompt"], out[key] = _full_text(template, row, row[key], tokenizer)
    if "label" in row:
        out["label"] = bool(row["label"])
    return out


def truncate(seq: dict, tokenizer, max_prompt: int = 0, max_completion: int = 0, max_length: int = 0) -> dict:
    """Cut the prompt's start and the answers' end to these token counts (0 = no own limit).

    Within max_length the answers keep room: a prompt that would leave them none is cut to what is left after
    the longest answer (at least half of max_length), the old TRL max_prompt_length rule. Without it a long
    prompt fills the sequence, the answers are truncated away and the preference losses turn NaN.
    """
    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    def cut(text: str, n: int, keep_end: bool) -> str:
        tokens = ids(text)
        if not n or len(tokens) <= n:
            return text
        return tokenizer.decode(tokens[-n:] if keep_end else tokens[:n])

    answers = [k for k in ("chosen", "rejected", "completion") if k in seq]
    out = {**seq, **{k: cut(seq[k], max_completion, keep_end=False) for k in answers}}
    prompt_cap = max_prompt
    if max_length:
        longest = max(len(ids(out[k])) for k in answers)
        room = max(max_length - longest, max_length // 2)
        prompt_cap = min(prompt_cap or room, room)
    out["prompt"] = cut(seq["prompt"], prompt_cap, keep_end=True)
    return out


def preview_segments(template: Template, row: dict, tokenizer) -> dict:
    """For the template preview: {answer key: [(text, trained)]} with the prompt masked and the answer trained."""
    seq = sequences(template, row, tokenizer)
    return {key: [(seq["prompt"], False), (seq[key], True)] for key in ("chosen", "rejected", "completion")
            if key in seq}


def preview_html(template: Template, row: dict, tokenizer, max_length: int = 512) -> dict:
    """{answer key: (counts markdown, tokens html)}: each rendered sequence with the trained tokens coloured,
    through the Data tab's own token view (data/preview.py)."""
    from workbench.data.preview import Preview, tokens_html
    from workbench.prompts.rendering import tokenize

    out = {}
    for key, segs in preview_segments(template, row, tokenizer).items():
        enc = tokenize(segs, tokenizer, None)
        p = Preview(segs[0][0], segs[1][0], enc["input_ids"], enc["labels"], int(max_length))
        out[key] = (f"**{key}**: " + p.counts_markdown(), tokens_html(p, tokenizer))
    return out
