"""`python -m workbench generate`: turn your own texts into an instruction dataset with a reverse-instruction
run, its options generated from GenerateConfig. Run it again with the same settings to resume a stopped one."""
from __future__ import annotations

import argparse

from workbench.cli.eval import Progress
from workbench.cli.options import add_settings, settings_from_args
from workbench.config.generate import GenerateConfig

HELP = ("label your texts (a folder of .txt/.md, a file, or a dataset column) with a reverse-instruction run, "
        "score the pairs and write an Alpaca dataset (data/generated/<name>.jsonl)")


def add_parser(sub, parents: list[argparse.ArgumentParser]) -> None:
    g = sub.add_parser("generate", help=HELP, description=HELP, parents=parents)
    add_settings(g, GenerateConfig, required=("run",))
    g.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    cfg = settings_from_args(GenerateConfig, args)
    from workbench.backtranslation.plan import plan

    plan(cfg)  # bad input is refused before torch and the model load
    from workbench.backtranslation.pipeline import generate_dataset
    from workbench.jobs.worker import stop_event

    with Progress() as progress:
        result = generate_dataset(cfg, progress=progress, stop=stop_event())
    print(result.summary())
    return 0
