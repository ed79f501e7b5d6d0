"""Where a model name points: the embedded default, a local folder, or a hub id. Decided here only."""
from __future__ import annotations

import json
import os
from pathlib import Path

from workbench.core.errors import ModelError
from workbench.core.paths import is_local_path, resolve_local
from workbench.models.embedded import CONVERTED_NAME, DEFAULT_MODEL_ID, default_model_dir, is_default

# Architecture sizes that must agree between an adapter's base and the model it is applied to.
ARCH_KEYS = ("model_type", "hidden_size", "num_hidden_layers", "intermediate_size", "vocab_size")


def is_local_model(name: str | None) -> bool:
    """The one model-path test: a folder on this machine (or meant to be one), not 'default' or a hub id."""
    return not is_default(name) and is_local_path(name)


def resolve_model(name: str) -> str:
    """'default' → the converted embedded model; a local folder → its path; anything else → a hub id."""
    name = (name or "").strip()
    if is_default(name):
        return str(default_model_dir())
    if is_local_model(name):
        path = resolve_local(name)
        if not path.is_dir():
            raise ModelError(f"model folder not found: {name}")
        if not (path / "config.json").is_file():
            raise ModelError(f"{path} is a folder but has no config.json: not a Hugging Face model folder")
        return str(path)
    return name  # a hub id: from_pretrained downloads it (or finds it in the HF cache)


def canonical_model(name: str | None) -> str:
    """One spelling per model: 'default', the hub id and any converted copy of the embedded model agree."""
    name = (name or "").strip()
    if is_default(name):
        return DEFAULT_MODEL_ID
    if is_local_model(name):
        # The default is converted into a cache dir that differs between machines (WORKBENCH_CACHE).
        p = resolve_local(name)
        return DEFAULT_MODEL_ID if p.name == CONVERTED_NAME else str(p.resolve())
    return name


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


def hub_error(name: str, err: Exception) -> ModelError:
    if offline():
        return ModelError(f"model '{name}' is not in the local Hugging Face cache and HF_HUB_OFFLINE is set",
                          "use 'default', a local model folder, or go online once to download it")
    return ModelError(f"could not load model '{name}': {str(err).splitlines()[0][:300]}")


def architecture(name: str | None) -> dict | None:
    """The architecture sizes of a locally available model, or None when it is not on this machine."""
    try:
        path = Path(resolve_model(name or "default"))
    except ModelError:
        return None
    try:
        cfg = json.loads((path / "config.json").read_text(encoding="utf-8")) if path.is_dir() else {}
    except (OSError, ValueError):
        cfg = {}
    return {k: cfg.get(k) for k in ARCH_KEYS} if cfg else None
