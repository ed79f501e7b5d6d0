"""RunConfig: the one description of a run, shared by the CLI, the web form and the engine.

Every field carries its help text and its allowed range in `metadata`, so `validate()`, the UI form
and the CLI `--help` all read the same source instead of repeating it.
"""
from __future__ import annotations

import dataclasses
import importlib.util
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

DEFAULT_MODEL = "default"  # the embedded SmolLM2-135M-Instruct (see models.py)
DEFAULT_DATA = "data/dolly_sample.jsonl"


class ConfigError(ValueError):
    """A config value a human must fix; the message names the field and what is allowed."""


def opt(default, help: str, *, choices=None, min=None, max=None, min_exclusive=False):
    """A dataclass field with its help text and range, read by validate(), the UI form and the CLI."""
    meta = {"help": help, "choices": choices, "min": min, "max": max, "min_exclusive": min_exclusive}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class ModelCfg:
    name: str = opt(DEFAULT_MODEL, "Model: 'default' (embedded SmolLM2-135M-Instruct), a hub id or a local HF folder.")
    dtype: str = opt("auto", "Weights dtype. 'auto' picks bf16 on a GPU that supports it, fp16 on other GPUs, "
                     "fp32 on CPU (a CPU without native bf16 runs bf16 about 13x slower).",
                     choices=["auto", "float32", "bfloat16", "float16"])
    quantization: str = opt("none", "Load the base model quantized: 8-bit or 4-bit NF4 (bitsandbytes).",
                            choices=["none", "8bit", "4bit"])
    double_quant: bool = opt(True, "4-bit only: quantize the quantization constants too (QLoRA's double quant).")
    compute_dtype: str = opt("auto", "4-bit only: dtype of the matmuls on dequantized weights.",
                             choices=["auto", "float32", "bfloat16", "float16"])
    attention: str = opt("auto", "Attention kernel. 'auto' tries flash_attention_2, then sdpa, then eager.",
                         choices=["auto", "flash_attention_2", "sdpa", "eager"])
    trust_remote_code: bool = opt(False, "Run Python code shipped with a hub model. Off unless you trust its author.")


@dataclass
class AdapterCfg:
    method: str = opt("lora", "lora: low-rank adapter on full-precision weights; qlora: LoRA on a 4-bit NF4 "
                      "base; full: train every weight.", choices=["lora", "qlora", "full"])
    r: int = opt(16, "LoRA rank: size of the low-rank update.", min=1, max=1024)
    alpha: int = opt(32, "LoRA alpha: the update is scaled by alpha / r.", min=1, max=4096)
    dropout: float = opt(0.0, "Dropout on the LoRA input. 0 lets PEFT skip a masked copy of every adapted "
                         "input (+14% tokens/s on CPU, benchmarks/NOTES.md); 0.05-0.1 can help long runs on small data.",
                         min=0.0, max=0.9)
    target_modules: str = opt("all-linear", "Modules that get adapters: 'all-linear' or a comma list "
                              "such as 'q_proj,v_proj'.")
    bias: str = opt("none", "Which biases to train.", choices=["none", "all", "lora_only"])


@dataclass
class DataCfg:
    source: str = opt(DEFAULT_DATA, "Dataset: a local JSON/JSONL/CSV/Parquet file or a hub id.")
    hub_config: str = opt("", "Hub datasets only: the configuration name.")
    hub_split: str = opt("train", "Hub datasets only: the split to load.")
    format: str = opt("auto", "Row format; 'auto' detects it from the columns.",
                      choices=["auto", "alpaca", "dolly", "self_instruct", "sharegpt", "messages",
                               "prompt_completion"])
    column_map: dict = opt({}, "Rename columns before format detection, e.g. {context: input, response: output}.")
    template: str = opt("reverse_instruction", "Prompt template: a file name (without .yaml) in templates/.")
    max_length: int = opt(512, "Longest training sequence in tokens; longer rows are truncated.", min=16, max=131072)
    packing: bool = opt(False, "Pack several rows into one sequence (no cross-row attention) to avoid padding.")
    train_on: str = opt("responses", "Which tokens carry the loss: the responses only (usual), every token, "
                        "or the last response only.", choices=["responses", "all", "last_response"])
    max_rows: int = opt(0, "Use at most this many rows (0 = all); handy for quick runs.", min=0)
    val_size: float = opt(0.10, "Fraction held out for validation (eval loss).", min=0.0, max=0.5)
    test_size: float = opt(0.05, "Fraction held out for testing (generation eval).", min=0.0, max=0.5)
    seed: int = opt(42, "Seed of the shuffle before the split.", min=0)


