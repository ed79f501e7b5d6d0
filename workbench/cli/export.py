"""`python -m workbench export`: a finished run as files to hand over (adapter, merged folder, GGUF + Ollama
Modelfile, model cards), each checked against the run; its options generated from ExportConfig."""
from __future__ import annotations

import argparse
import sys

from workbench.cli.options import add_settings, settings_from_args
from workbench.config.export import ExportConfig

HELP = ("export a finished run: the merged Hugging Face folder, GGUF (f16, q8_0, ...) with an Ollama Modelfile, "
        "model cards; then check that each export decodes like the run")


def add_parser(sub, parents: list[argparse.ArgumentParser]) -> None:
    e = sub.add_parser("export", help=HELP, description=HELP, parents=parents)
    add_settings(e, ExportConfig, required=("run",))
    e.set_defaults(handler=run)


def _progress(done: int, total: int, what: str) -> None:
    from workbench.jobs.worker import report_progress

    report_progress(done, total, what)  # the Jobs tab's progress when this runs as a job
    print(f"[{done}/{total}] {what}", file=sys.stderr, flush=True)


def run(args: argparse.Namespace) -> int:
    cfg = settings_from_args(ExportConfig, args)
    from workbench.export.bundle import export_run  # torch loads only now

    manifest = export_run(cfg, progress=_progress)
    for f in manifest["files"]:
        if f["path"].endswith((".gguf", ".safetensors", "Modelfile", "check.json")):
            print(f"{f['size']:>10}  {manifest['out']}/{f['path']}")
    if manifest.get("check"):
        print(f"check: {'passed' if manifest['check']['passed'] else 'FAILED'}")
    if manifest.get("ollama"):
        print(f"ollama: {manifest['ollama']['command']}")
    print(f"export: {manifest['out']} ({manifest['seconds']} s)")
    return 0
