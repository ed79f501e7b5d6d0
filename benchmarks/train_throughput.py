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

    python benchmarks/train_throughput.py            # full run (~8 min on 2 cores)
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

# The notebook's SFTTrainer settings (bf16/tf32/paged optimizer replaced as explained above). Its LoRA
# config is the workbench default's: the same adapter for both, so the ratio measures the trainer.
REFERENCE = {"data.packing": True, "data.max_length": 2048, "train.gradient_checkpointing": True,
             "train.batch_size": 3, "train.learning_rate": 2e-4, "train.scheduler": "constant",
             "train.max_grad_norm": 0.3, "train.warmup_ratio": 0.03, "train.optimizer": "adamw_torch",
             "train.group_by_length": False}
# The notebook's packing (TRL's ConstantLengthDataset then) concatenated rows into 2048-token blocks with
# attention across rows: today's "wrapped". Today's default "bfd" (padding-free, no cross-row attention)
# measured 48 tokens/s here against 91 for "wrapped" (benchmarks/NOTES.md), so the reference gets the
# faster of the two and the speedup is not inflated by it.
REFERENCE_SFT = {"packing_strategy": "wrapped"}
REFERENCE_CONTEXT = 2048  # every token of a wrapped block attends to the block before it


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

# On a CUDA GPU the workbench recipe also runs with each attention kernel and on a 4-bit base (bf16 otherwise).
GPU_VARIANTS = {
    "gpu_sdpa_bf16": {"model.attention": "sdpa"},
    "gpu_flash_attention_2_bf16": {"model.attention": "flash_attention_2"},
    "gpu_eager_bf16": {"model.attention": "eager"},
    "gpu_sdpa_4bit_nf4": {"model.attention": "sdpa", "adapter.method": "qlora", "model.quantization": "4bit"},
}


def bench_config(train_file: str, out_dir: str):
    """The default RunConfig on the benchmark's data: every row trains, no checkpoints (not what is measured)."""
    from workbench.config.run import RunConfig

    cfg = RunConfig()
    for key, value in {"data.source": str(train_file), "data.val_size": 0.0, "data.test_size": 0.0,
                       "train.save_steps": 10_000, "output_dir": str(out_dir)}.items():
        cfg.set(key, value)
    return cfg


def run_recipe(recipe: str, train_file: str, eval_file: str, out_dir: str) -> dict:
    import torch

    cfg = bench_config(train_file, out_dir)
    cfg.set("train.epochs", 1)
    reference = recipe == "reference"
    for key, value in (REFERENCE if reference else GPU_VARIANTS.get(recipe, {})).items():
        cfg.set(key, value)
    from workbench.training.engine import train

    t0 = time.monotonic()
    # The reference is stock TRL: none of the workbench's speed fixes (workbench/training/setup.py: score_only_trained_positions).
    result = train(cfg, progress_bar=False, sft_overrides=REFERENCE_SFT if reference else None,
                   speedups=not reference)
    wall = time.monotonic() - t0
    if result.state != "completed":
        raise SystemExit(f"{recipe} failed: {result.error}")
    peak_gpu_mb = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None  # before eval
    from workbench.runs.folder import RunDir

    run = RunDir(out_dir)
    rows = [r for r in run.read_metrics() if "loss" in r]
    train_s = rows[-1]["elapsed_s"]
    tokens = rows[-1]["num_tokens"]
    return {"recipe": recipe, "steps": result.global_step, "tokens": tokens, "train_s": train_s, "wall_s": wall,
            "tokens_per_s": tokens / train_s, "s_per_step": train_s / result.global_step,
            "final_train_loss": result.final_loss, "eval_loss": eval_loss(run.adapter, eval_file, cfg),
            **token_stats(train_file, cfg, REFERENCE_CONTEXT if reference else None), "lora_r": cfg.adapter.r,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "peak_gpu_mb": peak_gpu_mb}


def eval_loss(adapter: Path, eval_file: str, cfg) -> float:
    """Mean NLL per trained token on the held-out rows, one row at a time: identical for both recipes."""
    import torch
    from peft import PeftModel

    from workbench.data.load import load_canonical
    from workbench.models.load import load_model
    from workbench.prompts import registry, rendering

    loaded = load_model("default")
    model = PeftModel.from_pretrained(loaded.model, str(adapter)).eval()
    template = registry.load(cfg.data.template)
    ds, _ = load_canonical(eval_file)
    total, count = 0.0, 0
    with torch.no_grad():
        for row in ds:
            enc = rendering.encode_row(template, row, loaded.tokenizer, 512)
            ids = torch.tensor([enc["input_ids"]], device=model.device)
            labels = torch.tensor([enc["labels"]], device=model.device)
            n = int((labels[:, 1:] != -100).sum())
            total += float(model(input_ids=ids, labels=labels).loss) * n
            count += n
    return total / count


def token_stats(train_file: str, cfg, block: int | None) -> dict:
    """Share of tokens that carry the loss (the fused LM head's work) and the mean attention context.

    Rows trained one per sequence attend within their row: the token-weighted mean row length. Rows packed
    into wrapped blocks attend across the block: `block`.
    """
    from workbench.data.load import load_canonical
    from workbench.models.load import load_tokenizer
    from workbench.prompts import registry, rendering

    tok = load_tokenizer("default")
    template = registry.load(cfg.data.template)
    ds, _ = load_canonical(train_file)
    trained = total = squares = 0
    for row in ds:
        labels = rendering.encode_row(template, row, tok, cfg.data.max_length)["labels"]
        trained += sum(x != -100 for x in labels)
        total += len(labels)
        squares += len(labels) ** 2
    return {"trained_fraction": trained / total, "attention_context": block or squares / total}


