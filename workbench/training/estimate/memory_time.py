"""The arithmetic: bytes a run holds at its peak and seconds per optimizer step, from the model's shape and
the machine decisions (device, dtype, quantization) the Plan made.

Memory = weights (bytes per parameter by dtype / 4-bit / 8-bit) + trainable state (weights, gradients,
optimizer moments) + activations (batch x length x hidden x layers x ~34 bytes at 16-bit, Korthikanti et al.
2022; only the layer inputs with gradient checkpointing) + logits + a fixed runtime overhead.
Time = training FLOPs per token (4N for adapters on a frozen base, 6N for full training, +2N recompute with
checkpointing) over this device's measured matmul speed at a typical utilisation. Preference methods run
several sequences per row (passes()). These are estimates: they say whether a run is in the right range, not to
the second; tests/test_estimate_measured.py holds them to a real run.
"""
from __future__ import annotations

from dataclasses import dataclass

from workbench.config.run import RunConfig
from workbench.training.estimate.shape import ModelShape, lora_params

GB = 1024 ** 3
BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
ACTIVATION_BYTES_PER_TOKEN_HIDDEN_LAYER_16BIT = 34  # Korthikanti et al., with a fused (flash/sdpa) attention
RUNTIME_OVERHEAD = {"cpu": 1.0 * GB, "cuda": 1.0 * GB}  # interpreter + torch + CUDA context / allocator slack
# Achieved training FLOP/s (as counted in step_seconds) over the probe's measured matmul FLOP/s. CPU: measured
# 0.98 on the default model, LoRA, batch 2 x 128, against probe.matmul_flops in the same process (two runs,
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
