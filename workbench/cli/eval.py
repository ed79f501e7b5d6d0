"""`python -m workbench eval`: side-by-side evaluation of a run, its options generated from EvalConfig."""
from __future__ import annotations

import argparse
import sys

from workbench.cli.options import add_settings, given, settings_from_args
from workbench.config.tasks import EvalConfig
from workbench.core.errors import ConfigError
from workbench.core.formatting import number

HELP = ("generate for held-out rows with the adapter and the base model; score ROUGE-L / BLEU; write "
        "RUN_DIR/eval/<name>.jsonl and <name>.json")


def add_parser(sub, parents: list[argparse.ArgumentParser]) -> None:
    e = sub.add_parser("eval", help=HELP, description=HELP, parents=parents)
    add_settings(e, EvalConfig, required=("run",))
    e.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    typed = given(EvalConfig, args)
    if "split" in typed and "data" in typed:
        raise ConfigError("give --split or --data, not both", "--data evaluates a file instead of a split")
    cfg = settings_from_args(EvalConfig, args)
    from workbench.evaluation.side_by_side import (
        evaluate,  # torch and the model code load only now
    )

    values = cfg.to_dict()
    with Progress() as progress:
        result = evaluate(values.pop("run"), **values, progress=progress)
    s = result.summary
    print(f"{s['n']} rows  ROUGE-L adapter {number(s['adapter_rouge_l'])} / base {number(s['base_rouge_l'])}  "
          f"BLEU adapter {number(s['adapter_bleu'])} / base {number(s['base_bleu'])}")
    print(f"rows: {result.files['jsonl']}\nsummary: {result.files['summary']}")
    return 0


class Progress:
    """evaluate()'s progress(done, total, what) as one tqdm bar on stderr, renamed as the passes change."""

    def __init__(self):
        self.bar = None

    def __call__(self, done: int, total: int, what: str) -> None:
        from workbench.jobs.worker import report_progress

        report_progress(done, total, what)  # the queue panel's progress when this runs as a job
        if self.bar is None:
            from tqdm import tqdm

            self.bar = tqdm(total=total, unit="row", dynamic_ncols=True, file=sys.stderr)
        self.bar.set_description(what, refresh=False)
        self.bar.update(done - self.bar.n)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        if self.bar is not None:
            self.bar.close()
        return False
