"""Configs of the tasks beside training, so their CLI arguments and forms are generated like RunConfig's:
EvalConfig (side-by-side evaluation of a run, with an optional judge), MergeConfig (merge an adapter),
ExportConfig (`python -m workbench export`, the `export` job, the Runs tab's Export panel) and ServeConfig (the
OpenAI-compatible server of one or more runs' adapters: `python -m workbench serve`, the Serve panel, a `serve`
job).

JudgeConfig: an LLM that scores an evaluation's answers. Either any OpenAI-compatible endpoint (url +
model, the key read from an environment variable named here, never stored) or a model loaded in-process.
EvalConfig and GenerateConfig hold it as their `judge:` section, so the `eval` / `generate` CLI flags
(--judge-url ...), the Evaluate and Generate tabs and a queued job all read one definition. check_policy() is
the secret half of the trust boundary (core/policy.py): which key names a caller may choose, and where a key
may go."""
from __future__ import annotations

import dataclasses
import ipaddress
import os
from dataclasses import dataclass, field

from workbench.config.fields import Settings, opt
from workbench.config.run import DTYPES
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


@dataclass
class EvalConfig(WithJudge, Settings):
    run: str = opt("", "A run folder (outputs/<run-id>) or run id.")
    split: str = opt("test", "The run's held-out split to evaluate.", choices=["test", "validation"])
    data: str = opt("", "Evaluate a JSON/JSONL/CSV/Parquet file instead of a split, mapped through the run's "
                        "template.")
    n: int = opt(8, "Rows sampled with the seed (0 = all rows).", min=0)
    seed: int = opt(0, "Sampling seed.", min=0)
    batch_size: int = opt(8, "Rows generated together.", min=1, max=512)
    max_new_tokens: int = opt(0, "Longest generation (0 = the run's gen.max_new_tokens).", min=0, max=8192)
    compare_base: bool = opt(True, "Also generate with the base model (adapter off) and score it.", flag="--no-base")
    baseline: str = opt("", "Compare with this run's adapter instead of the base model (a run id or folder of the "
                            "same base model: e.g. the SFT run a DPO run continued). Empty: the base model.")
    name: str = opt("", "File name under RUN_DIR/eval/ (default: <split or file>-n<N>-seed<S>).")
    # The optional LLM judge: the `judge:` section (JudgeConfig above); its CLI flags are --judge-url, --judge-model…
    judge: JudgeConfig = field(default_factory=JudgeConfig)


@dataclass
class MergeConfig(Settings):
    run: str = opt("", "A run folder or an adapter folder.")
    out: str = opt("", "New (or empty) output folder.")
    base: str = opt("", "Base model (default: the one the adapter was trained on).")
    dtype: str = opt("auto", "Dtype of the saved weights (auto: the device's compute dtype).", choices=DTYPES)
    adapter_only: bool = opt(False, "Copy the adapter folder alone instead of merging.")


FORMATS = ("merged", "gguf")


@dataclass
class ExportConfig(Settings):
    run: str = opt("", "A finished run folder (a LoRA / QLoRA adapter run or a full fine-tune).")
    format: str = opt("gguf", "merged: the adapter folder and the merged Hugging Face folder; gguf: those plus "
                      "GGUF files and an Ollama Modelfile.", choices=FORMATS)
    quant: str = opt("f16,q8_0", "GGUF types, comma-separated: f32, f16, bf16, q8_0 (llama.cpp's converter); "
                     "q4_0, q4_k_m, q5_k_m, q6_k need llama.cpp's llama-quantize on PATH.")
    out: str = opt("", "Output folder (default: <run>/export). Written under a temporary name, renamed at the end.")
    name: str = opt("", "Model name for the GGUF files and Ollama (default: the run id).")
    overwrite: bool = opt(False, "Replace an existing output folder (only once the new export is complete).")
    check: bool = opt(True, "Greedy-decode held-out prompts with each export and compare its tokens with the run's.",
                      flag="--no-check")
    check_prompts: int = opt(3, "Held-out prompts the check decodes.", min=1, max=20)
    check_tokens: int = opt(32, "Tokens the check decodes per prompt.", min=4, max=256)
    min_free_gb: float = opt(0.5, "Free space (GB) that must remain on the target after the export.", min=0)

    def quants(self) -> list[str]:
        """The GGUF types asked for, lower-case, in order, without repeats (none for format merged)."""
        if self.format != "gguf":
            return []
        seen: list[str] = []
        for q in str(self.quant or "").replace(" ", "").lower().split(","):
            if q and q not in seen:
                seen.append(q)
        return seen


@dataclass
class ServeConfig(Settings):
    run: str = opt("", "Run folder(s) (outputs/<run-id>) or run ids, comma-separated: adapters of the same base, "
                       "each served under its run id, with one copy of the base weights.")
    host: str = opt("127.0.0.1", "Address to bind; anything but loopback requires an API key.")
    port: int = opt(8000, "Port to listen on.", min=1, max=65535)
    api_key_env: str = opt("", "Name of the environment variable holding the bearer key clients must send "
                               "(the key itself is never stored).")
    max_batch: int = opt(8, "Requests generated together in one batch (1 = one at a time).", min=1, max=256)
    # 50, not 10: eight clients started together do not all arrive within 10 ms; at 10 ms some bursts were cut
    # into 1 + 7 and the lone row was generated first (benchmarks/NOTES.md). A lone request pays the 50 ms.
    batch_wait_ms: int = opt(50, "How long the first request waits for others to join its batch.", min=0,
                             max=1000)
    max_prompt_tokens: int = opt(2048, "Longest prompt accepted; longer ones get a 400 error.", min=16,
                                 max=131072)
    max_tokens: int = opt(256, "Longest reply (a request's max_tokens above it is refused).", min=1, max=8192)
    max_body_bytes: int = opt(1 << 20, "Largest request body in bytes; a larger one gets a 413 error unread.",
                              min=1024, max=1 << 30)
    max_queue: int = opt(64, "Requests that may wait for generation; more get a 429 error with Retry-After.",
                         min=1, max=100000)

    def runs(self) -> list[str]:
        return [r.strip() for r in self.run.split(",") if r.strip()]

    def loopback(self) -> bool:
        host = self.host.strip()
        if host == "localhost":
            return True
        try:
            return ipaddress.ip_address(host).is_loopback
        except ValueError:
            return False

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env.strip()) or None if self.api_key_env.strip() else None

    def check_policy(self, policy) -> ServeConfig:
        """The trust boundary for a server a caller chose (the Serve panel, the API, a queued job): its key is
        read only from a variable the operator offers (--secret-env); PolicyError naming the setting."""
        policy.check_secret(self.api_key_env, "api_key_env")
        return self

    def validate(self) -> ServeConfig:
        self.check_ranges()
        if not self.runs():
            raise ConfigError("serve needs at least one run", "--run outputs/<run-id> (comma-separate several)")
        if self.api_key_env.strip() and not self.api_key():
            raise ConfigError(f"the environment variable {self.api_key_env.strip()} (the API key) is not set")
        if not self.loopback() and not self.api_key():
            raise ConfigError(f"binding {self.host} exposes the model beyond this machine: a key is required",
                              "--api-key-env VAR with VAR holding the key clients send as 'Authorization: Bearer'")
        return self
