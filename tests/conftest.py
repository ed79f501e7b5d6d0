"""Shared fixtures: the real default model (converted once per machine), real short training runs.

Tests never reach a hub (HF_HUB_OFFLINE=1) and never write into the project's outputs/.
"""
from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
_SESSION_OUTPUTS = Path(tempfile.mkdtemp(prefix="wb-test-outputs-"))
os.environ["WORKBENCH_OUTPUTS"] = str(_SESSION_OUTPUTS)

ROOT = Path(__file__).resolve().parent.parent
PY = sys.executable


def pytest_sessionfinish(session, exitstatus):
    """The session's outputs folder goes with the session (runs, jobs.sqlite3, worker logs)."""
    import shutil

    from workbench.jobs.supervisor import shutdown

    shutdown()  # the app fixture's supervisor thread would otherwise poll a queue that is gone
    shutil.rmtree(_SESSION_OUTPUTS, ignore_errors=True)


@pytest.fixture
def keep_logging():
    """For tests that call the CLI's main() in-process (it configures the root logger for its process):
    give the test session its own logging back afterwards. Import it into a module to make it autouse there."""
    import logging

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    for handler in [h for h in root.handlers if h not in handlers]:
        root.removeHandler(handler)
    root.setLevel(level)


@pytest.fixture
def no_app_supervisor():
    """For tests that run their own supervisor on their own queue (WORKBENCH_OUTPUTS set to a temp folder):
    the session app's supervisor, if one runs, pauses meanwhile, or it would claim their jobs too (a supervisor
    follows WORKBENCH_OUTPUTS, which is process-wide). List it before monkeypatch, so it restarts last."""
    from workbench.jobs import supervisor

    running = supervisor._SUPERVISOR is not None
    supervisor.shutdown()
    yield
    if running:
        supervisor.ensure_started()


@pytest.fixture(scope="session")
def model_dir() -> Path:
    from workbench.models.resolve import default_model_dir

    return default_model_dir()


@pytest.fixture(scope="session")
def tokenizer(model_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(str(model_dir))


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """An empty data folder the app treats as data/ (WORKBENCH_DATA), for tests that write datasets."""
    d = tmp_path / "data"
    d.mkdir()
    monkeypatch.setenv("WORKBENCH_DATA", str(d))
    return d


def quick_config(output_dir, **sets):
    """The default recipe cut to a few seconds: few rows, short sequences, a few steps."""
    from workbench.config.run import RunConfig

    cfg = RunConfig()
    defaults = {"data.max_rows": 48, "data.max_length": 128, "train.batch_size": 2, "train.max_steps": 3,
                "train.save_steps": 2, "train.logging_steps": 1, "output_dir": str(output_dir)}
    for key, value in {**defaults, **sets}.items():
        cfg.set(key, value)
    return cfg


@pytest.fixture(scope="session")
def lora_run(tmp_path_factory, model_dir):
    """A real 3-step LoRA run of the default recipe, shared by the tests that only read its outputs."""
    from workbench.training.engine import train

    out = tmp_path_factory.mktemp("lora") / "run"
    result = train(quick_config(out), progress_bar=False)
    assert result.state == "completed", result.error
    return result


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def app_url(model_dir):
    """The real app, launched once per test session on a free local port."""
    from workbench.ui.app import build_app, launch_kwargs

    app = build_app().queue(default_concurrency_limit=4)
    app.launch(server_name="127.0.0.1", server_port=free_port(), prevent_thread_lock=True, quiet=True,
               **launch_kwargs())
    yield app.local_url.rstrip("/")
    app.close()


@pytest.fixture(scope="session")
def client(app_url):
    from gradio_client import Client

    return Client(app_url, verbose=False)


CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--disable-quic"]
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def browser():
    """Debian's Chromium driven by Playwright (never `playwright install`: no browser downloads here)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} missing: `make test` installs it (make browser)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser, app_url):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    pg.goto(app_url)
    yield pg
    context.close()
    end_leftover_jobs()


def end_leftover_jobs(timeout: float = 120) -> None:
    """The browser tests share one app and its queue: a test that fails midway must not leave its queued or
    running jobs (a sweep) in front of the next test's job."""
    import time

    from workbench.jobs import queue, submit

    for job in queue.list_jobs(states=("queued", "running")):
        try:
            submit.cancel(job.id)
        except queue.JobError:  # it ended meanwhile: nothing to cancel
            continue
    deadline = time.monotonic() + timeout
    while queue.list_jobs(states=("queued", "running", "stopping")) and time.monotonic() < deadline:
        time.sleep(0.5)


def screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path
