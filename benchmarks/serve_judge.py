"""Serving and judging speed, measured in one run against real uvicorn servers on free local ports.

    .venv/bin/python benchmarks/serve_judge.py [--run RUN_DIR] [--max-tokens 32] [--rows 8]

1. Served tokens per second, 1 client and 8 concurrent clients, batched (max_batch 8) versus one at a time
   (max_batch 1). Goal: batched >= 3x one-at-a-time at 8 clients.
2. First-token latency of a streamed chat reply (median of 5).
3. Judged rows per second with the HTTP judge at concurrency 1 versus 4, the served run as the judge.
Without --run, a 3-step LoRA run of the default recipe is trained first (a few seconds) in a temp folder.
"""
from __future__ import annotations

import argparse
import os
import socket
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from workbench.config.tasks import JudgeConfig, ServeConfig
from workbench.judging.run import judge_rows
from workbench.serving.server import start_in_thread

ASKS = ["The tide came in slowly over the flat grey sand.", "Bread needs flour, water, salt and time.",
        "The meeting moved to Thursday because the room was booked.", "Cats sleep for most of the day.",
        "Rain is expected over the weekend in the north.", "The library closes at eight on weekdays.",
        "She planted tomatoes along the south wall.", "The train was late by twenty minutes."]


def port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tokens_per_s(client, model: str, clients: int, max_tokens: int) -> float:
    def one(i):
        r = client.chat.completions.create(model=model, messages=[{"role": "user", "content": ASKS[i % len(ASKS)]}],
                                           max_tokens=max_tokens)
        return r.usage.completion_tokens

    t0 = time.perf_counter()
    with ThreadPoolExecutor(clients) as pool:
        tokens = sum(pool.map(one, range(clients)))
    return tokens / (time.perf_counter() - t0)


def main() -> int:
    import openai

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run")
    ap.add_argument("--max-tokens", type=int, default=32)
    ap.add_argument("--rows", type=int, default=8)
    ap.add_argument("--wait-ms", type=int, default=ServeConfig().batch_wait_ms,
                    help="how long a batch's first request waits for others (the server's batch_wait_ms)")
    args = ap.parse_args()
    run = args.run
    if not run:
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))
        from conftest import quick_config
        from workbench.training.engine import train

        # On a thread that ends before serving: a thread that ran torch ops keeps its OpenMP team, and a second
        # live team slows the server's generating thread (the Batcher's docstring), as in the `serve` CLI.
        with ThreadPoolExecutor(1) as pool:
            run = pool.submit(lambda: str(train(quick_config(Path(tempfile.mkdtemp()) / "run"),
                                                progress_bar=False).run_dir)).result()
    results = {}
    for label, max_batch in (("batched", 8), ("one at a time", 1)):
        srv = start_in_thread(ServeConfig(run=run, port=port(), max_batch=max_batch, batch_wait_ms=args.wait_ms))
        model = next(iter(srv.registry.models))
        client = openai.OpenAI(base_url=srv.url, api_key="unused", max_retries=0, timeout=600)
        tokens_per_s(client, model, 1, 4)  # warm-up
        results[label] = {1: tokens_per_s(client, model, 1, args.max_tokens)}
        before = srv.batcher.batches
        results[label][8] = tokens_per_s(client, model, 8, args.max_tokens)
        print(f"{label:14s} tokens/s: 1 client {results[label][1]:.1f}, 8 clients {results[label][8]:.1f} "
              f"(the 8 requests took {srv.batcher.batches - before} generate calls)")
        if max_batch == 8:
            ttft = []
            for _ in range(5):
                t0 = time.perf_counter()
                for chunk in client.chat.completions.create(model=model, stream=True, max_tokens=8,
                                                            messages=[{"role": "user", "content": ASKS[0]}]):
                    if chunk.choices and chunk.choices[0].delta.content:
                        ttft.append(time.perf_counter() - t0)
                        break
            print(f"first-token latency (streamed, median of 5): {statistics.median(ttft) * 1000:.0f} ms")
            rows = [{"input": a, "generated": a, "base_generated": None, "ground_truth": a}
                    for a in (ASKS * 4)[:args.rows]]
            speed = {}
            for conc in (1, 4):
                t0 = time.perf_counter()
                judge_rows([dict(r) for r in rows], JudgeConfig(url=srv.url, model=model, concurrency=conc,
                                                                max_tokens=16))
                speed[conc] = len(rows) / (time.perf_counter() - t0)
            print(f"judged rows/s: concurrency 1 {speed[1]:.2f}, concurrency 4 {speed[4]:.2f} "
                  f"({speed[4] / speed[1]:.2f}x)")
        srv.stop()
    ratio = results["batched"][8] / results["one at a time"][8]
    print(f"8 clients, batched / one at a time: {ratio:.2f}x (goal >= 3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
