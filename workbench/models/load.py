"""Load a causal LM and its tokenizer as a preflight plan (or explicit arguments) says: dtype, quantization,
attention, device. The device decisions themselves are made here, once, from a small table, and the plan
records them:

    device  requested  → dtype
    cpu     auto       → float32   (a CPU without native bf16 runs a bf16 step ~13x slower, measured here)
    cuda    auto       → bfloat16 where supported, else float16
    any     explicit   → as asked
"""
from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass

from workbench.models.resolve import hub_error, resolve_model

log = logging.getLogger(__name__)


def device_kind() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(requested: str = "auto", device: str | None = None) -> str:
    """The compute dtype's name ('float32', 'bfloat16', 'float16') for `device` (default: this machine)."""
    if requested and requested != "auto":
        return requested
    device = device or device_kind()
    if device == "cuda":
        import torch

        if torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
            return "float16"
        return "bfloat16"
    return "float32"


def torch_dtype(name: str):
    import torch

    return getattr(torch, name)


def pick_attention(requested: str = "auto") -> tuple[str, str]:
    """Return (implementation, why). flash_attention_2 needs the flash-attn package and an Ampere+ GPU."""
    import torch

    if requested not in ("auto", "flash_attention_2"):
        return requested, "requested"
    has_flash = importlib.util.find_spec("flash_attn") is not None
    has_gpu = torch.cuda.is_available()
    capable = has_gpu and torch.cuda.get_device_capability()[0] >= 8
    if has_flash and capable:
        return "flash_attention_2", "flash-attn installed and GPU compute capability >= 8"
    why = ("flash-attn is not installed" if not has_flash else
           "no CUDA GPU" if not has_gpu else "GPU compute capability < 8 (needs Ampere or newer)")
    if requested == "flash_attention_2":
        return "sdpa", f"flash_attention_2 unavailable: {why}"
    return "sdpa", f"auto: {why}, so PyTorch scaled_dot_product_attention"


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
        raise hub_error(name, e) from None
    if tok.pad_token is None:  # batches need a pad token; masked out of the loss anyway
        tok.pad_token = tok.eos_token
    return tok


def bnb_config(quantization: str, compute_dtype: str, double_quant: bool = True):
    if quantization == "none":
        return None
    from transformers import BitsAndBytesConfig

    if quantization == "8bit":
        return BitsAndBytesConfig(load_in_8bit=True)
    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=double_quant,
                              bnb_4bit_compute_dtype=torch_dtype(compute_dtype))


def load_model(name: str, *, dtype: str = "auto", quantization: str = "none", compute_dtype: str = "auto",
               double_quant: bool = True, attention: str = "auto", trust_remote_code: bool = False,
               device: str | None = None) -> LoadedModel:
    """Load a causal LM (and its tokenizer) ready for training or inference on this device."""
    from transformers import AutoModelForCausalLM

    device = device or device_kind()
    path = resolve_model(name)
    dtype = pick_dtype(dtype, device)
    impl, reason = pick_attention(attention)
    qcfg = bnb_config(quantization, pick_dtype(compute_dtype, device) if compute_dtype == "auto" else compute_dtype,
                      double_quant)
    kwargs = dict(dtype=torch_dtype(dtype), attn_implementation=impl, trust_remote_code=trust_remote_code,
                  use_safetensors=True)
    if qcfg is not None:
        import torch

        kwargs["quantization_config"] = qcfg
        # The current CUDA device: 0 in one process, this process's own GPU under accelerate launch / torchrun.
        kwargs["device_map"] = {"": torch.cuda.current_device()} if device == "cuda" else {"": "cpu"}
    log.info("loading %s (%s, %s attention, quantization %s, %s)", name, dtype, impl, quantization, device)
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except OSError as e:
        raise hub_error(name, e) from None
    if qcfg is None and device == "cuda":
        model.to("cuda")
    tok = load_tokenizer(name, trust_remote_code)
    return LoadedModel(model, tok, path, dtype, impl, reason, quantization)
