"""Before a run: will it fit in this device's memory, and roughly how long will it take?

Parameter counts are exact when the model's config is at hand: the model is built on the `meta` device
(shapes only, no weights, a fraction of a second even for 70B), so LoRA's trainable parameters are summed
over the very Linear layers PEFT would wrap. A hub id that is not cached (offline) falls back to LLaMA-shaped
guesses from the size in its name ("7b"), and says so.

Memory = weights (bytes per parameter by dtype / 4-bit / 8-bit) + trainable state (weights, gradients,
optimizer moments) + activations (batch x length x hidden x layers x ~34 bytes at 16-bit, Korthikanti et al.
2022; only the layer inputs with gradient checkpointing) + logits + a fixed runtime overhead.
Time = training FLOPs per token (4N for adapters on a frozen base, 6N for full training, +2N recompute with
checkpointing) over this device's measured matmul speed at a typical utilisation. These are estimates: they say
whether a run is in the right range, not to the second.
"""
from __future__ import annotations

import functools
import math
import re
import time
from dataclasses import asdict, dataclass, field

from workbench.config.run import RunConfig

GB = 1024 ** 3
ACTIVATION_BYTES_PER_TOKEN_HIDDEN_LAYER_16BIT = 34  # Korthikanti et al., with a fused (flash/sdpa) attention
RUNTIME_OVERHEAD = {"cpu": 1.0 * GB, "cuda": 1.0 * GB}  # interpreter + torch + CUDA context / allocator slack
UTILISATION = {"cpu": 0.6, "cuda": 0.35}  # achieved training FLOP/s over the measured matmul FLOP/s
CPU_16BIT_SLOWDOWN = 13  # a bf16 LoRA step on a CPU without native bf16, measured on this project's CI machine
NOMINAL_GPU_TFLOPS = 100.0  # used only to estimate time for a GPU this machine does not have
BIG_FOR_CPU = 2e9  # parameters above which CPU training is impractical
CHECKPOINTING_SLOWDOWN = 2  # extra forward FLOPs per parameter and token

# LLaMA-family shapes by size, for hub models whose config is not available offline.
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


@dataclass
class Estimate:
    model: str
    shape_source: str
    device: str  # cpu | cuda
    device_label: str
    params: int
    trainable_params: int
    weights_bytes: float
    trainable_state_bytes: float
    activation_bytes: float
    overhead_bytes: float
    total_bytes: float
    available_bytes: float | None
    fits: bool | None
    tokens_per_step: int
    step_seconds: float | None
    steps: int | None
    total_seconds: float | None
    warnings: list = field(default_factory=list)
    guidance: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    def markdown(self) -> str:
        verdict = ("fits" if self.fits else "**does not fit**") if self.fits is not None else "unknown fit"
        avail = f"{_gb(self.available_bytes)} available" if self.available_bytes else "available memory unknown"
        lines = [
            f"**Estimate for `{self.model}` on {self.device_label}** — needs about **{_gb(self.total_bytes)}** "
            f"({avail}): {verdict}.",
            f"- parameters: {_count(self.params)} ({self.shape_source}); trainable: {_count(self.trainable_params)}",
            f"- memory: weights {_gb(self.weights_bytes)}, trainable weights + gradients + optimizer "
            f"{_gb(self.trainable_state_bytes)}, activations {_gb(self.activation_bytes)}, runtime "
            f"{_gb(self.overhead_bytes)}",
        ]
        if self.step_seconds is not None:
            total = (f", about **{_duration(self.total_seconds)}** for {self.steps} steps"
                     if self.total_seconds is not None else "")
            lines.append(f"- time: about {_duration(self.step_seconds)} per step of up to {self.tokens_per_step} "
                         f"tokens{total} (rows shorter than data.max_length go faster)")
        lines += [f"- ⚠️ {w}" for w in self.warnings]
        lines += [f"- {g}" for g in self.guidance]
        return "\n".join(lines)


# -- model shape -------------------------------------------------------------------------------------

@functools.lru_cache(maxsize=16)
def model_shape(name: str, trust_remote_code: bool = False) -> ModelShape:
    """The model's parameter layout from its config alone (no weights are read)."""
    from workbench.core.errors import ModelError
    from workbench.models.resolve import resolve_model

    try:
        path = resolve_model(name)
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
        source = "from the model config"
    except (OSError, ValueError, ModelError) as e:
        config, source = _guessed_config(name, e)
    return _shape_from_config(config, trust_remote_code, source)


