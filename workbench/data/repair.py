"""Malformed JSON lines: find them (with line numbers), and copy the good lines to a new file to use instead.

The source file is never modified: the good lines go to data/cleaned/<name>.valid-vN.jsonl, a new version
each time. write_versioned is also how the quality step saves cleaned data (<name>.clean-vN.jsonl).

The quality step's other repair is PII masking: e-mail addresses, card numbers, IP addresses and phone
numbers become placeholders. Patterns find candidates; each kind then has a check that keeps look-alikes (dates, year ranges, version
numbers, numbers that fail the Luhn check) as they are. Names are not masked: that needs a named-entity
model, and none ships offline with this project.
"""
from __future__ import annotations

import ipaddress
import json
import re
from collections import Counter
from pathlib import Path

from workbench.core.errors import DataError
from workbench.core.files import create_text
from workbench.core.formatting import safe_name
from workbench.core.paths import data_dir
from workbench.data.shapes import is_message_list, json_layout

MAX_REPORTED_LINES = 10  # malformed lines named in a message; the count covers all of them


class MalformedLinesError(DataError):
    """Some lines of a JSON Lines file are not rows; the others can still be used."""

    def __init__(self, path: Path, bad: list[tuple[int, str]], n_bad: int, n_good: int):
        self.path, self.bad, self.n_bad, self.n_good = path, bad, n_bad, n_good
        shown = "; ".join(f"line {n}: {why}" for n, why in bad)
        more = f" (and {n_bad - len(bad)} more)" if n_bad > len(bad) else ""
        super().__init__(f"{path.name}: {n_bad} malformed line{'s' if n_bad != 1 else ''} — {shown}{more}. "
                         f"The other {n_good} lines are valid: tick 'skip malformed lines' to use them "
                         "(they are copied to a new file; the original is left as it is).")


