"""RunConfig: the one description of a training run, shared by the CLI, the web form, the API and the engine.

Sections are plain dataclasses; every field carries its help text and range (fields.opt). validate() is a pure
check of values and their combinations; what depends on this machine (packages, files, GPUs) is decided once
by preflight() (config/preflight.py).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from workbench.config.fields import Settings, opt
from workbench.config.decoding import GenerationConfig
from workbench.core.errors import ConfigError

DEFAULT_MODEL = "default"  # the embedded SmolLM2-135M-Instruct (see models/resolve.py)
DEFAULT_DATA = "data/dolly_sample.jsonl"
DTYPES = ["auto", "float32", "bfloat16", "float16"]


@dataclass
class ModelCfg:
    name: str = opt(DEFAULT_MODEL, "Model: 'default' (embedded SmolLM2-135M-Instruct), a hub id or a local HF folder.")
    dtype: str = opt("auto", "Weights dtype. 'auto' picks bf16 on a GPU that supports it, fp16 on other GPUs, "
                     "fp32 on CPU (a CPU without native bf16 runs bf16 about 13x slower).", choices=DTYPES)
    quantization: str = opt("none", "Load the base model quantized: 8-bit or 4-bit NF4 (bitsandbytes).",
                            choices=["none", "8bit", "4bit"])
    double_quant: bool = opt(True, "4-bit only: quantize the quantization constants too (QLoRA's double quant).")
    compute_dtype: str = opt("auto", "4-bit only: dtype of the matmuls on dequantized weights.", choices=DTYPES)
    attention: str = opt("auto", "Attention kernel. 'auto' tries flash_attention_2, then sdpa, then eager.",
                         choices=["auto", "flash_attention_2", "sdpa", "eager"])
    trust_remote_code: bool = opt(False, "Run Python code shipped with a hub model. Off unless you trust its author.")
    adapter_from: str = opt("", "Start from an existing LoRA adapter (a run folder such as outputs/<run>, or a PEFT "
                            "folder) and keep training it, e.g. DPO after SFT. Empty = a fresh adapter. It must "
                            "have been trained on this base model.")


@dataclass
class AdapterCfg:
    method: str = opt("lora", "lora: low-rank adapter on full-precision weights; qlora: LoRA on a 4-bit NF4 "
                      "base; full: train every weight.", choices=["lora", "qlora", "full"])
    r: int = opt(16, "LoRA rank: size of the low-rank update.", min=1, max=1024)
    alpha: int = opt(32, "LoRA alpha: the update is scaled by alpha / r.", min=1, max=4096)
    dropout: float = opt(0.0, "Dropout on the LoRA input. 0 lets PEFT skip a masked copy of every adapted "
                         "input (+14% tokens/s on CPU, benchmarks/NOTES.md); 0.05-0.1 can help long runs on small "
                         "data.", min=0.0, max=0.9)
    target_modules: str = opt("all-linear", "Modules that get adapters: 'all-linear' or a comma list "
                              "such as 'q_proj,v_proj'.")
    bias: str = opt("none", "Which biases to train.", choices=["none", "all", "lora_only"])

    def targets(self) -> str | list[str]:
        """target_modules as PEFT takes it."""
        text = self.target_modules.strip()
        return text if text == "all-linear" else [t.strip() for t in text.split(",") if t.strip()]


@dataclass
class DataCfg:
    source: str = opt(DEFAULT_DATA, "Dataset: a local JSON/JSONL/CSV/Parquet file or a hub id.")
    hub_config: str = opt("", "Hub datasets only: the configuration name.")
    hub_split: str = opt("train", "Hub datasets only: the split to load.")
    format: str = opt("auto", "Row format; 'auto' detects it from the columns.",
                      choices=["auto", "alpaca", "dolly", "self_instruct", "sharegpt", "messages",
                               "prompt_completion", "input_target"])
    column_map: dict = opt({}, "Rename columns before format detection: 'context: input, response: output'.")
    drop_invalid: bool = opt(True, "Drop rows whose instruction or output is missing, empty or not text (they "
                             "are counted and named in the load message); off = refuse to train on such data.")
    template: str = opt("reverse_instruction", "Prompt template: a file name (without .yaml) in templates/.")
    max_length: int = opt(512, "Longest training sequence in tokens; longer rows are truncated.", min=16, max=131072)
    packing: bool = opt(False, "Pack several rows into one sequence (no cross-row attention) to avoid padding.")
    train_on: str = opt("responses", "Which tokens carry the loss: the responses only (usual), every token, "
                        "or the last response only.", choices=["responses", "all", "last_response"])
    max_rows: int = opt(0, "Use at most this many rows (0 = all); handy for quick runs.", min=0)
    val_size: float = opt(0.10, "Fraction held out for validation (eval loss).", min=0.0, max=0.5)
    test_size: float = opt(0.05, "Fraction held out for testing (generation eval).", min=0.0, max=0.5)
    seed: int = opt(42, "Seed of the shuffle before the split.", min=0)


OPTIMIZERS = ["adamw_torch", "adamw_torch_fused", "paged_adamw_32bit", "paged_adamw_8bit", "adamw_8bit", "sgd",
              "adafactor"]
BNB_OPTIMIZERS = ("paged_adamw_32bit", "paged_adamw_8bit", "adamw_8bit")
TRACKERS = ["none", "tensorboard", "wandb", "mlflow", "trackio"]


METHODS = ["sft", "dpo", "orpo", "kto"]
PREFERENCE_METHODS = ("dpo", "orpo", "kto")
DPO_LOSSES = ["sigmoid", "ipo", "hinge", "robust", "bco_pair", "sppo_hard", "nca_pair", "apo_zero", "apo_down",
              "sigmoid_norm"]


@dataclass
class TrainCfg:
    method: str = opt("sft", "sft: imitate the responses; dpo: prefer chosen over rejected against a reference "
                      "(the model with the adapter off); orpo: SFT + odds-ratio preference in one stage, no "
                      "reference; kto: thumbs-up / thumbs-down labels. dpo, orpo and kto need preference data "
                      "(prompt/chosen/rejected, or prompt/completion/label for kto).", choices=METHODS)
    learning_rate: float = opt(2e-3, "Peak learning rate. 2e-3 suits LoRA on the default model (held-out ROUGE-L "
                               "gain +0.29 vs +0.17 at 2e-4, benchmarks/NOTES.md); the 7B presets use 2e-4.",
                               min=0.0, max=1.0, min_exclusive=True)
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
                         choices=OPTIMIZERS)
    logging_steps: int = opt(1, "Write a metrics row every N steps.", min=1)
    eval_steps: int = opt(0, "Evaluate on the validation split every N steps (0 = only at the end).", min=0)
    save_steps: int = opt(50, "Save a resumable checkpoint every N steps.", min=1)
    save_total_limit: int = opt(2, "Keep at most this many checkpoints.", min=1)
    early_stopping_patience: int = opt(0, "Stop when the eval loss has not improved for this many evaluations "
                                       "(0 = off). Needs eval_steps > 0 and a validation split.", min=0, max=1000)
    load_best_at_end: bool = opt(False, "At the end, keep the checkpoint with the lowest eval loss as the saved "
                                 "adapter (not the last one). Needs eval_steps > 0 and save_steps a multiple of it.")
    group_by_length: bool = opt(True, "Batch rows of similar length together (batches still come in random "
                                "order): far less padding, +75% tokens/s on the bundled data. Ignored with packing.")
    gradient_checkpointing: bool = opt(False, "Recompute activations in the backward pass: less memory, ~30% slower.")
    seed: int = opt(42, "Seed of the weights init and the data order.", min=0)
    report_to: str = opt("none", "Experiment tracker passed to the Trainer.", choices=TRACKERS)


@dataclass
class PrefCfg:
    beta: float = opt(0.1, "dpo / kto: how far the model may move from the reference (higher = closer to it); "
                      "orpo: the weight (lambda) of the odds-ratio term next to the SFT loss.", min=0.0, max=10.0,
                      min_exclusive=True)
    dpo_loss: str = opt("sigmoid", "dpo only: TRL's loss type (sigmoid = the DPO paper, ipo, hinge, robust, ...).",
                        choices=DPO_LOSSES)
    kto_loss: str = opt("kto", "kto only: TRL's loss type.", choices=["kto", "apo_zero_unpaired"])
    desirable_weight: float = opt(1.0, "kto only: weight of thumbs-up examples (raise it when they are rarer).",
                                  min=0.0, max=100.0, min_exclusive=True)
    undesirable_weight: float = opt(1.0, "kto only: weight of thumbs-down examples.", min=0.0, max=100.0,
                                    min_exclusive=True)
    max_prompt_length: int = opt(0, "Longest prompt in tokens (its start is cut: the end, next to the answer, "
                                 "stays); 0 = no limit besides data.max_length.", min=0, max=131072)
    max_completion_length: int = opt(0, "Longest chosen / rejected answer in tokens (its end is cut); 0 = no "
                                     "limit besides data.max_length.", min=0, max=131072)
    precompute_ref: bool = opt(False, "dpo / kto: compute the reference log-probabilities once before training "
                               "(one extra pass over the data, then no reference forward per step).")
    ref_model: str = opt("", "dpo / kto: a separate reference model (name or folder). Empty = the trained model "
                         "with its LoRA adapter disabled (no second copy in memory), or the starting adapter when "
                         "model.adapter_from is set.")
    min_difference: float = opt(0.0, "Drop pairs whose chosen and rejected answers are more alike than this "
                                "(0 = drop only identical ones; 0.3 = need at least 30% of the text to differ).",
                                min=0.0, max=1.0)


@dataclass
class SlurmCfg:
    partition: str = opt("", "Slurm partition (empty = the cluster's default).")
    account: str = opt("", "Slurm account to charge (empty = your default).")
    time: str = opt("", "Time limit in Slurm's format, e.g. 4:00:00 or 1-00:00:00 (empty = the partition's).")
    nodes: int = opt(1, "Nodes: more than 1 runs one `accelerate launch` per node through srun.", min=1, max=1024)
    gpus_per_node: int = opt(0, "GPUs per node to ask for (0 = none: a CPU job).", min=0, max=64)
    extra: str = opt("", "More sbatch options, one per line or ';'-separated, e.g. --qos=high; --constraint=a100.")


@dataclass
class DistributedCfg:
    strategy: str = opt("ddp", "How several processes share the work: ddp (a copy per process), fsdp (sharded; "
                        "accelerate's FSDP config is written into the run folder), zero2 / zero3 (DeepSpeed, GPU "
                        "only).", choices=["ddp", "fsdp", "zero2", "zero3"])


@dataclass
class RunConfig(Settings):
    model: ModelCfg = field(default_factory=ModelCfg)
    adapter: AdapterCfg = field(default_factory=AdapterCfg)
    data: DataCfg = field(default_factory=DataCfg)
    train: TrainCfg = field(default_factory=TrainCfg)
    pref: PrefCfg = field(default_factory=PrefCfg)
    gen: GenerationConfig = field(default_factory=GenerationConfig)
    output_dir: str = opt("", "The run folder; empty = outputs/<run-id>.")
    run_name: str = opt("", "A label for the run (part of the run id).")
    executor: str = opt("", "Where a queued run trains: local, slurm, or empty = the supervisor's choice (local "
                        "unless the app / worker was started with --executor slurm).", choices=["", "local", "slurm"])
    slurm: SlurmCfg = field(default_factory=SlurmCfg)
    distributed: DistributedCfg = field(default_factory=DistributedCfg)

    def validate(self) -> "RunConfig":
        """Raise ConfigError on the first bad value or combination; touches no file, package or device."""
        validate(self)
        return self

    def effective_quantization(self) -> str:
        """qlora means LoRA on a 4-bit base, whatever model.quantization says."""
        return "4bit" if self.adapter.method == "qlora" else self.model.quantization


SECTIONS = RunConfig.sections()


def iter_fields():
    """(dotted name, field) of every run setting: the Train form and the CLI help are built from it."""
    return RunConfig.iter_fields()


def validate(cfg: RunConfig) -> None:
    cfg.check_ranges()
    m, a, d = cfg.model, cfg.adapter, cfg.data
    if not m.name.strip():
        raise ConfigError("model.name is empty; use 'default', a hub id or a local folder")
    if a.method == "qlora" and m.quantization == "8bit":
        raise ConfigError("adapter.method qlora trains on a 4-bit base; model.quantization must be 4bit (or none, "
                          "which qlora turns into 4bit), not 8bit")
    if a.method == "full" and m.quantization != "none":
        raise ConfigError("adapter.method full cannot train quantized weights; set model.quantization to none "
                          "or use lora / qlora")
    if not a.targets():
        raise ConfigError("adapter.target_modules is empty; use 'all-linear' or a comma list like 'q_proj,v_proj'")
    if not d.template.strip():
        raise ConfigError("data.template is empty; name a template file in templates/ (e.g. alpaca)")
    if not d.source.strip():
        raise ConfigError("data.source is empty; give a local file (JSON/JSONL/CSV/Parquet) or a hub dataset id")
    t = cfg.train
    if (t.early_stopping_patience or t.load_best_at_end) and not (t.eval_steps and d.val_size > 0):
        raise ConfigError("train.early_stopping_patience and train.load_best_at_end judge the eval loss: set "
                          "train.eval_steps > 0 and data.val_size > 0")
    if t.load_best_at_end and t.save_steps % t.eval_steps:
        raise ConfigError(f"train.load_best_at_end needs train.save_steps ({t.save_steps}) to be a multiple of "
                          f"train.eval_steps ({t.eval_steps}), so every evaluated step has a checkpoint")
    _validate_method(cfg)
    if d.val_size + d.test_size >= 0.9:
        raise ConfigError(f"data.val_size + data.test_size must leave rows to train on (< 0.9); got "
                          f"{d.val_size + d.test_size:.2f}")


def _validate_method(cfg: RunConfig) -> None:
    """The preference methods' combinations (pure: no file is read; the data is checked in preflight)."""
    t, p, m = cfg.train, cfg.pref, cfg.model
    if m.adapter_from.strip() and cfg.adapter.method == "full":
        raise ConfigError("model.adapter_from continues a LoRA adapter; adapter.method full trains every weight",
                          "set adapter.method to lora (or qlora), or clear model.adapter_from")
    if t.method == "sft":
        return
    if cfg.data.packing:
        raise ConfigError(f"train.method {t.method} compares whole answers; data.packing must be off")
    if t.method == "orpo" and (p.ref_model.strip() or p.precompute_ref):
        setting = "pref.ref_model" if p.ref_model.strip() else "pref.precompute_ref"
        raise ConfigError(f"train.method orpo uses no reference model, so {setting} has no meaning",
                          f"clear {setting}, or use dpo / kto, which compare with a reference")
    if p.ref_model.strip() and cfg.adapter.method != "full":
        raise ConfigError("pref.ref_model loads a second model; with a LoRA adapter the reference is the same "
                          "weights with the adapter disabled", "clear pref.ref_model, or use adapter.method full")
