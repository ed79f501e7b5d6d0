"""Configs of the tasks beside training, so their CLI arguments and forms are generated like RunConfig's:
EvalConfig (side-by-side evaluation of a run, with an optional judge) and MergeConfig (merge / export an adapter)."""
from __future__ import annotations

from dataclasses import dataclass, field

from workbench.config.fields import Settings, opt
from workbench.config.judge import JudgeConfig, WithJudge
from workbench.config.run import DTYPES


@dataclass
class EvalConfig(WithJudge, Settings):
    run: str = opt("", "A run folder (outputs/<run-id>) or run id.")
    split: str = opt("test", "The run's held-out split to evaluate.", choices=["test", "validation"])
    data: str = opt("", "Evaluate a JSON/JSONL/CSV/Parquet file instead of a split, mapped through the run's "
                        "template.")
    n: int = opt(8, "Rows sampled with the seed (0 = all rows).", min=0)
    seed: int = opt(0, "Sampling seed.", min=0)
    batch_size: int = opt(8, "Rows generated together.", min=1, max=512)
    max_new_tokens: int = opt(0, "Longest generation (0 = the run's gen.max_new_tokens).", min=0, max=8192)
    compare_base: bool = opt(True, "Also generate with the base model (adapter off) and score it.", flag="--no-base")
    baseline: str = opt("", "Compare with this run's adapter instead of the base model (a run id or folder of the "
                            "same base model: e.g. the SFT run a DPO run continued). Empty: the base model.")
    name: str = opt("", "File name under RUN_DIR/eval/ (default: <split or file>-n<N>-seed<S>).")
    # The optional LLM judge: the `judge:` section (config/judge.py); its CLI flags are --judge-url, --judge-model…
    judge: JudgeConfig = field(default_factory=JudgeConfig)


@dataclass
class MergeConfig(Settings):
    run: str = opt("", "A run folder or an adapter folder.")
    out: str = opt("", "New (or empty) output folder.")
    base: str = opt("", "Base model (default: the one the adapter was trained on).")
    dtype: str = opt("auto", "Dtype of the saved weights (auto: the device's compute dtype).", choices=DTYPES)
    adapter_only: bool = opt(False, "Copy the adapter folder alone instead of merging.")
