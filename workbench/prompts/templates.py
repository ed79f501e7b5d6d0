"""Prompt templates: YAML files in templates/ rendered into segments [(text, trainable)], then tokens.

Three kinds of template file:
  instruction  preface + prompt (with {instruction} {input} {output} ... placeholders) + a trained response.
  chat         per-role (prefix, suffix) pairs, as torchtune does: {role: (prepend, append)}; an optional
               preface (e.g. "{bos}") before the first turn; train_roles names the roles whose turns are trained.
  model        the tokenizer's own chat template (transformers renders it in a sandboxed Jinja).

Placeholders are replaced by a regex over a fixed set of names, never by str.format or a template
engine, so a template file or a dataset row can never run code or reach Python attributes.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml
from workbench.core.errors import TemplateError
from workbench.core.paths import templates_dir

FIELDS = ("instruction", "input", "output", "system", "category", "bos", "eos")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(FIELDS) + r")\}")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_\-]{0,63}$")
IGNORE_INDEX = -100  # labels value the loss skips (PyTorch CrossEntropyLoss default)


@dataclass
class Template:
    name: str
    kind: str = "instruction"
    description: str = ""
    preface: str = ""
    prompt: str = ""
    prompt_no_input: str = ""
    response: str = "{output}"
    eos: bool = True
    system: str = ""
    roles: dict = field(default_factory=dict)
    train_roles: list = field(default_factory=lambda: ["assistant"])
    stop: list = field(default_factory=list)

    @classmethod
    def from_dict(cls, d: dict, name: str | None = None) -> "Template":
        if not isinstance(d, dict):
            raise TemplateError("a template file must be a YAML mapping")
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(d) - known)
        if unknown:
            raise TemplateError(f"unknown template keys: {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        t = cls(**{**d, "name": name or d.get("name", "")})
        t.check()
        return t

    def check(self) -> None:
        if not _NAME.match(self.name or ""):
            raise TemplateError(f"template name {self.name!r} must be 1-64 characters of a-z, 0-9, _ or -, "
                                "starting with a letter or digit")
        if self.kind not in ("instruction", "chat", "model"):
            raise TemplateError(f"template kind must be instruction, chat or model; got {self.kind!r}")
        for key in ("preface", "prompt", "prompt_no_input", "response", "system", "description"):
            if not isinstance(getattr(self, key), str):
                raise TemplateError(f"template key '{key}' must be text")
        if not isinstance(self.stop, list) or not all(isinstance(s, str) for s in self.stop):
            raise TemplateError("template key 'stop' must be a list of strings")
        if self.kind == "instruction":
            if not self.prompt:
                raise TemplateError("an instruction template needs a 'prompt'")
            if not _PLACEHOLDER.search(self.response):
                raise TemplateError("the template 'response' must contain a placeholder such as {output}")
        if self.kind == "chat":
            if not isinstance(self.roles, dict) or not {"user", "assistant"} <= set(self.roles):
                raise TemplateError("a chat template needs 'roles' with at least user and assistant")
            for role, parts in self.roles.items():
                if not isinstance(parts, dict) or not all(isinstance(v, str) for v in parts.values()):
                    raise TemplateError(f"roles.{role} must map prefix/suffix to text")
                unknown = sorted(set(parts) - {"prefix", "prefix_after_system", "suffix"})
                if unknown:
                    raise TemplateError(f"roles.{role} has unknown keys {', '.join(unknown)}; "
                                        "known: prefix, prefix_after_system, suffix")
            if not isinstance(self.train_roles, list) or not set(self.train_roles) <= set(self.roles):
                raise TemplateError(f"train_roles must list roles the template lays out ({', '.join(self.roles)}); "
                                    f"got {self.train_roles!r}")

    def to_dict(self) -> dict:
        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        defaults = Template(name=self.name)
        return {k: v for k, v in d.items() if k == "name" or v != getattr(defaults, k)}


# -- files ---------------------------------------------------------------------------------------

def available() -> list[str]:
    return sorted(p.stem for p in templates_dir().glob("*.yaml"))


def load(name: str) -> Template:
    if not _NAME.match(name or ""):
        raise TemplateError(f"invalid template name {name!r}")
    path = templates_dir() / f"{name}.yaml"
    if not path.is_file():
        raise TemplateError(f"template '{name}' not found; available: {', '.join(available())}")
    return parse(path.read_text(encoding="utf-8"), name)


def read_text(name: str) -> str:
    """The YAML text of a template file, as written (comments included), for the editor."""
    load(name)  # validates the name and that the file parses
    return (templates_dir() / f"{name}.yaml").read_text(encoding="utf-8")


def lint(template: Template) -> list[str]:
    """Warnings that do not stop a template from rendering, e.g. a misspelt {placeholder} that would be
    copied into every prompt literally."""
    texts = [template.preface, template.prompt, template.prompt_no_input, template.response, template.system]
    texts += [v for parts in (template.roles or {}).values() for v in parts.values()]
    unknown = sorted({m for t in texts for m in re.findall(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", t)} - set(FIELDS))
    notes = []
    if unknown:
        notes.append(f"unknown placeholders {', '.join('{' + u + '}' for u in unknown)} stay as literal text; "
                     f"known: {', '.join('{' + f + '}' for f in FIELDS)}")
    if template.kind == "instruction" and "{instruction}" not in template.prompt + template.preface \
            and "{instruction}" not in template.response:
        notes.append("the prompt never shows {instruction}")
    return notes


def save_text(text: str, name: str, overwrite: bool = False) -> Path:
    """Validate YAML text as a template named `name` and write it as typed (comments kept).

    Without overwrite an existing file is never replaced, even one created a moment ago by someone else:
    the text is written to a temp file and hard-linked under its name, which fails if the name exists.
    """
    import tempfile

    template = parse(text, (name or "").strip())
    folder = templates_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{template.name}.yaml"
    if overwrite:
        from workbench.core.files import atomic_write_text

        atomic_write_text(path, text if text.endswith("\n") else text + "\n")
        return path
    fd, tmp = tempfile.mkstemp(prefix=f".{template.name}.", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text if text.endswith("\n") else text + "\n")
        os.chmod(tmp, 0o644)
        os.link(tmp, path)
    except FileExistsError:
        raise TemplateError(f"template '{template.name}' already exists; tick overwrite or pick another name") from None
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def parse(text: str, name: str | None = None) -> Template:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise TemplateError(f"template is not valid YAML: {e}") from None
    return Template.from_dict(data, name)


def save(template: Template, overwrite: bool = False) -> Path:
    """Write templates/<name>.yaml atomically; refuse to replace an existing file unless asked to."""
    template.check()
    path = templates_dir() / f"{template.name}.yaml"
    if path.exists() and not overwrite:
        raise TemplateError(f"template '{template.name}' already exists; tick overwrite or pick another name")
    from workbench.core.files import atomic_write_text

    atomic_write_text(path, yaml.safe_dump(template.to_dict(), sort_keys=False, allow_unicode=True))
    return path


# -- rows → messages -----------------------------------------------------------------------------

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
    return _PLACEHOLDER.sub(lambda m: str(values.get(m.group(1), "") or ""), text)


# -- rendering -----------------------------------------------------------------------------------

Segments = list[tuple[str, bool]]


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


# -- tokens --------------------------------------------------------------------------------------

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


def prompt_text(template: Template, row: dict, tokenizer) -> str:
    """The text a model continues to answer this row (everything before the response)."""
    return "".join(t for t, _ in render(template, row, tokenizer, generation=True))
