"""The Train form, generated from RunConfig's fields: one component per setting, typed by the dataclass.

Numbers are gr.Number whose info line ends with the allowed range, choices are dropdowns, bools are
checkboxes, mappings are a one-line YAML textbox; each component's info line is the field's help text.
Values go back through RunConfig.set, so the form, the CLI and YAML share one coercion and one validation.
Generation settings (gen.*) belong to the Chat tab and output_dir to the job, so both stay out.

Handlers receive the form as keyword arguments named `section__key` (gradio's inputs_kwargs), which also
makes them the parameter names of the API: client.predict(train__max_steps=3, api_name="/start_training").
"""
from __future__ import annotations

import math
from typing import Any

import gradio as gr
import yaml

from workbench.config.preflight import has_package
from workbench.config.run import RunConfig, iter_fields

SECTIONS = {"model": "Model", "adapter": "Adapter", "data": "Data", "train": "Training", "pref": "Preference"}
TOP_LEVEL = ("run_name",)
# Rarely changed settings, folded into an "Advanced" accordion under their section.
ADVANCED = frozenset({
    "model.double_quant", "model.compute_dtype", "model.attention", "model.trust_remote_code",
    "adapter.target_modules", "adapter.bias",
    "data.hub_config", "data.hub_split", "data.format", "data.column_map", "data.packing", "data.train_on",
    "data.val_size", "data.test_size", "data.seed",
    "train.warmup_ratio", "train.weight_decay", "train.max_grad_norm", "train.logging_steps", "train.save_steps",
    "train.save_total_limit", "train.seed", "train.report_to",
})
# Where a queued run trains (local or a Slurm cluster) and how several processes share it: in the Training
# tab's Advanced accordion.
CLUSTER = ("executor", "distributed.strategy", "slurm.partition", "slurm.account", "slurm.time", "slurm.nodes",
           "slurm.gpus_per_node", "slurm.extra")
PER_ROW = 3
TRACKERS = ("tensorboard", "wandb", "mlflow", "trackio")


def _template_names() -> list[str]:
    from workbench.prompts import registry
    return registry.available()


# Free-text settings whose usual values are known at build time: a dropdown that still takes any value.
SUGGESTIONS = {"data.template": _template_names, "model.name": lambda: ["default"]}


def form_fields() -> list[tuple[str, Any]]:
    """(dotted name, dataclass field) of every setting the Train form shows, in RunConfig order."""
    return [(n, f) for n, f in iter_fields() if n.split(".")[0] in SECTIONS or n in TOP_LEVEL or n in CLUSTER]


FIELD_NAMES = [n for n, _ in form_fields()]


def param_name(dotted: str) -> str:
    """'train.max_steps' → 'train__max_steps': a Python identifier for handlers and the API."""
    return dotted.replace(".", "__")


def dotted_name(param: str) -> str:
    return param.replace("__", ".")


def field_type(f) -> type:
    return f.type if isinstance(f.type, type) else {"str": str, "int": int, "float": float, "bool": bool,
                                                    "dict": dict}[f.type]


def to_form_value(value: Any) -> Any:
    """A RunConfig value as its component shows it (mappings as one-line YAML)."""
    if isinstance(value, dict):
        return yaml.safe_dump(value, default_flow_style=True).strip()
    return value


def form_values(cfg: RunConfig) -> list:
    """The form's values for cfg, in FIELD_NAMES order: the output of every handler that fills the form."""
    return [to_form_value(cfg.get(n)) for n in FIELD_NAMES]


def config_from_values(values: dict[str, Any]) -> RunConfig:
    """Form values (keyed by dotted or param names) → RunConfig; ConfigError names the bad setting."""
    cfg = RunConfig()
    for key, value in values.items():
        cfg.set(dotted_name(key), value)
    return cfg


def _float_step(default: float) -> float:
    """A spinner step one decade below the default (2e-4 → 1e-5), so the arrows nudge rather than jump."""
    if not default or default <= 0:
        return 0.01
    return 10 ** (math.floor(math.log10(default)) - 1)


