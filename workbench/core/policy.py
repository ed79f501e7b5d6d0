"""The trust boundary's one policy: what a caller who reached the app over HTTP or through the queue may read,
write, send and run.

The operator decides it when starting the app (`--allow-path DIR`, `--secret-env NAME`, `--judge-endpoint URL`,
`--allow-remote-code`, `--admin USER`); the flags become environment variables (WORKBENCH_POLICY_*), so the
supervisor, the headless worker and `jobs submit` started from the same shell apply the same policy. The direct
CLI commands (`train`, `eval`, `export` … in a user's own shell) do not pass through it.

Reads: data/, outputs/, templates/, the model cache and the allowed folders. Writes: outputs/, data/ and the
allowed folders. Keys: only from the listed environment variables, sent only to loopback or listed endpoints.
"""
from __future__ import annotations

import contextvars
import ipaddress
import os
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from workbench.core.errors import PolicyError
from workbench.core.paths import confine, operator_roots

ENV_PATHS = "WORKBENCH_ALLOWED_ROOTS"  # os.pathsep-separated; the Data tab's older name for --allow-path
ENV_SECRETS = "WORKBENCH_POLICY_SECRET_ENVS"  # comma-separated environment variable names
ENV_ENDPOINTS = "WORKBENCH_POLICY_JUDGE_ENDPOINTS"  # space-separated URL prefixes
ENV_REMOTE_CODE = "WORKBENCH_POLICY_ALLOW_REMOTE_CODE"  # "1" to allow model.trust_remote_code
ENV_ADMINS = "WORKBENCH_POLICY_ADMINS"  # comma-separated user names


# The signed-in user of the request being served (set at the door: ui/errors.py's @handler), None without --auth
# and in a shell. Read where jobs are submitted and managed, so no form has to pass it along.
_caller: contextvars.ContextVar[str | None] = contextvars.ContextVar("workbench_caller", default=None)


def caller() -> str | None:
    return _caller.get()


@contextmanager
def acting_as(user: str | None):
    token = _caller.set(user or None)
    try:
        yield
    finally:
        _caller.reset(token)


def _split(var: str, sep: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in os.environ.get(var, "").split(sep) if x.strip())


@dataclass(frozen=True)
class Policy:
    allowed: tuple[Path, ...] = ()  # --allow-path: read and write (core/paths.py applies them)
    secret_envs: tuple[str, ...] = ()
    endpoints: tuple[str, ...] = ()
    allow_remote_code: bool = False
    admins: tuple[str, ...] = ()

    # -- paths (the roots and the rule live in core/paths.py, shared with the Data tab) ------------
    @staticmethod
    def readable(path: str | Path, setting: str = "path") -> Path:
        """The resolved path (symlinks followed) if a caller may read it; PathError naming the setting."""
        return confine(path, setting)

    @staticmethod
    def writable(path: str | Path, setting: str = "path") -> Path:
        """The resolved path if a caller may write there; nothing is created."""
        return confine(path, setting, write=True)

    # -- remote code -------------------------------------------------------------------------------
    def check_remote_code(self, wanted: bool, setting: str = "model.trust_remote_code") -> None:
        if wanted and not self.allow_remote_code:
            raise PolicyError(f"{setting}: running a model's own Python code is not allowed on this server",
                              "the operator can allow it by starting the app with --allow-remote-code")

    # -- secrets -----------------------------------------------------------------------------------
    def check_secret(self, name: str, setting: str = "key_env") -> str:
        """The name of an environment variable the operator listed; PolicyError otherwise. Never the value."""
        name = (name or "").strip()
        if name and name not in self.secret_envs:
            listed = ", ".join(self.secret_envs) or "none"
            raise PolicyError(f"{setting}: '{name}' is not a key this server offers (offered: {listed})",
                              f"the operator can offer it by starting the app with --secret-env {name}")
        return name

    def endpoint_allowed(self, url: str) -> bool:
        """Loopback always; otherwise the URL must start with an endpoint the operator listed."""
        url = (url or "").strip()
        try:
            host = urlsplit(url).hostname or ""
        except ValueError:
            return False
        if host == "localhost" or _is_loopback(host):
            return True
        norm = url.rstrip("/")
        return any(norm == e.rstrip("/") or norm.startswith(e.rstrip("/") + "/") for e in self.endpoints)

    def check_endpoint(self, url: str, setting: str = "url", with_key: bool = True) -> None:
        if with_key and not self.endpoint_allowed(url):
            listed = ", ".join(self.endpoints) or "loopback only"
            raise PolicyError(f"{setting}: a key may not be sent to {url!r} (allowed: {listed})",
                              f"the operator can allow it by starting the app with --judge-endpoint {url}")

    # -- owners ------------------------------------------------------------------------------------
    def may_manage(self, user: str | None, owner: str | None) -> bool:
        """Without --auth (user None) everyone is the operator. Under --auth: the job's owner or an admin (a job
        with no owner, queued from a shell, is the admins')."""
        return user is None or user in self.admins or (bool(owner) and user == owner)

    def check_manage(self, owner: str | None, action: str) -> None:
        """PolicyError unless the caller may `action` (cancel, resume, delete …) what `owner` submitted."""
        user = caller()
        if not self.may_manage(user, owner):
            whose = f"{owner}'s job" if owner else "a job queued from a shell (the admins')"
            raise PolicyError(f"{user} may not {action} {whose}",
                              "ask its owner or an admin (the operator names admins with --admin USER)")


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def current() -> Policy:
    """The policy in force in this process (read from the environment each time: cheap, and a test or the app's
    start-up may set it)."""
    return Policy(allowed=tuple(operator_roots()),
                  secret_envs=_split(ENV_SECRETS, ","), endpoints=_split(ENV_ENDPOINTS, " "),
                  allow_remote_code=os.environ.get(ENV_REMOTE_CODE) == "1", admins=_split(ENV_ADMINS, ","))


def configure(*, allow_paths=(), secret_envs=(), endpoints=(), allow_remote_code=False, admins=()) -> Policy:
    """Set the policy for this process and its children (the app's flags call this once at start)."""
    if allow_paths:
        os.environ[ENV_PATHS] = os.pathsep.join(str(Path(p).expanduser().resolve()) for p in allow_paths)
    os.environ[ENV_SECRETS] = ",".join(secret_envs)
    os.environ[ENV_ENDPOINTS] = " ".join(e.strip() for e in endpoints)
    os.environ[ENV_REMOTE_CODE] = "1" if allow_remote_code else "0"
    os.environ[ENV_ADMINS] = ",".join(admins)
    return current()
