"""Prompt templates: their schema (the fields a template file may have, their checks, lint warnings) and the
files in templates/ (list, load, read as typed, validate and save, never over another file unless asked).

Three kinds of template file:
  instruction  preface + prompt (with {instruction} {input} {output} ... placeholders) + a trained response.
  chat         per-role (prefix, suffix) pairs, as torchtune does: {role: (prepend, append)}; an optional
               preface (e.g. "{bos}") before the first turn; train_roles names the roles whose turns are trained.
  model        the tokenizer's own chat template (transformers renders it in a sandboxed Jinja).

Placeholders are replaced by a regex over a fixed set of names (PLACEHOLDER), never by str.format or a
template engine, so a template file or a dataset row can never run code or reach Python attributes.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from workbench.core.errors import TemplateError
from workbench.core.files import atomic_write_text, create_text
from workbench.core.formatting import check_name
from workbench.core.paths import templates_dir

FIELDS = ("instruction", "input", "output", "system", "category", "bos", "eos")
PLACEHOLDER = re.compile(r"\{(" + "|".join(FIELDS) + r")\}")


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
        check_name(self.name, "template name", TemplateError)
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
            if not PLACEHOLDER.search(self.response):
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


def available() -> list[str]:
    return sorted(p.stem for p in templates_dir().glob("*.yaml"))


def load(name: str) -> Template:
    check_name(name, "template name", TemplateError)
    path = templates_dir() / f"{name}.yaml"
    if not path.is_file():
        raise TemplateError(f"template '{name}' not found; available: {', '.join(available())}")
    return parse(path.read_text(encoding="utf-8"), name)


def read_text(name: str) -> str:
    """The YAML text of a template file, as written (comments included), for the editor."""
    load(name)  # validates the name and that the file parses
    return (templates_dir() / f"{name}.yaml").read_text(encoding="utf-8")


def save_text(text: str, name: str, overwrite: bool = False) -> Path:
    """Validate YAML text as a template named `name` and write it as typed (comments kept).

    Without overwrite an existing file is never replaced, even one created a moment ago by someone else."""
    template = parse(text, check_name(name, "template name", TemplateError))
    path = templates_dir() / f"{template.name}.yaml"
    text = text if text.endswith("\n") else text + "\n"
    if overwrite:
        return atomic_write_text(path, text)
    try:
        return create_text(path, text)
    except FileExistsError:
        raise TemplateError(f"template '{template.name}' already exists; tick overwrite or pick another name") from None


def parse(text: str, name: str | None = None) -> Template:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise TemplateError(f"template is not valid YAML: {e}") from None
    return Template.from_dict(data, name)
