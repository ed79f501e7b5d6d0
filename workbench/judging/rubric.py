"""Rubric files in templates/judge/: list, load, read as typed, save (never over another file unless asked),
and render into the judge's chat messages. Placeholders are filled by plain replacement (a rubric may hold
braces, e.g. a JSON example) and are checked when a rubric is loaded. The judge's reply is read here too, in the
shapes a rubric asks for."""
from __future__ import annotations

import json
import re
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


# -- reading the judge's reply: judges answer in many shapes ("SCORE: 85", "Score: 85/100", a JSON object, a bare
# number, markdown bold); anything else is an unparseable row, never a guess.
_JSON = re.compile(r"\{[^{}]*\}", re.DOTALL)
_SCORE = re.compile(r"score\W{0,6}?(\d{1,3}(?:\.\d+)?)", re.IGNORECASE)
_BARE = re.compile(r"^\W*(\d{1,3}(?:\.\d+)?)\s*(?:/\s*100)?\W*$")
_REASON = re.compile(r"(?:reason|explanation|rationale)\W{0,6}(.+)", re.IGNORECASE)
_WINNER = re.compile(r"(?:winner|verdict|better(?: answer)?)\W{0,6}(answer\s+)?(A|B|TIE|tie|Tie|none|equal)\b",
                     re.IGNORECASE)


class JudgeOutputError(ValueError):
    """The judge answered, but not in a shape the rubric asks for."""


def _json(text: str) -> dict:
    for m in _JSON.finditer(text):
        try:
            value = json.loads(m.group(0))
        except ValueError:
            continue
        if isinstance(value, dict):
            return {str(k).lower(): v for k, v in value.items()}
    return {}


def _reason(text: str, found: dict) -> str:
    if found.get("reason"):
        return str(found["reason"]).strip().splitlines()[0][:300]
    m = _REASON.search(text)
    return m.group(1).strip().strip("*").strip()[:300] if m else ""


def _short(text: str) -> str:
    one = " ".join((text or "").split())
    return one[:80] + ("…" if len(one) > 80 else "")


def parse_score(text: str) -> tuple[float, str]:
    """(score in 0..100, one-line reason) from a score-mode reply; JudgeOutputError otherwise."""
    text = text or ""
    found = _json(text)
    value = found.get("score")
    if value is None:
        m = _SCORE.search(text) or _BARE.match(text.strip().splitlines()[0] if text.strip() else "")
        value = m.group(1) if m else None
    try:
        score = float(value)
    except (TypeError, ValueError):
        raise JudgeOutputError(f"unparseable judge output (no score): {_short(text)!r}") from None
    if not 0 <= score <= 100:
        raise JudgeOutputError(f"unparseable judge output (score {score:g} is outside 0-100): {_short(text)!r}")
    return score, _reason(text, found)


def parse_verdict(text: str) -> tuple[str, str]:
    """('A' | 'B' | 'tie', reason) from a pairwise reply; JudgeOutputError otherwise."""
    found = _json(text or "")
    value = found.get("winner") or found.get("verdict")
    if value is None:
        m = _WINNER.search(text or "")
        value = m.group(2) if m else None
        if value is None and (text or "").strip().upper().rstrip(".") in ("A", "B", "TIE"):
            value = text.strip().rstrip(".")
    v = str(value or "").strip().strip("*").upper()
    if v in ("A", "B"):
        return v, _reason(text, found)
    if v in ("TIE", "NONE", "EQUAL"):
        return "tie", _reason(text, found)
    raise JudgeOutputError(f"unparseable judge output (no winner A, B or TIE): {_short(text)!r}")
