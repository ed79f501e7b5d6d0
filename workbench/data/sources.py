"""Load a dataset (local file or hub id) as a datasets.Dataset and map it to canonical rows.

Canonical rows are either {instruction, input, output, category} or {messages: [{role, content}]}.
Files are read by `datasets`, which keeps them memory-mapped as Arrow on disk, so a large file is
never held in Python memory whole.

Bad files get a message a person can act on: an empty file, a binary file with a text name, text that
is not UTF-8 (with the line), malformed JSON lines (with their line numbers; `write_valid_lines` copies
the good ones to a new file so they can be used), and columns that fit no known format (what was found,
what each format needs).
"""
from __future__ import annotations

import codecs
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path


from workbench.core.errors import DataError
from workbench.core.paths import data_dir, is_local_path, resolve_local

FILE_TYPES = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet"}

# format → (required columns, optional columns)
FORMATS = {
    "alpaca": ({"instruction", "output"}, {"input", "category"}),
    "dolly": ({"instruction", "response"}, {"context", "category"}),
    "self_instruct": ({"task", "instruction", "output"}, {"input"}),
    "sharegpt": ({"conversations"}, {"category"}),
    "messages": ({"messages"}, {"category"}),
    "prompt_completion": ({"prompt", "completion"}, {"category"}),
}
# Checked in this order: the most specific schemas first.
DETECT_ORDER = ["self_instruct", "dolly", "alpaca", "sharegpt", "messages", "prompt_completion"]
# Where each canonical field of a flat (instruction) format comes from; None = always empty.
FIELD_SOURCES = {
    "alpaca": {"instruction": "instruction", "input": "input", "output": "output", "category": "category"},
    "dolly": {"instruction": "instruction", "input": "context", "output": "response", "category": "category"},
    "self_instruct": {"instruction": "instruction", "input": "input", "output": "output", "category": "task"},
    "prompt_completion": {"instruction": "prompt", "input": None, "output": "completion", "category": "category"},
}
CHAT_FORMATS = ("sharegpt", "messages")
_SHAREGPT_ROLES = {"human": "user", "user": "user", "gpt": "assistant", "assistant": "assistant",
                   "chatgpt": "assistant", "bing": "assistant", "bard": "assistant", "model": "assistant",
                   "system": "system"}
MAX_REPORTED_LINES = 10  # malformed lines named in a message; the count covers all of them


class MalformedLinesError(DataError):
    """Some lines of a JSON Lines file are not JSON objects; the others can still be used."""

    def __init__(self, path: Path, bad: list[tuple[int, str]], n_bad: int, n_good: int):
        self.path, self.bad, self.n_bad, self.n_good = path, bad, n_bad, n_good
        shown = "; ".join(f"line {n}: {why}" for n, why in bad)
        more = f" (and {n_bad - len(bad)} more)" if n_bad > len(bad) else ""
        super().__init__(f"{path.name}: {n_bad} malformed line{'s' if n_bad != 1 else ''} — {shown}{more}. "
                         f"The other {n_good} lines are valid: tick 'skip malformed lines' to use them "
                         "(they are copied to a new file; the original is left as it is).")


@dataclass
class Detection:
    format: str
    reason: str
    columns: list = field(default_factory=list)


def load_raw(source: str, hub_config: str = "", hub_split: str = "train"):
    """The file or hub dataset as it is (columns untouched)."""
    import datasets

    datasets.disable_progress_bars()
    if is_local(source):
        path = resolve_local(source)
        if not path.is_file():
            raise DataError(f"dataset file not found: {source}")
        kind = FILE_TYPES.get(path.suffix.lower())
        if kind is None:
            raise DataError(f"{path.name}: unsupported file type; use one of {', '.join(FILE_TYPES)}")
        check_file(path, kind)
        try:
            ds = datasets.load_dataset(kind, data_files=str(path), split="train")
        except Exception as e:  # datasets wraps parser errors in several exception types
            if kind == "json":
                find_malformed_json(path)  # raises with line numbers when it finds any
            if "corresponds to no data" in str(e):  # datasets' words for a file with no rows
                raise DataError(f"{path.name} holds no rows") from None
            cause = e.__cause__ or e.__context__ or e
            raise DataError(f"{path.name} could not be read as {kind.upper()}: {_first_line(cause)}") from None
        if len(ds) == 0 or not ds.column_names:
            raise DataError(f"{path.name} holds no rows")
        return ds
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


# -- checks before parsing -------------------------------------------------------------------------

