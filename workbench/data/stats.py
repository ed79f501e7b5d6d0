"""Stats of a browsed dataset: rows, categories, empty and duplicate fields, lengths in characters and tokens.

Everything runs on a DatasetView's flat Arrow table of canonical text fields (browse.py): character counts
and empty fields are Arrow kernels over whole columns, duplicates one pass keeping hashes, and token lengths
are measured on a fixed-seed sample (tokenizing 1M rows takes minutes). Their Plotly figures are pure
functions (arrays in, figure out); lengths are binned here with numpy and drawn as bars, so a million-row
histogram sends ~40 numbers per field to the browser instead of a million.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import plotly.graph_objects as go

BINS = 40  # bars of a length histogram
TOKEN_SAMPLE = 2000  # token lengths are measured on a sample of this many rows


@dataclass
class Stats:
    rows: int
    fields: list[str]
    categories: dict  # category → rows, most frequent first
    empty: dict  # field → rows where it is empty or whitespace
    duplicates: dict  # field → rows whose non-empty value already appeared in an earlier row
    duplicate_rows: int  # rows whose text fields all equal an earlier row's
    chars: dict  # field → np.ndarray of character lengths (every row)
    tokens: dict = field(default_factory=dict)  # field → np.ndarray of token lengths (sampled rows)
    token_rows: int = 0
    tokenizer: str = ""
    seconds: float = 0.0


def compute_stats(view, tokenizer=None, tokenizer_name: str = "", sample: int = TOKEN_SAMPLE,
                  seed: int = 0) -> Stats:
    """The stats of a DatasetView; token lengths only when a tokenizer is given."""
    import pyarrow.compute as pc

    t0 = time.time()
    empty, chars = {}, {}
    for name in view.fields:
        # Kernels that return booleans / lengths only: nothing here copies a text column.
        col = view.table[name]
        empty[name] = int(pc.sum(pc.match_substring_regex(col, r"^\s*$")).as_py() or 0)
        chars[name] = pc.utf8_length(col).to_numpy(zero_copy_only=False).astype(np.int64)
    dups, dup_rows = duplicates(view.table, view.fields)
    stats = Stats(len(view), list(view.fields), view.categories(), empty, dups, dup_rows, chars)
    if tokenizer is not None:
        stats.tokens, stats.token_rows = token_lengths(view, tokenizer, sample, seed)
        stats.tokenizer = tokenizer_name or getattr(tokenizer, "name_or_path", "")
    stats.seconds = time.time() - t0
    return stats


def duplicates(table, fields: list[str]) -> tuple[dict, int]:
    """(per field: rows whose non-empty value appeared before, rows whose text fields all did).

    One pass over the rows keeping 64-bit hashes in sets: ~2 s and ~150 MB for 1M rows, where
    Arrow's count_distinct / group_by on long text columns hold copies of the strings (~1 GB)."""
    seen = {name: set() for name in fields}
    rows_seen: set = set()
    dups = dict.fromkeys(fields, 0)
    dup_rows = 0
    for batch in table.select(fields).to_batches(max_chunksize=65536):
        columns = [c.to_pylist() for c in batch.columns]
        for name, values in zip(fields, columns):
            known, before = seen[name], len(seen[name])
            filled = [hash(v) for v in values if v.strip()]
            known.update(filled)
            dups[name] += len(filled) - (len(known) - before)
        for row in zip(*columns):
            h = hash(row)
            if h in rows_seen:
                dup_rows += 1
            else:
                rows_seen.add(h)
    return dups, dup_rows


def token_lengths(view, tokenizer, sample: int = TOKEN_SAMPLE, seed: int = 0) -> tuple[dict, int]:
    """Token lengths per field on at most `sample` rows drawn with a fixed seed."""
    n = len(view)
    if n > sample:
        rows = np.sort(np.random.default_rng(seed).choice(n, size=sample, replace=False))
        part = view.take(rows)
    else:
        part = view.table
    out = {}
    for name in view.fields:
        texts = part[name].to_pylist()
        ids = tokenizer(texts, add_special_tokens=False)["input_ids"] if texts else []
        out[name] = np.array([len(x) for x in ids], dtype=np.int64)
    return out, part.num_rows


