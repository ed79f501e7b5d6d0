"""The machinery every config dataclass shares: fields with help and ranges, coercion, dotted access, YAML.

A config is a dataclass of settings, optionally grouped in section dataclasses (RunConfig's model / adapter /
data / train / gen). Every field carries its help text and allowed range in `metadata` (see opt()), so the
range check, the web forms and the CLI's arguments all read the same source instead of repeating it. A mapping
setting written as text is read by parse_column_map, the one column-map syntax (at the end).
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import field, fields, is_dataclass
from pathlib import Path
from typing import Any, Iterator

import yaml

from workbench.core.errors import ConfigError

_TYPES = {"str": str, "int": int, "float": float, "bool": bool, "dict": dict}


def opt(default, help: str, *, choices=None, min=None, max=None, min_exclusive=False, flag: str | None = None):
    """A dataclass field with its help text and range, read by check_ranges(), the UI forms and the CLI.

    `flag` is the CLI spelling where it differs from --field-name (e.g. a documented `--no-base`)."""
    meta = {"help": help, "choices": choices, "min": min, "max": max, "min_exclusive": min_exclusive, "flag": flag}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def field_type(f) -> type:
    return f.type if isinstance(f.type, type) else _TYPES.get(f.type, str)


def is_section(f) -> bool:
    return f.default_factory is not dataclasses.MISSING and is_dataclass(f.default_factory)


def default_of(f) -> Any:
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default


def range_text(meta: dict) -> str:
    """">= 1 and <= 4096" from a field's metadata ('' when it has no bounds)."""
    lo, hi = meta.get("min"), meta.get("max")
    parts = ([f"{'>' if meta.get('min_exclusive') else '>='} {lo}"] if lo is not None else []) + \
        ([f"<= {hi}"] if hi is not None else [])
    return " and ".join(parts)


def coerce(name: str, f, value: Any) -> Any:
    """Turn a YAML / CLI / form value into the field's type, or say why it can't be."""
    t = field_type(f)
    if t is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
            return value.strip().lower() in ("true", "yes", "1", "on")
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    if t is dict:
        if isinstance(value, str):
            return parse_column_map(value, name)
        if not isinstance(value, dict):
            raise ConfigError(f"{name} must be a mapping such as {{context: input}}, got {value!r}")
        return {str(k).strip(): str(v).strip() for k, v in value.items()}
    if t in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number, got {value!r}") from None
        if t is int:
            if number != int(number):
                raise ConfigError(f"{name} must be a whole number, got {value!r}")
            return int(number)
        return number
    return "" if value is None else str(value)


def check_range(name: str, f, value) -> None:
    m = f.metadata
    if m.get("choices") and value not in m["choices"]:
        raise ConfigError(f"{name} must be one of {', '.join(map(str, m['choices']))}; got {value!r}")
    lo, hi = m.get("min"), m.get("max")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        too_low = lo is not None and (value <= lo if m.get("min_exclusive") else value < lo)
        too_high = hi is not None and value > hi
        if too_low or too_high:
            raise ConfigError(f"{name} must be {range_text(m)}; got {value}")


class Settings:
    """Mixin for config dataclasses: dotted get/set with coercion, dict/YAML round-trip, range checks."""

    @classmethod
    def iter_fields(cls) -> Iterator[tuple[str, Any]]:
        """(dotted name, dataclass field) of every setting, sections first, in declaration order."""
        top = [f for f in fields(cls)]
        for f in top:
            if is_section(f):
                for sub in fields(f.default_factory):
                    yield f"{f.name}.{sub.name}", sub
        for f in top:
            if not is_section(f):
                yield f.name, f

    @classmethod
    def sections(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls) if is_section(f))

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None):
        if d is not None and not isinstance(d, dict):
            raise ConfigError(f"a {cls.__name__} must be a mapping of settings, got {type(d).__name__}")
        d = dict(d or {})
        cfg = cls()
        for section in cls.sections():
            values = d.pop(section, None) or {}
            if not isinstance(values, dict):
                raise ConfigError(f"'{section}' must be a mapping of settings, got {values!r}")
            for key, value in values.items():
                cfg.set(f"{section}.{key}", value)
        for key, value in d.items():
            cfg.set(key, value)
        return cfg

    def copy(self):
        return type(self).from_dict(self.to_dict())

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

    @classmethod
    def from_text(cls, text: str):
        """A YAML or JSON document (JSON is YAML) → config; ConfigError names what is wrong."""
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"the config is not valid YAML or JSON: {str(e).splitlines()[0]}") from None
        if data is not None and not isinstance(data, dict):
            raise ConfigError(f"the config must be a mapping of settings"
                              f"{' (sections ' + '/'.join(cls.sections()) + ')' if cls.sections() else ''}")
        return cls.from_dict(data)

    from_yaml = from_text

    @classmethod
    def load(cls, path: str | Path):
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        return cls.from_text(p.read_text(encoding="utf-8"))

    def set(self, dotted: str, value: Any) -> None:
        target, f = self._field(dotted)
        setattr(target, f.name, coerce(dotted, f, value))

    def get(self, dotted: str) -> Any:
        target, f = self._field(dotted)
        return getattr(target, f.name)

    def with_values(self, **values):
        """A copy with settings changed (keys may use '__' for '.': train__max_steps)."""
        cfg = self.copy()
        for key, value in values.items():
            cfg.set(key.replace("__", "."), value)
        return cfg

    def _field(self, dotted: str):
        parts = str(dotted).split(".")
        target = self
        sections = self.sections()
        for part in parts[:-1]:
            if part not in sections or target is not self:
                raise ConfigError(f"unknown setting '{dotted}'"
                                  + (f"; sections are {', '.join(sections)}" if sections else ""))
            target = getattr(target, part)
        by_name = {f.name: f for f in fields(target) if not is_section(f)}
        if parts[-1] not in by_name:
            raise ConfigError(f"unknown setting '{dotted}'; known: {', '.join(sorted(by_name))}")
        return target, by_name[parts[-1]]

    def check_ranges(self) -> None:
        for name, f in self.iter_fields():
            check_range(name, f, self.get(name))


def parse_set(pairs: list[str]) -> list[tuple[str, str]]:
    """CLI `--set section.key=value` pairs."""
    out = []
    for pair in pairs or []:
        if "=" not in pair:
            raise ConfigError(f"--set expects section.key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        out.append((key.strip(), value))
    return out


# -- The one column-mapping syntax, accepted everywhere (Data tab, Train form, YAML, CLI --set):
#
#     context: input, response: output      (also →, ->, =>, =; entries split by commas, ';' or new lines)
#     {context: input, response: output}    (a YAML / JSON mapping)
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
