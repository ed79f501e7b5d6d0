"""The trust boundary every queued job passes, whatever door it came through (a form, a Gradio endpoint,
`/submit_job`, `jobs submit`): the paths its config names, resolved through the one confinement rule
(core/paths.confine via core/policy.py), and remote code only where the operator allowed it (keys: the kinds'
JudgeConfig / ServeConfig.check_policy; owners: Policy.check_manage). The kind's own submit-time check
(kinds.py: prepare) runs after this one, so nothing it creates (a run folder, a work folder) is created for a
config that names a forbidden path.

Each kind says which of its settings are paths (JobKind.paths): (setting, value, READ | WRITE). A value that is
not a path on this machine (a hub id, "default") is not checked here; the kind's own check resolves it.
"""
from __future__ import annotations

from pathlib import Path

from workbench.core.errors import ConfigError
from workbench.core.paths import is_local_path, outputs_dir, resolve_local
from workbench.core.policy import Policy, current

READ, WRITE = "read", "write"


def run_location(choice: str) -> Path:
    """Where a run setting points: a run id is a folder under outputs/, anything else a path (as resolve_run)."""
    text = str(choice or "").strip()
    is_id = "/" not in text and text not in (".", "..") and not text.startswith("~")
    return outputs_dir() / text if is_id else resolve_local(text)


def local(value: str) -> str:
    """The value when it names a path on this machine, "" for a hub id or a model alias such as 'default'."""
    value = str(value or "").strip()
    return value if value and value != "default" and is_local_path(value) else ""


def check(kind, cfg, policy: Policy | None = None) -> None:
    """Refuse a config whose paths lie outside what a caller may read or write (PathError naming the setting and
    how the operator allows it), or that asks for remote code the operator did not allow. Writes nothing."""
    policy = policy or current()
    _no_control_bytes(cfg.to_dict())
    for setting, value, mode in (kind.paths(cfg) if kind.paths else ()):
        if not str(value or "").strip():
            continue
        if mode == WRITE:
            policy.writable(value, setting)
        else:
            policy.readable(value, setting)
    if getattr(getattr(cfg, "model", None), "trust_remote_code", False):
        policy.check_remote_code(True)


def _no_control_bytes(values: dict, prefix: str = "") -> None:
    """A NUL byte makes a path look absent (pathlib says "no such file"), so a local path would pass as a hub id;
    no setting has a use for one."""
    for key, value in values.items():
        if isinstance(value, dict):
            _no_control_bytes(value, f"{prefix}{key}.")
        elif isinstance(value, str) and "\x00" in value:
            raise ConfigError(f"{prefix}{key}: a setting may not contain NUL bytes")