@dataclass
class TrainCfg:
    learning_rate: float = opt(2e-4, "Peak learning rate.", min=0.0, max=1.0, min_exclusive=True)
    epochs: float = opt(1.0, "Passes over the training split (ignored when max_steps > 0).", min=0.0, max=1000,
                        min_exclusive=True)
    max_steps: int = opt(-1, "Stop after this many optimizer steps (-1 = use epochs).", min=-1)
    batch_size: int = opt(4, "Rows per device per step.", min=1, max=4096)
    grad_accum: int = opt(1, "Micro-batches accumulated per optimizer step.", min=1, max=4096)
    scheduler: str = opt("cosine", "Learning-rate schedule.",
                         choices=["constant", "constant_with_warmup", "linear", "cosine"])
    warmup_ratio: float = opt(0.03, "Fraction of steps spent warming the learning rate up.", min=0.0, max=0.5)
    weight_decay: float = opt(0.0, "AdamW weight decay.", min=0.0, max=1.0)
    max_grad_norm: float = opt(1.0, "Gradient clipping norm (0 = off).", min=0.0)
    optimizer: str = opt("adamw_torch_fused", "Optimizer (paged_* and *_8bit need bitsandbytes). The fused AdamW "
                         "steps the LoRA weights in one kernel (8 ms vs 24 ms per step on the default model).",
                         choices=["adamw_torch", "adamw_torch_fused", "paged_adamw_32bit", "paged_adamw_8bit",
                                  "adamw_8bit", "sgd", "adafactor"])
    logging_steps: int = opt(1, "Write a metrics row every N steps.", min=1)
    eval_steps: int = opt(0, "Evaluate on the validation split every N steps (0 = only at the end).", min=0)
    save_steps: int = opt(50, "Save a resumable checkpoint every N steps.", min=1)
    save_total_limit: int = opt(2, "Keep at most this many checkpoints.", min=1)
    group_by_length: bool = opt(True, "Batch rows of similar length together (batches still come in random "
                                "order): far less padding, +75% tokens/s on the bundled data. Ignored with packing.")
    gradient_checkpointing: bool = opt(False, "Recompute activations in the backward pass: less memory, ~30% slower.")
    seed: int = opt(42, "Seed of the weights init and the data order.", min=0)
    report_to: str = opt("none", "Experiment tracker passed to the Trainer.",
                         choices=["none", "tensorboard", "wandb", "mlflow", "trackio"])


@dataclass
class GenCfg:
    max_new_tokens: int = opt(128, "Longest reply in tokens.", min=1, max=8192)
    do_sample: bool = opt(False, "Sample (True) or take the most likely token (False, reproducible).")
    temperature: float = opt(0.7, "Sampling temperature.", min=0.0, max=5.0, min_exclusive=True)
    top_p: float = opt(0.9, "Nucleus sampling mass.", min=0.0, max=1.0, min_exclusive=True)
    top_k: int = opt(50, "Sample among the k most likely tokens (0 = all).", min=0)
    repetition_penalty: float = opt(1.1, "Penalty on repeated tokens (1 = none).", min=0.5, max=3.0)
    seed: int = opt(0, "Sampling seed.", min=0)


