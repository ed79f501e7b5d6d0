"""Row formats: which columns make a format, how a format is detected, and how its rows become canonical rows.

Canonical rows are either {instruction, input, output, category} (the flat formats) or
{messages: [{role, content}], category} (the chat formats). Everything that shows or trains on a row goes
through to_canonical, so the Data tab shows exactly what the engine trains on.
"""
from __future__ import annotations

from dataclasses import dataclass, field

from workbench.core.errors import DataError

# format → (required columns, optional columns)
FORMATS = {
    "alpaca": ({"instruction", "output"}, {"input", "category"}),
    "dolly": ({"instruction", "response"}, {"context", "category"}),
    "self_instruct": ({"task", "instruction", "output"}, {"input"}),
    "sharegpt": ({"conversations"}, {"category"}),
    "messages": ({"messages"}, {"category"}),
    "prompt_completion": ({"prompt", "completion"}, {"category"}),
    "input_target": ({"input_text", "target_text"}, {"category"}),
}
# Checked in this order: the most specific schemas first.
DETECT_ORDER = ["self_instruct", "dolly", "alpaca", "sharegpt", "messages", "prompt_completion", "input_target"]
# Where each canonical field of a flat (instruction) format comes from; None = always empty.
FIELD_SOURCES = {
    "alpaca": {"instruction": "instruction", "input": "input", "output": "output", "category": "category"},
    "dolly": {"instruction": "instruction", "input": "context", "output": "response", "category": "category"},
    "self_instruct": {"instruction": "instruction", "input": "input", "output": "output", "category": "task"},
    "prompt_completion": {"instruction": "prompt", "input": None, "output": "completion", "category": "category"},
    "input_target": {"instruction": "input_text", "input": None, "output": "target_text", "category": "category"},
}
CHAT_FORMATS = ("sharegpt", "messages")
# The column holding the turns of a chat format, and each turn's role and text keys.
CHAT_KEYS = {"sharegpt": ("conversations", "from", "value"), "messages": ("messages", "role", "content")}
_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "chatgpt": "assistant", "bing": "assistant", "bard": "assistant", "model": "assistant",
                   "system": "system"}


@dataclass
class Detection:
    """The format a dataset is read as, why, and what a person should know about the load."""
    format: str
    reason: str
    columns: list = field(default_factory=list)
    notes: list = field(default_factory=list)  # how the file was read (delimiter, top-level key, ...)
    invalid: object = None  # load.InvalidRows when some rows cannot be trained on

    def message(self) -> str:
        """One plain-text paragraph: format, reason, notes and unusable rows (logs and the CLI)."""
        parts = [f"format {self.format}: {self.reason}", *self.notes]
        if self.invalid is not None:
            parts.append(self.invalid.summary())
        return "; ".join(parts)


# -- column maps -----------------------------------------------------------------------------------

def column_renames(columns, column_map: dict | None) -> dict:
    """The renames a column map asks for, checked against the columns that exist."""
    column_map = column_map or {}
    missing = [c for c in column_map if c not in columns]
    if missing:
        raise DataError(f"column map names columns that are not in the data: {', '.join(missing)}; "
                        f"found: {', '.join(columns)}")
    renames = {k: v for k, v in column_map.items() if k != v}
    targets = list(renames.values())
    clash = sorted({v for v in targets if targets.count(v) > 1}
                   | {v for v in targets if v in columns and v not in renames})
    if clash:
        raise DataError(f"column map would give two columns the name {', '.join(clash)}; "
                        "rename or drop the existing one first")
    return renames


def rename(raw, column_map: dict | None):
    """The raw Dataset with the column map applied (before format detection)."""
    renames = column_renames(raw.column_names, column_map)
    return raw.rename_columns(renames) if renames else raw


# -- detection -------------------------------------------------------------------------------------

