"""Rendering a row with a template into segments [(text, trainable)]: the exact text the model sees and
which parts of it carry the loss; also the prompt a model continues and the row's ground-truth response.
Then segments → input_ids + labels, with IGNORE_INDEX (-100) on every token that carries no loss."""
from __future__ import annotations

from workbench.core.errors import TemplateError
from workbench.prompts.registry import PLACEHOLDER, Template

Segments = list[tuple[str, bool]]
IGNORE_INDEX = -100  # labels value the loss skips (PyTorch CrossEntropyLoss default)


def row_messages(row: dict) -> list[dict]:
    """A canonical row (instruction/input/output or messages) as a list of {role, content}."""
    if row.get("messages"):
        return [{"role": m["role"], "content": m["content"]} for m in row["messages"]]
    user = row.get("instruction", "") or ""
    if row.get("input"):
        user = f"{user}\n\n{row['input']}" if user else row["input"]
    msgs = [{"role": "user", "content": user}]
    if row.get("output") is not None:
        msgs.append({"role": "assistant", "content": row.get("output", "")})
    return msgs

def _row_pairs(row: dict) -> tuple[str, list[dict]]:
    """(system, [{instruction, input, output}]) of a row, for instruction templates."""
    if not row.get("messages"):
        return row.get("system", "") or "", [row]
    system, pairs, pending = "", [], None
    for m in row["messages"]:
        if m["role"] == "system":
            system = m["content"]
        elif m["role"] == "user":
            pending = {"instruction": m["content"], "input": ""}
        elif m["role"] == "assistant":
            pairs.append({**(pending or {"instruction": "", "input": ""}), "output": m["content"]})
            pending = None
    if pending is not None:
        pairs.append({**pending, "output": None})
    return system, pairs

def _fill(text: str, values: dict) -> str:
    return PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), "") or ""), text)

def render(template: Template, row: dict, tokenizer=None, train_on: str = "responses",
           generation: bool = False) -> Segments:
    """Render a row into [(text, trainable)]. With generation=True, stop before the (last) response
    so the text is the prompt a model continues."""
    if template.kind == "model":
        segs = _render_model(tokenizer, row, generation)
    elif template.kind == "chat":
        segs = _render_chat(template, row, tokenizer, generation)
    else:
        segs = _render_instruction(template, row, tokenizer, generation)
    return apply_train_on(segs, train_on)

def apply_train_on(segs: Segments, train_on: str) -> Segments:
    if train_on == "all":
        return [(t, True) for t, _ in segs]
    if train_on == "last_response":
        last = max((i for i, (_, tr) in enumerate(segs) if tr), default=-1)
        return [(t, tr and i == last) for i, (t, tr) in enumerate(segs)]
    return segs

def _special(tokenizer) -> dict:
    return {"bos": getattr(tokenizer, "bos_token", None) or "", "eos": getattr(tokenizer, "eos_token", None) or ""}

def _render_instruction(t: Template, row: dict, tokenizer, generation: bool) -> Segments:
    system, pairs = _row_pairs(row)
    special = _special(tokenizer)
    segs: Segments = []
    for i, pair in enumerate(pairs):
        values = {"system": system or t.system, "category": row.get("category", ""), **special, **pair}
        prompt = t.prompt_no_input if (t.prompt_no_input and not pair.get("input")) else t.prompt
        text = (_fill(t.preface, values) if i == 0 else "") + _fill(prompt, values)
        segs.append((text, False))
        if pair.get("output") is None or (generation and i == len(pairs) - 1):
            break
        response = _fill(t.response, values) + (special["eos"] if t.eos else "")
        segs.append((response, True))
    return _merge(segs)

