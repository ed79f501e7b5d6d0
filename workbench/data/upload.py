"""Browser uploads: copy the temp file Gradio hands over into data/uploads/ under a new name.

The copy is what gets loaded (and what a run's config points at), so a run can be reproduced after
Gradio has cleaned its temp folder. A file never replaces another: a taken name gets -2, -3, ... and the
copy appears under its name only once it is complete.
"""
from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from workbench.core.errors import DataError
from workbench.core.files import unique_path
from workbench.core.formatting import safe_name
from workbench.core.paths import data_dir
from workbench.data.read import FILE_TYPES

DEFAULT_MAX_MB = 200


def max_upload_bytes() -> int:
    """WORKBENCH_MAX_UPLOAD_MB (default 200) in bytes."""
    raw = os.environ.get("WORKBENCH_MAX_UPLOAD_MB", "") or str(DEFAULT_MAX_MB)
    try:
        return int(float(raw) * 1024 * 1024)
    except ValueError:
        return DEFAULT_MAX_MB * 1024 * 1024


def uploads_dir() -> Path:
    return data_dir() / "uploads"


def save_upload(temp_path: str | Path, original_name: str = "", file_types=FILE_TYPES,
                folder: Path | None = None) -> Path:
    """Check type and size, then copy an uploaded file to data/uploads/<name> (or `folder`; a fresh name)."""
    src = Path(temp_path)
    if not src.is_file():
        raise DataError("the upload did not arrive (no file); try again")
    name = Path(original_name or src.name).name
    suffix = Path(name).suffix.lower()
    if suffix not in file_types:
        raise DataError(f"{name}: unsupported file type; upload one of {', '.join(file_types)}")
    size, limit = src.stat().st_size, max_upload_bytes()
    if size > limit:
        raise DataError(f"{name} is {size / 2**20:.1f} MB, over the {limit / 2**20:.0f} MB upload limit "
                        "(WORKBENCH_MAX_UPLOAD_MB); put large files in data/ directly")
    folder = folder or uploads_dir()
    folder.mkdir(parents=True, exist_ok=True)
    wanted = folder / f"{safe_name(Path(name).stem, 'upload')}{suffix}"
    # Bytes, not text, so core.files.create_text does not fit; the same way: a temp file, then a hard link
    # under a free name, which fails (and the next name is tried) if the name was taken meanwhile.
    fd, tmp = tempfile.mkstemp(prefix=".upload.", dir=folder)
    try:
        os.chmod(tmp, 0o644)
        with os.fdopen(fd, "wb") as out, open(src, "rb") as inp:
            shutil.copyfileobj(inp, out, 1 << 20)
        while True:
            target = unique_path(wanted)
            try:
                os.link(tmp, target)
                return target
            except FileExistsError:
                continue
    finally:
        Path(tmp).unlink(missing_ok=True)
