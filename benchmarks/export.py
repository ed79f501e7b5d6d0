"""Export speed and size: each format's time and file size for the default model (a 3-step LoRA run trained
here, or --run), then decoding speed of each GGUF under transformers versus the merged folder, the same greedy
prompts (a reference for later llama.cpp figures).

    .venv/bin/python benchmarks/export.py [--run RUN] [--quant f16,q8_0] [--tokens 32]

Writes benchmarks/results/export.json; levers in benchmarks/NOTES.md.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from workbench.config.tasks import ExportConfig  # noqa: E402
from workbench.config.run import RunConfig  # noqa: E402
from workbench.export.bundle import export_run  # noqa: E402
from workbench.export.check import decode, held_out_prompts, load_model  # noqa: E402
from workbench.runs.folder import RunDir  # noqa: E402

log = logging.getLogger("bench.export")


def tiny_run(folder: Path) -> Path:
    from workbench.training.engine import train

    cfg = RunConfig()
    for key, value in {"data.max_rows": 48, "data.max_length": 128, "train.batch_size": 2, "train.max_steps": 3,
                       "train.logging_steps": 1, "output_dir": str(folder)}.items():
        cfg.set(key, value)
    result = train(cfg, progress_bar=False)
    assert result.state == "completed", result.error
    return Path(result.run_dir)


def tokens_per_s(kind: str, path: Path, tokenizer, prompts: list[str], n: int) -> float:
    model = load_model(kind, path)
    decode(model, tokenizer, prompts[:1], 4)  # warm-up
    t = time.perf_counter()
    tokens = decode(model, tokenizer, prompts, n)
    return sum(len(x) for x in tokens) / (time.perf_counter() - t)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", help="a finished run folder (default: a 3-step LoRA run trained now)")
    ap.add_argument("--quant", default="f16,q8_0")
    ap.add_argument("--tokens", type=int, default=32)
    args = ap.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from transformers import AutoTokenizer

    work = Path(tempfile.mkdtemp(prefix="wb-bench-export-"))
    run = Path(args.run) if args.run else tiny_run(work / "run")
    manifest = export_run(ExportConfig(run=str(run), out=str(work / "export"), quant=args.quant, name="bench"))
    sizes = {f["path"]: f["bytes"] for f in manifest["files"]}
    out = Path(manifest["out"])
    merged_bytes = sum(b for p, b in sizes.items() if p.startswith("merged/") and p.endswith(".safetensors"))
    rows = [{"format": "merged (safetensors)", "seconds": manifest["timings"]["merged"], "bytes": merged_bytes}]
    rows += [{"format": f"gguf {q}", "seconds": manifest["timings"][q], "bytes": sizes[f"gguf/bench-{q}.gguf"]}
             for q in manifest["quants"]]
    tokenizer = AutoTokenizer.from_pretrained(str(out / "merged"))
    prompts = held_out_prompts(run, RunDir(run).config().data.template, tokenizer, 3)
    speed = {"merged": tokens_per_s("hf", out / "merged", tokenizer, prompts, args.tokens)}
    for q in manifest["quants"]:
        speed[q] = tokens_per_s("gguf", out / "gguf" / f"bench-{q}.gguf", tokenizer, prompts, args.tokens)
    log.info("export of %s: %.1f s in all, check %s", run.name, manifest["seconds"],
             "passed" if manifest["check"]["passed"] else "FAILED")
    for r in rows:
        log.info("%-22s %6.1f s  %8.1f MB  (%.3fx merged)", r["format"], r["seconds"], r["bytes"] / 1e6,
                 r["bytes"] / merged_bytes)
    for k, v in speed.items():
        log.info("decode %-8s %6.1f tokens/s  (%.2fx merged, transformers, greedy, %d tokens)", k, v,
                 v / speed["merged"], args.tokens)
    result = {"run": str(run), "seconds": manifest["seconds"], "formats": rows, "tokens_per_s": speed,
              "check_passed": manifest["check"]["passed"], "measured_at": time.strftime("%Y-%m-%d %H:%M:%S")}
    path = ROOT / "benchmarks" / "results" / "export.json"
    path.write_text(json.dumps(result, indent=2), encoding="utf-8")
    log.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
