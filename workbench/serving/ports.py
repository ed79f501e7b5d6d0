"""Whether the server can listen where asked: checked before a model loads (CLI) or a job is queued."""
from __future__ import annotations

import socket

from workbench.core.errors import ConfigError


def check_port(host: str, port: int) -> None:
    """ConfigError naming the address when it cannot be bound (in use, or not an address of this machine)."""
    with socket.socket() as s:
        try:
            s.bind((host, int(port)))
        except OSError as e:
            raise ConfigError(f"cannot listen on {host}:{port} ({e.strerror or e})", "pick another port") from None
