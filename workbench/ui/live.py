"""A job's live view as HTML and figures: the state badge, the progress bar, the chart and the log. Pure
functions of a jobs.view snapshot, shared by the Train and Jobs tabs."""
from __future__ import annotations

import html

from workbench.ui import plots

STATE_COLORS = {"idle": "#6b7280", "queued": "#a16207", "running": "#2563eb", "stopping": "#c2410c",
                "stopped": "#7c3aed", "cancelled": "#7c3aed", "completed": "#15803d", "failed": "#b91c1c",
                "interrupted": "#9f1239"}


def badge_html(snap: dict) -> str:
    state = snap["state"]
    color = STATE_COLORS.get(state, "#6b7280")
    run = f" run <code>{html.escape(snap['run_id'])}</code>" if snap.get("run_id") else " no run yet"
    job = f" · job <code>{html.escape(snap['job_id'])}</code>" if snap.get("job_id") else ""
    error = (f"<pre style='color:#b91c1c;margin-top:6px;white-space:pre-wrap'><b>Error:</b> "
             f"{html.escape(snap['error'])}</pre>" if snap.get("error") else "")
    return (f"<div><span style='background:{color};color:white;padding:3px 12px;border-radius:999px;"
            f"font-weight:600'>{html.escape(state)}</span>{run}{job}{error}</div>")


def progress_html(snap: dict) -> str:
    p = plots.progress(snap["step"], snap["max_steps"], snap["elapsed_s"], snap["eta_s"])
    total = p["max_steps"] or "?"
    return ("<div style='background:#e5e7eb;border-radius:6px;height:14px;overflow:hidden'>"
            f"<div style='width:{p['percent']}%;background:#2563eb;height:100%'></div></div>"
            f"<div style='margin-top:4px'>step {p['step']} / {total} ({p['percent']:.0f}%) · elapsed {p['elapsed']}"
            f" · ETA {p['eta']}</div>")


def render(snap: dict) -> tuple:
    """(figure, progress, log text, badge) for a snapshot."""
    figure = plots.training_figure(snap["metrics"])  # the badge above names the run
    return figure, progress_html(snap), "\n".join(snap["log"]), badge_html(snap)
