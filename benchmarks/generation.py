"""Generation speed: batched (left-padded) vs one-by-one for 32 rows, and chat time to first token.

    .venv/bin/python benchmarks/generation.py [--rows 32] [--batch-size 32] [--max-new-tokens 32] [--run RUN_DIR]

Targets (issue 5): batched >= 4x faster than one-by-one for 32 rows; time to first token <= 300 ms on the
default model on CPU. Both paths are the engine's own (inference.generate_batch / inference.chat_stream),
greedy, stopping at EOS and the template's stop strings, so the numbers are what the Evaluate and Chat tabs
see. Prompts are the bundled dataset's rows under the reverse_instruction template.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from workbench.config.decoding import GenerationConfig  # noqa: E402
from workbench.config.run import DEFAULT_DATA
from workbench.data.load import load_canonical  # noqa: E402
from workbench.generation.decoding import generate_batch  # noqa: E402
from workbench.generation.chat_model import CACHE
from workbench.generation.stream import chat_stream
from workbench.prompts import registry, rendering  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=32)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=32)
    ap.add_argument("--run", help="a run folder: generate with its adapter (default: the base model alone)")
    ap.add_argument("--ttft-repeats", type=int, default=7)
    args = ap.parse_args()

    import torch

    t = time.perf_counter()
    cm = CACHE.get("default", args.run)
    print(f"model: {cm.describe()}  (loaded in {time.perf_counter() - t:.1f} s, {torch.get_num_threads()} threads)")
    tpl = registry.load("reverse_instruction")
    rows, _ = load_canonical(DEFAULT_DATA)
    prompts = [rendering.prompt_text(tpl, rows[i], cm.tokenizer) for i in range(min(args.rows, len(rows)))]
    settings = GenerationConfig(max_new_tokens=args.max_new_tokens, do_sample=False)

    generate_batch(cm, prompts[:2], settings, tpl, batch_size=2)  # warm-up: first-call allocations

    def one_by_one(ps):
        t = time.perf_counter()
        return [generate_batch(cm, [p], settings, tpl, batch_size=1)[0] for p in ps], time.perf_counter() - t

    def all_batched():
        t = time.perf_counter()
        return generate_batch(cm, prompts, settings, tpl, batch_size=args.batch_size), time.perf_counter() - t

    # A-B-B-A order (half the rows one by one, batched twice, the other half one by one): a shared CPU
    # whose load drifts during the run then weighs on both sides alike.
    half = len(prompts) // 2
    one_a, t_a = one_by_one(prompts[:half])
    batched, t_b1 = all_batched()
    _, t_b2 = all_batched()
    one_b, t_c = one_by_one(prompts[half:])
    one, t_one, t_batch = one_a + one_b, t_a + t_c, (t_b1 + t_b2) / 2
    same = sum(a == b for a, b in zip(one, batched))
    print(f"{len(prompts)} rows, up to {args.max_new_tokens} new tokens, greedy:")
    print(f"  one by one      {t_one:7.2f} s  ({t_one / len(prompts) * 1000:.0f} ms/row)")
    print(f"  batched (bs={args.batch_size:<3}) {t_batch:7.2f} s  ({t_batch / len(prompts) * 1000:.0f} ms/row)")
    print(f"  speed-up        {t_one / t_batch:7.1f}x   (target >= 4x)   identical outputs: {same}/{len(prompts)}")

    chat_tpl = registry.load("model")
    ttft = []
    for i in range(args.ttft_repeats + 1):
        t = time.perf_counter()
        stream = chat_stream(cm, [], "What is the capital of France?", GenerationConfig(max_new_tokens=16), chat_tpl)
        next(stream)
        elapsed = time.perf_counter() - t
        for _ in stream:  # let the reply finish so the next call does not wait for the model lock
            pass
        if i:  # the first call builds the chat template's Jinja; not what a user waits for afterwards
            ttft.append(elapsed)
    print(f"chat time to first token: median {statistics.median(ttft) * 1000:.0f} ms, "
          f"min {min(ttft) * 1000:.0f} ms over {len(ttft)} (target <= 300 ms)")
    print(json.dumps({"rows": len(prompts), "one_by_one_s": round(t_one, 2), "batched_s": round(t_batch, 2),
                      "speedup": round(t_one / t_batch, 2), "ttft_ms_median": round(statistics.median(ttft) * 1000),
                      "threads": torch.get_num_threads()}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
