"""GenerationConfig: the decoding settings, how a model writes a reply (length, sampling, penalty, seed). One
dataclass for the Chat tab's sliders, the Evaluate tab, a run's `gen` section and the CLI, so ranges and defaults
are written once. (config/generate.py is the `generate` job: your texts → a dataset.)
"""
from __future__ import annotations

from dataclasses import dataclass

from workbench.config.fields import Settings, opt


@dataclass
class GenerationConfig(Settings):
    max_new_tokens: int = opt(128, "Longest reply in tokens.", min=1, max=8192)
    do_sample: bool = opt(False, "Sample (True) or take the most likely token (False, reproducible).")
    temperature: float = opt(0.7, "Sampling temperature.", min=0.0, max=5.0, min_exclusive=True)
    top_p: float = opt(0.9, "Nucleus sampling mass.", min=0.0, max=1.0, min_exclusive=True)
    top_k: int = opt(50, "Sample among the k most likely tokens (0 = all).", min=0, max=500)
    repetition_penalty: float = opt(1.1, "Penalty on repeated tokens (1 = none).", min=0.5, max=3.0)
    seed: int = opt(0, "Sampling seed.", min=0)

    def validate(self) -> "GenerationConfig":
        self.check_ranges()
        return self
