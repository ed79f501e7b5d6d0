"""The Estimate: the numbers one run needs (memory by part, time per step and in all), and how they read
as Markdown in the Train tab. Filled by estimate() (the package's __init__), advised by advice.py."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from workbench.core.formatting import count, duration, human_size


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
