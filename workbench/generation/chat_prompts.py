"""From a conversation (or a dataset row) to the text a model continues, under a run's prompt template; and
which row fields a user types for that template."""
from __future__ import annotations

import dataclasses

from workbench.models.resolve import AdapterSource
from workbench.prompts import registry, rendering


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
