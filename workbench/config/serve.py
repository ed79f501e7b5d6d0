"""ServeConfig: the OpenAI-compatible server of one or more runs' adapters (`python -m workbench serve`, the
Runs tab's Serve panel, a `serve` job)."""
from __future__ import annotations

import ipaddress
import os
from dataclasses import dataclass

from workbench.config.fields import Settings, opt
from workbench.core.errors import ConfigError


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
