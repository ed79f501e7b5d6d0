"""Train tab: the form (from RunConfig), presets, load/save, estimate, start/stop/resume, live chart, commands.

Components and event wiring only: the job (workbench.training.job), the estimate, the commands
(workbench.training.launch) and the figures (workbench.ui.plots) hold the logic. The live view is a
gr.Timer polling the app-wide TrainingJob's snapshot(): switched on by Start / Resume or by a page load that
finds a run going, switched off by the tick that sees it end.
"""
from __future__ import annotations

import html
from pathlib import Path

import gradio as gr

from workbench.config import presets
from workbench.config.run import RunConfig
from workbench.training import launch
from workbench.training.job import TrainingJob
from workbench.runs.folder import resumable_runs
from workbench.ui import form, plots
from workbench.core.errors import WorkbenchError
from workbench.core.paths import confine, display
from workbench.ui.errors import handler

STATE_COLORS = {"idle": "#6b7280", "queued": "#a16207", "running": "#2563eb", "stopping": "#c2410c",
                "stopped": "#7c3aed", "completed": "#15803d", "failed": "#b91c1c", "interrupted": "#9f1239"}
TICK_SECONDS = 1.0


def _job() -> TrainingJob:
    return TrainingJob.instance()


def _config(settings: dict) -> RunConfig:
    return form.config_from_values(settings)


# -- handlers: run control -------------------------------------------------------------------------

def _check_readable(cfg: RunConfig) -> None:
    """The server reads the data file and the model folder, so a typed path must lie under the folders this
    app may read (core.paths.confine), as in every other tab; hub ids and 'default' are not paths."""
    from workbench.config.preflight import is_local_data
    from workbench.models.resolve import is_local_model

    if is_local_data(cfg.data.source):
        confine(cfg.data.source)
    if is_local_model(cfg.model.name):
        confine(cfg.model.name)


def _start(cfg: RunConfig) -> str:
    _check_readable(cfg)
    run = _job().start(cfg)
    message = f"Started run **{run.id}** in `{display(run.path)}`."
    try:
        est = _estimate(cfg)
        if est.fits is False or est.warnings:
            message += "\n\n" + "\n".join(f"⚠️ {w}" for w in est.warnings)
    except WorkbenchError as e:  # an estimate is advice: it never stands in the way of a start
        message += f"\n\n(no estimate: {e})"
    return message


@handler
def start_training(**settings) -> str:
    """Validate the form and start training in the background; refused (gr.Error) when a run is going."""
    return _start(_config(settings))


@handler
def start_training_config(config: str) -> str:
    """Start a run from ONE YAML or JSON config document (sections model/adapter/data/train/gen; settings left
    out keep their defaults), so programs need not pass every form field. Returns the start message."""
    return _start(RunConfig.from_text(config or ""))


@handler
def stop_training() -> str:
    run_id = _job().stop()
    if run_id is None:
        return "No run is going."
    return f"Stopping run **{run_id}** at the next step boundary (a checkpoint and the adapter are saved there)."


@handler
def resume_training(run_id: str) -> str:
    """Continue a stopped or interrupted run from its last checkpoint to its planned final step."""
    run = _job().resume(run_id)
    return f"Resuming run **{run.id}** from its last checkpoint."


@handler
def training_status() -> dict:
    """The app's training job: state, run_id, run_dir, step, max_steps, elapsed_s, eta_s, metrics rows,
    log lines, error and the saved adapter folder."""
    return _job().snapshot()


@handler
def refresh_resumable():
    return gr.Dropdown(choices=resumable_runs(), value=None)


# -- handlers: the live view ------------------------------------------------------------------------

def badge_html(snap: dict) -> str:
    state = snap["state"]
    color = STATE_COLORS.get(state, "#6b7280")
    run = f" run <code>{html.escape(snap['run_id'])}</code>" if snap.get("run_id") else " no run yet"
    error = (f"<div style='color:#b91c1c;margin-top:6px'><b>Error:</b> {html.escape(snap['error'])}</div>"
             if snap.get("error") else "")
    return (f"<div><span style='background:{color};color:white;padding:3px 12px;border-radius:999px;"
            f"font-weight:600'>{html.escape(state)}</span>{run}{error}</div>")


