"""Start the server: load the runs once, batch behind one generation thread, serve with uvicorn; in the
foreground (the CLI, a `serve` job: ends on Ctrl-C, SIGTERM or the job's STOP file) or in a thread (tests,
benchmarks)."""
from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass

from workbench.config.serve import ServeConfig
from workbench.core.errors import WorkbenchError
from workbench.serving.app import create_app
from workbench.serving.batcher import Batcher
from workbench.serving.registry import ModelRegistry

log = logging.getLogger(__name__)


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

    cfg.validate()
    batcher = Batcher((lambda: registry) if registry is not None else (lambda: ModelRegistry(cfg.runs())),
                      cfg.max_batch, cfg.batch_wait_ms)
    app = create_app(batcher.registry, batcher, cfg)
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
