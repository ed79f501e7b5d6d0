"""Clean a dataset before training: length filter, exact and near-duplicate removal, PII masking.

The steps instruction-tuning guides prescribe, in this order: drop rows outside a token-length range,
drop exact duplicates, drop near-duplicates (MinHash LSH from datasketch), then mask e-mails, phone
numbers, IP addresses and card numbers (repair.py: mask_pii). Rows stream through the steps in batches and the kept rows are
written to a new versioned file under data/cleaned/; the source file is never modified. Each step
reports what it removed or changed, with examples.
"""
from __future__ import annotations

import hashlib
import json
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from workbench.core.errors import DataError
from workbench.data.formats import to_canonical
from workbench.data.repair import mask_pii, write_versioned

EXAMPLES = 3  # examples kept per step for the report
SNIPPET = 120


@dataclass
class CleanOptions:
    min_tokens: int = 0  # rows with fewer tokens are dropped (0 = no minimum)
    max_tokens: int = 0  # rows with more tokens are dropped (0 = no maximum)
    template: str = ""  # count tokens of the row rendered with this template; "" = of its text fields
    exact_dedup: bool = True
    near_dedup: bool = True
    near_threshold: float = 0.85  # estimated Jaccard similarity of word 3-grams above which rows are near-duplicates
    num_perm: int = 128  # MinHash permutations: more = a closer estimate, slower
    mask_pii: bool = True


@dataclass
class StepReport:
    step: str
    removed: int = 0  # rows dropped (masking drops none)
    changed: int = 0  # rows altered (masking)
    detail: str = ""
    examples: list = field(default_factory=list)

    def note(self, text: str) -> None:
        if len(self.examples) < EXAMPLES:
            self.examples.append(text)


@dataclass
class CleanResult:
    rows_in: int
    rows_out: int
    steps: list
    path: Path | None = None
    report_path: Path | None = None
    seconds: float = 0.0

    def markdown(self) -> str:
        from workbench.core.paths import display

        lines = [f"**{self.rows_in:,} rows in → {self.rows_out:,} rows out** ({self.seconds:.1f} s)"]
        if self.path:
            lines.append(f"Saved as `{display(self.path)}` — use this path as the dataset (data.source) to "
                         "train on the cleaned rows; the source file is unchanged.")
        for s in self.steps:
            what = f"removed {s.removed:,} rows" if s.step != "PII masking" else f"masked {s.changed:,} rows"
            lines.append(f"\n**{s.step}**: {what}" + (f" — {s.detail}" if s.detail else ""))
            lines += [f"- {e}" for e in s.examples]
        return "\n".join(lines)


# -- rows ------------------------------------------------------------------------------------------

def row_texts(row: dict) -> list[str]:
    """The text fields of a canonical row (instruction, input, output or each message's content)."""
    if "messages" in row:
        return [m["content"] for m in row["messages"]]
    return [row.get("instruction", ""), row.get("input", ""), row.get("output", "")]


def _map_texts(row: dict, fn) -> dict:
    if "messages" in row:
        return {**row, "messages": [{**m, "content": fn(m["content"])} for m in row["messages"]]}
    return {**row, **{k: fn(row.get(k, "")) for k in ("instruction", "input", "output")}}


def _snippet(row: dict) -> str:
    text = " / ".join(t for t in row_texts(row) if t)
    text = re.sub(r"\s+", " ", text)
    return (text[:SNIPPET] + "…") if len(text) > SNIPPET else text


def _shingles(text: str, n: int = 3) -> set:
    words = re.findall(r"\w+", text.lower())
    if len(words) < n:
        return {" ".join(words)} if words else set()
    return {" ".join(words[i:i + n]) for i in range(len(words) - n + 1)}


class _TokenCounter:
    def __init__(self, tokenizer, template_name: str):
        from workbench.prompts import registry

        self.tokenizer = tokenizer
        self.template = registry.load(template_name) if template_name else None

    def counts(self, rows: list[dict]) -> list[int]:
        if self.template is not None:
            from workbench.prompts import rendering

            return [len(rendering.encode_row(self.template, r, self.tokenizer)["input_ids"]) for r in rows]
        texts = ["\n".join(row_texts(r)) for r in rows]
        return [len(ids) for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]]


# -- the pipeline ----------------------------------------------------------------------------------

def iter_canonical(raw, fmt: str, batch_size: int = 1000):
    """Batches of (row number, canonical row) from a raw Dataset of a known format."""
    start = 0
    for batch in raw.iter(batch_size=batch_size):
        keys = list(batch)
        rows = [to_canonical(dict(zip(keys, values)), fmt) for values in zip(*(batch[k] for k in keys))]
        yield list(range(start, start + len(rows))), rows
        start += len(rows)