def progress_html(snap: dict) -> str:
    p = plots.progress(snap["step"], snap["max_steps"], snap["elapsed_s"], snap["eta_s"])
    total = p["max_steps"] or "?"
    return ("<div style='background:#e5e7eb;border-radius:6px;height:14px;overflow:hidden'>"
            f"<div style='width:{p['percent']}%;background:#2563eb;height:100%'></div></div>"
            f"<div style='margin-top:4px'>step {p['step']} / {total} ({p['percent']:.0f}%) · elapsed {p['elapsed']}"
            f" · ETA {p['eta']}</div>")


def render(snap: dict) -> tuple:
    figure = plots.training_figure(snap["metrics"])  # the badge above names the run
    return figure, progress_html(snap), "\n".join(snap["log"]), badge_html(snap)


@handler
def tick():
    """Timer handler: redraw from the job; switch the timer off (and refresh Resume's list) once it ended."""
    snap = _job().snapshot()
    active = snap["active"]
    return (*render(snap), gr.Timer(active=active), gr.skip() if active else refresh_resumable())


@handler
def attach():
    """Page load: show the app's job (a reloaded page or a new tab joins a running one mid-way)."""
    snap = _job().snapshot()
    return (*render(snap), gr.Timer(active=snap["active"]), refresh_resumable())


@handler
def timer_on():
    return gr.Timer(active=True)


# -- handlers: the form -----------------------------------------------------------------------------

def _estimate(cfg: RunConfig):
    from workbench.training.estimate import estimate

    return estimate(cfg)


@handler
def estimate_run(**settings) -> str:
    """Memory and time estimate for the form's settings on this device, as Markdown."""
    cfg = _config(settings)
    try:
        return _estimate(cfg).markdown()
    except WorkbenchError as e:  # e.g. an unknown architecture: say so in place of the estimate
        return f"Cannot estimate this run: {e}"


@handler
def load_preset(name: str) -> list:
    cfg = presets.build(name)
    return [*form.form_values(cfg), cfg.run_name, f"Preset **{name}** loaded."]


@handler
def reset_form() -> list:
    cfg = presets.build(presets.DEFAULT_PRESET)
    return [presets.DEFAULT_PRESET, *form.form_values(cfg), cfg.run_name,
            f"Form reset to **{presets.DEFAULT_PRESET}**."]


@handler
def load_config(upload: str | None, path: str) -> list:
    """Fill the form from an uploaded YAML or a saved name / path (inside the project or outputs/)."""
    cfg = launch.load_config_file(upload, uploaded=True) if upload else launch.load_config_file(path)
    source = Path(upload).name if upload else path
    return [*form.form_values(cfg), cfg.run_name or gr.skip(), f"Loaded `{source}` into the form."]


@handler
def save_config(config_name: str, overwrite: bool, num_gpus: float, **settings) -> str:
    """Save the form as outputs/configs/<name>.yaml (plus accelerate FSDP / ZeRO configs); never overwrites
    silently."""
    cfg = _config(settings)
    cfg.validate()
    written = launch.save_config(cfg, config_name, num_gpus=int(num_gpus or 1), overwrite=bool(overwrite))
    files = ", ".join(f"`{display(p)}`" for p in written.values())
    return f"Saved {files}."


@handler
def show_command(config_name: str, num_gpus: float, **settings) -> tuple[str, str]:
    """(YAML, shell commands) equivalent to the form: one process, --set form, accelerate for N GPUs."""
    cfg = _config(settings)
    path = launch.config_path_for(config_name or cfg.run_name or "my-run")
    commands = launch.equivalent_commands(cfg, display(path), int(num_gpus or 2))
    header = f"# save as {display(path)} (Save config writes it and the accelerate config files)\n"
    return header + cfg.to_yaml(), commands


# -- layout -------------------------------------------------------------------------------------------