def stats_markdown(s: Stats) -> str:
    lines = [f"**{s.rows:,} rows** · {s.duplicate_rows:,} exact duplicate rows · "
             f"{len(s.categories):,} categories", "",
             "| field | empty | duplicate values | chars median | chars p95 | chars max |"
             + (" tokens median | tokens p95 | tokens max |" if s.tokens else ""),
             "|---|---:|---:|---:|---:|---:|" + ("---:|---:|---:|" if s.tokens else "")]
    for f in s.fields:
        c = s.chars[f]
        row = f"| {f} | {s.empty[f]:,} | {s.duplicates[f]:,} | {_q(c, 50)} | {_q(c, 95)} | {_q(c, 100)} |"
        if s.tokens:
            t = s.tokens[f]
            row += f" {_q(t, 50)} | {_q(t, 95)} | {_q(t, 100)} |"
        lines.append(row)
    if s.tokens:
        sampled = f"a random sample of {s.token_rows:,} rows" if s.token_rows < s.rows else f"all {s.rows:,} rows"
        lines += ["", f"Token lengths: {s.tokenizer} tokenizer, measured on {sampled}."]
    if s.categories:
        top = list(s.categories.items())[:30]
        lines += ["", "Categories: " + ", ".join(f"{k or '(none)'}: {v:,}" for k, v in top)
                  + (f", … ({len(s.categories) - 30} more)" if len(s.categories) > 30 else "")]
    return "\n".join(lines)


def _q(values: np.ndarray, pct: float) -> str:
    return f"{int(np.percentile(values, pct)):,}" if len(values) else "–"


def shared_bins(arrays, bins: int = BINS) -> np.ndarray:
    """Integer bin edges from 0 to the 99th percentile of all values; longer values go in the last bin."""
    values = np.concatenate([np.asarray(a) for a in arrays if len(a)]) if any(len(a) for a in arrays) else np.zeros(1)
    top = max(1, int(np.ceil(np.percentile(values, 99))))
    width = max(1, int(np.ceil(top / bins)))
    return np.arange(0, top + width + 1, width)


def length_histogram(lengths: dict, unit: str, title: str = "") -> go.Figure:
    """Overlaid histograms of lengths per field (e.g. {'instruction': array, 'output': array})."""
    fig = go.Figure()
    edges = shared_bins(list(lengths.values()))
    top = edges[-2]
    clipped = False
    for name, values in lengths.items():
        values = np.asarray(values)
        if not len(values):
            continue
        clipped |= bool((values > top).any())
        counts, _ = np.histogram(np.minimum(values, top), bins=edges)
        fig.add_bar(x=(edges[:-1] + edges[1:]) / 2, y=counts, width=np.diff(edges), name=name, opacity=0.6,
                    customdata=np.stack([edges[:-1], edges[1:] - 1], axis=1),
                    hovertemplate=f"{name}: %{{customdata[0]}}–%{{customdata[1]}} {unit}: %{{y}} rows<extra></extra>")
    note = f" (values above {top:,} counted in the last bar)" if clipped else ""
    fig.update_layout(barmode="overlay", title=(title or f"Length in {unit}") + note,
                      xaxis_title=unit, yaxis_title="rows", legend_title="field", height=320,
                      margin=dict(l=40, r=10, t=50, b=40))
    return fig


def category_bar(counts: dict, top: int = 30) -> go.Figure:
    """Rows per category (the `top` most frequent)."""
    items = list(counts.items())[:top]
    fig = go.Figure(go.Bar(x=[k or "(none)" for k, _ in items], y=[v for _, v in items]))
    fig.update_layout(title="Rows per category", yaxis_title="rows", height=300, margin=dict(l=40, r=10, t=50, b=80))
    return fig