def _guessed_config(name: str, err: Exception):
    from transformers import LlamaConfig

    m = re.search(r"(\d+(?:\.\d+)?)\s*[bB](?![a-zA-Z])", name)
    if not m:
        raise ValueError(f"cannot estimate '{name}': its config is not available here ({err}) and the name "
                         "gives no size such as '7b'") from None
    size = float(m.group(1))
    nearest = min(GUESSED_SHAPES, key=lambda s: abs(math.log(s / size)))
    return LlamaConfig(**GUESSED_SHAPES[nearest]), (f"config not available here; LLaMA-like {nearest:g}B shape "
                                                    f"guessed from '{m.group(0)}' in the name")


def _shape_from_config(config, trust_remote_code: bool, source: str) -> ModelShape:
    import torch
    from transformers import AutoModelForCausalLM

    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
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


# -- device ---------------------------------------------------------------------------------------------

def device_memory(device: str) -> tuple[float | None, str]:
    """(bytes free for training, label) on this machine's CPU RAM or first GPU."""
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
    """Measured dense matmul FLOP/s here in the dtype training computes in (float32 on CPU, bf16 on a GPU);
    the best of a few ~0.05 s matmuls, so a briefly busy machine does not skew it. A GPU this machine does
    not have gets a nominal figure."""
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
    return 2 * n ** 3 / max(best, 1e-9)


# -- the estimate ------------------------------------------------------------------------------------

def _dtype_name(requested: str, device: str) -> str:
    if requested != "auto":
        return requested
    if device == "cuda":
        import torch

        if torch.cuda.is_available() and not torch.cuda.is_bf16_supported():
            return "float16"
        return "bfloat16"
    return "float32"


BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}


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


def estimate(cfg: RunConfig, device: str | None = None, available_bytes: float | None = None,
             train_rows: int | None = None) -> Estimate:
    """Memory and time for cfg on `device` (default: this machine's). `available_bytes` overrides the
    measured free memory, e.g. to ask whether a recipe fits a 24 GB GPU from a CPU-only machine."""
    from workbench.models.device import device_kind

    device = device or device_kind()
    shape = model_shape(cfg.model.name, cfg.model.trust_remote_code)
    dtype_name = _dtype_name(cfg.model.dtype, device)
    nbytes = BYTES[dtype_name]
    quant = cfg.effective_quantization()
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

    tokens = t.batch_size * d.max_length  # per micro-batch: what sits in memory at once
    per_layer = ACTIVATION_BYTES_PER_TOKEN_HIDDEN_LAYER_16BIT * nbytes / 2 * tokens * shape.hidden
    if t.gradient_checkpointing:  # keep each layer's input, recompute one layer at a time
        activations = shape.layers * tokens * shape.hidden * nbytes + per_layer
    else:
        activations = shape.layers * per_layer
    activations += tokens * shape.vocab * (nbytes + 8)  # logits, their float32 copy for the loss, its gradient

    overhead = RUNTIME_OVERHEAD[device]
    total = weights + trainable_state + activations + overhead
    measured, label = device_memory(device)
    available = available_bytes if available_bytes is not None else measured
    if available_bytes is not None:
        label = f"{'a GPU' if device == 'cuda' else 'CPU RAM'} with {_gb(available_bytes)}"
    fits = None if available is None else total <= available

    # Time: FLOPs per trained token over the measured matmul speed at a typical utilisation.
    flops_per_token = (6 if full else 4) * shape.matmul_params
    if t.gradient_checkpointing:
        flops_per_token += CHECKPOINTING_SLOWDOWN * shape.matmul_params
    flops_per_token += 12 * shape.layers * d.max_length * shape.hidden  # attention scores, forward + backward
    tokens_per_step = tokens * t.grad_accum
    speed = matmul_flops(device)
    if device == "cpu" and dtype_name != "float32":
        speed /= CPU_16BIT_SLOWDOWN
    if device == "cpu" and quant != "none":
        speed /= 2  # bitsandbytes dequantizes every weight on each CPU matmul
    step_s = tokens_per_step * flops_per_token / (speed * UTILISATION[device]) if speed else None
    steps = planned_steps(cfg, train_rows)
    total_s = step_s * steps if step_s is not None and steps else None

    est = Estimate(model=cfg.model.name, shape_source=shape.source, device=device, device_label=label,
                   params=shape.params, trainable_params=trainable, weights_bytes=weights,
                   trainable_state_bytes=trainable_state, activation_bytes=activations, overhead_bytes=overhead,
                   total_bytes=total, available_bytes=available, fits=fits, tokens_per_step=tokens_per_step,
                   step_seconds=step_s, steps=steps, total_seconds=total_s)
    _advise(est, cfg, shape, dtype_name, quant)
    return est


