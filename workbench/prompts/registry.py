"""The template files in templates/: list, load, read as typed, validate and save (never over another file
unless asked)."""
from __future__ import annotations

from pathlib import Path

import yaml

from workbench.core.errors import TemplateError
from workbench.core.files import atomic_write_text, create_text
from workbench.core.formatting import check_name
from workbench.core.paths import templates_dir
from workbench.prompts.schema import Template


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
