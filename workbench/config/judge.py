"""JudgeConfig: an LLM that scores an evaluation's answers. Either any OpenAI-compatible endpoint (url +
model, the key read from an environment variable named here, never stored) or a model loaded in-process.
EvalConfig and GenerateConfig hold it as their `judge:` section, so the `eval` / `generate` CLI flags
(--judge-url ...), the Evaluate and Generate tabs and a queued job all read one definition. check_policy() is
the secret half of the trust boundary (core/policy.py): which key names a caller may choose, and where a key
may go."""
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
    retries: int = opt(3, "Retries of a request that failed with 408, 409, 429, 5xx, a timeout or a connection "
                          "error (the openai client's exponential backoff, or the wait the server asks for).",
                       min=0, max=10)
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

    def check_policy(self, policy) -> JudgeConfig:
        """The trust boundary for a judge a caller chose (a form, the API, a queued job): the key's variable must
        be one the operator offers (--secret-env), and a key goes only to loopback or an endpoint the operator
        allowed (--judge-endpoint). PolicyError naming the setting; the key's value is never read here."""
        name = policy.check_secret(self.key_env, "judge.key_env")
        if name and self.url.strip():
            policy.check_endpoint(self.url.strip(), "judge.url")
        return self

    def api_key(self) -> str | None:
        """The key, read from the environment at the moment it is needed."""
        return os.environ.get(self.key_env.strip()) if self.key_env.strip() else None

    def judge_name(self) -> str:
        return self.model.strip() if self.url.strip() else f"local:{self.local.strip()}"


def lift_flat_keys(d):
    """Accept a config written before the `judge:` section (flat judge_url:, judge_model: ... keys, e.g. a job
    queued by an older version): they are moved into the section; the same setting given both ways is refused."""
    if not isinstance(d, dict):
        return d
    names = {f.name for f in dataclasses.fields(JudgeConfig)}
    flat = {k: k.removeprefix("judge_") for k in d if isinstance(k, str) and k.removeprefix("judge_") in names
            and k.startswith("judge_")}
    if not flat:
        return d
    d = dict(d)
    section = d.get("judge")
    section = dict(section) if isinstance(section, dict) else {} if section is None else section
    if not isinstance(section, dict):
        return d  # from_dict names what is wrong with the section itself
    for key, name in flat.items():
        if name in section:
            raise ConfigError(f"{key} and judge.{name} are the same setting; give it once", f"judge: {{{name}: ...}}")
        section[name] = d.pop(key)
    d["judge"] = section
    return d


class WithJudge:
    """Mixin for configs with a `judge:` section: older flat judge_* keys are read into it."""

    @classmethod
    def from_dict(cls, d):
        return super().from_dict(lift_flat_keys(d))
