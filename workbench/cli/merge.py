"""`python -m workbench merge`: fold a run's LoRA adapter into its base model (or copy the adapter alone),
its options generated from MergeConfig."""
from __future__ import annotations

import argparse
import sys

from workbench.cli.options import add_settings, settings_from_args
from workbench.config.tasks import MergeConfig
from workbench.core.formatting import human_size

HELP = "merge a run's LoRA adapter into its base model and save a standard Hugging Face model folder"


def add_parser(sub, parents: list[argparse.ArgumentParser]) -> None:
    m = sub.add_parser("merge", help=HELP, description=HELP, parents=parents)
    add_settings(m, MergeConfig, required=("run", "out"))
    m.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    cfg = settings_from_args(MergeConfig, args)
    from workbench.export.merge import (  # torch loads only now
        export_adapter,
        merge_adapter,
        merge_plan,
    )

    if cfg.adapter_only:
        print(f"adapter copied to {export_adapter(cfg.run, cfg.out)}")
        return 0
    base = cfg.base or None  # empty: the base the adapter was trained on
    plan = merge_plan(cfg.run, base, cfg.dtype)
    print(f"merging {plan['adapter']} into {plan['base']}: about {plan['size']} to write", file=sys.stderr)
    result = merge_adapter(cfg.run, cfg.out, base, cfg.dtype)
    print(f"merged model: {result.path} ({human_size(result.bytes_written)}, {result.seconds} s)")
    return 0
