"""Runs side by side: one summary row per run, the settings that differ, and their loss curves.

Pure functions over run folders (config.yaml, status.json, metrics.jsonl); the Runs tab only shows them.
"""
from __future__ import annotations

import shutil
import time
from pathlib import Path

from workbench.config.run import RunConfig
from workbench.core.errors import RunError
from workbench.core.paths import outputs_dir
from workbench.core.policy import current
from workbench.runs.folder import ACTIVE, RunDir, list_runs, resolve_run

SUMMARY_COLUMNS = ["run", "status", "base model", "template", "method", "steps", "final loss", "best loss",
                   "eval loss", "created", "owner", "path"]


def _config(run: RunDir) -> RunConfig | None:
    try:
        return run.config()
    except RunError:
        return None


def _round(x, nd=4):
    return None if x is None else round(float(x), nd)


def run_summary(run: RunDir) -> dict:
    """One row of the runs table. Losses come from status.json, or from metrics.jsonl for a run that
    did not finish (so a stopped or crashed run still shows how far it got)."""
    status = run.read_status()
    cfg = _config(run)
    metrics = run.read_metrics()
    losses = [r["loss"] for r in metrics if r.get("loss") is not None]
    evals = [r["eval_loss"] for r in metrics if r.get("eval_loss") is not None]
    step = status.get("step", max((r.get("step", 0) for r in metrics), default=0))
    max_steps = status.get("max_steps")
    created = status.get("created_at")
    return {
        "run": run.id,
        "status": run.state(),
        "base model": cfg.model.name if cfg else "?",
        "template": cfg.data.template if cfg else "?",
        "method": cfg.adapter.method if cfg else "?",
        "steps": f"{step}/{max_steps}" if max_steps else str(step),
        "final loss": _round(status.get("final_loss", losses[-1] if losses else None)),
        "best loss": _round(status.get("best_loss", min(losses) if losses else None)),
        "eval loss": _round(status.get("eval_loss", evals[-1] if evals else None)),
        "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(created)) if created else "",
        "owner": run.owner() or "",
        "path": str(run.path),
    }


def summaries() -> list[dict]:
    """Every run under outputs/ (newest first)."""
    return [run_summary(r) for r in list_runs()]


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and k != "column_map":
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def config_diff(runs: list[RunDir]) -> list[dict]:
    """Settings whose values differ between the runs: [{setting, <run id>: value, ...}]. output_dir
    always differs and says nothing, so it is left out."""
    flat = {}
    for r in runs:
        cfg = _config(r)
        flat[r.id] = _flatten(cfg.to_dict()) if cfg else {}
    keys = sorted({k for f in flat.values() for k in f} - {"output_dir"})
    rows = []
    for key in keys:
        values = [flat[r.id].get(key) for r in runs]
        if any(v != values[0] for v in values[1:]):
            rows.append({"setting": key, **{r.id: _show(flat[r.id].get(key)) for r in runs}})
    return rows


def _show(v):
    return "" if v is None else str(v)


def loss_curves(runs: list[RunDir]) -> dict:
    """{run id: {step, loss, eval_step, eval_loss}} from each run's metrics.jsonl."""
    curves = {}
    for r in runs:
        rows = r.read_metrics()
        train = [(m["step"], m["loss"]) for m in rows if m.get("loss") is not None]
        ev = [(m["step"], m["eval_loss"]) for m in rows if m.get("eval_loss") is not None]
        curves[r.id] = {"step": [s for s, _ in train], "loss": [x for _, x in train],
                        "eval_step": [s for s, _ in ev], "eval_loss": [x for _, x in ev]}
    return curves


def loss_figure(curves: dict, title: str = "Loss"):
    """A Plotly figure overlaying each run's training loss (lines) and eval loss (markers, same colour)."""
    import plotly.graph_objects as go
    from plotly.colors import qualitative

    fig = go.Figure()
    palette = qualitative.Plotly
    for i, (run_id, c) in enumerate(curves.items()):
        colour = palette[i % len(palette)]
        fig.add_trace(go.Scatter(x=c["step"], y=c["loss"], mode="lines", name=f"{run_id} train",
                                 line={"color": colour}))
        if c["eval_loss"]:
            fig.add_trace(go.Scatter(x=c["eval_step"], y=c["eval_loss"], mode="markers+lines",
                                     name=f"{run_id} eval", line={"color": colour, "dash": "dot"}))
    fig.update_layout(title=title, xaxis_title="step", yaxis_title="loss", height=360,
                      margin={"l": 40, "r": 10, "t": 40, "b": 40}, legend={"orientation": "h", "y": -0.25})
    return fig


def compare(choices: list[str], *, confined: bool = False) -> tuple[list[dict], dict]:
    """(config diff rows, loss curves) for 2 or more runs."""
    runs = [resolve_run(c, confined=confined) for c in choices or []]
    if len({r.path.resolve() for r in runs}) < 2:
        raise RunError("select at least two different runs to compare")
    return config_diff(runs), loss_curves(runs)


def delete_run(choice: str | Path) -> str:
    """Remove a run folder from outputs/. A running run is refused (stop it first); folders outside
    outputs/ are never deleted from here."""
    run = resolve_run(choice)
    base = outputs_dir().resolve()
    if base not in run.path.resolve().parents:
        raise RunError(f"{run.path} is not inside {base}; only runs under the outputs folder are deleted here")
    if run.state() in ACTIVE:
        raise RunError(f"run {run.id} is {run.state()}; stop it before deleting it")
    current().check_manage(run.owner(), "delete")  # under --auth: its owner or an admin
    # Rename first, then remove: a half-deleted run never shows up as a broken run in the list.
    trash = run.path.with_name(f".deleting-{run.id}")
    run.path.rename(trash)
    shutil.rmtree(trash, ignore_errors=True)
    return run.id


def run_choices(with_model: bool = True) -> list[tuple[str, str]]:
    """(label, folder) for the runs dropdowns; with_model keeps runs that saved an adapter (or model)."""
    out = []
    for r in list_runs():
        if with_model and r.saved_model() is None:
            continue
        cfg = _config(r)
        label = f"{r.id} ({cfg.data.template}, {r.state()})" if cfg else r.id
        out.append((label, str(r.path)))
    return out
