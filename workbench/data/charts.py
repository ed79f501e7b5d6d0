"""Plotly figures of dataset stats (pure functions: arrays in, figure out).

Lengths are binned here with numpy and drawn as bars, so a million-row histogram sends ~40 numbers per
field to the browser instead of a million.
"""
from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

BINS = 40


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
