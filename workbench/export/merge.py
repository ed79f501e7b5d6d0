"""Merge a LoRA adapter into its base weights (a standard HF model folder), or export the adapter alone.

Both write into a temporary sibling folder and rename it into place at the end, so an interrupted
merge never leaves a half-written model where a finished one is expected, and both refuse to write
into a folder that already holds files.
"""
from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from workbench.core.errors import ExportError, ModelError
from workbench.core.files import atomic_dir
from workbench.core.formatting import human_size
from workbench.models.resolve import AdapterSource, adapter_tokenizer, check_adapter_base, find_adapter
from workbench.models.resolve import canonical_model


@dataclass
class MergeResult:
    path: Path
    bytes_written: int
    seconds: float
    base: str


def _dtype_bytes(dtype: str) -> int:
    return {"float32": 4, "float16": 2, "bfloat16": 2, "float64": 8}.get(dtype, 4)


def safetensors_params(folder: Path) -> int:
    """Parameters in a folder's safetensors files, read from their headers (no weights loaded); 0 when none."""
    from safetensors import safe_open

    params = 0
    for f in Path(folder).glob("*.safetensors"):
        with safe_open(str(f), framework="pt") as st:
            for key in st.keys():  # noqa: SIM118 (safe_open is not iterable)
                n = 1
                for d in st.get_slice(key).get_shape():
                    n *= d
                params += n
    return params


def merged_bytes(params: int, dtype: str = "auto") -> int:
    """Bytes of `params` weights saved as a merge saves them (auto: the device's compute dtype): the one size
    rule of the merge and of the export's disk check."""
    from workbench.models.load import pick_dtype

    return params * _dtype_bytes(pick_dtype(dtype))


def estimate_size(base: str, dtype: str = "auto") -> int:
    """Bytes a merged model will take on disk: the base's parameter count times the saved dtype width.

    Read from the safetensors headers of a local base (no weights loaded); a hub base is counted on
    the meta device (no download of weights, only its config)."""
    from workbench.models.resolve import resolve_model

    path = Path(resolve_model(base))
    if path.is_dir() and list(path.glob("*.safetensors")):
        return merged_bytes(safetensors_params(path), dtype)
    import torch
    from accelerate import init_empty_weights
    from transformers import AutoConfig, AutoModelForCausalLM

    with init_empty_weights():
        model = AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(str(path)), dtype=torch.float32)
    return merged_bytes(sum(p.numel() for p in model.parameters()), dtype)


def _check_target(out_dir: str | Path) -> Path:
    if not str(out_dir or "").strip():
        raise ExportError("give an output folder")
    out = Path(out_dir).expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ExportError(f"{out} already exists and is not empty; pick a new folder (nothing was overwritten)")
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def _adapter(run_or_adapter: str | Path) -> AdapterSource:
    try:
        source = find_adapter(run_or_adapter)
    except ModelError as e:
        raise ExportError(str(e)) from None
    if source.path is None:
        raise ExportError("choose a run or an adapter folder")
    if source.full_model:
        raise ExportError(f"this run trained every weight: {source.path} already is a standard model folder "
                         "(nothing to merge)")
    return source


def merge_plan(run_or_adapter: str | Path, base: str | None = None, dtype: str = "auto") -> dict:
    """What a merge would do, before writing anything: the base, the size on disk, the free space."""
    source = _adapter(run_or_adapter)
    base = base or source.base or "default"
    size = estimate_size(base, dtype)
    return {"adapter": str(source.path), "base": canonical_model(base), "bytes": size, "size": human_size(size)}


def _folder_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def merge_adapter(run_or_adapter: str | Path, out_dir: str | Path, base: str | None = None,
                  dtype: str = "auto") -> MergeResult:
    """Load the base in full precision, fold the LoRA update into its weights (PEFT merge_and_unload),
    and save a standard HF model folder (safetensors + tokenizer) that loads without PEFT."""
    from peft import PeftModel

    from workbench.models.load import load_model

    source = _adapter(run_or_adapter)
    base = base or source.base or "default"
    try:
        check_adapter_base(source, base)
    except ModelError as e:
        raise ExportError(str(e)) from None
    out = _check_target(out_dir)
    size = estimate_size(base, dtype)
    free = shutil.disk_usage(out.parent).free
    if size > free:
        raise ExportError(f"the merged model needs about {human_size(size)} but only {human_size(free)} is free "
                         f"on {out.parent}")
    t0 = time.time()
    # A QLoRA adapter is merged into the full-precision base: merging into 4-bit weights would round
    # the update away, and the merged folder is meant to load anywhere without bitsandbytes.
    loaded = load_model(base, dtype=dtype, quantization="none", device="cpu")
    model = PeftModel.from_pretrained(loaded.model, str(source.path)).merge_and_unload()
    tok = adapter_tokenizer(source.path) or loaded.tokenizer
    with atomic_dir(out) as tmp:
        model.save_pretrained(str(tmp), safe_serialization=True)
        tok.save_pretrained(str(tmp))
        (tmp / "workbench_merge.json").write_text(json.dumps(
            {"base": canonical_model(base), "adapter": str(source.path), "dtype": loaded.dtype,
             "merged_at": time.strftime("%Y-%m-%d %H:%M:%S")}, indent=2), encoding="utf-8")
    return MergeResult(out, _folder_bytes(out), round(time.time() - t0, 1), canonical_model(base))


def export_adapter(run_or_adapter: str | Path, out_dir: str | Path) -> Path:
    """Copy the adapter folder alone (weights, adapter_config.json, tokenizer) to out_dir."""
    source = _adapter(run_or_adapter)
    out = _check_target(out_dir)
    with atomic_dir(out) as tmp:
        shutil.copytree(source.path, tmp, dirs_exist_ok=True)
    return out


def adapter_archive(run_or_adapter: str | Path, out_dir: str | Path) -> Path:
    """The adapter folder as one .zip (for a browser download), written into out_dir."""
    source = _adapter(run_or_adapter)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    stem = (source.run.id if source.run else source.path.name) + "-adapter"
    tmp_base = out_dir / f".{stem}.tmp"
    archive = Path(shutil.make_archive(str(tmp_base), "zip", root_dir=source.path))
    final = out_dir / f"{stem}.zip"
    os.replace(archive, final)
    return final
