"""Adapters: find one from a run folder, a run's adapter/ folder or any PEFT folder; check that it fits a
base model; read the tokenizer it was trained with."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from workbench.core.errors import ModelError, RunError
from workbench.core.paths import outputs_dir, resolve_local
from workbench.models.resolve import ARCH_KEYS, architecture, canonical_model
from workbench.runs.folder import RunDir


@dataclass
class AdapterSource:
    """A resolved adapter choice: the PEFT folder (or none), the base it was trained on, its template."""
    path: Path | None
    base: str | None  # model name as the run config (or adapter_config.json) gives it
    template: str | None  # the run's template, when the adapter comes from a run
    run: RunDir | None = None
    full_model: bool = False  # a full fine-tune: `path` is a complete model, used as the base itself


def _read_json(path: Path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def find_adapter(choice: str | Path | None) -> AdapterSource:
    """A run folder, a run's adapter/ folder or any PEFT folder → AdapterSource. Empty → no adapter."""
    text = "" if choice is None else str(choice).strip()
    if text in ("", "none", "(none)"):
        return AdapterSource(None, None, None)
    p = resolve_local(text)
    if not p.exists():
        if "/" not in text and (outputs_dir() / text).is_dir():  # a bare run id
            p = outputs_dir() / text
        else:
            raise ModelError(f"adapter not found: {text}", "give a run folder or a folder with adapter_config.json")
    run = None
    if (p / "config.yaml").is_file() and not (p / "adapter_config.json").is_file():
        run = RunDir(p)
        saved = run.saved_model()
        if saved is None:
            raise ModelError(f"run {run.id} has no saved adapter yet (state: {run.state()})",
                             "wait for it to finish or pick another run")
        p = saved
    elif (p.parent / "config.yaml").is_file():
        run = RunDir(p.parent)
    template = base = None
    if run is not None:
        try:
            cfg = run.config()
            template, base = cfg.data.template, cfg.model.name
        except RunError:
            pass
    if (p / "adapter_config.json").is_file():
        if base is None:
            base = _read_json(p / "adapter_config.json").get("base_model_name_or_path")
        return AdapterSource(p, base, template, run)
    if (p / "config.json").is_file():  # run/model/ of a full fine-tune: a whole model, no adapter
        return AdapterSource(p, str(p), template, run, full_model=True)
    raise ModelError(f"{p} holds no adapter_config.json (not a PEFT adapter folder) and no config.json")


def check_adapter_base(source: AdapterSource, base: str) -> None:
    """Refuse an adapter trained for another base model, naming both so the user can pick the right one."""
    if source.path is None or source.full_model:
        return
    trained, chosen = canonical_model(source.base), canonical_model(base)
    a, b = architecture(source.base), architecture(base)
    if a and b and a != b:
        diff = ", ".join(f"{k} {a[k]} vs {b[k]}" for k in ARCH_KEYS if a[k] != b[k])
        raise ModelError(f"this adapter was trained for {trained}, whose shape differs from {chosen} ({diff})",
                         f"choose {source.base!r} as the base model")
    if trained != chosen:
        raise ModelError(f"this adapter was trained for base model {trained}, not {chosen}",
                         f"choose {source.base!r} as the base model")


def adapter_tokenizer(path: Path):
    """The tokenizer saved next to an adapter (the one it was trained with), or None."""
    if not (Path(path) / "tokenizer_config.json").is_file():
        return None
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path))
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return tok
