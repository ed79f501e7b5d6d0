"""The estimate's arithmetic, one job each section: a model's parameter layout without its weights, the bytes a
run holds at its peak and the seconds per step, and what this machine offers (free memory, matmul speed).

Shape: built on the `meta` device from the model's config alone. Exact when the config is at hand (a local
folder, 'default', or a hub id in the local cache): shapes only, no weights, a fraction of a second even for
70B, so LoRA's trainable parameters are summed over the very Linear layers PEFT would wrap. A hub id whose
config is not here (offline) falls back to a LLaMA-shaped guess from the size in its name ("7b"), and says so
in `source`.

Memory = weights (bytes per parameter by dtype / 4-bit / 8-bit) + trainable state (weights, gradients,
optimizer moments) + activations (batch x length x hidden x layers x ~34 bytes at 16-bit, Korthikanti et al.
2022; only the layer inputs with gradient checkpointing) + logits + a fixed runtime overhead.
Time = training FLOPs per token (4N for adapters on a frozen base, 6N for full training, +2N recompute with
checkpointing) over this device's measured matmul speed at a typical utilisation. Preference methods run
several sequences per row (passes()). These are estimates: they say whether a run is in the right range, not to
the second; tests/test_estimate_measured.py holds them to a real run.

The speed is measured rather than looked up because the same CPU model runs at very different speeds with
different core counts, thread settings and neighbours; a GPU this machine does not have gets a nominal figure.
"""
from __future__ import annotations

import functools
import logging
import math
import re
import time
from dataclasses import dataclass

from workbench.config.run import RunConfig
from workbench.core.errors import ModelError

log = logging.getLogger(__name__)


# LLaMA-family shapes by size (billions of parameters), for hub models whose config is not available offline.
GUESSED_SHAPES = {
    1.1: dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
              num_key_value_heads=4, vocab_size=32000),
    3: dict(hidden_size=3200, intermediate_size=8640, num_hidden_layers=26, num_attention_heads=32, vocab_size=32000),
    7: dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32, vocab_size=32000),
    8: dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
            num_key_value_heads=8, vocab_size=128256),
    13: dict(hidden_size=5120, intermediate_size=13824, num_hidden_layers=40, num_attention_heads=40,
             vocab_size=32000),
    34: dict(hidden_size=8192, intermediate_size=22016, num_hidden_layers=48, num_attention_heads=64,
             num_key_value_heads=8, vocab_size=32000),
    70: dict(hidden_size=8192, intermediate_size=28672, num_hidden_layers=80, num_attention_heads=64,
             num_key_value_heads=8, vocab_size=32000),
}
SIZE_IN_NAME = re.compile(r"(\d+(?:\.\d+)?)\s*[bB](?![a-zA-Z])")  # "7b", "1.1B", "Llama-2-13b-hf"


@dataclass
class ModelShape:
    params: int  # every parameter
    linear_params: int  # in Linear layers other than the output head: what bitsandbytes quantizes
    matmul_params: int  # parameters used in matmuls per token (Linear layers + the output head)
    hidden: int
    layers: int
    vocab: int
    linear_dims: dict  # module name -> (in_features, out_features), output head excluded
    source: str  # where the shape came from


@functools.lru_cache(maxsize=16)
def model_shape(name: str, trust_remote_code: bool = False) -> ModelShape:
    """The layout of model `name` ('default', a folder, a hub id; or a Plan's model_path) from its config.

    Raises ModelError when the config is not here and the name gives no size to guess from, or when the
    architecture cannot be built from its config (so the caller can show why instead of an estimate).
    """
    from transformers import AutoConfig

    from workbench.models.resolve import resolve_model

    try:
        path = resolve_model(name)
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
        source = "from the model config"
    except (OSError, ValueError, ModelError) as e:  # not cached offline, or a folder that is not a model
        config, source = _guessed_config(name, e)
    return _shape_from_config(name, config, trust_remote_code, source)


def _guessed_config(name: str, err: Exception):
    from transformers import LlamaConfig

    m = SIZE_IN_NAME.search(name)
    if not m:
        raise ModelError(f"cannot estimate '{name}': its config is not available here ({err}) and the name "
                         "gives no size such as '7b'",
                         "use 'default', a local model folder, or a hub id in the local Hugging Face cache") from None
    size = float(m.group(1))
    nearest = min(GUESSED_SHAPES, key=lambda s: abs(math.log(s / size)))
    log.debug("no config for %s (%s): guessing a LLaMA-like %gB shape", name, err, nearest)
    return LlamaConfig(**GUESSED_SHAPES[nearest]), (f"config not available here; LLaMA-like {nearest:g}B shape "
                                                    f"guessed from '{m.group(0)}' in the name")


