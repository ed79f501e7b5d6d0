"""Named starting points for the Train form: plain dicts of dotted settings on top of RunConfig's defaults.

Kept as data so a recipe is tuned by editing one dict; every preset goes through RunConfig.set, so a typo
in a key or an out-of-range value fails loudly (tests build and validate each one).
"""
from __future__ import annotations

from workbench.config.run import RunConfig

CPU_DEMO = "CPU quick demo"
QLORA_7B = "QLoRA 7B on one 24 GB GPU"
LORA_16BIT = "LoRA 16-bit"
DPO_AFTER_SFT = "DPO after SFT (CPU demo)"
ORPO_FROM_BASE = "ORPO from the base"
PAIRS = "data/dolly_pairs.jsonl"

PRESETS: dict[str, dict] = {
    # The default model and the bundled data with the reverse-instruction template: RunConfig's defaults, the
    # same recipe as `python -m workbench train` with no settings (lr 2e-3, cosine, one epoch = 51 steps, ~2 min
    # on a quiet 2-core CPU; its held-out gain is in benchmarks/NOTES.md, issue 26). Only the run name and the
    # eval / checkpoint cadence are the demo's own: the loss curve shows its eval points as it falls.
    CPU_DEMO: {
        "run_name": "cpu-demo",
        "train.eval_steps": 20,
        "train.save_steps": 20,
    },
    # The classic LLaMA-2 QLoRA notebook recipe: NF4 with double quantization and bf16 compute, LoRA
    # r16 alpha16 dropout 0.1, constant lr 2e-4 with 3% warmup, batch 3, clipping at 0.3, paged AdamW 32-bit.
    # The notebook wrote scheduler "constant", which in transformers ignores warmup_ratio; constant_with_warmup
    # is the schedule it meant. Gradient checkpointing keeps the activations of 1024-token rows inside 24 GB.
    QLORA_7B: {
        "run_name": "qlora-7b",
        "model.name": "meta-llama/Llama-2-7b-hf",
        "model.dtype": "bfloat16",
        "model.quantization": "4bit",
        "model.double_quant": True,
        "model.compute_dtype": "bfloat16",
        "adapter.method": "qlora",
        "adapter.r": 16,
        "adapter.alpha": 16,
        "adapter.dropout": 0.1,
        "adapter.target_modules": "all-linear",
        "data.template": "alpaca",
        "data.max_length": 1024,
        "train.learning_rate": 2e-4,
        "train.scheduler": "constant_with_warmup",
        "train.warmup_ratio": 0.03,
        "train.batch_size": 3,
        "train.max_grad_norm": 0.3,
        "train.optimizer": "paged_adamw_32bit",
        "train.epochs": 1.0,
        "train.gradient_checkpointing": True,
        "train.logging_steps": 5,
        "train.eval_steps": 50,
        "train.save_steps": 100,
    },
    # LoRA on a 16-bit (bf16) base: the usual GPU recipe when the model fits unquantized. It runs on the
    # default model everywhere; on a CPU without native bf16 it is much slower (the estimate says so).
    LORA_16BIT: {
        "run_name": "lora-16bit",
        "model.dtype": "bfloat16",
        "adapter.method": "lora",
        "adapter.r": 16,
        "adapter.alpha": 32,
        "adapter.dropout": 0.05,
        "data.max_length": 1024,
        "train.learning_rate": 2e-4,
        "train.scheduler": "cosine",
        "train.batch_size": 8,
        "train.epochs": 1.0,
        "train.eval_steps": 50,
        "train.save_steps": 100,
    },
    # DPO on the bundled pairs, continuing an SFT adapter: pick the finished CPU-demo run as model.adapter_from
    # (empty trains a fresh adapter against the base, which is plain DPO from the base). DPO wants a far lower
    # learning rate than SFT: the loss compares log-ratios, and large steps overshoot the reference at once.
    DPO_AFTER_SFT: {
        "run_name": "dpo-after-sft",
        "train.method": "dpo",
        "data.source": PAIRS,
        "data.max_length": 256,
        "pref.beta": 0.1,
        "train.learning_rate": 5e-5,
        "train.max_steps": 40,
        "train.eval_steps": 20,
        "train.save_steps": 20,
    },
    # ORPO needs no SFT stage and no reference: the SFT loss on the chosen answer plus beta times the
    # odds-ratio term, so it starts from the base model with an SFT-like learning rate.
    ORPO_FROM_BASE: {
        "run_name": "orpo",
        "train.method": "orpo",
        "data.source": PAIRS,
        "data.max_length": 256,
        "pref.beta": 0.1,
        "train.learning_rate": 5e-4,
        "train.max_steps": 60,
        "train.eval_steps": 20,
        "train.save_steps": 20,
    },
}

DEFAULT_PRESET = CPU_DEMO


def names() -> list[str]:
    return list(PRESETS)


def build(name: str = DEFAULT_PRESET) -> RunConfig:
    """A fresh RunConfig: the defaults with the preset's settings applied (ConfigError on a bad preset)."""
    if name not in PRESETS:
        from workbench.core.errors import ConfigError

        raise ConfigError(f"unknown preset '{name}'; presets are: {', '.join(PRESETS)}")
    cfg = RunConfig()
    for key, value in PRESETS[name].items():
        cfg.set(key, value)
    return cfg
