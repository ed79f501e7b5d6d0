"""metrics.jsonl rows → Plotly figures, and a job's live view as HTML and figures (the state badge, the progress
bar, the chart and the log) for the Train and Jobs tabs. Pure functions of plain rows and jobs.view snapshots:
no gradio, no files; unit-tested on plain rows."""
from __future__ import annotations

import html
import math

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from workbench.core.formatting import clock

LOSS, SMOOTH, EVAL, LR, TPS = "train loss", "train loss (smoothed)", "eval loss", "learning rate", "tokens/s"
# DPO / ORPO / KTO's own metrics under TRL's names (training/callbacks.py PREFERENCE_KEYS) → line colour.
PREFERENCE = {"rewards/chosen": "#2ca02c", "rewards/rejected": "#d62728", "rewards/margins": "#1f77b4",
              "rewards/accuracies": "#ff7f0e", "kl": "#7f7f7f"}


def smooth(values: list[float], weight: float = 0.6) -> list[float]:
    """TensorBoard's debiased exponential moving average: early points are not dragged toward zero."""
    out, avg = [], 0.0
    for i, v in enumerate(values, start=1):
        avg = weight * avg + (1 - weight) * v
        out.append(avg / (1 - weight ** i) if weight else v)
    return out


def series(rows: list[dict], key: str) -> tuple[list[int], list[float]]:
    """(steps, values) of the rows that carry a finite `key`, in step order."""
    points = sorted((r["step"], float(r[key])) for r in rows
                    if r.get(key) is not None and "step" in r and math.isfinite(float(r[key])))
    return [s for s, _ in points], [v for _, v in points]


def training_figure(rows: list[dict], smoothing: float = 0.6, title: str = "") -> go.Figure:
    """Loss (raw, smoothed, eval) on top; learning rate and tokens/s below, sharing the step axis; a preference
    run (DPO / ORPO / KTO) adds its rewards, margin, accuracy and KL in a fourth panel."""
    pref = [k for k in PREFERENCE if any(r.get(k) is not None for r in rows)]
    n = 4 if pref else 3
    fig = make_subplots(rows=n, cols=1, shared_xaxes=True, vertical_spacing=0.06,
                        row_heights=[0.4, 0.15, 0.15, 0.3] if pref else [0.56, 0.22, 0.22],
                        subplot_titles=("loss", LR, TPS, "preference: rewards, margin, accuracy")[:n])
    steps, loss = series(rows, "loss")
    if steps:
        fig.add_trace(go.Scatter(x=steps, y=loss, name=LOSS, mode="lines", opacity=0.35,
                                 line={"color": "#1f77b4"}), row=1, col=1)
        fig.add_trace(go.Scatter(x=steps, y=smooth(loss, smoothing), name=SMOOTH, mode="lines",
                                 line={"color": "#1f77b4", "width": 2.5}), row=1, col=1)
    e_steps, e_loss = series(rows, "eval_loss")
    if e_steps:
        fig.add_trace(go.Scatter(x=e_steps, y=e_loss, name=EVAL, mode="lines+markers",
                                 line={"color": "#d62728"}, marker={"size": 8}), row=1, col=1)
    lr_steps, lr = series(rows, "learning_rate")
    if lr_steps:
        fig.add_trace(go.Scatter(x=lr_steps, y=lr, name=LR, mode="lines", line={"color": "#2ca02c"}),
                      row=2, col=1)
    t_steps, tps = series(rows, "tokens_per_second")
    if t_steps:
        fig.add_trace(go.Scatter(x=t_steps, y=tps, name=TPS, mode="lines", line={"color": "#9467bd"}),
                      row=3, col=1)
    p_steps = []
    for key in pref:
        k_steps, values = series(rows, key)
        p_steps += k_steps
        fig.add_trace(go.Scatter(x=k_steps, y=values, name=key, mode="lines+markers", marker={"size": 5},
                                 line={"color": PREFERENCE[key], "dash": "dot" if key == "kl" else "solid"}),
                      row=4, col=1)
    if not (steps or e_steps):
        fig.add_annotation(text="no metrics yet: the chart fills in as training logs its first steps",
                           showarrow=False, xref="paper", yref="paper", x=0.5, y=0.8)
    last = max([*steps, *e_steps, *lr_steps, *t_steps, *p_steps], default=0)
    fig.update_xaxes(dtick=max(1, math.ceil(last / 10)), tick0=0)  # whole steps only
    fig.update_xaxes(title_text="step", row=n, col=1)
    fig.update_yaxes(exponentformat="e", row=2, col=1)
    fig.update_layout(height=760 if pref else 560, margin={"l": 50, "r": 20, "t": 50 if title else 30, "b": 40},
                      title=title or None, legend={"orientation": "h", "y": 1.08, "x": 0}, hovermode="x unified")
    return fig