def _shape_from_config(name: str, config, trust_remote_code: bool, source: str) -> ModelShape:
    import torch
    from transformers import AutoModelForCausalLM

    try:
        with torch.device("meta"):  # shapes only: no memory for weights, nothing initialised
            model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    except (ValueError, KeyError, ImportError) as e:  # e.g. an architecture this transformers does not know
        first_line = (str(e).splitlines() or [""])[0][:200]
        raise ModelError(f"cannot estimate '{name}': its architecture cannot be built here "
                         f"({type(e).__name__}: {first_line})",
                         "a causal language model that this transformers version supports is needed") from None
    head = model.get_output_embeddings()
    linear_dims = {n: (m.in_features, m.out_features) for n, m in model.named_modules()
                   if isinstance(m, torch.nn.Linear) and m is not head}
    linear = sum(i * o for i, o in linear_dims.values())
    head_params = head.weight.numel() if head is not None else 0
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return ModelShape(params=sum(p.numel() for p in model.parameters()), linear_params=linear,
                      matmul_params=linear + head_params, hidden=text.hidden_size, layers=text.num_hidden_layers,
                      vocab=text.vocab_size, linear_dims=linear_dims, source=source)


def lora_params(shape: ModelShape, r: int, target_modules: str) -> int:
    """r x (in + out) for every Linear PEFT would wrap ('all-linear' = all but the output head)."""
    targets = target_modules.strip()
    names = None if targets == "all-linear" else {t.strip() for t in targets.split(",") if t.strip()}
    return sum(r * (i + o) for n, (i, o) in shape.linear_dims.items()
               if names is None or n.split(".")[-1] in names)


GB = 1024 ** 3
BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
ACTIVATION_BYTES_PER_TOKEN_HIDDEN_LAYER_16BIT = 34  # Korthikanti et al., with a fused (flash/sdpa) attention
RUNTIME_OVERHEAD = {"cpu": 1.0 * GB, "cuda": 1.0 * GB}  # interpreter + torch + CUDA context / allocator slack
# Achieved training FLOP/s (as counted in step_seconds) over the probe's measured matmul FLOP/s. CPU: measured
# 0.98 on the default model, LoRA, batch 2 x 128, against matmul_flops in the same process (two runs,
# tests/test_estimate_measured.py; benchmarks/NOTES.md "Estimate vs a measured run"); it was 0.6, which made
# every CPU step estimate 1.6x too long. 0.9 leaves a little room for a machine busier than during the probe.
# The count is generous (the output head over every position, padding included), hence close to 1.
UTILISATION = {"cpu": 0.9, "cuda": 0.35}
CPU_16BIT_SLOWDOWN = 13  # a bf16 LoRA step on a CPU without native bf16, measured on this project's CI machine
CHECKPOINTING_SLOWDOWN = 2  # extra forward FLOPs per parameter and token


def passes(cfg: RunConfig) -> tuple[int, int]:
    """Sequences each training row sends through the model: (with gradients, forward only). DPO and ORPO run
    chosen and rejected; DPO's and KTO's reference is a forward pass with the adapter disabled (none while
    training with pref.precompute_ref: it runs once before); KTO also scores a mismatched completion per row for
    its KL term, without gradients. DPO against SFT measured 2.95x the step time (this counts 3x) and 1.51x the
    process memory (benchmarks/preference.py)."""
    method, reference = cfg.train.method, 0 if cfg.pref.precompute_ref else 1
    return {"dpo": (2, 2 * reference), "orpo": (2, 0), "kto": (1, 1 + 2 * reference)}.get(method, (1, 0))


@dataclass
class Memory:
    weights: float
    trainable_params: int
    trainable_state: float  # trainable weights (adapters only), their gradients, optimizer moments
    activations: float  # per micro-batch, logits included
    overhead: float

    @property
    def total(self) -> float:
        return self.weights + self.trainable_state + self.activations + self.overhead


def optimizer_bytes_per_param(optimizer: str, param_bytes: int) -> float:
    """Bytes of optimizer state per trainable parameter (Adam keeps two moments)."""
    if optimizer in ("paged_adamw_8bit", "adamw_8bit"):
        return 2
    if optimizer == "paged_adamw_32bit":
        return 8
    if optimizer == "sgd":
        return 0
    if optimizer == "adafactor":
        return 1  # factored second moments: a small fraction of the weights
    return 2 * param_bytes  # torch AdamW keeps its moments in the parameters' dtype


