"""DPO vs SFT on the default model: seconds per step and peak memory at the same batch and length.

The same rows for both: the bundled pairs (data/dolly_pairs.jsonl) for DPO, and for SFT the same prompts with
their chosen answer as the trained response (the reverse-instruction task: prompt = a text, answer = its
instruction), so SFT trains on exactly DPO's chosen sequences. Same LoRA adapter, batch, max_length, steps.
DPO also runs every rejected sequence and the reference forward (the adapter disabled: no second model),
so a step costs more; the memory should stay well under 2x SFT's. Each method trains in its own process
(clean peak RSS; on a GPU, torch's peak allocated bytes). `--all` adds ORPO and KTO. Writes
benchmarks/results/preference.json.

    python benchmarks/preference.py            # SFT and DPO, 8 steps each (~3 min on 2 busy cores)
    python benchmarks/preference.py --all --steps 6
    python benchmarks/preference.py --set pref.precompute_ref=true   # a lever: the reference scored once
"""
from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "preference.json"
PAIRS = ROOT / "data" / "dolly_pairs.jsonl"


def child(method: str, steps: int, batch: int, length: int, work: Path, sets: list[str]) -> dict:
    """Train `method` in this process; step time from metrics.jsonl (the first step, with its warm-up, left out)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from workbench.config.run import RunConfig
    from workbench.runs.folder import RunDir
    from workbench.training.engine import train

    source = PAIRS
    if method == "sft":
        source = work / "sft.jsonl"
        rows = [json.loads(line) for line in PAIRS.read_text().splitlines()]
        source.write_text("".join(json.dumps({"instruction": r["chosen"], "output": r["prompt"]}) + "\n"
                                  for r in rows))
    cfg = RunConfig()
    for key, value in {"train.method": method, "data.source": str(source), "data.max_length": length,
                       "data.val_size": 0.0, "data.test_size": 0.0, "data.max_rows": steps * batch,
                       "train.batch_size": batch, "train.max_steps": steps, "train.save_steps": steps,
                       "train.group_by_length": False, "output_dir": str(work / method)}.items():
        cfg.set(key, value)
    if method != "sft":  # the levers tried on the preference side (benchmarks/NOTES.md)
        for item in sets:
            cfg.set(*item.split("=", 1))
    result = train(cfg, progress_bar=False)
    if result.state != "completed":
        raise SystemExit(f"{method} failed: {result.error}")
    elapsed = [r["elapsed_s"] for r in RunDir(result.run_dir).read_metrics() if "loss" in r]
    out = {"method": method, "s_per_step": round(statistics.median(b - a for a, b in itertools.pairwise(elapsed)), 3),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)}
    import torch

    if torch.cuda.is_available():
        out["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=8)
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--length", type=int, default=256)
    ap.add_argument("--all", action="store_true", help="also ORPO and KTO")
    ap.add_argument("--set", action="append", default=[],
                    help="a preference-method setting, e.g. pref.precompute_ref=true")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    ap.add_argument("--work", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print("RESULT " + json.dumps(child(a.child, a.steps, a.batch, a.length, Path(a.work), a.set)))
        return
    results = {}
    with tempfile.TemporaryDirectory() as work:
        for method in ["sft", "dpo", *(["orpo", "kto"] if a.all else [])]:
            proc = subprocess.run([sys.executable, __file__, "--child", method, "--work", work, "--steps", str(a.steps),
                                   "--batch", str(a.batch), "--length", str(a.length),
                                   *[f"--set={item}" for item in a.set]],
                                  capture_output=True, text=True, check=True)
            results[method] = json.loads(proc.stdout.split("RESULT ", 1)[1])
            print(json.dumps(results[method]))
    sft = results["sft"]
    mem = "peak_cuda_mb" if "peak_cuda_mb" in sft else "peak_rss_mb"
    for method, r in results.items():
        if method != "sft":
            r["step_ratio_vs_sft"] = round(r["s_per_step"] / sft["s_per_step"], 2)
            r["memory_ratio_vs_sft"] = round(r[mem] / sft[mem], 2)
            print(f"{method}: {r['step_ratio_vs_sft']}x SFT's step time, {r['memory_ratio_vs_sft']}x its {mem}")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps({"settings": vars(a), "results": results}, indent=2))


if __name__ == "__main__":
    main()