def range_text(meta: dict) -> str:
    """'Allowed: >= 1 and <= 4096.' from a field's metadata ('' when it has no bounds)."""
    lo, hi = meta.get("min"), meta.get("max")
    parts = ([f"{'>' if meta.get('min_exclusive') else '>='} {lo}"] if lo is not None else []) + \
        ([f"<= {hi}"] if hi is not None else [])
    return f"Allowed: {' and '.join(parts)}." if parts else ""


def make_component(name: str, f, value: Any) -> gr.components.Component:
    m = f.metadata
    label = name.split(".")[-1].replace("_", " ")
    info = m.get("help", "")
    if name == "train.report_to":
        installed = [t for t in TRACKERS if has_package(t)]
        info += f" Installed here: {', '.join(installed) if installed else 'none'}."
    t = field_type(f)
    common = {"label": label, "info": info, "elem_id": f"train-form-{param_name(name)}"}
    if name in SUGGESTIONS:
        return gr.Dropdown(choices=SUGGESTIONS[name](), value=value, allow_custom_value=True, **common)
    if m.get("choices"):
        return gr.Dropdown(choices=list(m["choices"]), value=value, **common)
    if t is bool:
        return gr.Checkbox(value=value, **common)
    # No minimum/maximum/precision on the Numbers: gradio would refuse 0 with "less than minimum value 1",
    # naming no setting, and round 2.5 to 2 without a word. validate() says "train.batch_size must be >= 1"
    # and "must be a whole number" instead; the info line shows the range.
    if t in (int, float):
        common["info"] = f"{info} {range_text(m)}".strip()
        return gr.Number(value=value, step=1 if t is int else _float_step(f.default), **common)
    if t is dict:
        return gr.Textbox(value=to_form_value(value), lines=1, **common)
    return gr.Textbox(value=value, **common)


def setting_help(cls, name: str) -> str:
    """The help text of one setting of a config dataclass: the `info` line of a component built by hand."""
    return dict(cls.iter_fields())[name].metadata.get("help", "")


def setting_input(cls, name: str, label: str, step: float | None = None, **kw) -> gr.components.Component:
    """One setting of any config dataclass (e.g. GenerationConfig) as a component whose default, range and
    help come from the field's metadata: a Slider for a bounded number (step given), a Checkbox for a bool,
    a Number otherwise. Forms outside the Train tab use this instead of writing their own ranges."""
    from workbench.config.fields import default_of

    f = dict(cls.iter_fields())[name]
    m, value = f.metadata, default_of(f)
    common = {"label": label, "info": m.get("help", ""), **kw}
    if field_type(f) is bool:
        return gr.Checkbox(value=value, **common)
    if step is not None and m.get("min") is not None and m.get("max") is not None:
        low = m["min"] + (step if m.get("min_exclusive") else 0)
        return gr.Slider(low, m["max"], value=value, step=step, **common)
    return gr.Number(value=value, precision=0 if field_type(f) is int else None, **common)


def _grid(names: list[str], fields: dict, cfg: RunConfig, out: dict) -> None:
    for i in range(0, len(names), PER_ROW):
        with gr.Row(equal_height=False):
            for name in names[i:i + PER_ROW]:
                out[name] = make_component(name, fields[name], cfg.get(name))


def build_form(cfg: RunConfig) -> dict[str, gr.components.Component]:
    """Lay the form out (run name, then a tab per section with an Advanced accordion); dotted name → component."""
    fields = dict(form_fields())
    out: dict[str, gr.components.Component] = {}
    for name in TOP_LEVEL:
        out[name] = make_component(name, fields[name], cfg.get(name))
    with gr.Tabs():
        for section, title in SECTIONS.items():
            with gr.Tab(title, id=f"train-form-{section}"):
                names = [n for n in fields if n.startswith(section + ".")]
                _grid([n for n in names if n not in ADVANCED], fields, cfg, out)
                advanced = [n for n in names if n in ADVANCED] + (list(CLUSTER) if section == "train" else [])
                if advanced:
                    with gr.Accordion("Advanced", open=False):
                        _grid(advanced, fields, cfg, out)
    return {n: out[n] for n in FIELD_NAMES}  # RunConfig order, whatever the layout


def as_kwargs(components: dict[str, gr.components.Component]) -> dict[str, gr.components.Component]:
    """inputs_kwargs for an event: param name → component."""
    return {param_name(n): c for n, c in components.items()}
