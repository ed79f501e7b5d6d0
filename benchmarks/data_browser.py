"""Data browser on a synthetic 1,000,000-row Alpaca JSONL: open, pages, search, stats, peak RSS.

    .venv/bin/python benchmarks/data_browser.py [--rows 1000000] [--keep DIR]

Targets (issue 3): first page <= 2 s after load, any page <= 200 ms, peak RSS <= 1.5 GB. Everything runs
in a temp folder (its own datasets cache too), removed at the end unless --keep is given.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import resource
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

WORDS = ("the a model data train token learn river city music science history write explain list describe "
         "summarize compare water light energy plant animal market language computer network memory").split()
CATEGORIES = ["open_qa", "closed_qa", "brainstorming", "classification", "summarization", "creative_writing",
              "information_extraction", "general_qa"]


def text(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words))


def write_dataset(path: Path, rows: int, seed: int = 0) -> None:
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as f:
        for i in range(rows):
            f.write(json.dumps({"instruction": f"{text(rng, rng.randint(5, 15))} #{i}?",
                                "input": text(rng, rng.randint(5, 30)) if rng.random() < 0.4 else "",
                                "output": text(rng, rng.randint(10, 80)),
                                "category": rng.choice(CATEGORIES)}) + "\n")


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--keep", default="", help="work in this folder and keep it (the file is reused if present)")
    args = ap.parse_args()

    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="wb-bench-data-"))
    work.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(work / "hf-cache", ignore_errors=True)  # the first open parses the JSONL (cold)
    os.environ["HF_DATASETS_CACHE"] = str(work / "hf-cache")  # before datasets is imported
    os.environ["WORKBENCH_DATA"] = str(work)
    path = work / f"alpaca_{args.rows}.jsonl"
    try:
        if not path.exists():
            _, t = timed(lambda: write_dataset(path, args.rows))
            print(f"wrote {args.rows:,} rows ({path.stat().st_size / 2**20:.0f} MB) in {t:.1f} s")
        from workbench.data import browse
        from workbench.data.preview import tokenizer_for

        base_rss = peak_rss_mb()
        view, t_open = timed(lambda: browse.open_view(str(path)))
        rss_open = peak_rss_mb()
        first, t_first = timed(lambda: view.page(1, 25))
        assert len(first.rows) == 25
        rng = random.Random(1)
        page_times = []
        for _ in range(50):
            p = rng.randint(1, first.pages)
            _, t = timed(lambda: view.page(p, rng.choice(browse.PAGE_SIZES)))
            page_times.append(t)
        _, t_last = timed(lambda: view.page(first.pages, 25))
        search, t_search = timed(lambda: view.page(1, 25, query="river city"))
        _, t_search_next = timed(lambda: view.page(3, 25, query="river city"))
        cat, t_cat = timed(lambda: view.page(1, 25, category="summarization"))
        _, t_row = timed(lambda: view.canonical_row(args.rows - 1))
        stats, t_stats = timed(lambda: view.stats())
        rss_stats = peak_rss_mb()
        tok = tokenizer_for("default")
        _, t_tokens = timed(lambda: view.token_lengths(tok))
        browse._VIEWS.clear()
        _, t_reopen = timed(lambda: browse.open_view(str(path)))

        print(f"\nData browser, {args.rows:,}-row Alpaca JSONL ({path.stat().st_size / 2**20:.0f} MB), "
              f"{os.cpu_count()} CPU cores")
        print(f"  open (parse JSONL → Arrow, cold cache)  {t_open:8.2f} s")
        print(f"  open again (Arrow cache reused)          {t_reopen:8.2f} s")
        print(f"  first page after load                    {t_first * 1000:8.1f} ms   (target ≤ 2000 ms)")
        print(f"  later pages, 50 random (median / max)    {statistics.median(page_times) * 1000:8.1f} / "
              f"{max(page_times) * 1000:.1f} ms   (target ≤ 200 ms)")
        print(f"  last page                                {t_last * 1000:8.1f} ms")
        print(f"  search 'river city' ({search.matching:,} hits), page 1   {t_search * 1000:8.1f} ms; "
              f"page 3 (cached hits) {t_search_next * 1000:.1f} ms")
        print(f"  category filter ({cat.matching:,} rows), page 1     {t_cat * 1000:8.1f} ms")
        print(f"  one row (the last)                       {t_row * 1000:8.1f} ms")
        print(f"  stats (counts, empty, duplicates, char lengths of every row)  {t_stats:6.2f} s "
              f"({stats.duplicate_rows:,} duplicate rows)")
        print(f"  token lengths (sample of {browse.TOKEN_SAMPLE:,} rows)       {t_tokens:6.2f} s")
        print(f"  peak RSS                                 {peak_rss_mb():8.0f} MB   (target ≤ 1536 MB)")
        print(f"    {base_rss:.0f} MB before loading, {rss_open:.0f} MB after open, {rss_stats:.0f} MB after search "
              "and stats; the rest is importing transformers for the tokenizer. Memory-mapped Arrow pages "
              "that were read count in RSS (file-backed, reclaimable).")
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