def progress(step: int, max_steps: int, elapsed_s: float | None, eta_s: float | None) -> dict:
    """Numbers for a progress bar: fraction done and human durations."""
    fraction = min(max(step / max_steps, 0.0), 1.0) if max_steps else 0.0
    return {"fraction": fraction, "percent": round(100 * fraction, 1), "step": step, "max_steps": max_steps,
            "elapsed": clock(elapsed_s), "eta": clock(eta_s)}


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
    p = progress(snap["step"], snap["max_steps"], snap["elapsed_s"], snap["eta_s"])
    total = p["max_steps"] or "?"
    return ("<div style='background:#e5e7eb;border-radius:6px;height:14px;overflow:hidden'>"
            f"<div style='width:{p['percent']}%;background:#2563eb;height:100%'></div></div>"
            f"<div style='margin-top:4px'>step {p['step']} / {total} ({p['percent']:.0f}%) · elapsed {p['elapsed']}"
            f" · ETA {p['eta']}</div>")


def eval_figure(summary: dict) -> go.Figure:
    """A finished evaluation's mean scores: ROUGE-L and BLEU of the adapter beside its baseline's."""
    other = summary.get("baseline") if summary.get("baseline") not in (None, "", "base") else "base model"
    fig = go.Figure()
    for who, prefix, color in (("adapter", "adapter", "#2563eb"), (str(other), "base", "#9ca3af")):
        values = [summary.get(f"{prefix}_rouge_l"), summary.get(f"{prefix}_bleu")]
        if any(v is not None for v in values):
            fig.add_trace(go.Bar(name=who, x=["ROUGE-L", "BLEU"], y=values, marker={"color": color}))
    fig.update_layout(barmode="group", height=320, yaxis={"range": [0, 1], "title": "mean over rows"},
                      margin={"l": 50, "r": 20, "t": 40, "b": 40}, legend={"orientation": "h", "y": 1.12, "x": 0},
                      title=f"evaluation {summary.get('name', '')}: {summary.get('n', '?')} rows")
    return fig


def eval_html(summary: dict) -> str:
    """The summary in words and where its table is (the Evaluate tab opens it under the run's saved results)."""
    judge = summary.get("judge") or {}
    score = judge.get("mean_score") if judge.get("mode") == "score" else judge.get("win_rate")
    judged = (f" · judge {html.escape(str(judge.get('model', '')))}: "
              f"{'mean score' if judge.get('mode') == 'score' else 'win rate'} {score}" if judge else "")
    return (f"<div style='margin-top:6px'><b>Evaluation {html.escape(str(summary.get('name', '')))}</b>: "
            f"{summary.get('n', '?')} rows{judged}<br>rows table: <code>{html.escape(summary['rows_file'])}</code> "
            "(open it in the Evaluate tab: the run's saved results)</div>")


def render(snap: dict) -> tuple:
    """(figure, progress, log text, badge) for a snapshot, fitting the job's kind: a training run's curves, a
    finished evaluation's scores and table, and no chart for kinds that have none (merge, export, serve...)."""
    kind, result, progress_part = snap.get("kind") or "train", snap.get("result"), progress_html(snap)
    if kind == "train":
        figure = training_figure(snap["metrics"])  # the badge above names the run
    elif kind == "eval" and result:
        figure, progress_part = eval_figure(result), progress_part + eval_html(result)
    else:
        figure = None  # an empty loss chart would say this job trains
    return figure, progress_part, "\n".join(snap["log"]), badge_html(snap)
