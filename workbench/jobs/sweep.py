"""Sweeps: a grid over up to three settings (e.g. learning rate x LoRA rank), at most 32 points, queued as one
training job per point under one sweep id; and the sweep's table for the Runs tab."""
from __future__ import annotations

import itertools
import uuid

import yaml

from workbench.config.run import RunConfig
from workbench.core.errors import ConfigError
from workbench.jobs import queue
from workbench.jobs.queue import Job

MAX_AXES = 3
MAX_POINTS = 32


def parse_axes(text: str) -> dict[str, list]:
    """'train.learning_rate: 1e-4, 3e-4' lines (or a YAML mapping of lists) → {setting: [values]}."""
    text = (text or "").strip()
    if not text:
        raise ConfigError("a sweep needs at least one setting with values, e.g. 'train.learning_rate: 1e-4, 3e-4'")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError:
        data = None
    if not isinstance(data, dict):
        raise ConfigError("write one setting per line: 'train.learning_rate: 1e-4, 3e-4' and 'adapter.r: 8, 16'")
    axes = {}
    for key, values in data.items():
        if isinstance(values, str):
            values = [v.strip() for v in values.split(",") if v.strip()]
        elif not isinstance(values, list):
            values = [values]
        if not values:
            raise ConfigError(f"sweep setting {key} has no values")
        if len(set(map(str, values))) != len(values):
            raise ConfigError(f"sweep setting {key} repeats a value")
        axes[str(key)] = values
    if len(axes) > MAX_AXES:
        raise ConfigError(f"a sweep varies at most {MAX_AXES} settings; got {len(axes)}: {', '.join(axes)}")
    points = 1
    for values in axes.values():
        points *= len(values)
    if points > MAX_POINTS:
        raise ConfigError(f"this grid has {points} points; a sweep has at most {MAX_POINTS}",
                          "drop a value or a setting")
    return axes


def expand(base: RunConfig, axes: dict[str, list]) -> list[tuple[dict, RunConfig]]:
    """Every point of the grid as (its settings, the full config), each validated; ConfigError names the point."""
    out = []
    names, grids = list(axes), [axes[n] for n in axes]
    for i, values in enumerate(itertools.product(*grids), start=1):
        point = dict(zip(names, values))
        cfg = base.copy()
        for key, value in point.items():
            cfg.set(key, value)
        cfg.output_dir = ""
        cfg.run_name = f"{base.run_name or 'sweep'}-p{i:02d}"
        try:
            cfg.validate()
        except ConfigError as e:
            raise ConfigError(f"sweep point {i} ({_label(point)}): {e}") from None
        out.append(({k: cfg.get(k) for k in names}, cfg))
    return out


def submit_sweep(base: RunConfig, axes_text: str, *, processes: int = 1) -> tuple[str, list[Job]]:
    """Queue one training job per grid point under a new sweep id. All points are checked before any is queued."""
    from workbench.jobs.submit import submit

    points = expand(base, parse_axes(axes_text))
    sweep_id = f"sweep-{uuid.uuid4().hex[:8]}"
    return sweep_id, [submit("train", cfg, processes=processes, sweep_id=sweep_id) for _point, cfg in points]


def _label(point: dict) -> str:
    return ", ".join(f"{k}={v}" for k, v in point.items())


def sweep_ids() -> list[str]:
    return list(dict.fromkeys(j.sweep_id for j in queue.list_jobs() if j.sweep_id))


def sweep_table(sweep_id: str) -> tuple[list[dict], list[str]]:
    """One row per point: its varied settings, state, final train loss, best eval loss, and the latest eval
    metric (ROUGE-L) when the run was evaluated; the row with the lowest best eval loss is marked.
    Returns (rows, run folders)."""
    from workbench.runs.folder import RunDir

    jobs = sorted((j for j in queue.list_jobs() if j.sweep_id == sweep_id), key=lambda j: j.created_at)
    if not jobs:
        raise ConfigError(f"no sweep with id '{sweep_id}'")
    configs = [RunConfig.from_text(j.config) for j in jobs]
    varied = [name for name, _f in RunConfig.iter_fields() if name not in ("output_dir", "run_name")
              and len({str(c.get(name)) for c in configs}) > 1]
    rows = []
    for job, cfg in zip(jobs, configs):
        run = RunDir(job.run_dir)
        status, metrics = run.read_status(), run.read_metrics()
        losses = [m["loss"] for m in metrics if m.get("loss") is not None]
        evals = [m["eval_loss"] for m in metrics if m.get("eval_loss") is not None]
        rows.append({"run": run.id, **{k: cfg.get(k) for k in varied}, "state": job.state,
                     "final loss": _r(status.get("final_loss", losses[-1] if losses else None)),
                     "best eval loss": _r(min(evals) if evals else None), "ROUGE-L": _r(_latest_rouge(run)),
                     "best": ""})
    scored = [r for r in rows if r["best eval loss"] is not None]
    if scored:
        min(scored, key=lambda r: r["best eval loss"])["best"] = "★"
    return rows, [j.run_dir for j in jobs]


def _latest_rouge(run) -> float | None:
    from workbench.evaluation.results import list_results

    results = list_results(run.path)
    return results[0].get("adapter_rouge_l") if results else None


def _r(x):
    return None if x is None else round(float(x), 4)
