"""Rubric files in templates/judge/: list, load, read as typed, save (never over another file unless asked),
and render into the judge's chat messages. Placeholders are filled by plain replacement (a rubric may hold
braces, e.g. a JSON example) and are checked when a rubric is loaded."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from workbench.core.errors import ConfigError
from workbench.core.files import atomic_write_text, create_text
from workbench.core.formatting import check_name
from workbench.core.paths import templates_dir

PLACEHOLDERS = {"score": ("{input}", "{reference}", "{response}"),
                "pairwise": ("{input}", "{reference}", "{response_a}", "{response_b}"),
                # Generate: a written instruction and the user's text it was written for (the pair to curate)
                "pair": ("{instruction}", "{text}")}


class RubricError(ConfigError):
    """A rubric file that cannot be used: the message names what is missing."""


@dataclass(frozen=True)
class Rubric:
    name: str
    mode: str
    prompt: str
    system: str = ""
    description: str = ""

    def messages(self, **values: str) -> list[dict]:
        """The judge's chat for one row: the system line, then the prompt with the row's texts filled in."""
        text = self.prompt
        for key, value in values.items():
            text = text.replace("{" + key + "}", str(value if value is not None else ""))
        return ([{"role": "system", "content": self.system}] if self.system.strip() else []) + \
            [{"role": "user", "content": text}]


def folder() -> Path:
    return templates_dir() / "judge"


def available(mode: str | None = None) -> list[str]:
    names = sorted(p.stem for p in folder().glob("*.yaml")) if folder().is_dir() else []
    if mode is None:
        return names
    out = []
    for n in names:
        try:
            if load(n).mode == mode:
                out.append(n)
        except RubricError:
            continue
    return out


def load(name: str) -> Rubric:
    check_name(name, "rubric name", RubricError)
    path = folder() / f"{name}.yaml"
    if not path.is_file():
        raise RubricError(f"rubric '{name}' not found in templates/judge/; available: {', '.join(available())}")
    return parse(path.read_text(encoding="utf-8"), name)


def read_text(name: str) -> str:
    load(name)
    return (folder() / f"{name}.yaml").read_text(encoding="utf-8")


def parse(text: str, name: str | None = None) -> Rubric:
    try:
        data = yaml.safe_load(text or "")
    except yaml.YAMLError as e:
        raise RubricError(f"the rubric is not valid YAML: {str(e).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise RubricError("a rubric is a YAML mapping with mode and prompt (see templates/judge/score.yaml)")
    mode = str(data.get("mode") or "")
    if mode not in PLACEHOLDERS:
        raise RubricError(f"rubric mode must be one of {', '.join(PLACEHOLDERS)}; got {mode!r}")
    prompt = str(data.get("prompt") or "")
    missing = [p for p in PLACEHOLDERS[mode] if p not in prompt]
    if missing:
        raise RubricError(f"the rubric's prompt lacks {', '.join(missing)}",
                          f"a {mode} rubric shows the judge {', '.join(PLACEHOLDERS[mode])}")
    return Rubric(str(name or data.get("name") or "draft"), mode, prompt, str(data.get("system") or ""),
                  str(data.get("description") or ""))


def save_text(text: str, name: str, overwrite: bool = False) -> Path:
    rubric = parse(text, check_name(name, "rubric name", RubricError))
    path = folder() / f"{rubric.name}.yaml"
    text = text if text.endswith("\n") else text + "\n"
    if overwrite:
        return atomic_write_text(path, text)
    try:
        return create_text(path, text)
    except FileExistsError:
        raise RubricError(f"rubric '{rubric.name}' already exists; tick overwrite or pick another name") from None


def for_mode(mode: str, name: str = "") -> Rubric:
    """The rubric a judge uses: the one named, else the mode's own file; its mode must match."""
    rubric = load(name.strip() or mode)
    if rubric.mode != mode:
        raise RubricError(f"rubric '{rubric.name}' is for {rubric.mode} mode, not {mode}")
    return rubric
