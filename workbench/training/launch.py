"""The equivalent command for a RunConfig: the CLI line, its YAML, and `accelerate launch` for several GPUs.

Every run in the UI is exactly one YAML plus one command, so it can be repeated from a terminal or on a
bigger machine. Multi-GPU strategies:
    ddp     one full copy of the model per GPU (the usual choice for LoRA / QLoRA)
    fsdp    FSDP2: weights, gradients and optimizer state sharded across GPUs (big models, full training)
    zero2   DeepSpeed ZeRO-2: optimizer state and gradients sharded
    zero3   DeepSpeed ZeRO-3: weights sharded too
fsdp / zero2 / zero3 take an accelerate config file, written next to the run's YAML.
"""
from __future__ import annotations

import shlex
from pathlib import Path

import yaml

from workbench.config.run import RunConfig, iter_fields
from workbench.core.errors import ConfigError
from workbench.core.files import atomic_write_text
from workbench.core.formatting import check_name
from workbench.core.paths import PROJECT_ROOT, confine, outputs_dir

STRATEGIES = {
    "ddp": "DDP (a copy of the model per GPU)",
    "fsdp": "FSDP2 (shard weights, gradients and optimizer state)",
    "zero2": "DeepSpeed ZeRO-2 (shard optimizer state and gradients)",
    "zero3": "DeepSpeed ZeRO-3 (shard weights too)",
}


def configs_dir() -> Path:
    return outputs_dir() / "configs"


# -- CLI ---------------------------------------------------------------------------------------------

def set_args(cfg: RunConfig) -> list[str]:
    """`section.key=value` for every setting that differs from the defaults: the whole run, no file needed."""
    default = RunConfig()
    pairs = []
    for name, _f in iter_fields():
        value = cfg.get(name)
        if value != default.get(name):
            text = yaml.safe_dump(value, default_flow_style=True).strip() if isinstance(value, dict) else value
            pairs.append(f"{name}={str(text).lower() if isinstance(value, bool) else text}")
    return pairs


def cli_command(cfg: RunConfig | None = None, config_path: str | Path | None = None) -> str:
    """`python -m workbench train --config X.yaml`, or the same run spelled out with --set."""
    if config_path is not None:
        return f"python -m workbench train --config {shlex.quote(str(config_path))}"
    sets = " ".join(f"--set {shlex.quote(p)}" for p in set_args(cfg or RunConfig()))
    return f"python -m workbench train {sets}".rstrip()


# -- accelerate ------------------------------------------------------------------------------------

def _mixed_precision(cfg: RunConfig) -> str:
    """What the engine trains in on a GPU: bf16 for 'auto' (Ampere or newer), or the dtype asked for."""
    return {"float32": "no", "float16": "fp16"}.get(cfg.model.dtype, "bf16")


def accelerate_config(strategy: str, num_gpus: int, cfg: RunConfig) -> dict:
    """An accelerate config file (the format `accelerate config` writes) for fsdp / zero2 / zero3."""
    if strategy not in ("fsdp", "zero2", "zero3"):
        raise ConfigError(f"no accelerate config file for strategy '{strategy}'; use fsdp, zero2 or zero3")
    base = {"compute_environment": "LOCAL_MACHINE", "debug": False, "downcast_bf16": "no", "machine_rank": 0,
            "main_training_function": "main", "mixed_precision": _mixed_precision(cfg), "num_machines": 1,
            "num_processes": int(num_gpus), "rdzv_backend": "static", "same_network": True, "tpu_env": [],
            "tpu_use_cluster": False, "tpu_use_sudo": False, "use_cpu": False}
    if strategy == "fsdp":
        return {**base, "distributed_type": "FSDP", "fsdp_config": {
            "fsdp_version": 2,
            "fsdp_auto_wrap_policy": "TRANSFORMER_BASED_WRAP",
            "fsdp_cpu_ram_efficient_loading": True,
            "fsdp_offload_params": False,
            "fsdp_reshard_after_forward": True,
            # A full state dict lets the final save write a standard adapter / model folder.
            "fsdp_state_dict_type": "FULL_STATE_DICT",
            "fsdp_activation_checkpointing": False,
        }}
    zero3 = strategy == "zero3"
    return {**base, "distributed_type": "DEEPSPEED", "deepspeed_config": {
        "deepspeed_multinode_launcher": "standard",
        "gradient_accumulation_steps": cfg.train.grad_accum,  # must match the Trainer's
        "offload_optimizer_device": "none",
        "offload_param_device": "none",
        "zero3_init_flag": zero3,
        **({"zero3_save_16bit_model": True} if zero3 else {}),
        "zero_stage": 3 if zero3 else 2,
    }}


def accelerate_config_path(config_path: str | Path, strategy: str) -> Path:
    p = Path(config_path)
    stem = p.name[:-5] if p.name.endswith(".yaml") else p.stem
    return p.with_name(f"{stem}.accelerate-{strategy}.yaml")


