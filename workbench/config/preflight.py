"""preflight(cfg) → Plan: everything about a run that depends on this machine, decided once, up front.

validate() checks values; preflight() then looks at the world: installed packages, the template file, the
model folder (converting the embedded default on first use), the data file, this device's dtype and attention
kernel, and the output folder. The engine, the estimate, the UI and the CLI all read the Plan instead of
deciding any of it again, and the Plan is saved in the run's status.json so a run says how it was run.
"""
from __future__ import annotations

import dataclasses
import importlib.util
import logging
from dataclasses import dataclass, field
from pathlib import Path

from workbench.config.run import BNB_OPTIMIZERS, RunConfig
from workbench.core.errors import ConfigError, ModelError
from workbench.core.paths import resolve_local

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Plan:
    model_name: str  # as configured ('default', a hub id or a folder)
    model_path: str  # the local folder to load, or the hub id
    model_is_local: bool
    device: str  # cpu | cuda
    dtype: str  # float32 | bfloat16 | float16: the weights' and (unquantized) compute dtype
    compute_dtype: str  # dtype of the matmuls on 4-bit weights
    quantization: str  # none | 8bit | 4bit, after qlora's implied 4bit
    attention: str  # the kernel that will run
    attention_reason: str
    data_source: str  # the local file (absolute) or the hub id
    data_is_local: bool
    template: str
    output_dir: str
    notes: tuple = field(default_factory=tuple)
    method: str = "sft"  # train.method
    adapter_from: str = ""  # the PEFT folder model.adapter_from resolved to (empty: a fresh adapter)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> Plan:
        return cls(**{**d, "notes": tuple(d.get("notes", ()))})

    def load_kwargs(self, cfg: RunConfig) -> dict:
        """What models.load.load_model takes for this run: every decision already made here."""
        return dict(dtype=self.dtype, quantization=self.quantization, compute_dtype=self.compute_dtype,
                    double_quant=cfg.model.double_quant, attention=self.attention,
                    trust_remote_code=cfg.model.trust_remote_code, device=self.device)


