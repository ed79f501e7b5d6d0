"""Dataset generation speed: labelled texts per second and generated tokens per second, batched (the default
batch size) versus one text at a time, and peak memory, on the default model.

    .venv/bin/python benchmarks/generate_dataset.py [--texts 32] [--batch-size 8] [--max-new-tokens 32] [--run RUN]

Both passes run the pipeline's own labelling step (backtranslation/pipeline.py: label_batch = batched
generation with the reverse-instruction template, then the back-translation score under the base model), on
the bundled sample's responses as the texts. Goal (issue 14): batched >= 4x faster than one at a time.
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from workbench.backtranslation.chunks import Chunk  # noqa: E402
from workbench.backtranslation.pipeline import by_length, label_batch  # noqa: E402
from workbench.backtranslation.plan import GenerationPlan  # noqa: E402
from workbench.config.generate import GenerateConfig  # noqa: E402
from workbench.generation.chat_model import load_chat_model  # noqa: E402
from workbench.prompts import registry  # noqa: E402


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--texts", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=GenerateConfig().batch_size)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--run", help="a reverse-instruction run folder (default: the base model alone)")
    args = ap.parse_args()

    import torch

    adapter = Path(args.run) / "adapter" if args.run else None
    cm = load_chat_model("default", adapter)
    rows = [json.loads(line) for line in (ROOT / "data" / "dolly_sample.jsonl").read_text().splitlines()]
    chunks = [Chunk(f"sample:{i}", "sample", i, r["response"]) for i, r in enumerate(rows[:args.texts])]
    plan = GenerationPlan(None, adapter, "default", registry.load("reverse_instruction"), None, None)
    print(f"model: {cm.describe()} · {len(chunks)} texts · {torch.get_num_threads()} threads")

    def run(batch_size: int, order: list = chunks) -> tuple[float, int]:
        cfg = GenerateConfig(batch_size=batch_size)
        cfg.gen.max_new_tokens = args.max_new_tokens
        t, tokens = time.perf_counter(), 0
        for start in range(0, len(order), batch_size):
            for record in label_batch(cfg, plan, cm, order[start:start + batch_size]):
                tokens += len(cm.tokenizer(record["candidates"][0]["instruction"])["input_ids"])
        return time.perf_counter() - t, tokens

    run(2)  # warm-up: first-call allocations
    base_mb = peak_rss_mb()
    one_s, one_tokens = run(1)
    one_mb = peak_rss_mb()
    batched_s, batched_tokens = run(args.batch_size)
    batched_mb = peak_rss_mb()
    # The pipeline's order (kept lever): batches of texts of similar length, less left padding in each batch.
    sorted_s, _ = run(args.batch_size, by_length(chunks, cm.tokenizer))
    n = len(chunks)
    print(f"one at a time: {n / one_s:.2f} texts/s, {one_tokens / one_s:.1f} generated tokens/s ({one_s:.1f} s)")
    print(f"batch {args.batch_size}:       {n / batched_s:.2f} texts/s, {batched_tokens / batched_s:.1f} generated "
          f"tokens/s ({batched_s:.1f} s)")
    print(f"batched / one at a time: {one_s / batched_s:.2f}x (goal >= 4x)")
    print(f"batch {args.batch_size}, sorted by length (the pipeline's order): {n / sorted_s:.2f} texts/s → "
          f"{one_s / sorted_s:.2f}x")
    print(f"peak RSS: {base_mb:.0f} MB after loading; {one_mb:.0f} MB one at a time; {batched_mb:.0f} MB at batch "
          f"{args.batch_size} (+{batched_mb - one_mb:.0f} MB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
