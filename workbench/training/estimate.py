"""Before a run: will it fit in this device's memory, and roughly how long will it take?

    estimate(cfg, plan) → Estimate (numbers, warnings, guidance, .markdown() for the Train tab)

The machine decisions (device, dtype, quantization, the model folder, the data file) are the preflight
Plan's; without a Plan (a recipe for a GPU this machine does not have, a model not downloaded here) the same
rules decide them (models.load.pick_dtype, cfg.effective_quantization). The arithmetic (model shape, bytes,
seconds, this machine's probe) is `estimate_math.py`; here: the Estimate and its Markdown, how many steps
(train.max_steps, or epochs over the training rows when the data is a local file that can be counted; a hub
dataset is not downloaded for an estimate), and what a person should do about it (warnings: it will not fit,
it will crawl; guidance: the settings that make a CPU run finish in minutes).
"""
from __future__ import annotations

import functools
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

from workbench.config.preflight import Plan
from workbench.config.run import RunConfig
from workbench.core.formatting import count, duration, human_size
from workbench.training.estimate_math import (CPU_16BIT_SLOWDOWN, GB, ModelShape, device_memory, lora_params,
                                              matmul_flops, memory, model_shape, step_seconds)

__all__ = ["GB", "Estimate", "ModelShape", "estimate", "lora_params", "model_shape", "planned_steps"]


@dataclass
class Estimate:
    model: str
    shape_source: str
    device: str  # cpu | cuda
    device_label: str
    dtype: str  # float32 | bfloat16 | float16: the Plan's, or pick_dtype's for a device the Plan was not made for
    quantization: str  # none | 8bit | 4bit
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
        avail = f"{human_size(self.available_bytes)} available" if self.available_bytes else "available memory unknown"
        lines = [
            f"**Estimate for `{self.model}` on {self.device_label}** — needs about **{human_size(self.total_bytes)}** "
            f"({avail}): {verdict}.",
            f"- parameters: {count(self.params)} ({self.shape_source}); trainable: {count(self.trainable_params)}",
            f"- memory: weights {human_size(self.weights_bytes)}, trainable weights + gradients + optimizer "
            f"{human_size(self.trainable_state_bytes)}, activations {human_size(self.activation_bytes)}, runtime "
            f"{human_size(self.overhead_bytes)}",
        ]
        if self.step_seconds is not None:
            total = (f", about **{duration(self.total_seconds)}** for {self.steps} steps"
                     if self.total_seconds is not None else "")
            lines.append(f"- time: about {duration(self.step_seconds)} per step of up to {self.tokens_per_step} "
                         f"tokens{total} (rows shorter than data.max_length go faster)")
        lines += [f"- ⚠️ {w}" for w in self.warnings]
        lines += [f"- {g}" for g in self.guidance]
        return "\n".join(lines)


def planned_steps(cfg: RunConfig, train_rows: int | None = None, data_file: str | None = None) -> int | None:
    """max_steps, or epochs x batches per epoch. `data_file` is the Plan's resolved local file, if any;
    without it the config's data.source is resolved here. None when the rows cannot be counted."""
    t = cfg.train
    if t.max_steps > 0:
        return t.max_steps
    rows = train_rows if train_rows is not None else count_train_rows(cfg, data_file)
    if rows is None:
        return None
    return max(1, math.ceil(t.epochs * math.ceil(rows / (t.batch_size * t.grad_accum))))


def count_train_rows(cfg: RunConfig, data_file: str | None = None) -> int | None:
    """Rows left for training after data.max_rows and the validation/test hold-outs."""
    if data_file is None:
        from workbench.core.paths import resolve_local
        from workbench.data.read import is_local

        if not is_local(cfg.data.source):
            return None
        data_file = str(resolve_local(cfg.data.source.strip()))
    path = Path(data_file)
    if not path.is_file():
        return None
    rows = _rows_in_file(str(path), path.stat().st_mtime)  # mtime in the key: an edited file is counted again
    if rows is None:
        return None
    if cfg.data.max_rows:
        rows = min(rows, cfg.data.max_rows)
    from workbench.core.errors import DataError
    from workbench.data.load import split_sizes  # the split's own arithmetic: the same count the run trains on

    try:
        return split_sizes(rows, cfg.data.val_size, cfg.data.test_size)["train"]
    except DataError:
        return 0


@functools.lru_cache(maxsize=32)
def _rows_in_file(path: str, mtime: float) -> int | None:
    from workbench.core.errors import DataError
    from workbench.data.read import load_raw

    try:
        return len(load_raw(path))
    except (DataError, OSError, ValueError):  # unreadable here: the estimate goes without a total time
        return None


BIG_FOR_CPU = 2e9  # parameters above which CPU training is impractical
TIGHT = 0.85  # share of the available memory above which other programs or long rows could push a run over
CPU_TARGET_SECONDS = 300  # "a result in about 5 minutes" on a CPU


def advise(est: Estimate) -> None:
    """Add warnings and guidance to `est`; its own fields say the device, dtype and quantization."""
    w, g = est.warnings, est.guidance
    if est.fits is False:
        w.append(f"needs about {human_size(est.total_bytes)} but {est.device_label} has "
                 f"{human_size(est.available_bytes)}: lower train.batch_size or data.max_length, turn on "
                 "train.gradient_checkpointing, or use adapter.method qlora (4-bit base)")
    elif est.fits and est.total_bytes > TIGHT * est.available_bytes:
        w.append(f"tight: within {100 - TIGHT * 100:.0f}% of the available memory; other programs or long rows "
                 "could push it over")
    if est.device != "cpu":
        return
    if est.params > BIG_FOR_CPU:
        per_step = f" (about {duration(est.step_seconds)} per step here)" if est.step_seconds else ""
        w.append(f"a {count(est.params)}-parameter model needs a GPU: training it on this CPU is impractical"
                 f"{per_step}")
    if est.dtype in ("bfloat16", "float16"):
        w.append(f"model.dtype {est.dtype} on a CPU: most CPUs have no native 16-bit math and run it many "
                 f"times slower (measured {CPU_16BIT_SLOWDOWN}x here); 'auto' picks float32 on CPU")
    if est.quantization != "none":
        g.append("4-/8-bit on CPU works (bitsandbytes) but dequantizes on every matmul: slower than float32 "
                 "for a model that fits in RAM anyway")
    if est.step_seconds:
        suggested = int(min(200, max(10, CPU_TARGET_SECONDS / est.step_seconds)))
        g.append(f"On CPU it works, slowly. For a result in about 5 minutes: the default model, "
                 f"data.max_length 128-256, train.batch_size 2-4 and train.max_steps ~{suggested}.")


def estimate(cfg: RunConfig, plan: Plan | None = None, device: str | None = None,
             available_bytes: float | None = None, train_rows: int | None = None) -> Estimate:
    """Memory and time for cfg as `plan` would run it, or on `device` (default: the plan's, else this machine's).

    `available_bytes` overrides the measured free memory, e.g. to ask whether a recipe fits a 24 GB GPU from a
    CPU-only machine. Raises ModelError when the model's shape cannot be known (see estimate_math.model_shape).
    """
    from workbench.models.load import device_kind, pick_dtype

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
