"""`python -m workbench train ...`: a thin layer from YAML + --set to RunConfig to the engine."""
from __future__ import annotations

import argparse
import sys

from workbench.config import ConfigError, RunConfig, iter_fields, parse_set

EXIT_BAD_INPUT = 2  # bad config / arguments: the message says what to fix
EXIT_FAILED = 1  # the run itself failed (status.json holds the error)


def settings_help() -> str:
    lines = ["settings (--set section.key=value):"]
    for name, f in iter_fields():
        m = f.metadata
        allowed = f" [{'|'.join(m['choices'])}]" if m.get("choices") else ""
        lines.append(f"  {name}={f.default if not callable(getattr(f, 'default_factory', None)) else '{}'}"
                     f"{allowed}\n      {m.get('help', '')}")
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m workbench", description="Instruction fine-tuning workbench")
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train a LoRA / QLoRA / full fine-tune from a YAML config",
                       epilog=settings_help(), formatter_class=argparse.RawDescriptionHelpFormatter)
    t.add_argument("--config", help="YAML file (sections model/adapter/data/train/gen); defaults apply without it")
    t.add_argument("--set", action="append", default=[], metavar="SECTION.KEY=VALUE",
                   help="override one setting; repeatable")
    t.add_argument("--resume", metavar="RUN_DIR", help="continue a stopped or interrupted run from its checkpoint")
    t.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    return p


def load_config(path: str | None, sets: list[str]) -> RunConfig:
    cfg = RunConfig.load(path) if path else RunConfig()
    for key, value in parse_set(sets):
        cfg.set(key, value)
    return cfg


def cmd_train(args) -> int:
    from workbench.training.engine import TrainingError, train

    try:
        cfg = load_config(args.config, args.set)
        if args.resume and (args.config or args.set):
            raise ConfigError("--resume continues a run with its saved config.yaml; drop --config / --set")
        result = train(cfg, resume=args.resume, progress_bar=not args.no_progress)
    except (ConfigError, TrainingError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    if result.state == "failed":
        print(f"error: training failed: {result.error}\n(run folder: {result.run_dir})", file=sys.stderr)
        return EXIT_FAILED
    print(f"{result.state}: step {result.global_step}/{result.max_steps}, final loss {result.final_loss}, "
          f"eval loss {result.eval_loss}\nrun folder: {result.run_dir}")
    return 0


COMMANDS = {"train": cmd_train}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return COMMANDS[args.command](args)
