"""The default recipe really teaches the default model the reverse-instruction task (issue 26).

The CPU-demo preset is RunConfig's defaults, the same recipe as `python -m workbench train` with no settings:
lr 2e-3 with a cosine schedule, one epoch of the bundled data's 204 training rows (51 steps of 4 rows).
benchmarks/default_recipe.py measured it on rows training never saw (greedy, the template's stops, 48 new
tokens; base model = the adapter switched off):
- benchmarks/data/reverse_heldout.jsonl, 32 rows written apart from the bundled data: adapter 0.398 vs base
  0.112, +0.286 (lr 1e-3: +0.255; the recipe before issue 26, lr 2e-4: +0.166). The test asserts the issue's
  +0.15 here.
- the run's validation split, 24 rows of the bundled data: 0.278 vs 0.115, +0.162 (lr 1e-3: +0.127; lr 2e-4:
  +0.095). The test
  asserts +0.08 there: one of 24 greedy answers changing moves the mean by ~0.03, and the benchmark ran with one
  thread (other float rounding), so the 24 rows guard against learning nothing, the 32 carry the issue's bar.
The real model, 51 real steps (~2 min on a quiet 2-core machine at ~2.3 s/step), real generation (~1 min);
run here under load 5 it passed in 611 s with the benchmark's numbers to the third decimal (two threads).
"""
from __future__ import annotations

from pathlib import Path

import pytest

from workbench.config import presets
from workbench.config.run import RunConfig
from workbench.evaluation.side_by_side import evaluate
from workbench.training.engine import train

pytestmark = pytest.mark.slow

OTHER = Path(__file__).resolve().parent.parent / "benchmarks" / "data" / "reverse_heldout.jsonl"


def test_the_default_recipe_beats_the_base_model_on_held_out_rows(tmp_path):
    cfg = presets.build(presets.CPU_DEMO)
    default = RunConfig()
    # The Train tab's preset and the CLI's no-settings run train the same recipe.
    assert (cfg.train.learning_rate, cfg.train.epochs, cfg.train.max_steps, cfg.train.scheduler, cfg.adapter.r,
            cfg.data.max_length) == (default.train.learning_rate, default.train.epochs, default.train.max_steps,
                                     default.train.scheduler, default.adapter.r, default.data.max_length)
    cfg.set("output_dir", str(tmp_path / "run"))
    # Evaluate and save once, at the end: the in-between evals and checkpoints do not change what is learned.
    cfg.set("train.eval_steps", 0)
    cfg.set("train.save_steps", 10_000)
    result = train(cfg, progress_bar=False)
    assert result.state == "completed" and result.global_step == 51, result.error

    other = evaluate(result.run_dir, data=OTHER, n=0, max_new_tokens=48, batch_size=16, save=False).summary
    split = evaluate(result.run_dir, split="validation", n=0, max_new_tokens=48, batch_size=16, save=False).summary
    for name, s in (("other dataset", other), ("validation split", split)):
        print(f"\n{name}: ROUGE-L over {s['n']} rows: adapter {s['adapter_rouge_l']:.3f}, base {s['base_rouge_l']:.3f}")
    assert other["n"] == 32 and split["n"] >= 20
    assert other["adapter_rouge_l"] >= other["base_rouge_l"] + 0.15, other
    assert split["adapter_rouge_l"] >= split["base_rouge_l"] + 0.08, split
