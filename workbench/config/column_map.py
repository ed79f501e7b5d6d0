"""The one column-mapping syntax, accepted everywhere (Data tab, Train form, YAML, CLI --set):

    context: input, response: output      (also →, ->, =>, =; entries split by commas, ';' or new lines)
    {context: input, response: output}    (a YAML / JSON mapping)
"""
from __future__ import annotations

import re

import yaml

from workbench.core.errors import ConfigError

_ARROW = re.compile(r"\s*(?:→|->|=>|=|:)\s*")


def parse_column_map(text, what: str = "column map") -> dict[str, str]:
    """Any accepted spelling → {source column: new name}; ConfigError says what a good entry looks like."""
    if isinstance(text, dict):
        return {str(k).strip(): str(v).strip() for k, v in text.items()}
    text = (text or "").strip()
    if not text or text == "{}":
        return {}
    if text.startswith("["):
        raise ConfigError(f"{what} must be a mapping of source columns to new names, e.g. 'context: input'")
    if text.startswith("{"):
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"{what} is not a valid mapping: {str(e).splitlines()[0]}",
                              "write it as 'context: input, response: output'") from None
        if not isinstance(data, dict):
            raise ConfigError(f"{what} must be a mapping of source columns to new names, e.g. 'context: input'")
        return parse_column_map(data, what)
    out = {}
    for part in re.split(r"[,\n;]+", text):
        if not part.strip():
            continue
        pieces = _ARROW.split(part.strip(), maxsplit=1)
        if len(pieces) != 2 or not pieces[0].strip() or not pieces[1].strip():
            raise ConfigError(f"{what} entry {part.strip()!r} should look like 'context: input' or 'context→input'")
        out[pieces[0].strip()] = pieces[1].strip()
    return out


def format_column_map(mapping: dict) -> str:
    """The canonical text form, which parse_column_map reads back: 'context: input, response: output'."""
    return ", ".join(f"{k}: {v}" for k, v in (mapping or {}).items())