def clean(batches, options: CleanOptions, tokenizer=None):
    """Run the steps over batches of (row numbers, canonical rows).

    Returns (a generator of the kept rows, the StepReports it fills in as it runs): rows stream through,
    so memory holds one batch plus the duplicate indexes, whatever the dataset's size."""
    length = StepReport("Length filter")
    exact = StepReport("Exact duplicates")
    near = StepReport("Near duplicates")
    pii = StepReport("PII masking")
    steps = []
    use_length = options.min_tokens > 0 or options.max_tokens > 0
    if use_length:
        if tokenizer is None:
            raise DataError("the length filter needs a tokenizer")
        counter = _TokenCounter(tokenizer, options.template)
        unit = f"tokens of the row rendered with template '{options.template}'" if options.template \
            else "tokens of the row's text"
        bounds = [f"≥ {options.min_tokens:,}" if options.min_tokens else "",
                  f"≤ {options.max_tokens:,}" if options.max_tokens else ""]
        length.detail = f"kept rows with {' and '.join(b for b in bounds if b)} {unit}"
        steps.append(length)
    if options.exact_dedup:
        exact.detail = "rows whose text fields equal an earlier row's (after trimming whitespace); the first is kept"
        steps.append(exact)
    if options.near_dedup:
        from datasketch import MinHash, MinHashLSH

        lsh = MinHashLSH(threshold=options.near_threshold, num_perm=options.num_perm)
        near.detail = (f"MinHash LSH (datasketch, {options.num_perm} permutations) on word 3-grams, estimated "
                       f"Jaccard ≥ {options.near_threshold:.2f}; the first of each group is kept")
        steps.append(near)
    if options.mask_pii:
        pii.detail = ("e-mails → [EMAIL], card numbers (Luhn-checked) → [CARD], IP addresses → [IP], "
                      "phone numbers → [PHONE]; names are not masked (no offline named-entity model)")
        pii_counts: Counter = Counter()
        steps.append(pii)
    seen: dict[str, int] = {}
    minhashes: dict[int, object] = {}

    def run():
        for numbers, rows in batches:
            if use_length:
                kept = []
                for n, row, count in zip(numbers, rows, counter.counts(rows)):
                    if (options.min_tokens and count < options.min_tokens) or \
                            (options.max_tokens and count > options.max_tokens):
                        length.removed += 1
                        limit = f"< {options.min_tokens:,}" if options.min_tokens and count < options.min_tokens \
                            else f"> {options.max_tokens:,}"
                        length.note(f"row {n}: {count:,} tokens {limit}: {_snippet(row)}")
                    else:
                        kept.append((n, row))
                numbers, rows = [k[0] for k in kept], [k[1] for k in kept]
            for n, row in zip(numbers, rows):
                texts = row_texts(row)
                if options.exact_dedup:
                    key = hashlib.sha1(json.dumps([t.strip() for t in texts]).encode("utf-8")).hexdigest()
                    if key in seen:
                        exact.removed += 1
                        exact.note(f"row {n} = row {seen[key]}: {_snippet(row)}")
                        continue
                    seen[key] = n
                if options.near_dedup:
                    m = MinHash(num_perm=options.num_perm)
                    m.update_batch([s.encode("utf-8") for s in _shingles(" ".join(texts))])
                    similar = lsh.query(m)
                    if similar:
                        first = min(similar)
                        near.removed += 1
                        near.note(f"row {n} ≈ row {first} (estimated Jaccard {m.jaccard(minhashes[first]):.2f}): "
                                  f"{_snippet(row)}")
                        continue
                    lsh.insert(n, m)
                    minhashes[n] = m
                if options.mask_pii:
                    before = row
                    found: Counter = Counter()

                    def masked(text):
                        out, c = mask_pii(text)
                        found.update(c)
                        return out

                    row = _map_texts(row, masked)
                    if found:
                        pii.changed += 1
                        pii_counts.update(found)
                        pii.note(f"row {n}: {_snippet(before)} → {_snippet(row)}")
                yield row
        if options.mask_pii and pii_counts:
            pii.detail += " · found " + ", ".join(f"{k}: {v:,}" for k, v in sorted(pii_counts.items()))

    return run(), steps


def clean_dataset(raw, fmt: str, options: CleanOptions, tokenizer=None, source_name: str = "dataset") -> CleanResult:
    """Clean a raw Dataset of format `fmt` and save the kept rows (canonical JSONL) as a new versioned
    file data/cleaned/<source>.clean-vN.jsonl, with a .report.json beside it saying what was removed."""
    t0 = time.time()
    rows, steps = clean(iter_canonical(raw, fmt), options, tokenizer)
    kept = 0

    def lines():
        nonlocal kept
        for row in rows:
            kept += 1
            yield json.dumps(row, ensure_ascii=False) + "\n"

    path = write_versioned(source_name, "clean", lines())
    result = CleanResult(len(raw), kept, steps, path, seconds=time.time() - t0)
    if kept == 0:
        path.unlink(missing_ok=True)
        result.path = None
        raise DataError("cleaning removed every row; loosen the length limits or the near-duplicate "
                                "threshold\n\n" + result.markdown())
    from workbench.core.files import atomic_write_text

    result.report_path = path.with_suffix(".report.json")
    atomic_write_text(result.report_path, json.dumps(
        {"source": source_name, "format": fmt, "options": asdict(options), "rows_in": result.rows_in,
         "rows_out": kept, "steps": [asdict(s) for s in steps]}, indent=2, ensure_ascii=False))
    return result
