"""Training throughput: the reference QLoRA-notebook recipe vs the workbench default, on the same work.

In one run, on the same model (the embedded default), the same data (a fixed slice of the bundled sample
plus a synthetic long-response set), the same LoRA config and the same training tokens (one epoch of the
same rows), it trains:

  reference  TRL SFTTrainer configured as the classic LLaMA-2 dolly QLoRA notebook: packing on (2048-token
             blocks), gradient checkpointing on, batch 3, lr 2e-4 constant, max grad norm 0.3, warmup 0.03,
             AdamW. Its bf16=True is replaced by the device's fastest correct dtype (fp32 on this CPU): bf16
             would make a step ~13x slower here and the ratio would measure that trap, not the engine.
  workbench  workbench.training.engine.train() with the default RunConfig (what `python -m workbench train`
             and the UI run).

Each recipe runs in its own process (clean peak RSS). It reports non-padding tokens/s, s/step, peak RSS,
final train loss, eval loss on a fixed held-out slice (the same function for both) and MFU = achieved model
FLOPs/s / the fp32 matmul peak measured in the same run. Writes benchmarks/results/train_throughput.json.

    python benchmarks/train_throughput.py            # full run (~10 min on 2 cores)
    python benchmarks/train_throughput.py --quick    # smaller slice, for a smoke check
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "train_throughput.json"

# The notebook's SFTTrainer settings (bf16/tf32/paged optimizer replaced as explained above).
REFERENCE = {"packing": True, "max_length": 2048, "gradient_checkpointing": True, "batch_size": 3,
             "learning_rate": 2e-4, "scheduler": "constant", "max_grad_norm": 0.3, "warmup_ratio": 0.03,
             "optimizer": "adamw_torch"}


# -- the data both recipes train on ------------------------------------------------------------------

def write_data(folder: Path, n_sample: int, n_long: int, n_eval: int) -> tuple[Path, Path]:
    """train.jsonl = a fixed slice of the bundled sample + synthetic long responses; eval.jsonl held out."""
    rows = [json.loads(line) for line in (ROOT / "data" / "dolly_sample.jsonl").read_text().splitlines()]
    rng = random.Random(0)
    rng.shuffle(rows)
    words = [w.strip(".,;:!?").lower() for r in rows for w in r["response"].split()]
    long_rows = []
    for i in range(n_long):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(250, 350))).capitalize() + "."
        long_rows.append({"instruction": f"Write a long note about topic {i}.", "context": "", "response": text,
                          "category": "creative_writing"})
    train = rows[:n_sample] + long_rows
    held_out = rows[n_sample:n_sample + n_eval]
    dump = lambda path, rs: path.write_text("".join(json.dumps(r) + "\n" for r in rs))  # noqa: E731
    dump(folder / "train.jsonl", train)
    dump(folder / "eval.jsonl", held_out)
    return folder / "train.jsonl", folder / "eval.jsonl"


# -- one recipe, in a child process ----------------------------------------------------------------

def run_recipe(recipe: str, train_file: str, eval_file: str, out_dir: str) -> dict:
    from workbench.config import RunConfig

    cfg = RunConfig()
    cfg.set("data.source", train_file)
    cfg.set("data.val_size", 0.0)
    cfg.set("data.test_size", 0.0)
    cfg.set("train.epochs", 1)
    cfg.set("train.save_steps", 10_000)  # checkpoints are not what is measured
    cfg.set("output_dir", out_dir)
    if recipe == "reference":
        for key, value in REFERENCE.items():
            cfg.set(("data." if key in ("packing", "max_length") else "train.") + key, value)
    from workbench.training.engine import train

    t0 = time.monotonic()
    result = train(cfg, progress_bar=False)
    wall = time.monotonic() - t0
    if result.state != "completed":
        raise SystemExit(f"{recipe} failed: {result.error}")
    from workbench.runs import RunDir

    run = RunDir(out_dir)
    rows = [r for r in run.read_metrics() if "loss" in r]
    train_s = rows[-1]["elapsed_s"]
    tokens = rows[-1]["num_tokens"]
    return {"recipe": recipe, "steps": result.global_step, "tokens": tokens, "train_s": train_s, "wall_s": wall,
            "tokens_per_s": tokens / train_s, "s_per_step": train_s / result.global_step,
            "final_train_loss": result.final_loss, "eval_loss": eval_loss(run.adapter, eval_file, cfg),
            "trained_fraction": trained_fraction(train_file, cfg),
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def eval_loss(adapter: Path, eval_file: str, cfg) -> float:
    """Mean NLL per trained token on the held-out rows, one row at a time: identical for both recipes."""
    import torch
    from peft import PeftModel

    from workbench import templates
    from workbench.data import sources
    from workbench.models import load_model

    loaded = load_model("default")
    model = PeftModel.from_pretrained(loaded.model, str(adapter)).eval()
    template = templates.load(cfg.data.template)
    ds, _ = sources.load_canonical(eval_file)
    total, count = 0.0, 0
    with torch.no_grad():
        for row in ds:
            enc = templates.encode_row(template, row, loaded.tokenizer, 512)
            ids, labels = torch.tensor([enc["input_ids"]]), torch.tensor([enc["labels"]])
            n = int((labels[:, 1:] != -100).sum())
            total += float(model(input_ids=ids, labels=labels).loss) * n
            count += n
    return total / count


def trained_fraction(train_file: str, cfg) -> float:
    """Share of tokens that carry the loss (and so go through the LM head in TRL's fused head)."""
    from workbench import templates
    from workbench.data import sources
    from workbench.models import load_tokenizer

    tok = load_tokenizer("default")
    template = templates.load(cfg.data.template)
    ds, _ = sources.load_canonical(train_file)
    trained = total = 0
    for row in ds:
        enc = templates.encode_row(template, row, tok, cfg.data.max_length)
        trained += sum(x != -100 for x in enc["labels"])
        total += len(enc["labels"])
    return trained / total


# -- FLOPs and the matmul peak ----------------------------------------------------------------------

def matmul_peak_gflops(seconds: float = 3.0) -> float:
    """Best fp32 GEMM rate here, over square sizes that fill the caches and the cores."""
    import torch

    best = 0.0
    for n in (512, 1024, 2048):
        a, b = torch.randn(n, n), torch.randn(n, n)
        torch.mm(a, b)
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / 3:
            torch.mm(a, b)
            reps += 1
        best = max(best, 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9)
    return best


def lora_flops_per_token(trained_fraction: float, mean_context: float) -> float:
    """Model FLOPs per training token for LoRA on a frozen base.

    forward: 2 x (body matmul params) + attention (QK^T and AV over the causal context) + the LM head on the
    positions that carry the loss; backward: the same again for activation gradients (frozen weights need no
    weight gradients; the LoRA matrices add < 4%). Gradient-checkpointing recomputation is not counted:
    it is hardware work, not model work.
    """
    from transformers import AutoConfig

    from workbench.models import default_model_dir

    c = AutoConfig.from_pretrained(str(default_model_dir()))
    h, i, layers, v = c.hidden_size, c.intermediate_size, c.num_hidden_layers, c.vocab_size
    kv = c.num_key_value_heads * (h // c.num_attention_heads)
    body = layers * (h * h * 2 + h * kv * 2 + 3 * h * i)  # q, o, k, v, gate/up/down
    attention = layers * 2 * 2 * h * (mean_context / 2)  # causal: each token sees half the context on average
    forward = 2 * body + attention + 2 * h * v * trained_fraction
    return 2 * forward


# -- the driver -------------------------------------------------------------------------------------

def child(args) -> None:
    print(json.dumps(run_recipe(args.recipe, args.train, args.eval, args.out)))


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--quick", action="store_true")
    p.add_argument("--recipe"), p.add_argument("--train"), p.add_argument("--eval"), p.add_argument("--out")
    args = p.parse_args()
    if args.recipe:
        return child(args)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    n_sample, n_long, n_eval = (60, 6, 20) if args.quick else (180, 24, 40)
    with tempfile.TemporaryDirectory() as tmp:
        train_file, eval_file = write_data(Path(tmp), n_sample, n_long, n_eval)
        peak = matmul_peak_gflops()
        results = {}
        for recipe in ("reference", "workbench"):
            proc = subprocess.run([sys.executable, __file__, "--recipe", recipe, "--train", str(train_file),
                                   "--eval", str(eval_file), "--out", str(Path(tmp) / recipe)],
                                  capture_output=True, text=True)
            if proc.returncode != 0:
                raise SystemExit(f"{recipe} failed:\n{proc.stderr[-3000:]}")
            results[recipe] = json.loads(proc.stdout.strip().splitlines()[-1])
            print(f"{recipe}: done in {results[recipe]['wall_s']:.0f} s", file=sys.stderr)
        peak_after = matmul_peak_gflops()
    ref, wb = results["reference"], results["workbench"]
    mean_context = 160.0  # rows are ~100-400 tokens; attention is < 3% of the FLOPs at this size either way
    for r in (ref, wb):
        r["mfu"] = r["tokens_per_s"] * lora_flops_per_token(r["trained_fraction"], mean_context) / (peak * 1e9)
    summary = {
        "reference_tokens_per_s": ref["tokens_per_s"], "workbench_tokens_per_s": wb["tokens_per_s"],
        "speedup_vs_reference": wb["tokens_per_s"] / ref["tokens_per_s"],
        "reference_mfu": ref["mfu"], "workbench_mfu": wb["mfu"],
        "matmul_peak_gflops": peak, "matmul_peak_gflops_after": peak_after,
        "reference_eval_loss": ref["eval_loss"], "workbench_eval_loss": wb["eval_loss"],
        "eval_loss_delta": wb["eval_loss"] - ref["eval_loss"],
        "reference": ref, "workbench": wb,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2))
    cols = ("tokens_per_s", "s_per_step", "steps", "peak_rss_mb", "final_train_loss", "eval_loss", "mfu")
    print(f"{'':12}" + "".join(f"{c:>18}" for c in cols))
    for r in (ref, wb):
        print(f"{r['recipe']:12}" + "".join(f"{r[c]:>18.4g}" for c in cols))
    print(f"speedup_vs_reference = {summary['speedup_vs_reference']:.2f}x, eval loss delta = "
          f"{summary['eval_loss_delta']:+.3f}, matmul peak = {peak:.1f} GFLOP/s (after: {peak_after:.1f})")
    print(f"wrote {RESULTS.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
