"""One lever at a time: tokens/s of the first steps of a run, for each engine setting benchmarks/NOTES.md records.

Each variant trains `--steps` optimizer steps on the same data as train_throughput.py, in its own process
(clean peak RSS), and reports non-padding tokens/s over the steps after the first two (warm-up), s/step and
peak RSS. Variants stack in order, from stock TRL to the workbench default, then try what was dropped.

    python benchmarks/train_levers.py                 # every variant (~10 min on 2 cores)
    python benchmarks/train_levers.py stock default   # some of them
"""
from __future__ import annotations

import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

OLD_DEFAULTS = {"adapter.dropout": 0.05, "train.group_by_length": False, "train.optimizer": "adamw_torch"}
# name -> (RunConfig settings, engine speedups on?)
VARIANTS = {
    "stock": (OLD_DEFAULTS, False),
    "lora_dropout_0": (OLD_DEFAULTS | {"adapter.dropout": 0.0}, False),
    "score_trained_only": (OLD_DEFAULTS | {"adapter.dropout": 0.0}, True),
    "group_by_length": (OLD_DEFAULTS | {"adapter.dropout": 0.0, "train.group_by_length": True}, True),
    "default": ({}, True),  # + the fused AdamW: the workbench default
    "packing_bfd_512": ({"data.packing": True}, True),
    "gradient_checkpointing": ({"train.gradient_checkpointing": True}, True),
    "batch_8": ({"train.batch_size": 8}, True),
    "optimizer_foreach": ({"train.optimizer": "adamw_torch"}, True),
}


def run_variant(name: str, train_file: str, out: str, steps: int) -> dict:
    from train_throughput import bench_config

    from workbench.runs.folder import RunDir
    from workbench.training.engine import train

    settings, speedups = VARIANTS[name]
    cfg = bench_config(train_file, out)
    for key, value in ({"train.max_steps": steps} | settings).items():
        cfg.set(key, value)
    result = train(cfg, progress_bar=False, speedups=speedups)
    if result.state != "completed":
        raise SystemExit(f"{name} failed: {result.error}")
    rows = [r for r in RunDir(out).read_metrics() if "loss" in r]
    warm = rows[1]  # the first two steps pay one-off costs (allocator, first batch)
    seconds, tokens = rows[-1]["elapsed_s"] - warm["elapsed_s"], rows[-1]["num_tokens"] - warm["num_tokens"]
    return {"variant": name, "tokens_per_s": tokens / seconds, "s_per_step": seconds / (len(rows) - 2),
            "tokens_per_step": tokens / (len(rows) - 2),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def main() -> None:
    if sys.argv[1:2] == ["--child"]:
        name, train_file, out, steps = sys.argv[2:6]
        print(json.dumps(run_variant(name, train_file, out, int(steps))))
        return
    from train_throughput import write_data

    names = sys.argv[1:] or list(VARIANTS)
    steps = 16
    with tempfile.TemporaryDirectory() as tmp:
        train_file, _ = write_data(Path(tmp), 180, 24, 40)
        print(f"{'variant':24}{'tokens/s':>10}{'s/step':>9}{'tok/step':>10}{'RSS MB':>9}")
        base = None
        for i, name in enumerate(names):
            proc = subprocess.run([sys.executable, __file__, "--child", name, str(train_file), str(Path(tmp) / f"{i}"),
                                   str(steps)], capture_output=True, text=True)
            if proc.returncode != 0:
                print(f"{name:24} failed: {proc.stderr.strip().splitlines()[-1]}")
                continue
            r = json.loads(proc.stdout.strip().splitlines()[-1])
            base = base or r["tokens_per_s"]
            print(f"{name:24}{r['tokens_per_s']:>10.1f}{r['s_per_step']:>9.2f}{r['tokens_per_step']:>10.0f}"
                  f"{r['peak_rss_mb']:>9.0f}   x{r['tokens_per_s'] / base:.2f} vs {names[0]}", flush=True)


if __name__ == "__main__":
    main()
