"""Start the server: load the runs once, batch behind one generation thread, serve with uvicorn; in the
foreground (the CLI, a `serve` job: ends on Ctrl-C, SIGTERM or the job's STOP file) or in a thread (tests,
benchmarks). In front of the app, the gate: the API key and the body size are checked before a body is read.
`check_port` tells whether the address is free, before a model loads (CLI) or a job is queued."""
from __future__ import annotations

import hmac
import logging
import socket
import threading
import time
from dataclasses import dataclass

from workbench.config.tasks import ServeConfig
from workbench.core.errors import ConfigError, WorkbenchError
from workbench.serving.batcher import Batcher
from workbench.serving.registry import ModelRegistry

log = logging.getLogger(__name__)


def check_port(host: str, port: int) -> None:
    """ConfigError naming the address when it cannot be bound (in use, or not an address of this machine)."""
    with socket.socket() as s:
        try:
            s.bind((host, int(port)))
        except OSError as e:
            raise ConfigError(f"cannot listen on {host}:{port} ({e.strerror or e})", "pick another port") from None


class Gate:
    """ASGI middleware in front of /v1: a wrong or missing key gets its 401, and a body over `max_body` its
    413, before the body is read (FastAPI reads a body before any dependency runs, so neither check can live
    in a route). A body within the limit is read here and replayed to the app; later receives go to the
    client's connection, so a route still hears a disconnect."""

    def __init__(self, app, key: str | None, max_body: int):
        self.app, self.key, self.max_body = app, key, int(max_body)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not scope["path"].startswith("/v1"):
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if self.key and not hmac.compare_digest(headers.get(b"authorization", b""), f"Bearer {self.key}".encode()):
            return await _refuse(scope, receive, send, 401, "Incorrect API key provided (send it as "
                                 "'Authorization: Bearer <key>').", "invalid_api_key")
        declared = headers.get(b"content-length", b"0")
        if not declared.isdigit() or int(declared) > self.max_body:
            return await _refuse(scope, receive, send, 413, self._too_large(declared.decode(errors="replace")),
                                 "request_too_large")
        chunks, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            size += len(chunks[-1])
            if size > self.max_body:  # a chunked body declares no length: counted as it arrives
                return await _refuse(scope, receive, send, 413, self._too_large(f"over {self.max_body}"),
                                     "request_too_large")
            more = message.get("more_body", False)
        replayed = False

        async def replay():
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

        await self.app(scope, replay, send)

    def _too_large(self, size: str) -> str:
        return (f"The request body ({size} bytes) is larger than this server accepts ({self.max_body} bytes; "
                "the max_body_bytes setting).")


async def _refuse(scope, receive, send, status: int, message: str, code: str) -> None:
    from starlette.responses import JSONResponse

    from workbench.serving.schemas import error_body

    await JSONResponse(error_body(message, code=code), status_code=status,
                       headers={"Connection": "close"})(scope, receive, send)


@dataclass
class Running:
    """A server started in a thread of this process."""
    url: str  # http://host:port/v1, what an OpenAI client takes as base_url
    server: object
    thread: threading.Thread
    batcher: Batcher
    registry: ModelRegistry

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)
        self.batcher.close()


def build(cfg: ServeConfig, registry: ModelRegistry | None = None):
    """The uvicorn server for a config. The models load on the batcher's thread, the one that generates;
    `registry`: models already loaded, to put behind a second server (tests)."""
    import uvicorn

    from workbench.serving.app import create_app

    cfg.validate()
    batcher = Batcher((lambda: registry) if registry is not None else (lambda: ModelRegistry(cfg.runs())),
                      cfg.max_batch, cfg.batch_wait_ms, cfg.max_queue)
    app = Gate(create_app(batcher.registry, batcher, cfg), cfg.api_key(), cfg.max_body_bytes)
    config = uvicorn.Config(app, host=cfg.host, port=int(cfg.port), log_level="warning", access_log=False,
                            timeout_graceful_shutdown=5)
    return uvicorn.Server(config), batcher, batcher.registry


def url_of(cfg: ServeConfig) -> str:
    host = "127.0.0.1" if cfg.host in ("0.0.0.0", "") else cfg.host
    return f"http://{host}:{cfg.port}/v1"


def serve_forever(cfg: ServeConfig, stop: threading.Event | None = None,
                  ready=None) -> None:
    """Serve until interrupted (uvicorn handles SIGINT / SIGTERM) or until `stop` is set."""
    server, batcher, registry = build(cfg)
    if stop is not None:
        def watch():
            stop.wait()
            server.should_exit = True
        threading.Thread(target=watch, name="workbench-serve-stop", daemon=True).start()
    if ready is not None:
        def announce():
            while not server.started and not server.should_exit:
                time.sleep(0.05)
            if server.started:
                ready(url_of(cfg), list(registry.models))
        threading.Thread(target=announce, name="workbench-serve-ready", daemon=True).start()
    try:
        server.run()
    finally:
        batcher.close()
    if not server.started and not server.should_exit:
        raise WorkbenchError(f"could not listen on {cfg.host}:{cfg.port} (in use?)", "pick another --port")


def start_in_thread(cfg: ServeConfig, registry: ModelRegistry | None = None, timeout: float = 120) -> Running:
    server, batcher, registry = build(cfg, registry)
    thread = threading.Thread(target=server.run, name="workbench-serve", daemon=True)
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            batcher.close()
            raise WorkbenchError(f"the server did not start on {cfg.host}:{cfg.port}")
        time.sleep(0.02)
    return Running(url_of(cfg), server, thread, batcher, registry)