@dataclass
class RunConfig:
    model: ModelCfg = field(default_factory=ModelCfg)
    adapter: AdapterCfg = field(default_factory=AdapterCfg)
    data: DataCfg = field(default_factory=DataCfg)
    train: TrainCfg = field(default_factory=TrainCfg)
    gen: GenCfg = field(default_factory=GenCfg)
    output_dir: str = opt("", "The run folder; empty = outputs/<run-id>.")
    run_name: str = opt("", "A label for the run (part of the run id).")

    # -- serialisation -------------------------------------------------------------------------
    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> "RunConfig":
        d = dict(d or {})
        cfg = cls()
        for section in SECTIONS:
            values = d.pop(section, None) or {}
            if not isinstance(values, dict):
                raise ConfigError(f"'{section}' must be a mapping of settings, got {values!r}")
            for key, value in values.items():
                cfg.set(f"{section}.{key}", value)
        for key, value in d.items():
            cfg.set(key, value)
        return cfg

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False)

    @classmethod
    def from_yaml(cls, text: str) -> "RunConfig":
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as e:
            raise ConfigError(f"the config is not valid YAML: {e}") from None
        if data is not None and not isinstance(data, dict):
            raise ConfigError("the config must be a YAML mapping (sections model/adapter/data/train/gen)")
        return cls.from_dict(data)

    @classmethod
    def load(cls, path: str | Path) -> "RunConfig":
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        return cls.from_yaml(p.read_text(encoding="utf-8"))

    # -- dotted access (CLI --set, UI form) ----------------------------------------------------
    def set(self, dotted: str, value: Any) -> None:
        target, f = self._field(dotted)
        setattr(target, f.name, coerce(dotted, f, value))

    def get(self, dotted: str) -> Any:
        target, f = self._field(dotted)
        return getattr(target, f.name)

    def _field(self, dotted: str):
        parts = dotted.split(".")
        target = self
        for part in parts[:-1]:
            if part not in SECTIONS or target is not self:
                raise ConfigError(f"unknown setting '{dotted}'; sections are {', '.join(SECTIONS)}")
            target = getattr(target, part)
        by_name = {f.name: f for f in fields(target) if f.name not in SECTIONS}
        if parts[-1] not in by_name:
            raise ConfigError(f"unknown setting '{dotted}'; known: {', '.join(sorted(by_name))}")
        return target, by_name[parts[-1]]

    def validate(self) -> list[str]:
        """Raise ConfigError on the first problem; return notes (e.g. what 'auto' resolves to)."""
        return validate(self)


SECTIONS = ("model", "adapter", "data", "train", "gen")


def iter_fields():
    """Yield (dotted_name, dataclass field) for every setting: the UI form and CLI help are built from it."""
    for section in SECTIONS:
        for f in fields(RunConfig.__dataclass_fields__[section].default_factory):
            yield f"{section}.{f.name}", f
    for f in fields(RunConfig):
        if f.name not in SECTIONS:
            yield f.name, f


def _field_type(f) -> type:
    t = f.type if isinstance(f.type, type) else {"str": str, "int": int, "float": float, "bool": bool,
                                                  "dict": dict}[f.type]
    return t


def coerce(name: str, f, value: Any) -> Any:
    """Turn a YAML / CLI / form value into the field's type, or say why it can't be."""
    t = _field_type(f)
    if t is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "on", "false", "no", "0", "off"):
            return value.strip().lower() in ("true", "yes", "1", "on")
        raise ConfigError(f"{name} must be true or false, got {value!r}")
    if t is dict:
        if isinstance(value, str):
            try:
                value = yaml.safe_load(value) if value.strip() else {}
            except yaml.YAMLError:
                value = None
        if not isinstance(value, dict):
            raise ConfigError(f"{name} must be a mapping such as {{context: input}}, got {value!r}")
        return {str(k): str(v) for k, v in value.items()}
    if t in (int, float):
        if isinstance(value, bool):
            raise ConfigError(f"{name} must be a number, got {value!r}")
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{name} must be a number, got {value!r}") from None
        if t is int:
            if number != int(number):
                raise ConfigError(f"{name} must be a whole number, got {value!r}")
            return int(number)
        return number
    return "" if value is None else str(value)


