"""The Train tab's run control: start now, add to the queue, stop, resume, the live view, sweeps and the
cluster export. Every run is a job (workbench.jobs): the handlers submit and read; the supervisor runs."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from workbench.config.run import RunConfig
from workbench.core.errors import WorkbenchError
from workbench.core.paths import display
from workbench.jobs import queue, submit, sweep, view
from workbench.jobs.queue import JobError
from workbench.runs.folder import resumable_runs
from workbench.ui import form, plots
from workbench.ui.errors import handler


def _check_readable(cfg: RunConfig) -> None:
    """The estimate reads the data file and the model folder: the job boundary's own path rule decides."""
    from workbench.jobs.boundary import check
    from workbench.jobs.kinds import get_kind

    check(get_kind("train"), cfg)


def estimate_for(cfg: RunConfig, plan=None):
    """The estimate as the run would go: the preflight Plan's device, dtype, model folder and data file (a
    ConfigError, e.g. a missing data file, is shown in place of the estimate). It reads the data file and
    the model's config, so a typed path must lie under the readable folders, as for training."""
    from workbench.config.preflight import preflight
    from workbench.training.estimate import estimate

    if plan is None:
        _check_readable(cfg)
        plan = preflight(cfg)
    return estimate(cfg, plan)


def default_processes() -> int:
    """1 on a CPU; every GPU where there are GPUs."""
    from workbench.jobs.processes import gpu_ids

    return max(1, len(gpu_ids()))


def _advice(cfg: RunConfig, plan=None) -> str:
    try:
        est = estimate_for(cfg, plan)
    except WorkbenchError as e:  # an estimate is advice: it never stands in the way of a start
        return f"\n\n(no estimate: {e})"
    return "\n\n" + "\n".join(f"⚠️ {w}" for w in est.warnings) if (est.fits is False or est.warnings) else ""


def submit_run(cfg: RunConfig, processes: int = 1, *, now: bool) -> str:
    """Queue a training job; with now=True refuse when another job holds this machine's devices."""
    if now:
        # Start now only where the supervisor would: nothing queued ahead, and devices free beside the
        # running jobs (its own rule; on a CPU that means no job at all).
        from workbench.jobs.processes import devices_for

        waiting = queue.list_jobs(("queued",))
        active = queue.list_jobs(queue.ACTIVE)
        if waiting or devices_for("train", int(processes or 1), active) is None:
            busy = (active or waiting)[0]
            raise JobError(f"job {busy.id} ({busy.name}) is {busy.state}: one run at a time on this machine",
                           "press 'Add to queue' to run this one after it")
    job = submit.submit("train", cfg, processes=int(processes or 1))
    verb = "Started" if now else "Queued"
    advice = _advice(cfg, submit.job_plan(job.id))  # the plan made at submit: no second preflight
    return f"{verb} run **{Path(job.run_dir).name}** (job `{job.id}`) in `{display(job.run_dir)}`.{advice}"


@handler
def start_training(processes: float = 1, **settings) -> str:
    """Validate the form and start training as a job now; refused (with the running job named) when busy."""
    return submit_run(form.config_from_values(settings), int(processes or 1), now=True)


@handler
def queue_training(processes: float = 1, **settings) -> str:
    """Validate the form and add it to the queue: it starts when the devices are free."""
    return submit_run(form.config_from_values(settings), int(processes or 1), now=False)


@handler
def start_training_config(config: str) -> str:
    """Start a run from ONE YAML or JSON config document (sections model/adapter/data/train/gen; settings left
    out keep their defaults), so programs need not pass every form field. Returns the start message."""
    return submit_run(RunConfig.from_text(config or ""), now=True)


@handler
def stop_training() -> str:
    job = view.latest("train")
    if job is None or job.state not in ("queued", *queue.ACTIVE):
        return "No run is going."
    submit.cancel(job.id)
    return (f"Stopping run **{Path(job.run_dir).name}** at the next step boundary (a checkpoint and the adapter "
            "are saved there).")


@handler
def resume_training(run_id: str) -> str:
    """Continue a stopped or interrupted run from its last checkpoint to its planned final step."""
    job = submit.resume_run(run_id)
    return f"Resuming run **{Path(job.run_dir).name}** (job `{job.id}`) from its last checkpoint."


@handler
def training_status() -> dict:
    """The Train tab's job: state, job_id, run_id, run_dir, step, max_steps, elapsed_s, eta_s, metrics rows,
    log lines, error and the saved adapter folder."""
    return view.snapshot(view.latest("train"))


@handler
def refresh_resumable():
    return gr.Dropdown(choices=resumable_runs(), value=None)


@handler
def tick():
    """Timer handler: redraw from the job; switch the timer off (and refresh Resume's list) once it ended."""
    snap = training_status()
    active = snap["active"]
    return (*plots.render(snap), gr.Timer(active=active), gr.skip() if active else refresh_resumable())


@handler
def attach():
    """Page load: show the current job (a reloaded page or a second browser joins a running one mid-way)."""
    snap = training_status()
    return (*plots.render(snap), gr.Timer(active=snap["active"]), refresh_resumable())


@handler
def timer_on():
    return gr.Timer(active=True)


@handler
def start_sweep(axes: str, processes: float = 1, **settings) -> str:
    """Queue one job per point of a grid over up to 3 settings (at most 32 points) under one sweep id."""
    cfg = form.config_from_values(settings)
    _check_readable(cfg)
    sweep_id, jobs = sweep.submit_sweep(cfg, axes, processes=int(processes or 1))
    return f"Queued sweep **{sweep_id}**: {len(jobs)} runs ({', '.join(Path(j.run_dir).name for j in jobs[:4])}" \
           f"{' …' if len(jobs) > 4 else ''}). The Runs tab shows its table."


@handler
def cluster_export(nodes: float, gpus_per_node: float, hours: float, partition: str, **settings) -> tuple[str, str]:
    """A Slurm sbatch script and the multi-node accelerate command for the form's config."""
    from workbench.training import cluster, launch

    cfg = form.config_from_values(settings)
    cfg.validate()
    path = display(launch.config_path_for(cfg.run_name or "my-run"))
    script = cluster.sbatch_script(path, job_name=cfg.run_name or "workbench", num_machines=int(nodes or 1),
                                   gpus_per_machine=int(gpus_per_node or 1), hours=int(hours or 1),
                                   partition=(partition or "").strip())
    by_hand = cluster.multinode_command(path, num_machines=int(nodes or 1), gpus_per_machine=int(gpus_per_node or 1),
                                        machine_rank=0, main_address="<first node's address>")
    return script, f"# on each machine (machine_rank 0, 1, ...), after saving the config as {path}:\n{by_hand}\n"
