"""What a person should do about an estimate: warnings (it will not fit, it will crawl) and guidance (the
settings that make a CPU run finish in minutes). Appended to Estimate.warnings / .guidance, shown as Markdown."""
from __future__ import annotations

from workbench.core.formatting import count, duration, human_size
from workbench.training.estimate.memory_time import CPU_16BIT_SLOWDOWN
from workbench.training.estimate.report import Estimate

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