def find_malformed_json(path: Path) -> None:
    """Raise DataError naming the malformed lines of a JSON / JSON Lines file; return if none found."""
    layout = json_layout(path)
    if layout in ("array", "document"):
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError as e:
            raise DataError(f"{path.name} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None
        if isinstance(data, list) and all(isinstance(r, dict) for r in data):
            return
        raise DataError(f"{path.name}: a JSON file must hold a list of objects (one per row), or one object "
                        "whose only list of objects is the rows (e.g. {\"data\": [...]})")
    line_problem = _line_problem(layout)
    bad, n_bad, n_good = [], 0, 0
    with open(path, encoding="utf-8-sig") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            why = line_problem(line)
            if why is None:
                n_good += 1
                continue
            n_bad += 1
            if len(bad) < MAX_REPORTED_LINES:
                bad.append((n, why))
    if n_bad:
        if n_good == 0:
            raise DataError(f"{path.name}: no line is a JSON object (line {bad[0][0]}: {bad[0][1]}); "
                            "is this really a JSON / JSON Lines file?")
        raise MalformedLinesError(path, bad, n_bad, n_good)


def _line_problem(layout: str):
    """The check of one line for a layout: None when the line is a row, else what is wrong with it."""
    def problem(line: str) -> str | None:
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            return f"{e.msg} (column {e.colno})"
        if layout == "message_lines":
            return None if is_message_list(value) else "not a list of {role, content} messages"
        return None if isinstance(value, dict) else f"a JSON {type(value).__name__}, not an object"
    return problem


def write_valid_lines(path: Path) -> tuple[Path, int]:
    """Copy the lines of a JSON Lines file that are rows to a new versioned file under data/cleaned/.

    The original file is never modified. Returns (new file, number of lines skipped)."""
    line_problem = _line_problem(json_layout(path))
    skipped = 0

    class GoodLines:  # iterable again (from the top) if the version it was written as is taken meanwhile
        def __iter__(self):
            nonlocal skipped
            skipped = 0
            with open(path, encoding="utf-8-sig") as f:
                for line in f:
                    if not line.strip():
                        continue
                    if line_problem(line) is None:
                        yield line if line.endswith("\n") else line + "\n"
                    else:
                        skipped += 1

    out = write_versioned(path.stem, "valid", GoodLines())
    return out, skipped


def write_versioned(stem: str, tag: str, lines, suffix: str = ".jsonl") -> Path:
    """Write lines to data/cleaned/<stem>.<tag>-v<N><suffix> with the next free N; never overwrites.

    `lines` streams to disk. When another process takes version N while it is written, an iterable that
    can be read again (a list, or an object with __iter__) is written as N+1; a one-shot generator cannot,
    so that rare case is an error that asks to run again."""
    folder = data_dir() / "cleaned"
    stem = safe_name(stem, "dataset")
    stem = re.sub(rf"\.{tag}-v\d+$", "", stem)  # cleaning a cleaned file: x.clean-v2, not x.clean-v1.clean-v1
    taken = [int(m.group(1)) for p in folder.glob(f"{stem}.{tag}-v*{suffix}")
             if (m := re.fullmatch(rf"{re.escape(stem)}\.{tag}-v(\d+){re.escape(suffix)}", p.name))]
    version = 1 + max(taken, default=0)
    while True:
        final = folder / f"{stem}.{tag}-v{version}{suffix}"
        try:
            return create_text(final, lines)
        except FileExistsError:
            if iter(lines) is lines:
                raise DataError(f"{final.name} was created by someone else while this was written; "
                                "run it again") from None
            version += 1


EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
# 13-19 digits, optionally grouped by single spaces or dashes (card-like); confirmed by the Luhn check.
CARD = re.compile(r"(?<![\d-])\d(?:[ -]?\d){12,18}(?![\d-])")
IPV4 = re.compile(r"(?<![\d.])(?:\d{1,3}\.){3}\d{1,3}(?![\d.])")
IPV6 = re.compile(r"(?<![\w:])(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?![\w:])")
# +CC, (area) or digit groups separated by space, dot or dash; checked by _is_phone.
PHONE = re.compile(r"(?<![\w+])(?:\+\d{1,3}[ .-]?)?(?:\(\d{1,4}\)[ .-]?)?\d{2,4}(?:[ .-]\d{2,4}){1,4}(?![\w-])")
DATE_LIKE = re.compile(r"^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}$")
PLACEHOLDERS = {"email": "[EMAIL]", "card": "[CARD]", "ip": "[IP]", "phone": "[PHONE]"}


def _luhn(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _is_card(text: str) -> bool:
    digits = re.sub(r"\D", "", text)
    return 13 <= len(digits) <= 19 and _luhn(digits) and len(set(digits)) > 1


def _is_ip(text: str) -> bool:
    try:
        ip = ipaddress.ip_address(text)
    except ValueError:
        return False
    return ip.version == 4 or text.count(":") >= 2


def _is_phone(text: str) -> bool:
    """7-15 digits in a phone-like layout: a +country code, an (area) code, or three or more groups.
    Two plain groups ("1990-2000", "12 345") and dates ("2023-10-12", "12.10.2023") are not phones."""
    digits = re.sub(r"\D", "", text)
    if not 7 <= len(digits) <= 15 or DATE_LIKE.match(text):
        return False
    groups = len(re.findall(r"\d+", text))
    return text.startswith("+") or "(" in text or groups >= 3


def mask_pii(text: str) -> tuple[str, Counter]:
    """The text with e-mails, card numbers, IP addresses and phone numbers replaced by placeholders,
    and how many of each were replaced. Cards go first so their digit groups are not taken as phones."""
    counts: Counter = Counter()
    if not text:
        return text, counts

    def sub(pattern, kind, check=None):
        nonlocal text

        def repl(m):
            if check is not None and not check(m.group(0)):
                return m.group(0)
            counts[kind] += 1
            return PLACEHOLDERS[kind]

        text = pattern.sub(repl, text)

    sub(EMAIL, "email")
    sub(CARD, "card", _is_card)
    sub(IPV4, "ip", _is_ip)
    sub(IPV6, "ip", _is_ip)
    sub(PHONE, "phone", _is_phone)
    return text, counts
