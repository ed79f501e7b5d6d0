"""`python -m workbench eval`: side-by-side evaluation of a run, its options generated from EvalConfig."""
from __future__ import annotations

import argparse
import sys

from workbench.cli.options import add_settings, given, settings_from_args
from workbench.config.tasks import EvalConfig
from workbench.core.errors import ConfigError
from workbench.core.formatting import number

HELP = ("generate for held-out rows with the adapter and the base model; score ROUGE-L / BLEU (and with an LLM "
        "judge: --judge-url URL --judge-model NAME, or --judge-local MODEL); write RUN_DIR/eval/<name>.jsonl and "
        "<name>.json")


def add_parser(sub, parents: list[argparse.ArgumentParser]) -> None:
    e = sub.add_parser("eval", help=HELP, description=HELP, parents=parents)
    add_settings(e, EvalConfig, required=("run",))
    e.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    typed = given(EvalConfig, args)
    if "split" in typed and "data" in typed:
        raise ConfigError("give --split or --data, not both", "--data evaluates a file instead of a split")
    cfg = settings_from_args(EvalConfig, args)
    from workbench.evaluation.results import baseline_label
    from workbench.evaluation.side_by_side import (
        evaluate,  # torch and the model code load only now
    )

    values = cfg.to_dict()
    with Progress() as progress:
        result = evaluate(values.pop("run"), **values, progress=progress)
    s = result.summary
    other = baseline_label(s)
    print(f"{s['n']} rows  ROUGE-L adapter {number(s['adapter_rouge_l'])} / {other} {number(s['base_rouge_l'])}  "
          f"BLEU adapter {number(s['adapter_bleu'])} / {other} {number(s['base_bleu'])}")
    if s.get("judge"):
        print(judge_line(s["judge"], other))
    print(f"rows: {result.files['jsonl']}\nsummary: {result.files['summary']}")
    return 0


def judge_line(j: dict, other: str = "base model") -> str:
    """The judge's result in one line: mean score, or win / tie / loss with their 95% intervals."""
    def ci(key):
        return f" [{j[key][0]:.2f}, {j[key][1]:.2f}]" if j.get(key) else ""

    if j["mode"] == "score":
        head = f"judge {j['model']}: mean score {number(j.get('mean_score'))}{ci('mean_score_ci')}"
        if j.get("base_mean_score") is not None:
            head += f" / {other} {number(j['base_mean_score'])}"
    else:
        head = (f"judge {j['model']}: win {number(j.get('win_rate'))}{ci('win_rate_ci')}  tie "
                f"{number(j.get('tie_rate'))}{ci('tie_rate_ci')}  loss "
                f"{number(j.get('loss_rate'))}{ci('loss_rate_ci')} against the {other}")
    return head + f"  ({j.get('failed_rows', 0)} rows failed)"


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