def check_file(path: Path, kind: str) -> None:
    """Refuse an empty file, a binary file with a text name, and text that is not UTF-8.

    pyarrow's JSON reader accepts invalid UTF-8 bytes and fails only later, when a row is read, so the
    bytes are checked here (a streaming decode: about 0.6 s per GB).
    """
    size = path.stat().st_size
    if size == 0:
        raise DataError(f"{path.name} is empty (0 bytes)")
    if kind == "parquet":
        return
    with open(path, "rb") as f:
        head = f.read(8192)
    if b"\x00" in head:
        raise DataError(f"{path.name} looks like a binary file (it contains NUL bytes), not {kind.upper()} text; "
                        "check that you picked the right file")
    if not head.strip():
        raise DataError(f"{path.name} holds only whitespace")
    decoder = codecs.getincrementaldecoder("utf-8")()
    offset, line = 0, 1
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1 << 22)
            try:
                decoder.decode(chunk, final=not chunk)
            except UnicodeDecodeError as e:
                at = e.start  # position within the buffered bytes; close enough to name the line
                line += chunk[:max(at, 0)].count(b"\n")
                raise DataError(f"{path.name} is not UTF-8 text: byte 0x{chunk[at]:02x} near line {line} "
                                "cannot be decoded. Re-save the file as UTF-8 (e.g. iconv -f latin1 -t utf-8)."
                                ) from None
            if not chunk:
                return
            line += chunk.count(b"\n")
            offset += len(chunk)


def _is_json_array(path: Path) -> bool:
    with open(path, "rb") as f:
        return f.read(4096).lstrip().startswith(b"[")


def find_malformed_json(path: Path) -> None:
    """Raise DataError naming the malformed lines of a JSON / JSON Lines file; return if none found."""
    if _is_json_array(path):
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as e:
            raise DataError(f"{path.name} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}") from None
        if not isinstance(data, list) or not all(isinstance(r, dict) for r in data):
            raise DataError(f"{path.name}: a JSON file must hold a list of objects (one per row)")
        return
    bad, n_bad, n_good = [], 0, 0
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            if not line.strip():
                continue
            why = _json_line_problem(line)
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


def _json_line_problem(line: str) -> str | None:
    try:
        value = json.loads(line)
    except json.JSONDecodeError as e:
        return f"{e.msg} (column {e.colno})"
    return None if isinstance(value, dict) else f"a JSON {type(value).__name__}, not an object"


def write_valid_lines(path: Path) -> tuple[Path, int]:
    """Copy the lines of a JSON Lines file that are JSON objects to a new versioned file under data/.

    The original file is never modified. Returns (new file, number of lines skipped)."""
    skipped = 0

    def good_lines():
        nonlocal skipped
        with open(path, encoding="utf-8") as f:
            for line in f:
                if not line.strip():
                    continue
                if _json_line_problem(line) is None:
                    yield line if line.endswith("\n") else line + "\n"
                else:
                    skipped += 1

    out = write_versioned(path.stem, "valid", good_lines())
    return out, skipped


def write_versioned(stem: str, tag: str, lines, suffix: str = ".jsonl") -> Path:
    """Write lines to data/cleaned/<stem>.<tag>-v<N><suffix> with the next free N; never overwrites.

    The text goes to a temp file first and is then hard-linked under its final name, which fails
    instead of replacing a file that appeared meanwhile, so a reader never sees half a file.
    """
    import tempfile

    folder = data_dir() / "cleaned"
    folder.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", stem).strip("._") or "dataset"
    stem = re.sub(rf"\.{tag}-v\d+$", "", stem)  # cleaning a cleaned file: x.clean-v2, not x.clean-v1.clean-v1
    fd, tmp = tempfile.mkstemp(prefix=f".{stem}.", dir=folder)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            for line in lines:
                f.write(line)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        version = 1 + max([int(m.group(1)) for p in folder.glob(f"{stem}.{tag}-v*{suffix}")
                           if (m := re.search(rf"\.{tag}-v(\d+){re.escape(suffix)}$", p.name))], default=0)
        while True:
            final = folder / f"{stem}.{tag}-v{version}{suffix}"
            try:
                os.link(tmp, final)
                return final
            except FileExistsError:
                version += 1
    finally:
        Path(tmp).unlink(missing_ok=True)


# -- formats ---------------------------------------------------------------------------------------

def parse_column_map(text) -> dict:
    """'context→input, response: output' (or ->, =, one per line, or a JSON/YAML mapping) as a dict."""
    if isinstance(text, dict):
        return {str(k).strip(): str(v).strip() for k, v in text.items()}
    text = (text or "").strip()
    if not text:
        return {}
    if text.startswith("{"):
        import yaml

        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise DataError(f"column map is not a valid mapping: {_first_line(e)}") from None
        if not isinstance(data, dict):
            raise DataError("column map must map source columns to new names, e.g. {context: input}")
        return parse_column_map(data)
    out = {}
    for part in re.split(r"[,\n;]+", text):
        if not part.strip():
            continue
        pieces = re.split(r"\s*(?:→|->|=>|=|:)\s*", part.strip(), maxsplit=1)
        if len(pieces) != 2 or not pieces[0] or not pieces[1]:
            raise DataError(f"column map entry {part.strip()!r} should look like 'context→input' or 'context: input'")
        out[pieces[0]] = pieces[1]
    return out


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


