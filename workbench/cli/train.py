"""`python -m workbench train`: YAML + --set overrides → RunConfig → the training engine, with a console
that shows one progress bar and one summary line per logging step."""
from __future__ import annotations

import argparse
import sys

from workbench.config.fields import default_of, parse_set, range_text
from workbench.config.run import RunConfig, iter_fields
from workbench.core.errors import ConfigError
from workbench.core.formatting import number

EXIT_RUN_FAILED = 1  # the run started and failed; status.json keeps the error

HELP = "train a LoRA / QLoRA / full fine-tune from a YAML config"


def settings_help() -> str:
    """Every RunConfig setting with its default, allowed values and help: the epilog of `train --help`."""
    lines = ["settings (--set section.key=value):"]
    for name, f in iter_fields():
        m = f.metadata
        allowed = f" [{'|'.join(map(str, m['choices']))}]" if m.get("choices") else ""
        bounds = f" ({range_text(m)})" if range_text(m) else ""
        lines.append(f"  {name}={default_of(f)}{allowed}{bounds}\n      {m.get('help', '')}")
    return "\n".join(lines)


def add_parser(sub, parents: list[argparse.ArgumentParser]) -> None:
    t = sub.add_parser("train", help=HELP, description=HELP, parents=parents, epilog=settings_help(),
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--config", help="YAML file (sections model/adapter/data/train/gen); defaults apply without it")
    t.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one setting; repeatable")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped or interrupted run from its checkpoint")
    t.add_argument("--no-progress", action="store_true", help="no progress bar (the summary lines remain)")
    t.set_defaults(handler=run)


def load_config(path: str | None, sets: list[str]) -> RunConfig:
    cfg = RunConfig.load(path) if path else RunConfig()
    for key, value in parse_set(sets):
        cfg.set(key, value)
    return cfg


def run(args: argparse.Namespace) -> int:
    if args.resume and (args.config or args.set):
        raise ConfigError("--resume continues a run with its saved config.yaml; drop --config / --set")
    cfg = load_config(args.config, args.set)
    if not args.resume:
        cfg.validate()  # a bad value is reported before torch and the model load
    # The engine and transformers load only now, so `--help` and bad settings answer at once.
    from workbench.jobs.worker import stop_event
    from workbench.training.callbacks import ConsoleProgressCallback
    from workbench.training.engine import train

    # As a queued job's worker, a stop request from the supervisor ends the run at the next step boundary.
    result = train(cfg, resume=args.resume, progress_bar=False, stop=stop_event(),
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
