"""The task commands `python -m workbench train|merge|export|serve`, the very commands a queued job's worker
runs (jobs/kinds.py). Each one's options are generated from its job kind's config class (cli/options.py);
`train` keeps its documented YAML + --set, and prints one progress bar and one summary line per logging step.
eval and generate, which print tables and resume, have their own modules.
"""
from __future__ import annotations

import argparse
import sys

from workbench.cli.options import add_settings, settings_from_args
from workbench.config.fields import default_of, parse_set, range_text
from workbench.config.run import RunConfig, iter_fields
from workbench.core.errors import ConfigError
from workbench.core.formatting import human_size, number

EXIT_RUN_FAILED = 1  # the run started and failed; status.json keeps the error

TRAIN_HELP = "train a LoRA / QLoRA / full fine-tune from a YAML config"


def settings_help() -> str:
    """Every RunConfig setting with its default, allowed values and help: the epilog of `train --help`."""
    lines = ["settings (--set section.key=value):"]
    for name, f in iter_fields():
        m = f.metadata
        allowed = f" [{'|'.join(map(str, m['choices']))}]" if m.get("choices") else ""
        bounds = f" ({range_text(m)})" if range_text(m) else ""
        lines.append(f"  {name}={default_of(f)}{allowed}{bounds}\n      {m.get('help', '')}")
    return "\n".join(lines)