def _check_range(name: str, f, value) -> None:
    m = f.metadata
    if m.get("choices") and value not in m["choices"]:
        raise ConfigError(f"{name} must be one of {', '.join(m['choices'])}; got {value!r}")
    lo, hi = m.get("min"), m.get("max")
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        too_low = lo is not None and (value <= lo if m.get("min_exclusive") else value < lo)
        too_high = hi is not None and value > hi
        if too_low or too_high:
            low = "" if lo is None else f"{'>' if m.get('min_exclusive') else '>='} {lo}"
            high = "" if hi is None else f"<= {hi}"
            allowed = " and ".join(x for x in (low, high) if x)
            raise ConfigError(f"{name} must be {allowed}; got {value}")


def has_package(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def validate(cfg: RunConfig) -> list[str]:
    from workbench import templates  # templates know which names exist
    from workbench.models import pick_attention

    for name, f in iter_fields():
        _check_range(name, f, cfg.get(name))
    notes: list[str] = []

    m, a, d, t = cfg.model, cfg.adapter, cfg.data, cfg.train
    if not m.name.strip():
        raise ConfigError("model.name is empty; use 'default', a hub id or a local folder")
    if a.method == "qlora" and m.quantization == "8bit":
        raise ConfigError("adapter.method qlora trains on a 4-bit base; model.quantization must be 4bit (or none, "
                          "which qlora turns into 4bit), not 8bit")
    if a.method == "full" and m.quantization != "none":
        raise ConfigError("adapter.method full cannot train quantized weights; set model.quantization to none "
                          "or use lora / qlora")
    quant = effective_quantization(cfg)
    if quant != "none" and not has_package("bitsandbytes"):
        raise ConfigError(f"model.quantization {quant} needs the bitsandbytes package: pip install bitsandbytes")
    if t.optimizer in ("paged_adamw_32bit", "paged_adamw_8bit", "adamw_8bit") and not has_package("bitsandbytes"):
        raise ConfigError(f"train.optimizer {t.optimizer} needs the bitsandbytes package")
    if not [x for x in a.target_modules.split(",") if x.strip()]:
        raise ConfigError("adapter.target_modules is empty; use 'all-linear' or a comma list like 'q_proj,v_proj'")
    if d.template not in templates.available():
        raise ConfigError(f"data.template '{d.template}' is unknown; available: {', '.join(templates.available())}")
    if not d.source.strip():
        raise ConfigError("data.source is empty; give a local file (JSON/JSONL/CSV/Parquet) or a hub dataset id")
    if d.val_size + d.test_size >= 0.9:
        raise ConfigError(f"data.val_size + data.test_size must leave rows to train on (< 0.9); got "
                          f"{d.val_size + d.test_size:.2f}")
    if t.report_to != "none" and not has_package(t.report_to):
        raise ConfigError(f"train.report_to {t.report_to} needs the {t.report_to} package installed")

    _check_paths(cfg)
    impl, reason = pick_attention(m.attention)
    if m.attention not in ("auto", impl):
        raise ConfigError(f"model.attention {m.attention} is not available here: {reason}")
    notes.append(f"attention: {impl} ({reason})")
    return notes


def _check_paths(cfg: RunConfig) -> None:
    """Catch a missing local model folder or data file now, not after minutes of loading."""
    from workbench.data.sources import is_local, resolve_local
    from workbench.models import ModelError, resolve_model

    if cfg.model.name not in ("default", "") and (Path(cfg.model.name).expanduser().exists()
                                                  or cfg.model.name.startswith((".", "/", "~"))):
        try:
            resolve_model(cfg.model.name)
        except ModelError as e:
            raise ConfigError(f"model.name: {e}") from None
    if is_local(cfg.data.source) and not resolve_local(cfg.data.source).is_file():
        raise ConfigError(f"data.source: file not found: {cfg.data.source}")


def effective_quantization(cfg: RunConfig) -> str:
    """qlora means LoRA on a 4-bit base, whatever model.quantization says."""
    return "4bit" if cfg.adapter.method == "qlora" else cfg.model.quantization


def parse_set(pairs: list[str]) -> list[tuple[str, str]]:
    out = []
    for pair in pairs or []:
        if "=" not in pair:
            raise ConfigError(f"--set expects section.key=value, got {pair!r}")
        key, value = pair.split("=", 1)
        out.append((key.strip(), value))
    return out
