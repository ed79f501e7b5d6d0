"""The shapes data files really come in, told apart before parsing so each is read the way it was written.

CSV: the delimiter (',', ';', tab or '|') is sniffed from the head of the file, decoded as read.check_file
found it (a UTF-8 byte-order mark, what Excel writes, is skipped; UTF-16 and GB18030 are decoded). JSON: a
JSON array of rows, JSON Lines of row objects, JSON Lines whose every line is a bare list of {role, content}
messages (one conversation a line), or one JSON object whose rows sit under a single top-level key such as
{"data": [...]}.
"""
from __future__ import annotations

import codecs
import csv
import io
import json
from dataclasses import dataclass
from pathlib import Path

from workbench.core.errors import DataError

SNIFF_BYTES = 32 * 1024  # enough lines for csv.Sniffer to see a consistent delimiter; it is slow on much more
DELIMITERS = ",;\t|"
DELIMITER_NAMES = {",": "comma", ";": "semicolon", "\t": "tab", "|": "pipe"}


@dataclass
class CsvDialect:
    delimiter: str
    bom: bool
    columns: list[str]
    encoding: str = "utf-8-sig"

    def note(self) -> str:
        bom = "; UTF-8 byte-order mark skipped" if self.bom else ""
        plain = self.encoding in ("utf-8", "utf-8-sig")
        enc = "" if plain else f"; decoded as {self.encoding}"
        return f"CSV delimiter {self.delimiter!r} ({DELIMITER_NAMES.get(self.delimiter, 'sniffed')}){bom}{enc}"


def sniff_csv(path: Path, encoding: str = "utf-8-sig") -> CsvDialect:
    """The delimiter and header of a CSV file, from its first lines (decoded as read.check_file found it)."""
    with open(path, "rb") as f:
        head = f.read(SNIFF_BYTES)
    bom = head.startswith(codecs.BOM_UTF8)
    # errors="replace": the cut may split a character; check_file has already checked how the bytes decode.
    text = head.decode(encoding, errors="replace").lstrip("\ufeff")
    if len(head) == SNIFF_BYTES and "\n" in text:
        text = text[:text.rindex("\n") + 1]  # whole lines only: half a line misleads the sniffer
    header_line = text.splitlines()[0] if text else ""
    try:
        delimiter = csv.Sniffer().sniff(text, delimiters=DELIMITERS).delimiter
    except csv.Error:  # one column, or too few lines to be sure
        delimiter = ","
    if delimiter not in header_line:
        # The sniffer guesses from consistency across lines; a header must contain the real delimiter.
        counts = {d: header_line.count(d) for d in DELIMITERS}
        best = max(counts, key=counts.get)
        delimiter = best if counts[best] else ","
    columns = next(csv.reader(io.StringIO(text), delimiter=delimiter), [])
    dup = sorted({c for c in columns if columns.count(c) > 1 and c})
    if dup:
        raise DataError(f"{path.name}: the header names the column{'s' if len(dup) > 1 else ''} "
                        f"{', '.join(dup)} more than once; give every column its own name")
    return CsvDialect(delimiter, bom, columns, encoding)


# -- JSON ------------------------------------------------------------------------------------------

def _first_lines(path: Path, n: int = 2) -> list[str]:
    """The first n non-blank lines (stripped)."""
    out = []
    with open(path, encoding="utf-8-sig") as f:
        for line in f:
            if line.strip():
                out.append(line.strip())
                if len(out) == n:
                    break
    return out


def _parse(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        return None


def is_message_list(value) -> bool:
    """A bare conversation: a non-empty JSON list of objects that each have a role and a content."""
    return (isinstance(value, list) and bool(value)
            and all(isinstance(m, dict) and "role" in m and "content" in m for m in value))


def json_layout(path: Path) -> str:
    """How a .json / .jsonl file is laid out:
    'array' (one JSON array), 'document' (one JSON object over many lines), 'message_lines' (each line
    a bare list of messages) or 'lines' (JSON Lines of objects; also the answer for anything unclear)."""
    lines = _first_lines(path)
    if not lines:
        return "lines"
    first = lines[0]
    if first.startswith("["):
        return "message_lines" if is_message_list(_parse(first)) else "array"
    if first.startswith("{") and not isinstance(_parse(first), dict) and not first.endswith("}"):
        # An object opened on the first line and continued below, unless the next line is a row of its own
        # (then the first line is a broken JSON Lines row, reported as such).
        if len(lines) < 2 or not isinstance(_parse(lines[1]), dict):
            return "document"
    return "lines"


def wrapped_rows_key(path: Path, layout: str) -> str | None:
    """The top-level key holding the rows when the file is one JSON object such as {"data": [...]}:
    the only key whose value is a list of objects. None when the file is rows as they are, including
    a one-line JSON Lines file whose single row is itself in a known format ({"messages": [...]});
    DataError when several keys hold such lists (which one is meant is not ours to guess)."""
    if layout == "document":
        try:
            with open(path, encoding="utf-8-sig") as f:
                obj = json.load(f)
        except json.JSONDecodeError as e:
            raise DataError(f"{path.name} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None
    elif layout == "lines":
        lines = _first_lines(path)
        if len(lines) != 1:
            return None  # several rows: JSON Lines
        obj = _parse(lines[0])
    else:
        return None
    if not isinstance(obj, dict):
        return None
    from workbench.data.formats import fits_a_format

    if fits_a_format(obj):
        return None  # one row of a known format, not a wrapper
    keys = [k for k, v in obj.items() if isinstance(v, list) and v and all(isinstance(r, dict) for r in v)]
    if len(keys) > 1:
        raise DataError(f"{path.name} is one JSON object with several lists of rows ({', '.join(keys)}); "
                        "keep one of them, or save each list as a file of its own")
    return keys[0] if keys else None


def load_message_lines(path: Path):
    """A Dataset with one `messages` column from a file whose lines are bare lists of messages.

    Written through Dataset.from_generator, so it is cached as Arrow on disk like every other file (the
    file's size and modification time are part of the cache key: an edited file is read again)."""
    import datasets

    st = path.stat()
    turn = {"role": datasets.Value("string"), "content": datasets.Value("string")}
    features = datasets.Features({"messages": datasets.List(turn)})
    return datasets.Dataset.from_generator(_message_rows, features=features,
                                           gen_kwargs={"path": str(path), "stamp": (st.st_size, st.st_mtime_ns)})


def _message_rows(path: str, stamp):
    with open(path, encoding="utf-8-sig") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            value = _parse(line)
            if not is_message_list(value):
                raise DataError(f"line {n} is not a list of {{role, content}} messages")
            yield {"messages": [{"role": str(m["role"]), "content": _content(m["content"])} for m in value]}


def _content(value):
    # Keep null as null (the validity check names it); structured content (e.g. a list of parts) as its JSON.
    return value if value is None or isinstance(value, str) else json.dumps(value, ensure_ascii=False)
