"""Read a dataset (a local file or a hub id) as a datasets.Dataset, columns as they are.

Files are read by `datasets`, which keeps them memory-mapped as Arrow on disk, so a large file is never
held in Python memory whole. Each file is read the way it was written (shapes.py: CSV delimiter and
byte-order mark, JSON arrays, JSON Lines, bare message lists, rows under a top-level key), and how it was
read comes back as notes for the load message.

Bad files get a message a person can act on: an empty file, a binary file with a text name, JSON that
is not UTF-8 (with the line), malformed JSON lines (with their line numbers; repair.py offers to copy the
good ones to a new file). A CSV or TSV is decoded as text_files.py finds it: a byte-order mark (Excel's
"Unicode text" is UTF-16), UTF-8, else detection (GB18030 from a Chinese Excel), said in the notes.
"""
from __future__ import annotations

import codecs
import logging
from pathlib import Path

from workbench.core.errors import DataError, PathError
from workbench.core.paths import confine, is_local_path, resolve_local
from workbench.data import shapes, text_files
from workbench.data.repair import find_malformed_json

log = logging.getLogger(__name__)

FILE_TYPES = {".json": "json", ".jsonl": "json", ".csv": "csv", ".tsv": "csv", ".parquet": "parquet"}


def is_local(source: str) -> bool:
    """A data source on this machine (a file), not a hub dataset id."""
    return is_local_path(source, tuple(FILE_TYPES))


def local_files() -> list[str]:
    """Dataset files under the data folders (data/, WORKBENCH_DATA), as the user would type them: the Data
    tab's file list, so a file written by another tab (cleaning, generation) shows up at once."""
    from workbench.core.paths import PROJECT_ROOT, data_dir, display

    found = {display(p) for root in {(PROJECT_ROOT / "data").resolve(), data_dir().resolve()} if root.is_dir()
             for p in root.rglob("*") if p.suffix.lower() in FILE_TYPES and p.is_file() and
             not any(part.startswith(".") for part in p.relative_to(root).parts)}
    return sorted(found)


def ui_source(source: str) -> str:
    """A source typed in the web UI: a local path confined to the allowed folders, or a hub id."""
    source = (source or "").strip()
    if not source:
        raise DataError("no dataset given: type a file path under data/ or a hub dataset id, or upload a file")
    if is_local(source):
        try:
            return str(confine(source))
        except PathError as e:
            raise DataError(e.message, e.hint) from None
    return source


def load_raw(source: str, hub_config: str = "", hub_split: str = "train"):
    """The file or hub dataset as it is (columns untouched)."""
    return read_raw(source, hub_config, hub_split)[0]


def read_raw(source: str, hub_config: str = "", hub_split: str = "train") -> tuple[object, list[str]]:
    """(the Dataset as it is, notes on how it was read: delimiter, top-level key, ...)."""
    import datasets

    datasets.disable_progress_bars()
    if not is_local(source):
        return _read_hub(source, hub_config, hub_split), []
    path = resolve_local(source)
    if not path.is_file():
        raise DataError(f"dataset file not found: {source}")
    kind = FILE_TYPES.get(path.suffix.lower())
    if kind is None:
        raise DataError(f"{path.name}: unsupported file type; use one of {', '.join(FILE_TYPES)}")
    encoding = check_file(path, kind)
    notes: list[str] = []
    try:
        if kind == "json":
            ds = _read_json(path, notes)
        elif kind == "csv":
            ds = _read_csv(path, notes, encoding)
        else:
            ds = datasets.load_dataset(kind, data_files=str(path), split="train")
    except DataError:
        raise
    except Exception as e:  # datasets wraps parser errors in several exception types
        if kind == "json":
            find_malformed_json(path)  # raises with line numbers when it finds any
        if "corresponds to no data" in str(e):  # datasets' words for a file with no rows
            raise DataError(f"{path.name} holds no rows") from None
        cause = e.__cause__ or e.__context__ or e
        raise DataError(f"{path.name} could not be read as {kind.upper()}: {_first_line(cause)}") from None
    if len(ds) == 0 or not ds.column_names:
        raise DataError(f"{path.name} holds no rows")
    for note in notes:
        log.info("%s: %s", path.name, note)
    return ds, notes


