"""How a reply is decoded: generation settings as transformers takes them, and stop strings (cut, and held
back while streaming until they resolve)."""
from __future__ import annotations

from workbench.config.generation import GenerationConfig
from workbench.prompts import schema


def settings_from(**values) -> GenerationConfig:
    """A GenerationConfig from UI / API values (None = the default), checked against its ranges."""
    return GenerationConfig().with_values(**{k: v for k, v in values.items() if v is not None}).validate()

def generate_kwargs(settings: GenerationConfig, tokenizer) -> dict:
    kw = dict(max_new_tokens=int(settings.max_new_tokens), do_sample=bool(settings.do_sample),
              repetition_penalty=float(settings.repetition_penalty), eos_token_id=tokenizer.eos_token_id,
              pad_token_id=tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id)
    if settings.do_sample:
        kw.update(temperature=float(settings.temperature), top_p=float(settings.top_p), top_k=int(settings.top_k))
    else:  # greedy: keep sampling knobs out so transformers does not warn they are unused
        kw.update(temperature=None, top_p=None, top_k=None)
    return kw

def stop_strings(template: schema.Template, tokenizer) -> list[str]:
    stops = [s for s in template.stop if s]
    eos = getattr(tokenizer, "eos_token", None)
    return [s for s in stops if s != eos]  # EOS is stopped on by id; decoded text skips it anyway

def cut_at_stop(text: str, stops: list[str]) -> str:
    """The reply without the stop string (and anything after it) the model may have produced."""
    cut = min((i for i in (text.find(s) for s in stops) if i >= 0), default=len(text))
    return text[:cut]

def held_back(text: str, stops: list[str]) -> int:
    """How many trailing characters could be the start of a stop string (not shown until resolved)."""
    return max((n for s in stops for n in range(min(len(s) - 1, len(text)), 0, -1) if text.endswith(s[:n])),
               default=0)