def add_train_parser(sub, parents: list[argparse.ArgumentParser]) -> None:
    t = sub.add_parser("train", help=TRAIN_HELP, description=TRAIN_HELP, parents=parents, epilog=settings_help(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--config", help="YAML file (sections model/adapter/data/train/gen); defaults apply without it")
    t.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one setting; repeatable")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped or interrupted run from its checkpoint")
    t.add_argument("--no-progress", action="store_true", help="no progress bar (the summary lines remain)")
    t.set_defaults(handler=run_train)


def load_config(path: str | None, sets: list[str]) -> RunConfig:
    cfg = RunConfig.load(path) if path else RunConfig()
    for key, value in parse_set(sets):
        cfg.set(key, value)
    return cfg


def run_train(args: argparse.Namespace) -> int:
    if args.resume and (args.config or args.set):
        raise ConfigError("--resume continues a run with its saved config.yaml; drop --config / --set")
    cfg = load_config(args.config, args.set)
    if not args.resume:
        cfg.validate()  # a bad value is reported before torch and the model load
    # The engine and transformers load only now, so `--help` and bad settings answer at once.
    from workbench.config.preflight import saved_plan
    from workbench.jobs import worker
    from workbench.training.callbacks import ConsoleProgressCallback
    from workbench.training.engine import train

    # As a queued job's worker: the plan made at submit (checked against the world, not made again), and a stop
    # request from the supervisor ends the run at the next step boundary.
    saved = None if args.resume else worker.saved_plan()
    plan = saved_plan(saved) if saved else None
    result = train(cfg, plan=plan, resume=args.resume, progress_bar=False, stop=worker.stop_event(),
                   extra_callbacks=[ConsoleProgressCallback(bar=not args.no_progress)])
    if result.state == "stopped":
        print(f"stopped at step {result.global_step}/{result.max_steps}; resume with --resume {result.run_dir}")
        return 0
    if result.state == "failed":
        print(f"error: training failed: {result.error}\n(run folder: {result.run_dir})", file=sys.stderr)
        return EXIT_RUN_FAILED
    print(f"{result.state}: step {result.global_step}/{result.max_steps}, final loss {number(result.final_loss)}, "
          f"eval loss {number(result.eval_loss)}\nrun folder: {result.run_dir}")
    return 0


def _settings(args: argparse.Namespace):
    """The command's config, its class the one its job kind registers (the queue runs exactly this)."""
    from workbench.jobs.kinds import get_kind

    return settings_from_args(get_kind(args.command).config_class, args)


def run_merge(args: argparse.Namespace) -> int:
    cfg = _settings(args)
    from workbench.export.merge import export_adapter, merge_adapter, merge_plan  # torch loads only now

    if cfg.adapter_only:
        print(f"adapter copied to {export_adapter(cfg.run, cfg.out)}")
        return 0
    base = cfg.base or None  # empty: the base the adapter was trained on
    plan = merge_plan(cfg.run, base, cfg.dtype)
    print(f"merging {plan['adapter']} into {plan['base']}: about {plan['size']} to write", file=sys.stderr)
    result = merge_adapter(cfg.run, cfg.out, base, cfg.dtype)
    print(f"merged model: {result.path} ({human_size(result.bytes_written)}, {result.seconds} s)")
    return 0


def _export_progress(done: int, total: int, what: str) -> None:
    from workbench.jobs.worker import report_progress

    report_progress(done, total, what)  # the Jobs tab's progress when this runs as a job
    print(f"[{done}/{total}] {what}", file=sys.stderr, flush=True)


def run_export(args: argparse.Namespace) -> int:
    cfg = _settings(args)
    from workbench.export.bundle import ExportPlan, export_run  # torch loads only now
    from workbench.jobs.worker import saved_plan

    saved = saved_plan()  # as a queued job's worker: the plan made at submit, checked against the world
    plan = ExportPlan.saved(saved["export"]) if saved and "export" in saved else None
    manifest = export_run(cfg, progress=_export_progress, plan=plan)
    for f in manifest["files"]:
        if f["path"].endswith((".gguf", ".safetensors", "Modelfile", "check.json")):
            print(f"{f['size']:>10}  {manifest['out']}/{f['path']}")
    if manifest.get("check"):
        print(f"check: {'passed' if manifest['check']['passed'] else 'FAILED'}")
    if manifest.get("ollama"):
        print(f"ollama: {manifest['ollama']['command']}")
    print(f"export: {manifest['out']} ({manifest['seconds']} s)")
    return 0


def run_serve(args: argparse.Namespace) -> int:
    """Runs until Ctrl-C, SIGTERM, or, as a `serve` job, until the job is cancelled."""
    cfg = _settings(args).validate()
    from workbench.serving.server import check_port

    check_port(cfg.host, cfg.port)  # a port in use is refused before the model loads
    from workbench.jobs.worker import report_progress, stop_event
    from workbench.serving.server import serve_forever  # torch and the model load only now

    def ready(url: str, models: list[str]) -> None:
        print(f"serving {', '.join(models)} at {url} (OpenAI-compatible; Ctrl-C stops)", flush=True)
        report_progress(1, 1, f"serving at {url}")  # what the Runs tab's Serve panel shows for a job

    serve_forever(cfg, stop=stop_event(), ready=ready)
    return 0


# command → (help, settings that must be given, handler); options from the kind's config class.
TASKS = {
    "merge": ("merge a run's LoRA adapter into its base model and save a standard Hugging Face model folder",
              ("run", "out"), run_merge),
    "serve": ("serve runs' adapters on an OpenAI-compatible API (/v1/models, /v1/chat/completions, "
              "/v1/completions; 127.0.0.1 by default, a bearer key required elsewhere)", ("run",), run_serve),
    "export": ("export a finished run: the merged Hugging Face folder, GGUF (f16, q8_0, ...) with an Ollama "
               "Modelfile, model cards; then check that each export decodes like the run", ("run",), run_export),
}


def add_parser(sub, parents: list[argparse.ArgumentParser], name: str) -> None:
    """The subcommand `name`: train, or one of TASKS."""
    if name == "train":
        add_train_parser(sub, parents)
        return
    from workbench.jobs.kinds import get_kind

    help_text, required, handler = TASKS[name]
    p = sub.add_parser(name, help=help_text, description=help_text, parents=parents)
    add_settings(p, get_kind(name).config_class, required=required)
    p.set_defaults(handler=handler)
