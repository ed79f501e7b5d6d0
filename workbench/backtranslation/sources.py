"""Texts in: a folder of .txt / .md files, one such file, a text column of a dataset file, or pasted text.

Files are decoded as UTF-8 when they are; otherwise the encoding is detected (charset-normalizer, which
`requests` already brings) and reported. In a folder, binary or undecodable files are skipped and listed; a
single such file given alone is refused with its name. Every path is confined to the allowed folders.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from workbench.core.errors import DataError, PathError
from workbench.core.paths import confine, display

log = logging.getLogger(__name__)

TEXT_SUFFIXES = (".txt", ".md")
TEXT_COLUMNS = ("output", "response", "text", "content", "completion")  # tried in this order
_PARAGRAPH = re.compile(r"\n\s*\n")


@dataclass(frozen=True)
class SourceText:
    source: str  # unique per text: the file (as the user would type it), "<file>#p<n>", "pasted#<n>", "<dataset>#<row>"
    text: str


@dataclass
class Reading:
    texts: list[SourceText] = field(default_factory=list)
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (file, why)
    encodings: dict[str, str] = field(default_factory=dict)  # file → encoding, for files not in UTF-8

    def summary(self) -> str:
        parts = [f"{len(self.texts):,} texts read"]
        if self.encodings:
            parts.append("decoded by detection: " + ", ".join(f"{Path(f).name} ({e})" for f, e in
                                                                 self.encodings.items()))
        if self.skipped:
            parts.append(f"{len(self.skipped)} files skipped: " + "; ".join(f"{Path(f).name} ({why})" for f, why in
                                                                             self.skipped))
        return " · ".join(parts)


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in _PARAGRAPH.split(text) if p.strip()]


def decode(data: bytes) -> tuple[str, str]:
    """The text and the encoding it was in; DataError('binary' / 'undecodable') when it is not text."""
    if b"\x00" in data[:8192]:
        raise DataError("binary file (NUL bytes)")
    try:
        return data.decode("utf-8-sig"), "utf-8"
    except UnicodeDecodeError:
        pass
    from charset_normalizer import from_bytes

    best = from_bytes(data).best()
    if best is None or best.encoding is None:
        raise DataError("not text in any encoding charset-normalizer knows")
    return str(best), best.encoding


def read_texts(texts: str = "", pasted: str = "", column: str = "", split_paragraphs: bool = False) -> Reading:
    """What the user gave, as texts with their source; DataError / PathError for what cannot be read."""
    if pasted.strip():
        return Reading([SourceText(f"pasted#{i + 1}", p) for i, p in enumerate(paragraphs(pasted))])
    try:
        path = confine(texts)
    except PathError as e:
        raise DataError(e.message, e.hint) from None
    if path.is_dir():
        return _read_folder(path, split_paragraphs)
    if not path.is_file():
        raise DataError(f"{texts}: no such file or folder")
    if path.suffix.lower() in TEXT_SUFFIXES:
        reading = Reading()
        try:
            _read_file(path, split_paragraphs, reading)
        except DataError as e:
            raise DataError(f"{path.name} cannot be read as text: {e.message}",
                            "give a UTF-8 (or other text-encoded) .txt or .md file") from None
        if not reading.texts:
            raise DataError(f"{path.name} is empty")
        return reading
    return _read_dataset(path, column)


def _read_file(path: Path, split_paragraphs: bool, reading: Reading) -> None:
    text, encoding = decode(path.read_bytes())
    name = display(path)
    if encoding != "utf-8":
        reading.encodings[name] = encoding
        log.info("%s decoded as %s", name, encoding)
    if split_paragraphs:
        reading.texts += [SourceText(f"{name}#p{i + 1}", p) for i, p in enumerate(paragraphs(text))]
    elif text.strip():
        reading.texts.append(SourceText(name, text.strip()))


def _read_folder(folder: Path, split_paragraphs: bool) -> Reading:
    reading = Reading()
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.startswith("."))
    for path in files:
        if path.suffix.lower() not in TEXT_SUFFIXES:
            reading.skipped.append((display(path), f"not {' or '.join(TEXT_SUFFIXES)}"))
            continue
        try:
            _read_file(path, split_paragraphs, reading)
        except DataError as e:
            reading.skipped.append((display(path), e.message))
    if not reading.texts:
        why = f" ({len(reading.skipped)} files skipped: {reading.summary()})" if reading.skipped else ""
        raise DataError(f"no text found in {display(folder)}{why}", "put .txt or .md files in the folder")
    return reading


def _read_dataset(path: Path, column: str) -> Reading:
    from workbench.data.read import FILE_TYPES, load_raw

    if path.suffix.lower() not in FILE_TYPES:
        raise DataError(f"{path.name}: not a text (.txt, .md) or dataset ({', '.join(FILE_TYPES)}) file")
    raw = load_raw(str(path))
    columns = list(raw.column_names)
    name = column.strip() or next((c for c in TEXT_COLUMNS if c in columns), "")
    if name not in columns:
        wanted = f"column '{column}'" if column.strip() else f"a text column ({', '.join(TEXT_COLUMNS)})"
        raise DataError(f"{path.name} has no {wanted}; its columns: {', '.join(columns)}",
                        "name the column that holds the texts (column)")
    shown = display(path)
    texts = [SourceText(f"{shown}#{i}", str(v).strip()) for i, v in enumerate(raw[name])
             if isinstance(v, str) and v.strip()]
    if not texts:
        raise DataError(f"column '{name}' of {path.name} holds no text")
    return Reading(texts)