def memory(cfg: RunConfig, shape: ModelShape, device: str, dtype: str, quant: str) -> Memory:
    """Peak bytes of one training step of cfg on `device` with weights in `dtype` (or `quant`)."""
    nbytes = BYTES[dtype]
    a, t, d = cfg.adapter, cfg.train, cfg.data

    # Weights: bitsandbytes quantizes the Linear layers; embeddings, norms and the head keep the dtype.
    per_quantized = {"4bit": 0.5 + (0.016 if cfg.model.double_quant else 0.0625), "8bit": 1.0}.get(quant)
    if per_quantized is None:
        weights = shape.params * nbytes
    else:
        weights = shape.linear_params * per_quantized + (shape.params - shape.linear_params) * nbytes

    full = a.method == "full"
    trainable = shape.params if full else lora_params(shape, a.r, a.target_modules)
    trainable_bytes = nbytes if full else 4  # PEFT keeps adapter weights in float32
    opt = optimizer_bytes_per_param(t.optimizer, trainable_bytes)
    # Full training's weights are already counted above; adapters add their own weights.
    trainable_state = trainable * ((0 if full else trainable_bytes) + trainable_bytes + opt)

    tokens = t.batch_size * d.max_length * passes(cfg)[0]  # per micro-batch: what sits in memory at once
    per_layer = ACTIVATION_BYTES_PER_TOKEN_HIDDEN_LAYER_16BIT * nbytes / 2 * tokens * shape.hidden
    if t.gradient_checkpointing:  # keep each layer's input, recompute one layer at a time
        activations = shape.layers * tokens * shape.hidden * nbytes + per_layer
    else:
        activations = shape.layers * per_layer
    activations += tokens * shape.vocab * (nbytes + 8)  # logits, their float32 copy for the loss, its gradient
    return Memory(weights=weights, trainable_params=trainable, trainable_state=trainable_state,
                  activations=activations, overhead=RUNTIME_OVERHEAD[device])


def step_seconds(cfg: RunConfig, shape: ModelShape, device: str, dtype: str, quant: str,
                 matmul_flops: float) -> tuple[int, float | None]:
    """(tokens per optimizer step, seconds per step): FLOPs per trained token over the measured matmul
    speed at a typical utilisation."""
    t, d = cfg.train, cfg.data
    full = cfg.adapter.method == "full"
    flops_per_token = (6 if full else 4) * shape.matmul_params
    if t.gradient_checkpointing:
        flops_per_token += CHECKPOINTING_SLOWDOWN * shape.matmul_params
    flops_per_token += 12 * shape.layers * d.max_length * shape.hidden  # attention scores, forward + backward
    with_grad, forward_only = passes(cfg)
    flops_per_token = with_grad * flops_per_token + forward_only * 2 * shape.matmul_params
    tokens_per_step = t.batch_size * d.max_length * t.grad_accum  # the rows' own tokens, per sequence
    speed = matmul_flops
    if device == "cpu" and dtype != "float32":
        speed /= CPU_16BIT_SLOWDOWN
    if device == "cpu" and quant != "none":
        speed /= 2  # bitsandbytes dequantizes every weight on each CPU matmul
    if not speed:
        return tokens_per_step, None
    return tokens_per_step, tokens_per_step * flops_per_token / (speed * UTILISATION[device])


NOMINAL_GPU_TFLOPS = 100.0  # used only to estimate time for a GPU this machine does not have


def device_memory(device: str) -> tuple[float | None, str]:
    """(bytes free for training, label) on this machine's CPU RAM or first GPU; None when there is no GPU."""
    if device == "cuda":
        import torch

        if torch.cuda.is_available():
            free, _total = torch.cuda.mem_get_info(0)
            return float(free), f"GPU memory ({torch.cuda.get_device_name(0)})"
        return None, "a GPU"
    import psutil

    return float(psutil.virtual_memory().available), "CPU RAM"


@functools.lru_cache(maxsize=4)
def matmul_flops(device: str) -> float:
    """Measured dense matmul FLOP/s here in the dtype training computes in (float32 on CPU, bf16 on a GPU).

    The best of a few ~0.05 s matmuls, so a briefly busy machine does not skew it; cached for the process, so
    the Train tab's estimate button does not pay for it twice.
    """
    import torch

    if device == "cuda" and not torch.cuda.is_available():
        return NOMINAL_GPU_TFLOPS * 1e12
    n, dtype = (8192, torch.bfloat16) if device == "cuda" else (1024, torch.float32)
    a = torch.randn(n, n, device=device, dtype=dtype)
    best = float("inf")
    for _ in range(4):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        a @ a
        if device == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    flops = 2 * n ** 3 / max(best, 1e-9)
    log.debug("matmul probe on %s: %.1f GFLOP/s", device, flops / 1e9)
    return flops