def has_package(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def preflight(cfg: RunConfig, *, output_dir: str | Path | None = None, device: str | None = None) -> Plan:
    """Validate cfg, then resolve it against this machine; ConfigError names the setting that cannot work."""
    from workbench.models.load import device_kind, pick_attention, pick_dtype
    from workbench.models.resolve import is_local_model, resolve_model
    from workbench.prompts.registry import available

    cfg.validate()
    m, d, t = cfg.model, cfg.data, cfg.train
    quant = cfg.effective_quantization()
    if quant != "none" and not has_package("bitsandbytes"):
        raise ConfigError(f"model.quantization {quant} needs the bitsandbytes package", "pip install bitsandbytes")
    if t.optimizer in BNB_OPTIMIZERS and not has_package("bitsandbytes"):
        raise ConfigError(f"train.optimizer {t.optimizer} needs the bitsandbytes package", "pip install bitsandbytes")
    if t.report_to != "none" and not has_package(t.report_to):
        raise ConfigError(f"train.report_to {t.report_to} needs the {t.report_to} package installed")
    names = available()
    if d.template not in names:
        raise ConfigError(f"data.template '{d.template}' is unknown; available: {', '.join(names)}")

    try:
        model_path = resolve_model(m.name)
    except ModelError as e:
        raise ConfigError(f"model.name: {e}", e.hint) from None
    from workbench.data.read import is_local

    data_local = is_local(d.source)
    data_source = d.source.strip()
    if data_local:
        path = resolve_local(data_source)
        if not path.is_file():
            raise ConfigError(f"data.source: file not found: {d.source}")
        data_source = str(path.resolve())

    device = device or device_kind()
    impl, reason = pick_attention(m.attention)
    if m.attention not in ("auto", impl):
        raise ConfigError(f"model.attention {m.attention} is not available here: {reason}")
    dtype = pick_dtype(m.dtype, device)
    compute = pick_dtype(m.compute_dtype, device) if m.compute_dtype != "auto" else dtype
    notes = [f"attention: {impl} ({reason})", f"dtype: {dtype} on {device}"]
    if device == "cpu" and dtype != "float32":
        notes.append(f"{dtype} on a CPU runs many times slower than float32 unless the CPU has native 16-bit math")
    adapter_from = _adapter_from(cfg)
    if t.method != "sft":
        notes.append(_check_preference_data(cfg, data_source))
    out = str(output_dir or cfg.output_dir or "")
    plan = Plan(model_name=m.name, model_path=model_path, model_is_local=is_local_model(m.name) or model_path != m.name,
                device=device, dtype=dtype, compute_dtype=compute, quantization=quant, attention=impl,
                attention_reason=reason, data_source=data_source, data_is_local=data_local, template=d.template,
                output_dir=out, notes=tuple(notes), method=t.method, adapter_from=adapter_from)
    log.debug("preflight: %s", plan)
    return plan


def _adapter_from(cfg: RunConfig) -> str:
    """model.adapter_from as a PEFT folder trained on this base, or a ConfigError saying why it cannot be used."""
    from workbench.models.resolve import check_adapter_base, find_adapter

    choice = cfg.model.adapter_from.strip()
    if not choice:
        return ""
    try:
        source = find_adapter(choice)
        if source.full_model:
            raise ModelError(f"{choice} is a full fine-tune, not a LoRA adapter",
                             "use it as model.name instead, or pick a LoRA run")
        check_adapter_base(source, cfg.model.name)
    except ModelError as e:
        raise ConfigError(f"model.adapter_from: {e}", e.hint) from None
    return str(source.path.resolve())


def _check_preference_data(cfg: RunConfig, data_source: str) -> str:
    """Read the data once for a preference method: no pairs, missing fields, one KTO label only are refused here,
    before anything is queued or loaded. Returns the load message for the plan's notes."""
    from workbench.core.errors import DataError
    from workbench.data.preference import load_pairs

    d = cfg.data
    try:
        pairs = load_pairs(data_source, cfg.train.method, d.column_map, d.hub_config, d.hub_split,
                           cfg.pref.min_difference)
    except DataError as e:
        raise ConfigError(f"data.source: {e}", e.hint) from None
    return f"data: {pairs.message()}"


# -- the plan travels with a queued job --------------------------------------------------------------
def world_of(plan: Plan) -> dict:
    """What the plan relied on that can change before a queued job starts: the data file's size and mtime."""
    if not plan.data_is_local:
        return {}
    st = Path(plan.data_source).stat()
    return {"data_file": [plan.data_source, st.st_size, st.st_mtime_ns]}


def saved_plan(saved: dict) -> Plan | None:
    """The Plan made at submit (jobs/submit.py saves {"plan", "world"}), once the world is checked to be as it was
    then; ConfigError naming what changed otherwise. The worker uses it instead of planning again. None when the
    worker runs on another kind of device than the app that planned (a GPU node of a cluster): plan there."""
    from workbench.models.load import device_kind

    plan = Plan.from_dict(saved["plan"])
    if plan.device != device_kind():
        log.info("the job was planned on a %s machine and runs on %s: planning again here", plan.device,
                 device_kind())
        return None
    data = saved.get("world", {}).get("data_file")
    if data:
        path, size, mtime = data
        try:
            st = Path(path).stat()
        except OSError:
            raise ConfigError(f"data.source: {path} is gone since the job was queued", "submit the job again") \
                from None
        if (st.st_size, st.st_mtime_ns) != (size, mtime):
            raise ConfigError(f"data.source: {path} changed since the job was queued (size {size} → {st.st_size})",
                              "submit the job again to plan it on the new file")
    if plan.model_is_local and not Path(plan.model_path).exists():
        raise ConfigError(f"model.name: {plan.model_path} is gone since the job was queued", "submit the job again")
    log.info("using the plan made when the job was queued (the data file is unchanged)")
    return plan
