"""`python -m workbench serve`: one or more runs' adapters on an OpenAI-compatible API (options generated from
ServeConfig). Runs until Ctrl-C, SIGTERM, or, as a `serve` job, until the job is cancelled."""
from __future__ import annotations

import argparse

from workbench.cli.options import add_settings, settings_from_args
from workbench.config.serve import ServeConfig

HELP = ("serve runs' adapters on an OpenAI-compatible API (/v1/models, /v1/chat/completions, /v1/completions; "
        "127.0.0.1 by default, a bearer key required elsewhere)")


def add_parser(sub, parents: list[argparse.ArgumentParser]) -> None:
    s = sub.add_parser("serve", help=HELP, description=HELP, parents=parents)
    add_settings(s, ServeConfig, required=("run",))
    s.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    cfg = settings_from_args(ServeConfig, args).validate()
    from workbench.serving.ports import check_port

    check_port(cfg.host, cfg.port)  # a port in use is refused before the model loads
    from workbench.jobs.worker import report_progress, stop_event
    from workbench.serving.server import serve_forever  # torch and the model load only now

    def ready(url: str, models: list[str]) -> None:
        print(f"serving {', '.join(models)} at {url} (OpenAI-compatible; Ctrl-C stops)", flush=True)
        report_progress(1, 1, f"serving at {url}")  # what the Runs tab's Serve panel shows for a job

    serve_forever(cfg, stop=stop_event(), ready=ready)
    return 0
