"""This device's compute dtype and attention kernel: decided here, once, from a small table.

    device  requested  → dtype
    cpu     auto       → float32   (a CPU without native bf16 runs a bf16 step ~13x slower, measured here)
    cuda    auto       → bfloat16 where supported, else float16
    any     explicit   → as asked
"""
from __future__ import annotations

import importlib.util


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