def _render_chat(t: Template, row: dict, tokenizer, generation: bool) -> Segments:
    msgs = row_messages(row)
    if generation and msgs and msgs[-1]["role"] == "assistant":
        msgs = msgs[:-1]
    if t.system and not any(m["role"] == "system" for m in msgs):
        msgs = [{"role": "system", "content": t.system}] + msgs
    special = _special(tokenizer)
    segs: Segments = [(_fill(t.preface, special), False)]
    prev_role = None
    for m in msgs:
        role = m["role"]
        parts = t.roles.get(role)
        if parts is None:
            raise TemplateError(f"template '{t.name}' has no layout for role '{role}'")
        prefix = parts.get("prefix_after_system", parts.get("prefix", "")) if prev_role == "system" \
            else parts.get("prefix", "")
        prefix, suffix = _fill(prefix, special), _fill(parts.get("suffix", ""), special)
        if role in t.train_roles:
            segs += [(prefix, False), (m["content"] + suffix, True)]
        else:
            segs.append((prefix + m["content"] + suffix, False))
        prev_role = role
    if generation:
        segs.append((_fill(t.roles["assistant"].get("prefix", ""), special), False))
    return _merge(segs)

def _render_model(tokenizer, row: dict, generation: bool) -> Segments:
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        raise TemplateError("template 'model' needs a tokenizer with a chat template; this model has none")
    msgs = row_messages(row)
    if generation:
        if msgs and msgs[-1]["role"] == "assistant":
            msgs = msgs[:-1]
        return [(tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=True), False)]

    def text(ms, gen=False):
        return tokenizer.apply_chat_template(ms, tokenize=False, add_generation_prompt=gen) if ms else ""

    segs: Segments = []
    done = ""
    for i, m in enumerate(msgs):
        if m["role"] != "assistant":
            continue
        before, upto = text(msgs[:i], gen=True), text(msgs[: i + 1])
        if not (before.startswith(done) and upto.startswith(before)):
            raise TemplateError("the model's chat template re-renders earlier turns, so trained tokens cannot be "
                                "located; pick an explicit template such as chatml")
        segs += [(before[len(done):], False), (upto[len(before):], True)]
        done = upto
    full = text(msgs)
    segs.append((full[len(done):], False))
    return _merge(segs)

def _merge(segs: Segments) -> Segments:
    out: Segments = []
    for text, trainable in segs:
        if not text:
            continue
        if out and out[-1][1] == trainable:
            out[-1] = (out[-1][0] + text, trainable)
        else:
            out.append((text, trainable))
    return out

def target_text(template: Template, row: dict) -> str:
    """The ground-truth response of a row under this template (what generation is compared with)."""
    if template.kind == "instruction":
        _, pairs = _row_pairs(row)
        last = pairs[-1] if pairs else {}
        return _fill(template.response, {**last, "category": row.get("category", "")}).strip()
    msgs = row_messages(row)
    return next((m["content"] for m in reversed(msgs) if m["role"] == "assistant"), "").strip()

def prompt_text(template: Template, row: dict, tokenizer) -> str:
    """The text a model continues to answer this row (everything before the response)."""
    return "".join(t for t, _ in render(template, row, tokenizer, generation=True))


def tokenize(segs: Segments, tokenizer, max_length: int | None = None) -> dict:
    """input_ids + labels (-100 where not trained). Labels are NOT shifted: the model shifts them.

    Each segment is tokenized on its own so the trained/masked boundary falls exactly between
    segments; a BOS is prepended when the tokenizer would add one by itself and the text lacks it.
    """
    ids: list[int] = []
    labels: list[int] = []
    bos_id = getattr(tokenizer, "bos_token_id", None)
    if bos_id is not None and _adds_bos(tokenizer) and not (segs and segs[0][0].startswith(tokenizer.bos_token)):
        ids.append(bos_id)
        labels.append(IGNORE_INDEX)
    for text, trainable in segs:
        piece = tokenizer(text, add_special_tokens=False)["input_ids"]
        ids += piece
        labels += piece if trainable else [IGNORE_INDEX] * len(piece)
    if max_length is not None:
        ids, labels = ids[:max_length], labels[:max_length]
    return {"input_ids": ids, "labels": labels}

def _adds_bos(tokenizer) -> bool:
    ids = tokenizer("a")["input_ids"]
    return bool(ids) and ids[0] == tokenizer.bos_token_id

def encode_row(template: Template, row: dict, tokenizer, max_length: int | None = None,
               train_on: str = "responses") -> dict:
    return tokenize(render(template, row, tokenizer, train_on), tokenizer, max_length)
