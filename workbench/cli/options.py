"""Command-line options generated from a config's fields, so help, choices and defaults have one source.

Values stay text and options not typed stay out of the namespace (argparse.SUPPRESS): the config's own
`set` coerces what was typed and check_ranges() judges it, so the CLI and the web forms accept and refuse
exactly the same values, with the same messages.
"""
from __future__ import annotations

import argparse

from workbench.config.fields import Settings, default_of, field_type, range_text
from workbench.core.errors import ConfigError


# Sections whose options are spelled --section-field, not --section.field: the judge's flags (--judge-url,
# --judge-model ...) were documented before the settings became EvalConfig's and GenerateConfig's `judge:` section.
DASHED_SECTIONS = ("judge",)


def flag_of(name: str, f) -> str:
    """--field-name (--section.field-name in a section), or the spelling the field's metadata asks for (e.g.
    --no-base)."""
    if f.metadata.get("flag"):
        return f.metadata["flag"]
    section, dot, rest = name.rpartition(".")
    if dot and section in DASHED_SECTIONS:
        name = f"{section}_{rest}"
    return "--" + name.replace("_", "-")


def add_settings(parser: argparse.ArgumentParser, cls: type[Settings], required: tuple[str, ...] = ()) -> None:
    """One option per setting of `cls`, described by the field's metadata (help, choices, range, default),
    plus --config FILE: the same settings as one YAML/JSON document (what a queued job runs with)."""
    parser.add_argument("--config", default=None, metavar="FILE",
                        help="a YAML or JSON file of these settings; options typed here override it")
    parser.set_defaults(required_settings=required)
    for name, f in cls.iter_fields():
        meta, default = f.metadata, default_of(f)
        help_text = meta.get("help", "")
        if field_type(f) is bool:
            # A switch moves the setting away from its default: --adapter-only sets True, --no-base False.
            parser.add_argument(flag_of(name, f), dest=name, action="store_const", const=not default,
                                default=argparse.SUPPRESS,
                                help=f"{help_text} (sets {name} to {str(not default).lower()})")
            continue
        facts = "; ".join(x for x in (range_text(meta), f"default: {default}" if default != "" else "") if x)
        choices = meta.get("choices")
        if name in required:
            help_text += " (required)"
        flag = flag_of(name, f)
        metavar = "{" + ",".join(map(str, choices)) + "}" if choices else flag[2:].replace("-", "_").upper()
        parser.add_argument(flag, dest=name, default=argparse.SUPPRESS, metavar=metavar,
                            help=help_text + (f" ({facts})" if facts else ""))


def given(cls: type[Settings], args: argparse.Namespace) -> dict:
    """The settings of `cls` that were typed on the command line, as typed."""
    return {name: getattr(args, name) for name, _f in cls.iter_fields() if hasattr(args, name)}


def settings_from_args(cls: type[Settings], args: argparse.Namespace) -> Settings:
    """A `cls` from its defaults (or --config), plus what was typed, coerced and range-checked by the config
    (ConfigError); a required setting left empty is refused with its flag."""
    cfg = cls.load(args.config) if getattr(args, "config", None) else cls()
    for name, value in given(cls, args).items():
        cfg.set(name, value)
    cfg.check_ranges()
    fields = dict(cls.iter_fields())
    missing = [flag_of(n, fields[n]) for n in getattr(args, "required_settings", ()) if not str(cfg.get(n)).strip()]
    if missing:
        raise ConfigError(f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} required")
    return cfg