def accelerate_command(config_path: str | Path, num_gpus: int, strategy: str = "ddp") -> str:
    """`accelerate launch ... -m workbench train --config X.yaml` for num_gpus processes on one machine.

    ddp uses --multi_gpu (torchrun underneath). On a machine without CUDA the same command starts the
    processes on the CPU (the engine trains with use_cpu, so they talk over gloo); accelerate's own --cpu flag
    would start only one process.
    """
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown strategy '{strategy}'; choose one of {', '.join(STRATEGIES)}")
    n = int(num_gpus)
    if n < 1:
        raise ConfigError("the number of GPUs must be at least 1")
    train = f"-m workbench train --config {shlex.quote(str(config_path))}"
    if strategy == "ddp":
        if n == 1:
            return f"accelerate launch --num_processes 1 {train}"
        return f"accelerate launch --multi_gpu --num_processes {n} --main_process_port 0 {train}"
    acc = accelerate_config_path(config_path, strategy)
    return f"accelerate launch --config_file {shlex.quote(str(acc))} --main_process_port 0 {train}"


def check_strategy(cfg: RunConfig, processes: int, *, gpus: bool) -> None:
    """Refuse, at submit, a multi-process strategy that cannot run where the job goes (`gpus`: the machine, or
    the Slurm nodes asked for, have GPUs). FSDP runs on the CPU too (torch's FSDP2 over gloo, tests/test_fsdp.py);
    DeepSpeed's ZeRO needs CUDA."""
    strategy = cfg.distributed.strategy
    if processes <= 1 or strategy == "ddp":
        return
    if strategy in ("zero2", "zero3") and not gpus:
        raise ConfigError(f"distributed.strategy {strategy} (DeepSpeed ZeRO) needs GPUs, and this job would run "
                          "without any", "use ddp or fsdp on CPUs, or ask Slurm for GPUs (slurm.gpus_per_node)")
    if strategy in ("fsdp", "zero3") and cfg.effective_quantization() != "none":
        raise ConfigError(f"distributed.strategy {strategy} shards weights, which 4-/8-bit loading does not "
                          "support", "use ddp (or zero2 on GPUs) for QLoRA")


def strategy_notes(cfg: RunConfig, strategy: str) -> list[str]:
    """Where a strategy does not suit this config, say so (shown next to the command)."""
    notes = []
    quantized = cfg.effective_quantization() != "none"
    if quantized and strategy in ("fsdp", "zero3"):
        notes.append(f"{strategy} shards weights, which this workbench's 4-/8-bit loading does not support; "
                     "use ddp or zero2 for QLoRA")
    if strategy != "ddp" and cfg.adapter.method != "full":
        notes.append("adapters are small: ddp is usually fastest for LoRA / QLoRA unless the base model does not "
                     "fit on one GPU")
    return notes


def equivalent_commands(cfg: RunConfig, config_path: str | Path, num_gpus: int = 2) -> str:
    """The shell block shown in the UI: one process, the same without a file, and N GPUs per strategy."""
    lines = ["# this machine, one process", cli_command(config_path=config_path), "",
             "# the same run without a file", cli_command(cfg), ""]
    for strategy, label in STRATEGIES.items():
        lines.append(f"# {num_gpus} GPUs, {label}")
        lines += [f"# note: {n}" for n in strategy_notes(cfg, strategy)]
        lines += [accelerate_command(config_path, num_gpus, strategy), ""]
    return "\n".join(lines).rstrip() + "\n"


# -- saving ------------------------------------------------------------------------------------------

def config_path_for(name: str) -> Path:
    name = (name or "").strip()
    return configs_dir() / f"{check_name(name.removesuffix('.yaml'), 'config name', ConfigError)}.yaml"


def save_config(cfg: RunConfig, name: str, *, num_gpus: int = 2, overwrite: bool = False) -> dict[str, Path]:
    """Write outputs/configs/<name>.yaml and its accelerate config files, each atomically.

    An existing <name>.yaml is never replaced silently: overwrite=True is required.
    """
    path = config_path_for(name)
    if path.exists() and not overwrite:
        raise ConfigError(f"{path} already exists; choose another name or tick 'overwrite'")
    saved = RunConfig.from_dict(cfg.to_dict())
    saved.output_dir = ""  # every launch of a saved config gets its own new run folder
    atomic_write_text(path, saved.to_yaml())
    written = {"config": path}
    for strategy in ("fsdp", "zero2", "zero3"):
        acc = accelerate_config_path(path, strategy)
        atomic_write_text(acc, yaml.safe_dump(accelerate_config(strategy, num_gpus, cfg), sort_keys=False))
        written[strategy] = acc
    return written


# -- loading ------------------------------------------------------------------------------------------

def load_config_file(path: str | Path, *, uploaded: bool = False) -> RunConfig:
    """Read a run YAML: a saved config name ('my-run'), or a .yaml path in the folders the app may read.

    Uploaded files (already copied by the web server into its own folder) skip the folder check; typed
    paths are limited so the form cannot be used to read arbitrary files on the server.
    """
    text = str(path or "").strip()
    if not text:
        raise ConfigError("give a config name, a .yaml path or upload a file")
    p = Path(text).expanduser()
    if not uploaded and "/" not in text and p.suffix not in (".yaml", ".yml"):
        p = configs_dir() / f"{text}.yaml"  # a name saved with "Save config"
    elif not p.is_absolute():
        p = PROJECT_ROOT / p
    p = p.resolve()
    if p.suffix not in (".yaml", ".yml"):
        raise ConfigError(f"{p.name} is not a .yaml file")
    if not uploaded:
        p = confine(p, "config file")  # the one confinement rule; an upload was copied in by the web server
    return RunConfig.load(p)