def planned_steps(cfg: RunConfig, train_rows: int | None = None) -> int | None:
    """max_steps, or epochs x batches per epoch when the training rows can be counted (local data)."""
    t = cfg.train
    if t.max_steps > 0:
        return t.max_steps
    rows = train_rows if train_rows is not None else _count_train_rows(cfg)
    if rows is None:
        return None
    return max(1, math.ceil(t.epochs * math.ceil(rows / (t.batch_size * t.grad_accum))))


def _count_train_rows(cfg: RunConfig) -> int | None:
    from workbench.data.sources import is_local, resolve_local

    if not is_local(cfg.data.source):
        return None
    path = resolve_local(cfg.data.source)
    if not path.is_file():
        return None
    rows = _rows_in_file(str(path), path.stat().st_mtime)
    if rows is None:
        return None
    if cfg.data.max_rows:
        rows = min(rows, cfg.data.max_rows)
    return max(0, round(rows * (1 - cfg.data.val_size - cfg.data.test_size)))


@functools.lru_cache(maxsize=32)
def _rows_in_file(path: str, mtime: float) -> int | None:
    from workbench.core.errors import DataError
    from workbench.data.sources import load_raw

    try:
        return len(load_raw(path))
    except (DataError, OSError, ValueError):
        return None


def _advise(est: Estimate, cfg: RunConfig, shape: ModelShape, dtype_name: str, quant: str) -> None:
    w, g = est.warnings, est.guidance
    if est.fits is False:
        w.append(f"needs about {_gb(est.total_bytes)} but {est.device_label} has {_gb(est.available_bytes)}: "
                 "lower train.batch_size or data.max_length, turn on train.gradient_checkpointing, or use "
                 "adapter.method qlora (4-bit base)")
    elif est.fits and est.total_bytes > 0.85 * est.available_bytes:
        w.append("tight: within 15% of the available memory; other programs or long rows could push it over")
    if est.device != "cpu":
        return
    if shape.params > BIG_FOR_CPU:
        per_step = f" (about {_duration(est.step_seconds)} per step here)" if est.step_seconds else ""
        w.append(f"a {_count(shape.params)}-parameter model needs a GPU: training it on this CPU is impractical"
                 f"{per_step}")
    if dtype_name in ("bfloat16", "float16"):
        w.append(f"model.dtype {dtype_name} on a CPU: most CPUs have no native 16-bit math and run it many "
                 "times slower (measured 13x here); 'auto' picks float32 on CPU")
    if quant != "none":
        g.append("4-/8-bit on CPU works (bitsandbytes) but dequantizes on every matmul: slower than float32 "
                 "for a model that fits in RAM anyway")
    if est.step_seconds:
        suggested = int(min(200, max(10, 300 / est.step_seconds)))
        g.append(f"On CPU it works, slowly. For a result in about 5 minutes: the default model, "
                 f"data.max_length 128-256, train.batch_size 2-4 and train.max_steps ~{suggested}.")


def _gb(x: float | None) -> str:
    if x is None:
        return "?"
    return f"{x / GB:.1f} GB" if x >= 0.1 * GB else f"{x / 1024 ** 2:.0f} MB"


def _count(n: int) -> str:
    for unit, size in (("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if n >= size:
            return f"{n / size:.1f}{unit}"
    return str(n)


def _duration(s: float | None) -> str:
    if s is None:
        return "?"
    if s < 90:
        return f"{s:.1f} s" if s < 10 else f"{s:.0f} s"
    if s < 90 * 60:
        return f"{s / 60:.0f} min"
    if s < 48 * 3600:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} days"
