"""JudgeConfig: an LLM that scores an evaluation's answers. Either any OpenAI-compatible endpoint (url +
model, the key read from an environment variable named here, never stored) or a model loaded in-process.
EvalConfig carries the same settings as judge_* fields (judge_field), so the `eval` CLI flags, the Evaluate
tab and a queued eval job all read one definition."""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass

from workbench.config.fields import Settings, opt
from workbench.core.errors import ConfigError

MODES = ["score", "pairwise"]


@dataclass
class JudgeConfig(Settings):
    mode: str = opt("score", "score: a 0-100 score of each answer against the reference; pairwise: the judge picks "
                             "the adapter's or the base model's answer (both orders) or a tie.", choices=MODES)
    url: str = opt("", "Judge endpoint: the base URL of an OpenAI-compatible API (e.g. http://127.0.0.1:11434/v1 "
                       "for Ollama). Empty with local also empty: no judge.")
    model: str = opt("", "The judge's model name at that endpoint.")
    key_env: str = opt("", "Name of the environment variable holding the endpoint's API key (the key itself is "
                           "never stored).")
    local: str = opt("", "Judge with a model loaded in this process instead of an endpoint ('default' = the "
                         "embedded model: weak, but offline).")
    rubric: str = opt("", "Rubric file in templates/judge/ (default: the mode's own, score or pairwise).")
    concurrency: int = opt(4, "Judge requests in flight at once.", min=1, max=64)
    timeout: float = opt(60.0, "Seconds one judge request may take.", min=0.0, max=3600.0, min_exclusive=True)
    retries: int = opt(3, "Retries of a request that failed with 429, 5xx, a timeout or a connection error "
                          "(exponential backoff).", min=0, max=10)
    max_tokens: int = opt(64, "Longest judge reply in tokens.", min=1, max=4096)

    @property
    def enabled(self) -> bool:
        return bool(self.url.strip() or self.local.strip())

    def validate(self) -> JudgeConfig:
        self.check_ranges()
        if self.url.strip() and self.local.strip():
            raise ConfigError("give a judge endpoint (url) or a local judge model, not both")
        if self.url.strip():
            if not self.url.strip().startswith(("http://", "https://")):
                raise ConfigError(f"judge url must start with http:// or https://; got {self.url!r}")
            if not self.model.strip():
                raise ConfigError("a judge endpoint needs the judge's model name", "--judge-model NAME")
        if self.key_env.strip() and not os.environ.get(self.key_env.strip()):
            raise ConfigError(f"the environment variable {self.key_env.strip()} (the judge's API key) is not set",
                              f"export {self.key_env.strip()}=... before starting, or leave the key setting empty")
        return self

    def api_key(self) -> str | None:
        """The key, read from the environment at the moment it is needed."""
        return os.environ.get(self.key_env.strip()) if self.key_env.strip() else None

    def judge_name(self) -> str:
        return self.model.strip() if self.url.strip() else f"local:{self.local.strip()}"


def judge_field(name: str):
    """A JudgeConfig field re-declared on another config as judge_<name> (same default, help and range)."""
    f = {x.name: x for x in dataclasses.fields(JudgeConfig)}[name]
    return dataclasses.field(default=f.default, metadata=f.metadata)


def judge_from(cfg) -> JudgeConfig:
    """The JudgeConfig inside a config with judge_* fields (EvalConfig, GenerateConfig: a field it lacks keeps its
    default), validated."""
    return JudgeConfig(**{f.name: getattr(cfg, "judge_" + f.name, f.default)
                          for f in dataclasses.fields(JudgeConfig)}).validate()
