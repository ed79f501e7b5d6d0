"""Before a run: will it fit in this device's memory, and roughly how long will it take?

    estimate(cfg, plan) → Estimate (numbers, warnings, .markdown() for the Train tab)

The machine decisions (device, dtype, quantization, the model folder, the data file) are the preflight
Plan's; without a Plan (a recipe for a GPU this machine does not have, a model not downloaded here) the same
rules decide them (models.device.pick_dtype, cfg.effective_quantization). The pieces, one job each:

    shape.py        the model's parameter layout on the meta device; LoRA's trainable count; guessed shapes
    memory_time.py  the arithmetic: bytes at the peak, seconds per step
    probe.py        this machine: free memory, measured matmul FLOP/s
    steps.py        how many steps: max_steps, or epochs over the counted training rows
    report.py       the Estimate dataclass and its Markdown
    advice.py       warnings and guidance
"""
from __future__ import annotations

from workbench.config.preflight import Plan
from workbench.config.run import RunConfig
from workbench.core.formatting import human_size
from workbench.training.estimate.advice import advise
from workbench.training.estimate.memory_time import GB, memory, step_seconds
from workbench.training.estimate.probe import device_memory, matmul_flops
from workbench.training.estimate.report import Estimate
from workbench.training.estimate.shape import ModelShape, lora_params, model_shape
from workbench.training.estimate.steps import planned_steps

__all__ = ["GB", "Estimate", "ModelShape", "estimate", "lora_params", "model_shape", "planned_steps"]


def estimate(cfg: RunConfig, plan: Plan | None = None, device: str | None = None,
             available_bytes: float | None = None, train_rows: int | None = None) -> Estimate:
    """Memory and time for cfg as `plan` would run it, or on `device` (default: the plan's, else this machine's).

    `available_bytes` overrides the measured free memory, e.g. to ask whether a recipe fits a 24 GB GPU from a
    CPU-only machine. Raises ModelError when the model's shape cannot be known (see shape.model_shape).
    """
    from workbench.models.device import device_kind, pick_dtype

    device = device or (plan.device if plan else None) or device_kind()
    if plan is not None and plan.device == device:
        dtype, quant = plan.dtype, plan.quantization
    else:  # no plan, or a question about another device: the rules the Plan itself follows
        dtype, quant = pick_dtype(cfg.model.dtype, device), cfg.effective_quantization()
    shape = model_shape(plan.model_path if plan else cfg.model.name, cfg.model.trust_remote_code)

    mem = memory(cfg, shape, device, dtype, quant)
    measured, label = device_memory(device)
    available = available_bytes if available_bytes is not None else measured
    if available_bytes is not None:
        label = f"{'a GPU' if device == 'cuda' else 'CPU RAM'} with {human_size(available_bytes)}"
    tokens_per_step, step_s = step_seconds(cfg, shape, device, dtype, quant, matmul_flops(device))
    data_file = plan.data_source if plan and plan.data_is_local else None
    steps = planned_steps(cfg, train_rows, data_file)
    est = Estimate(model=cfg.model.name, shape_source=shape.source, device=device, device_label=label, dtype=dtype,
                   quantization=quant, params=shape.params, trainable_params=mem.trainable_params,
                   weights_bytes=mem.weights, trainable_state_bytes=mem.trainable_state,
                   activation_bytes=mem.activations, overhead_bytes=mem.overhead, total_bytes=mem.total,
                   available_bytes=available, fits=None if available is None else mem.total <= available,
                   tokens_per_step=tokens_per_step, step_seconds=step_s, steps=steps,
                   total_seconds=step_s * steps if step_s is not None and steps else None)
    advise(est)
    return est