# -- FLOPs and the matmul peak ----------------------------------------------------------------------

def matmul_peak_gflops(seconds: float = 3.0) -> float:
    """Best GEMM rate here in the dtype training computes in (fp32 on CPU, bf16 on a GPU), over square sizes
    that fill the caches and the cores."""
    import torch

    cuda = torch.cuda.is_available()
    device, dtype, sizes = ("cuda", torch.bfloat16, (4096, 8192)) if cuda else ("cpu", torch.float32, (512, 1024, 2048))
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    best = 0.0
    for n in sizes:
        a, b = torch.randn(n, n, device=device, dtype=dtype), torch.randn(n, n, device=device, dtype=dtype)
        torch.mm(a, b)
        sync()
        reps, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds / len(sizes):
            torch.mm(a, b)
            sync()
            reps += 1
        best = max(best, 2 * n ** 3 * reps / (time.perf_counter() - t0) / 1e9)
    return best


def lora_flops_per_token(trained_fraction: float, context: float, lora_r: int) -> float:
    """Model FLOPs per training token for LoRA (all linear layers, rank lora_r) on a frozen base.

    forward: 2 x (body matmul params) + attention (QK^T and AV over the causal context) + the LM head on the
    positions that carry the loss + 2 x (LoRA params); backward: the same again for activation gradients
    (frozen weights need no weight gradients) + 2 x (LoRA params) for the LoRA weight gradients.
    Gradient-checkpointing recomputation and the head over untrained positions are not counted: they are
    hardware work, not model work.
    """
    from transformers import AutoConfig

    from workbench.models.resolve import default_model_dir

    c = AutoConfig.from_pretrained(str(default_model_dir()))
    h, i, layers, v = c.hidden_size, c.intermediate_size, c.num_hidden_layers, c.vocab_size
    kv = c.num_key_value_heads * (h // c.num_attention_heads)
    body = layers * (h * h * 2 + h * kv * 2 + 3 * h * i)  # q, o, k, v, gate/up/down
    lora = layers * lora_r * (2 * (h + h) + 2 * (h + kv) + 3 * (h + i))  # A (in x r) + B (r x out) per layer
    attention = layers * 2 * 2 * h * (context / 2)  # causal: each token sees half its context on average
    forward = 2 * body + 2 * lora + attention + 2 * h * v * trained_fraction
    return 2 * forward + 2 * lora


# -- the driver -------------------------------------------------------------------------------------

def child(args) -> None:
    print(json.dumps(run_recipe(args.recipe, args.train, args.eval, args.out)))


def run_child(recipe: str, train_file: Path, eval_file: Path, out: Path, required: bool = True) -> dict | None:
    proc = subprocess.run([sys.executable, __file__, "--recipe", recipe, "--train", str(train_file),
                           "--eval", str(eval_file), "--out", str(out)], capture_output=True, text=True)
    if proc.returncode != 0:
        if required:
            raise SystemExit(f"{recipe} failed:\n{proc.stderr[-3000:]}")
        print(f"{recipe} failed: {(proc.stderr.strip().splitlines() or ['?'])[-1]}", file=sys.stderr)
        return None
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"{recipe}: done in {result['wall_s']:.0f} s", file=sys.stderr)
    return result


def gpu_comparison(train_file: Path, eval_file: Path, tmp: Path) -> dict | None:
    """flash_attention_2 vs sdpa vs eager, and a 4-bit NF4 base vs bf16, when there is a CUDA GPU."""
    import torch

    if not torch.cuda.is_available():
        return None
    rows = {name: run_child(name, train_file, eval_file, tmp / name, required=False) for name in GPU_VARIANTS}
    print(f"\n{torch.cuda.get_device_name()}:")
    print(f"{'':30}{'tokens/s':>10}{'s/step':>9}{'peak GPU MB':>13}{'eval loss':>11}")
    for name, r in rows.items():
        if r:
            print(f"{name:30}{r['tokens_per_s']:>10.0f}{r['s_per_step']:>9.3f}{r['peak_gpu_mb']:>13.0f}"
                  f"{r['eval_loss']:>11.4f}")
        else:
            print(f"{name:30}  failed (see above)")
    return rows


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
        results = {recipe: run_child(recipe, train_file, eval_file, Path(tmp) / recipe)
                   for recipe in ("reference", "workbench")}
        peak_after = matmul_peak_gflops()
        gpu = gpu_comparison(train_file, eval_file, Path(tmp))
    ref, wb = results["reference"], results["workbench"]
    best = max(peak, peak_after)  # the higher of the two GEMM rates: MFU is not flattered by a slow moment
    for r in (ref, wb):
        flops = lora_flops_per_token(r["trained_fraction"], r["attention_context"], r["lora_r"])
        r["mfu"] = r["tokens_per_s"] * flops / (best * 1e9)
    summary = {
        "reference_tokens_per_s": ref["tokens_per_s"], "workbench_tokens_per_s": wb["tokens_per_s"],
        "speedup_vs_reference": wb["tokens_per_s"] / ref["tokens_per_s"],
        "reference_mfu": ref["mfu"], "workbench_mfu": wb["mfu"],
        "matmul_peak_gflops": best, "matmul_peak_gflops_before": peak, "matmul_peak_gflops_after": peak_after,
        "reference_eval_loss": ref["eval_loss"], "workbench_eval_loss": wb["eval_loss"],
        "eval_loss_delta": wb["eval_loss"] - ref["eval_loss"],
        "reference": ref, "workbench": wb, "gpu": gpu,
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
