"""Texts in: a folder of .txt / .md files, one such file, a text column of a dataset file, or pasted text.

Files are decoded by the one reader the Data tab shares (data/text_files.py: byte-order mark, binary test,
UTF-8, detection) and how each was decoded is reported. In a folder, empty, binary or undecodable files are
skipped and listed with the reason; a single such file given alone is refused with its name. Every path is
confined to the allowed folders.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path

from workbench.core.errors import DataError, PathError
from workbench.core.paths import confine, display
from workbench.data.text_files import Decoded, file_encoding, read_text

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
    encodings: dict[str, str] = field(default_factory=dict)  # file → encoding, for files decoded by detection
    marked: dict[str, str] = field(default_factory=dict)  # file → encoding, for files with a byte-order mark

    def summary(self) -> str:
        return " · ".join([f"{len(self.texts):,} texts read", *file_notes(self.skipped, self.encodings,
                                                                            self.marked)])


def file_notes(skipped, encodings: dict, marked: dict | None = None) -> list[str]:
    """What happened to the files, in words: every one skipped (why) and every one not read as plain UTF-8
    (its encoding). Also what the CLI, the tab and the card say from a work folder's summary."""
    parts = []
    if encodings:
        parts.append("decoded by detection: " + ", ".join(f"{Path(f).name} ({e})" for f, e in encodings.items()))
    if marked:
        parts.append("decoded by byte-order mark: " + ", ".join(f"{Path(f).name} ({e})" for f, e in marked.items()))
    if skipped:
        parts.append(f"{len(skipped)} file{'s' if len(skipped) != 1 else ''} skipped: " +
                     "; ".join(f"{Path(f).name} ({why})" for f, why in skipped))
    return parts


def work_file_notes(summary: dict) -> list[str]:
    """A work folder's files skipped and decoded (its summary.json), in words: the CLI, the Generate tab and the
    dataset card say them."""
    return file_notes(summary.get("skipped_files", []), summary.get("encodings", {}), summary.get("marked", {}))


def paragraphs(text: str) -> list[str]:
    return [p.strip() for p in _PARAGRAPH.split(text) if p.strip()]


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
                            "give a .txt or .md file of text (UTF-8, UTF-16 or another encoding)") from None
        return reading
    return _read_dataset(path, column)


def _read_file(path: Path, split_paragraphs: bool, reading: Reading) -> None:
    """The file's texts into `reading`; DataError saying why a file holds none (empty, binary, not text)."""
    decoded = read_text(path)
    text, name = decoded.text, display(path)
    if not text.strip():
        raise DataError("only whitespace")
    _note_encoding(reading, name, decoded)
    if split_paragraphs:
        reading.texts += [SourceText(f"{name}#p{i + 1}", p) for i, p in enumerate(paragraphs(text))]
    else:
        reading.texts.append(SourceText(name, text.strip()))


def _note_encoding(reading: Reading, name: str, decoded: Decoded) -> None:
    if decoded.how == "utf-8":
        return
    (reading.encodings if decoded.how == "detection" else reading.marked)[name] = decoded.encoding
    log.info("%s decoded as %s (%s)", name, decoded.encoding, decoded.how)


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
        why = f" ({'; '.join(file_notes(reading.skipped, {}))})" if reading.skipped else ""
        raise DataError(f"no text found in {display(folder)}{why}", "put .txt or .md files in the folder")
    return reading


def _read_dataset(path: Path, column: str) -> Reading:
    from workbench.data.read import FILE_TYPES, load_raw

    if path.suffix.lower() not in FILE_TYPES:
        raise DataError(f"{path.name}: not a text (.txt, .md) or dataset ({', '.join(FILE_TYPES)}) file")
    raw = load_raw(str(path))
    reading = Reading()
    if FILE_TYPES[path.suffix.lower()] == "csv":  # a CSV is decoded as found (UTF-16, GB18030...): said so
        _note_encoding(reading, display(path), file_encoding(path))
    columns = list(raw.column_names)
    name = column.strip() or next((c for c in TEXT_COLUMNS if c in columns), "")
    if name not in columns:
        wanted = f"column '{column}'" if column.strip() else f"a text column ({', '.join(TEXT_COLUMNS)})"
        raise DataError(f"{path.name} has no {wanted}; its columns: {', '.join(columns)}",
                        "name the column that holds the texts (column)")
    shown = display(path)
    reading.texts = [SourceText(f"{shown}#{i}", str(v).strip()) for i, v in enumerate(raw[name])
                     if isinstance(v, str) and v.strip()]
    if not reading.texts:
        raise DataError(f"column '{name}' of {path.name} holds no text")
    return reading
