"""Incremental decoding of one reply: the serve path's old method (decode the whole reply again on every
token, then look for stop strings in all of it) against `generation.decoding.ReplyText` (decode a short
window of new tokens, search for stops only in the text not yet shown), on the real tokenizer of the
default model.

    .venv/bin/python benchmarks/decoding.py [--tokens 256] [--repeats 7]

The reply's tokens are real text (the bundled data/dolly_sample.jsonl's responses, joined) tokenized and
cut to --tokens; the stops are the reverse_instruction template's, which never occur in it, so both methods
decode every token. Both must give the same text; the ratio is old / new time for the whole reply (median
of --repeats), also shown at 4x the length to show how each grows.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from workbench.generation.decoding import ReplyText, cut_at_stop, held_back, stop_strings  # noqa: E402
from workbench.prompts import registry  # noqa: E402

log = logging.getLogger("benchmarks.decoding")
HERE = Path(__file__).resolve().parent


def old_method(tokenizer, ids: list[int], stops: list[str]) -> str:
    """serve's Row.push before issue 25 (then in serving/engine.py): every token re-decodes the whole row."""
    row, shown = [], ""
    for token in ids:
        row.append(token)
        text = tokenizer.decode(row, skip_special_tokens=True)
        cut = cut_at_stop(text, stops)
        if len(cut) < len(text):
            return cut
        visible = text[:len(text) - held_back(text, stops)]
        if visible.startswith(shown) and len(visible) > len(shown):
            shown = visible
    return tokenizer.decode(row, skip_special_tokens=True)


def new_method(tokenizer, ids: list[int], stops: list[str]) -> str:
    reply = ReplyText(tokenizer, stops)
    for token in ids:
        reply.add([token])
        if reply.stopped:
            break
    reply.close()
    return reply.text


def timed(fn, *args, repeats: int) -> tuple[float, str]:
    times, out = [], ""
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn(*args)
        times.append(time.perf_counter() - t)
    return statistics.median(times), out


def main() -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--tokens", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()

    from transformers import AutoTokenizer

    from workbench.models.resolve import default_model_dir

    tok = AutoTokenizer.from_pretrained(str(default_model_dir()))
    sample = HERE.parent / "data" / "dolly_sample.jsonl"
    text = "\n\n".join(json.loads(line)["response"] for line in sample.read_text().splitlines() if line.strip())
    all_ids = tok(text, add_special_tokens=False)["input_ids"]
    stops = stop_strings(registry.load("reverse_instruction"), tok)
    result = {"stops": stops}
    for n in (args.tokens, 4 * args.tokens):
        ids = all_ids[:n]
        if len(ids) < n:
            raise SystemExit(f"the sample text has only {len(all_ids)} tokens")
        old_s, old_text = timed(old_method, tok, ids, stops, repeats=args.repeats)
        new_s, new_text = timed(new_method, tok, ids, stops, repeats=args.repeats)
        assert old_text == new_text == tok.decode(ids, skip_special_tokens=True), "the methods disagree"
        result[n] = {"old_ms": round(old_s * 1000, 2), "new_ms": round(new_s * 1000, 2),
                     "ratio": round(old_s / new_s, 1)}
        log.info("%5d tokens: old (whole row per token) %.1f ms, new (ReplyText) %.1f ms: %.1fx faster",
                 n, old_s * 1000, new_s * 1000, old_s / new_s)
    (HERE / "results").mkdir(exist_ok=True)
    (HERE / "results" / "decoding.json").write_text(json.dumps(result, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