def detect_format(columns) -> Detection:
    cols = set(columns)
    for fmt in DETECT_ORDER:
        required, optional = FORMATS[fmt]
        if required <= cols:
            found = sorted(required | (optional & cols))
            return Detection(fmt, f"columns {', '.join(found)} match the {fmt} schema{_ignored(cols, found)}",
                             sorted(cols))
    raise DataError(no_format_message(cols))


def _ignored(cols: set, used: list) -> str:
    rest = sorted(cols - set(used))
    return f" (ignored: {', '.join(rest)})" if rest else ""


def no_format_message(columns) -> str:
    cols = set(columns)
    hints = "; ".join(f"{fmt} needs {', '.join(sorted(FORMATS[fmt][0]))}"
                      + (f" (missing {', '.join(sorted(FORMATS[fmt][0] - cols))})" if FORMATS[fmt][0] & cols else "")
                      for fmt in DETECT_ORDER)
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


def to_canonical(row: dict, fmt: str) -> dict:
    """One raw row of a known format as a canonical row."""
    s = lambda k: "" if row.get(k) is None else str(row.get(k))  # noqa: E731
    if fmt in ("alpaca", "self_instruct"):
        return {"instruction": s("instruction"), "input": s("input"), "output": s("output"),
                "category": s("task") if fmt == "self_instruct" else s("category")}
    if fmt == "dolly":
        return {"instruction": s("instruction"), "input": s("context"), "output": s("response"),
                "category": s("category")}
    if fmt == "prompt_completion":
        return {"instruction": s("prompt"), "input": "", "output": s("completion"), "category": s("category")}
    if fmt == "sharegpt":
        msgs = [{"role": _SHAREGPT_ROLES.get(str(t.get("from", "")).lower(), "user"), "content": str(t.get("value", ""))}
                for t in row.get("conversations") or []]
        return {"messages": msgs, "category": s("category")}
    if fmt == "messages":
        msgs = [{"role": str(m.get("role", "user")), "content": str(m.get("content", ""))}
                for m in row.get("messages") or []]
        return {"messages": msgs, "category": s("category")}
    raise DataError(f"unknown format {fmt!r}")


def rename(raw, column_map: dict | None):
    """The raw Dataset with the column map applied (before format detection)."""
    renames = column_renames(raw.column_names, column_map)
    return raw.rename_columns(renames) if renames else raw


def prepare(raw, fmt: str = "auto", column_map: dict | None = None):
    """Rename columns, detect (or check) the format and return (canonical Dataset, Detection)."""
    raw = rename(raw, column_map)
    det = detect_or_check(raw.column_names, fmt)
    canonical = raw.map(lambda r: to_canonical(r, det.format), remove_columns=raw.column_names,
                        desc=None, load_from_cache_file=False)
    if len(canonical) == 0:
        raise DataError("the dataset has no rows")
    return canonical, det


def load_canonical(source: str, fmt: str = "auto", column_map: dict | None = None,
                   hub_config: str = "", hub_split: str = "train"):
    return prepare(load_raw(source, hub_config, hub_split), fmt, column_map)


def split_sizes(n: int, val_size: float, test_size: float) -> dict:
    """Rows in train / validation / test for n rows (the same arithmetic split() uses)."""
    n_test = int(round(n * test_size))
    n_val = int(round(n * val_size))
    if n - n_test - n_val < 1:
        raise DataError(f"{n} rows are too few for val_size={val_size} and test_size={test_size}")
    return {"train": n - n_test - n_val, "validation": n_val, "test": n_test}


def split(ds, val_size: float, test_size: float, seed: int):
    """Shuffle once with the seed, then cut test, validation and train (85/10/5 by default)."""
    sizes = split_sizes(len(ds), val_size, test_size)
    n, n_test, n_val = len(ds), sizes["test"], sizes["validation"]
    ds = ds.shuffle(seed=seed)
    return {"train": ds.select(range(n_test + n_val, n)),
            "validation": ds.select(range(n_test, n_test + n_val)),
            "test": ds.select(range(n_test))}


def ui_source(source: str) -> str:
    """A source typed in the web UI: a local path confined to the allowed folders, or a hub id."""
    from workbench.core.errors import PathError
    from workbench.core.paths import confine

    source = (source or "").strip()
    if not source:
        raise DataError("no dataset given: type a file path under data/ or a hub dataset id, or upload a file")
    if is_local(source):
        try:
            return str(confine(source))
        except PathError as e:
            raise DataError(str(e)) from None
    return source


def is_local(source: str) -> bool:
    """A data source on this machine (a file), not a hub dataset id."""
    return is_local_path(source, tuple(FILE_TYPES))