def build_train_tab(app: gr.Blocks) -> None:
    cfg0 = presets.build(presets.DEFAULT_PRESET)
    with gr.Row():
        preset = gr.Dropdown(presets.names(), value=presets.DEFAULT_PRESET, label="Preset", scale=3,
                             info="A starting recipe; every setting below stays editable.")
        with gr.Column(scale=1, min_width=120):
            reset_btn = gr.Button("Reset form", size="sm")
    components = form.build_form(cfg0)
    kwargs = form.as_kwargs(components)
    fields = list(components.values())

    with gr.Accordion("Load / save config · equivalent command", open=False):
        with gr.Row():
            upload = gr.File(label="Upload a config YAML", file_types=[".yaml", ".yml"], type="filepath")
            with gr.Column():
                load_path = gr.Textbox(label="…or a saved config name / .yaml path",
                                       info="a name saved below, or a path inside the project or outputs/")
                load_btn = gr.Button("Load into the form", size="sm")
        with gr.Row(equal_height=True):
            config_name = gr.Textbox(cfg0.run_name, label="Config name",
                                     info="saved as outputs/configs/<name>.yaml, accelerate configs next to it")
            num_gpus = gr.Number(2, precision=0, minimum=1, maximum=1024, step=1, label="GPUs",
                                 info="for the accelerate launch commands")
            overwrite = gr.Checkbox(False, label="overwrite an existing config")
        with gr.Row():
            save_btn = gr.Button("Save config", size="sm")
            show_btn = gr.Button("Show equivalent command", size="sm")
        yaml_code = gr.Code(language="yaml", label="Config YAML", interactive=False)
        cmd_code = gr.Code(language="shell", label="Equivalent commands", interactive=False)
    form_msg = gr.Markdown()

    estimate_btn = gr.Button("Estimate memory and time", size="sm")
    estimate_md = gr.Markdown("Press **Estimate** for the memory and time this run needs on this machine.")

    with gr.Row():
        start_btn = gr.Button("Start training", variant="primary")
        stop_btn = gr.Button("Stop", variant="stop")
        resume_dd = gr.Dropdown(choices=[], label="Resume a stopped or interrupted run", scale=2,
                                allow_custom_value=True)  # API callers name any run id; resume() checks it
        with gr.Column(min_width=80):
            resume_btn = gr.Button("Resume", size="sm")
            refresh_btn = gr.Button("Refresh list", size="sm")
    run_msg = gr.Markdown()
    badge = gr.HTML()
    progress = gr.HTML()
    plot = gr.Plot(label="Training metrics")
    log = gr.Textbox(label="Log", lines=10, max_lines=10, autoscroll=True, interactive=False)
    timer = gr.Timer(TICK_SECONDS, active=False)
    live = [plot, progress, log, badge, timer, resume_dd]

    # The form
    form_out = [*fields, config_name, form_msg]
    preset.input(load_preset, inputs=preset, outputs=form_out, api_name="load_preset").then(
        estimate_run, inputs_kwargs=kwargs, outputs=estimate_md, api_name=False)
    reset_btn.click(reset_form, outputs=[preset, *form_out], api_name="reset_form")
    load_btn.click(load_config, inputs=[upload, load_path], outputs=form_out, api_name="load_config").then(
        estimate_run, inputs_kwargs=kwargs, outputs=estimate_md, api_name=False)
    save_btn.click(save_config, inputs=[config_name, overwrite, num_gpus], inputs_kwargs=kwargs, outputs=form_msg,
                   api_name="save_config")
    show_btn.click(show_command, inputs=[config_name, num_gpus], inputs_kwargs=kwargs,
                   outputs=[yaml_code, cmd_code], api_name="show_command")
    estimate_btn.click(estimate_run, inputs_kwargs=kwargs, outputs=estimate_md, api_name="estimate")

    # Run control and the live view
    start_btn.click(start_training, inputs_kwargs=kwargs, outputs=run_msg, api_name="start_training").success(
        timer_on, outputs=timer, api_name=False)
    stop_btn.click(stop_training, outputs=run_msg, api_name="stop_training")
    resume_btn.click(resume_training, inputs=resume_dd, outputs=run_msg, api_name="resume_training").success(
        timer_on, outputs=timer, api_name=False)
    refresh_btn.click(refresh_resumable, outputs=resume_dd, api_name="resumable_runs")
    timer.tick(tick, outputs=live, api_name=False, show_progress="hidden")
    app.load(attach, outputs=live, api_name=False)
    gr.api(training_status, api_name="training_status")
    gr.api(start_training_config, api_name="start_training_config")