def _read_json(path: Path, notes: list[str]):
    import datasets

    layout = shapes.json_layout(path)
    if layout == "message_lines":
        notes.append("each line is a bare list of {role, content} messages, read as the messages format")
        return shapes.load_message_lines(path)
    key = shapes.wrapped_rows_key(path, layout)
    if key is None:
        return datasets.load_dataset("json", data_files=str(path), split="train")
    ds = datasets.load_dataset("json", data_files=str(path), field=key, split="train")
    notes.append(f"rows read from the top-level key {key!r}")
    return ds


def _read_csv(path: Path, notes: list[str], encoding: str = "utf-8-sig"):
    import datasets

    dialect = shapes.sniff_csv(path, encoding)
    # Every cell is read as text: a CSV has no types, and a column of numbers is still an answer to train on.
    # Only an empty cell is missing (not "NA", "null" or "None", which are text someone wrote).
    kwargs = dict(sep=dialect.delimiter, encoding=encoding, keep_default_na=False, na_values=[""])
    if dialect.columns and all(dialect.columns):
        features = datasets.Features({c: datasets.Value("string") for c in dialect.columns})
        try:
            ds = datasets.load_dataset("csv", data_files=str(path), split="train", features=features, **kwargs)
            notes.append(dialect.note())
            return ds
        except Exception:  # noqa: BLE001 - e.g. a header pandas reads differently: read it with its own types
            log.debug("%s: reading every column as text failed; letting pandas infer the types", path.name)
    ds = datasets.load_dataset("csv", data_files=str(path), split="train", **kwargs)
    notes.append(dialect.note())
    return ds


def _read_hub(source: str, hub_config: str, hub_split: str):
    import datasets

    try:
        return datasets.load_dataset(source, hub_config or None, split=hub_split or "train")
    except Exception as e:
        from workbench.models.resolve import offline

        if offline():
            raise DataError(f"dataset '{source}' is not cached locally and HF_HUB_OFFLINE is set; "
                            "load a local JSON/JSONL/CSV/Parquet file instead") from None
        raise DataError(f"could not load hub dataset '{source}': {_first_line(e)}") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip() or type(e).__name__
    return text.splitlines()[0][:300]


def check_file(path: Path, kind: str) -> str:
    """Refuse an empty file, a binary file with a text name, and JSON that is not UTF-8; the encoding to read
    the file with (a CSV in UTF-16 or GB18030 is read as it is: text_files.py).

    pyarrow's JSON reader accepts invalid UTF-8 bytes and fails only later, when a row is read, so the
    bytes are checked here (a streaming decode: about 0.6 s per GB).
    """
    if path.stat().st_size == 0:
        raise DataError(f"{path.name} is empty (0 bytes)")
    if kind == "parquet":
        return ""
    with open(path, "rb") as f:
        head = f.read(8192)
    marked = text_files.bom(head)
    if kind == "json" and marked is not None and marked[0] != "utf-8":
        raise DataError(f"{path.name} is {marked[0]} text (it starts with a byte-order mark); JSON files must be "
                        f"UTF-8. Re-save it as UTF-8 (e.g. iconv -f {marked[0]} -t utf-8)")
    if marked is None and b"\x00" in head:
        raise DataError(f"{path.name} looks like a binary file (it contains NUL bytes), not {kind.upper()} text; "
                        "check that you picked the right file")
    if kind == "csv":
        try:
            found = text_files.file_encoding(path)
        except DataError as e:
            raise DataError(f"{path.name}: {e.message}") from None
        text = head.decode(found.encoding, errors="replace").lstrip("\ufeff")
        if not text.strip():
            raise DataError(f"{path.name} holds only whitespace")
        if found.how == "detection":
            log.info("%s decoded as %s (detection)", path.name, found.encoding)
        return found.encoding if found.how != "utf-8" else "utf-8-sig"
    if not head.removeprefix(codecs.BOM_UTF8).strip():
        raise DataError(f"{path.name} holds only whitespace")
    bad = text_files.utf8_error(path)
    if bad is not None:
        byte, line = bad
        raise DataError(f"{path.name} is not UTF-8 text: byte 0x{byte:02x} near line {line} cannot be decoded. "
                        "Re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8).")
    return "utf-8"