def detect_format(columns) -> Detection:
    cols = set(columns)
    for fmt in DETECT_ORDER:
        required, optional = FORMATS[fmt]
        if required <= cols:
            found = sorted(required | (optional & cols))
            return Detection(fmt, f"columns {', '.join(found)} match the {fmt} schema{_ignored(cols, found)}",
                             sorted(cols))
    raise DataError(no_format_message(cols))


def fits_a_format(columns) -> bool:
    """Whether some format's required columns are all among `columns`."""
    return any(FORMATS[fmt][0] <= set(columns) for fmt in DETECT_ORDER)


def _ignored(cols: set, used: list) -> str:
    rest = sorted(cols - set(used))
    return f" (ignored: {', '.join(rest)})" if rest else ""


def no_format_message(columns) -> str:
    cols = set(columns)
    hints = "; ".join(f"{fmt} needs {', '.join(sorted(FORMATS[fmt][0]))}"
                      + (f" (missing {', '.join(sorted(FORMATS[fmt][0] - cols))})" if FORMATS[fmt][0] & cols else "")
                      for fmt in DETECT_ORDER)
    if {"chosen", "rejected"} <= cols or {"completion", "label"} <= cols:  # see data/preference.py
        return (f"these columns ({', '.join(sorted(cols))}) hold preference data: open 'Preference pairs' in the "
                "Data tab to browse them, and train them with train.method dpo, orpo or kto")
    return (f"no known format fits the columns found ({', '.join(sorted(cols)) or 'none'}): {hints}. "
            "Map your columns (e.g. question→instruction, answer→output) or pick the format.")


def check_format(columns, fmt: str) -> None:
    if fmt not in FORMATS:
        raise DataError(f"unknown format {fmt!r}; known: {', '.join(FORMATS)}")
    missing = FORMATS[fmt][0] - set(columns)
    if missing:
        raise DataError(f"format {fmt} needs columns {', '.join(sorted(missing))}, which are missing; "
                        f"found: {', '.join(sorted(columns))}")


def detect_or_check(columns, fmt: str = "auto") -> Detection:
    if fmt in ("auto", "", None):
        return detect_format(columns)
    check_format(columns, fmt)
    used = sorted(FORMATS[fmt][0] | (FORMATS[fmt][1] & set(columns)))
    return Detection(fmt, f"format {fmt} chosen by the user; uses {', '.join(used)}{_ignored(set(columns), used)}",
                     sorted(columns))


def mapping_text(fmt: str) -> str:
    """How a format's columns become canonical fields, for the UI."""
    if fmt == "sharegpt":
        return "conversations[from, value] → messages[role, content] (human→user, gpt→assistant)"
    if fmt == "messages":
        return "messages[role, content] used as they are"
    return ", ".join(f"{src}→{dst}" if src and src != dst else (dst if src else f"{dst} = ''")
                     for dst, src in FIELD_SOURCES[fmt].items())


# -- rows ------------------------------------------------------------------------------------------

def _text(value) -> str:
    return "" if value is None else str(value)


def chat_turns(row: dict, fmt: str) -> list[tuple[str, object]]:
    """(role, content as stored) of each turn of a chat row; roles in the messages spelling."""
    column, role_key, text_key = CHAT_KEYS[fmt]
    turns = []
    for t in row.get(column) or []:
        t = t if isinstance(t, dict) else {}
        role = str(t.get(role_key) or "")
        role = _SHAREGPT_ROLES.get(role.lower(), "user") if fmt == "sharegpt" else (role or "user")
        turns.append((role, t.get(text_key)))
    return turns


def to_canonical(row: dict, fmt: str) -> dict:
    """One raw row of a known format as a canonical row."""
    if fmt in FIELD_SOURCES:
        return {dst: _text(row.get(src)) if src else "" for dst, src in FIELD_SOURCES[fmt].items()}
    if fmt in CHAT_FORMATS:
        msgs = [{"role": role, "content": _text(content)} for role, content in chat_turns(row, fmt)]
        return {"messages": msgs, "category": _text(row.get("category"))}
    raise DataError(f"unknown format {fmt!r}")
