"""Train tab: the form (from RunConfig), presets, load/save, estimate, commands; and the run control wired from
train_run.py (start, add to queue, stop, resume, sweeps, cluster export) with its live chart.

Components and event wiring only: the jobs (workbench.jobs), the estimate, the commands
(workbench.training.launch) and the figures (workbench.ui.plots) hold the logic. The live view is a
gr.Timer polling the current training job's snapshot: switched on by Start / Resume or by a page load that
finds a run going, switched off by the tick that sees it end.
"""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from workbench.config import presets
from workbench.config.run import RunConfig
from workbench.core.errors import WorkbenchError
from workbench.core.paths import display
from workbench.training import launch
from workbench.ui import form
from workbench.ui.errors import handler
from workbench.ui.tabs import train_run as run_ctl

TICK_SECONDS = 1.0
SWEEP_EXAMPLE = "train.learning_rate: 1e-4, 5e-4, 1e-3\nadapter.r: 8, 16"


def _config(settings: dict) -> RunConfig:
    return form.config_from_values(settings)


# -- handlers: the form -----------------------------------------------------------------------------

@handler
def estimate_run(**settings) -> str:
    """Memory and time estimate for the form's settings on this device, as Markdown."""
    cfg = _config(settings)
    try:
        return run_ctl.estimate_for(cfg).markdown()
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

def build_train_tab(app: gr.Blocks) -> dict:
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
        queue_btn = gr.Button("Add to queue")
        stop_btn = gr.Button("Stop", variant="stop")
        processes = gr.Number(run_ctl.default_processes(), precision=0, minimum=1, maximum=64, step=1,
                              label="processes", min_width=90, elem_id="train-processes",
                              info="several run as DDP under accelerate launch (one per GPU)")
        resume_dd = gr.Dropdown(choices=[], label="Resume a stopped or interrupted run", scale=2,
                                allow_custom_value=True)  # API callers name any run id; resume checks it
        with gr.Column(min_width=80):
            resume_btn = gr.Button("Resume", size="sm")
            refresh_btn = gr.Button("Refresh list", size="sm")
    run_msg = gr.Markdown()
    with gr.Accordion("Sweep: a grid over up to 3 settings (one queued job per point, at most 32)", open=False):
        axes = gr.Textbox(SWEEP_EXAMPLE, lines=3, label="settings and values",
                          info="one setting per line: 'section.key: value, value, ...'; the form gives the rest")
        sweep_btn = gr.Button("Queue the sweep", size="sm")
    with gr.Accordion("Export for a cluster (Slurm + multi-node accelerate)", open=False):
        with gr.Row():
            nodes = gr.Number(2, precision=0, minimum=1, label="nodes")
            gpus_per_node = gr.Number(8, precision=0, minimum=1, label="GPUs per node")
            hours = gr.Number(24, precision=0, minimum=1, label="time limit (hours)")
            partition = gr.Textbox("", label="partition (optional)")
        cluster_btn = gr.Button("Write the sbatch script", size="sm")
        sbatch_code = gr.Code(language="shell", label="sbatch script", interactive=False)
        multinode_code = gr.Code(language="shell", label="by hand, on each machine", interactive=False)
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
    start_btn.click(run_ctl.start_training, inputs=[processes], inputs_kwargs=kwargs, outputs=run_msg,
                    api_name="start_training").success(run_ctl.timer_on, outputs=timer, api_name=False)
    queue_btn.click(run_ctl.queue_training, inputs=[processes], inputs_kwargs=kwargs, outputs=run_msg,
                    api_name="queue_training").success(run_ctl.timer_on, outputs=timer, api_name=False)
    stop_btn.click(run_ctl.stop_training, outputs=run_msg, api_name="stop_training")
    resume_btn.click(run_ctl.resume_training, inputs=resume_dd, outputs=run_msg, api_name="resume_training").success(
        run_ctl.timer_on, outputs=timer, api_name=False)
    refresh_btn.click(run_ctl.refresh_resumable, outputs=resume_dd, api_name="resumable_runs")
    sweep_btn.click(run_ctl.start_sweep, inputs=[axes, processes], inputs_kwargs=kwargs, outputs=run_msg,
                    api_name="start_sweep").success(run_ctl.timer_on, outputs=timer, api_name=False)
    cluster_btn.click(run_ctl.cluster_export, inputs=[nodes, gpus_per_node, hours, partition], inputs_kwargs=kwargs,
                      outputs=[sbatch_code, multinode_code], api_name="cluster_export")
    timer.tick(run_ctl.tick, outputs=live, api_name=False, show_progress="hidden")
    app.load(run_ctl.attach, outputs=live, api_name=False)
    gr.api(run_ctl.training_status, api_name="training_status")
    gr.api(run_ctl.start_training_config, api_name="start_training_config")
    return {"form": components}  # other tabs fill the form (ui/app.py: wire)
