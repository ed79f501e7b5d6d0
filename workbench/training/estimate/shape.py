"""A model's parameter layout without its weights: built on the `meta` device from its config alone.

Exact when the config is at hand (a local folder, 'default', or a hub id in the local cache): shapes only, no
weights, a fraction of a second even for 70B, so LoRA's trainable parameters are summed over the very Linear
layers PEFT would wrap. A hub id whose config is not here (offline) falls back to a LLaMA-shaped guess from the
size in its name ("7b"), and says so in `source`.
"""
from __future__ import annotations

import functools
import logging
import math
import re
from dataclasses import dataclass

from workbench.core.errors import ModelError

log = logging.getLogger(__name__)

# LLaMA-family shapes by size (billions of parameters), for hub models whose config is not available offline.
GUESSED_SHAPES = {
    1.1: dict(hidden_size=2048, intermediate_size=5632, num_hidden_layers=22, num_attention_heads=32,
              num_key_value_heads=4, vocab_size=32000),
    3: dict(hidden_size=3200, intermediate_size=8640, num_hidden_layers=26, num_attention_heads=32, vocab_size=32000),
    7: dict(hidden_size=4096, intermediate_size=11008, num_hidden_layers=32, num_attention_heads=32, vocab_size=32000),
    8: dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
            num_key_value_heads=8, vocab_size=128256),
    13: dict(hidden_size=5120, intermediate_size=13824, num_hidden_layers=40, num_attention_heads=40,
             vocab_size=32000),
    34: dict(hidden_size=8192, intermediate_size=22016, num_hidden_layers=48, num_attention_heads=64,
             num_key_value_heads=8, vocab_size=32000),
    70: dict(hidden_size=8192, intermediate_size=28672, num_hidden_layers=80, num_attention_heads=64,
             num_key_value_heads=8, vocab_size=32000),
}
SIZE_IN_NAME = re.compile(r"(\d+(?:\.\d+)?)\s*[bB](?![a-zA-Z])")  # "7b", "1.1B", "Llama-2-13b-hf"


@dataclass
class ModelShape:
    params: int  # every parameter
    linear_params: int  # in Linear layers other than the output head: what bitsandbytes quantizes
    matmul_params: int  # parameters used in matmuls per token (Linear layers + the output head)
    hidden: int
    layers: int
    vocab: int
    linear_dims: dict  # module name -> (in_features, out_features), output head excluded
    source: str  # where the shape came from


@functools.lru_cache(maxsize=16)
def model_shape(name: str, trust_remote_code: bool = False) -> ModelShape:
    """The layout of model `name` ('default', a folder, a hub id; or a Plan's model_path) from its config.

    Raises ModelError when the config is not here and the name gives no size to guess from, or when the
    architecture cannot be built from its config (so the caller can show why instead of an estimate).
    """
    from transformers import AutoConfig

    from workbench.models.resolve import resolve_model

    try:
        path = resolve_model(name)
        config = AutoConfig.from_pretrained(path, trust_remote_code=trust_remote_code)
        source = "from the model config"
    except (OSError, ValueError, ModelError) as e:  # not cached offline, or a folder that is not a model
        config, source = _guessed_config(name, e)
    return _shape_from_config(name, config, trust_remote_code, source)


def _guessed_config(name: str, err: Exception):
    from transformers import LlamaConfig

    m = SIZE_IN_NAME.search(name)
    if not m:
        raise ModelError(f"cannot estimate '{name}': its config is not available here ({err}) and the name "
                         "gives no size such as '7b'",
                         "use 'default', a local model folder, or a hub id in the local Hugging Face cache") from None
    size = float(m.group(1))
    nearest = min(GUESSED_SHAPES, key=lambda s: abs(math.log(s / size)))
    log.debug("no config for %s (%s): guessing a LLaMA-like %gB shape", name, err, nearest)
    return LlamaConfig(**GUESSED_SHAPES[nearest]), (f"config not available here; LLaMA-like {nearest:g}B shape "
                                                    f"guessed from '{m.group(0)}' in the name")


def _shape_from_config(name: str, config, trust_remote_code: bool, source: str) -> ModelShape:
    import torch
    from transformers import AutoModelForCausalLM

    try:
        with torch.device("meta"):  # shapes only: no memory for weights, nothing initialised
            model = AutoModelForCausalLM.from_config(config, trust_remote_code=trust_remote_code)
    except (ValueError, KeyError, ImportError) as e:  # e.g. an architecture this transformers does not know
        first_line = (str(e).splitlines() or [""])[0][:200]
        raise ModelError(f"cannot estimate '{name}': its architecture cannot be built here "
                         f"({type(e).__name__}: {first_line})",
                         "a causal language model that this transformers version supports is needed") from None
    head = model.get_output_embeddings()
    linear_dims = {n: (m.in_features, m.out_features) for n, m in model.named_modules()
                   if isinstance(m, torch.nn.Linear) and m is not head}
    linear = sum(i * o for i, o in linear_dims.values())
    head_params = head.weight.numel() if head is not None else 0
    text = config.get_text_config() if hasattr(config, "get_text_config") else config
    return ModelShape(params=sum(p.numel() for p in model.parameters()), linear_params=linear,
                      matmul_params=linear + head_params, hidden=text.hidden_size, layers=text.num_hidden_layers,
                      vocab=text.vocab_size, linear_dims=linear_dims, source=source)


def lora_params(shape: ModelShape, r: int, target_modules: str) -> int:
    """r x (in + out) for every Linear PEFT would wrap ('all-linear' = all but the output head)."""
    targets = target_modules.strip()
    names = None if targets == "all-linear" else {t.strip() for t in targets.split(",") if t.strip()}
    return sum(r * (i + o) for n, (i, o) in shape.linear_dims.items()
               if names is None or n.split(".")[-1] in names)
