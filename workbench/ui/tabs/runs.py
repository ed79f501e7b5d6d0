"""Runs tab: every run in outputs/, one run's config and charts, deletion with confirmation, 2+ runs
overlaid with their config diff, sweeps with their table, merge of a run's adapter, and the Export and Serve
panels (runs_export.py, runs_serve.py). Logic:
workbench.runs.compare, workbench.jobs.sweep and workbench.export.merge.
"""
from __future__ import annotations

import tempfile

import gradio as gr
import pandas as pd

from workbench.core.errors import WorkbenchError
from workbench.core.paths import confine
from workbench.evaluation.results import baseline_label, list_results
from workbench.runs import compare
from workbench.runs.compare import SUMMARY_COLUMNS
from workbench.runs.folder import RunDir, resolve_run
from workbench.ui.errors import handler
from workbench.ui.plots import training_figure
from workbench.ui.tabs.runs_export import build_export_panel
from workbench.ui.tabs.runs_serve import build_serve_panel


def _run(choice) -> RunDir:
    return resolve_run(choice, confined=True)


# -- handlers -----------------------------------------------------------------------------------------

@handler
def list_sweeps():
    """Sweep ids, newest first."""
    from workbench.jobs.sweep import sweep_ids

    ids = sweep_ids()
    return gr.update(choices=ids, value=ids[0] if ids else None)


@handler
def show_sweep(sweep_id):
    """A sweep's table (each point's settings, final train loss, best eval loss, ROUGE-L when evaluated; the
    best row starred) and its runs' loss curves overlaid."""
    from workbench.jobs.sweep import sweep_table

    if not sweep_id:
        raise WorkbenchError("choose a sweep (queue one from the Train tab's Sweep section)")
    rows, folders = sweep_table(sweep_id)
    runs = [RunDir(f) for f in folders]
    curves = compare.loss_curves(runs)
    return pd.DataFrame(rows), compare.loss_figure(curves, title=f"Loss · {sweep_id}")


@handler
def list_runs():
    """The runs table (newest first) and fresh choices for the run pickers."""
    rows = compare.summaries()
    choices = [(r["run"], r["path"]) for r in rows]
    return (pd.DataFrame(rows, columns=SUMMARY_COLUMNS), gr.update(choices=choices),
            gr.update(choices=choices))


@handler
def open_run(choice):
    """One run: its config.yaml, status, loss chart, saved evaluations and the merge size estimate."""
    run = _run(choice)
    config = run.config_file.read_text(encoding="utf-8") if run.config_file.is_file() else ""
    status = run.read_status()
    fig = training_figure(run.read_metrics(), title=run.id)  # loss (raw, smoothed, eval), lr, tokens/s
    evals = list_results(run.path)
    eval_md = "\n".join(f"- `{e['name']}`: ROUGE-L adapter {e.get('adapter_rouge_l')} / {baseline_label(e)} "
                        f"{e.get('base_rouge_l')}, BLEU adapter {e.get('adapter_bleu')} / {baseline_label(e)} "
                        f"{e.get('base_bleu')} ({e.get('n')} rows){judge_text(e.get('judge'), baseline_label(e))}"
                        for e in evals) or "No evaluations yet."
    return config, status, fig, "### Evaluations\n" + eval_md, merge_plan(choice), str(run.path / "merged")


def judge_text(judge: dict | None, other: str = "base model") -> str:
    """An evaluation's judge result after its ROUGE-L / BLEU: the mean score, or the pairwise rates against
    the baseline (`other`)."""
    if not judge:
        return ""
    if judge.get("mode") == "pairwise":
        result = (f"win {judge.get('win_rate')} / tie {judge.get('tie_rate')} / loss {judge.get('loss_rate')} "
                  f"against the {other}")
    else:
        base = judge.get("base_mean_score")
        result = f"mean score {judge.get('mean_score')}" + (f" ({other} {base})" if base is not None else "")
    return f"; judge `{judge.get('model')}`: {result}"


def merge_plan(choice):
    """The size a merged model will take, said before anything is written."""
    from workbench.export.merge import merge_plan as plan

    try:
        p = plan(str(_run(choice).path))
    except WorkbenchError as e:
        return f"Merge not available: {e}"
    return f"Merging writes a full model of about **{p['size']}** (base `{p['base']}`)."


@handler
def delete_run(choice, confirmed):
    """Delete a run folder, only with the confirmation box ticked."""
    if not confirmed:
        raise gr.Error("tick the confirmation box first: deleting removes the run folder for good",
                       print_exception=False)
    run_id = compare.delete_run(_run(choice).path)
    table, a, b = list_runs()
    return f"🗑 Deleted run `{run_id}`.", table, a, b, False


@handler
def compare_runs(choices):
    """Overlay the loss curves of 2+ runs and list the settings that differ."""
    diff, curves = compare.compare(choices, confined=True)
    ids = list(curves)
    frame = pd.DataFrame(diff, columns=["setting", *ids])
    return compare.loss_figure(curves, title="Loss · " + " vs ".join(ids)), frame


@handler
def merge_adapter(choice, out_dir):
    """Merge the run's adapter into its base model and save a standard HF model folder."""
    from workbench.core.formatting import human_size
    from workbench.export.merge import merge_adapter as merge

    run = _run(choice)
    out = confine(out_dir) if (out_dir or "").strip() else run.path / "merged"
    result = merge(str(run.path), out)
    return (f"✅ Merged model saved to `{result.path}` ({human_size(result.bytes_written)}, {result.seconds} s). "
            "It loads with `AutoModelForCausalLM.from_pretrained` and needs no PEFT.")


@handler
def export_adapter(choice):
    """The run's adapter folder as a .zip to download."""
    from workbench.export.merge import adapter_archive

    run = _run(choice)
    return str(adapter_archive(str(run.path), tempfile.mkdtemp(prefix="wb-adapter-")))


# -- layout -------------------------------------------------------------------------------------------

def build_runs_tab(app: gr.Blocks) -> None:
    refresh_btn = gr.Button("Refresh", size="sm")
    table = gr.Dataframe(headers=SUMMARY_COLUMNS, label="Runs in outputs/", interactive=False, wrap=True)
    with gr.Tabs():  # explicit, so every sub-tab (the panels' too) sits in one row
        with gr.Tab("Open a run"):
            with gr.Row():
                run = gr.Dropdown([], label="Run", allow_custom_value=True, scale=3)
                open_btn = gr.Button("Open", variant="primary", scale=0)
            with gr.Row():
                chart = gr.Plot(label="Loss")
                with gr.Column():
                    status = gr.JSON(label="status.json")
                    evals_md = gr.Markdown()
            config = gr.Code(label="config.yaml", language="yaml", interactive=False)
            with gr.Accordion("Merge & export", open=False):
                plan_md = gr.Markdown()
                out_dir = gr.Textbox(label="Merged model folder (new or empty; under outputs/)")
                with gr.Row():
                    merge_btn = gr.Button("Merge adapter into base and save")
                    export_btn = gr.Button("Download adapter (.zip)")
                merge_md = gr.Markdown()
                adapter_zip = gr.File(label="Adapter", interactive=False)
            with gr.Accordion("Delete", open=False):
                confirm = gr.Checkbox(label="Yes, delete this run's folder (config, metrics, checkpoints, adapter)",
                                      value=False)
                delete_btn = gr.Button("Delete run", variant="stop")
                delete_md = gr.Markdown()
        with gr.Tab("Compare runs"):
            with gr.Row():
                picked = gr.Dropdown([], multiselect=True, label="Runs to compare (2 or more)",
                                     allow_custom_value=True, scale=3)
                compare_btn = gr.Button("Compare", variant="primary", scale=0)
            overlay = gr.Plot(label="Loss curves")
            diff = gr.Dataframe(label="Settings that differ", interactive=False, wrap=True)

        with gr.Tab("Sweeps"):
            with gr.Row():
                sweep = gr.Dropdown([], label="Sweep", scale=3, allow_custom_value=True)
                sweeps_btn = gr.Button("Refresh", size="sm", scale=0)
                sweep_btn = gr.Button("Show", variant="primary", scale=0)
            sweep_table = gr.Dataframe(label="Points (★ = lowest best eval loss)", interactive=False, wrap=True)
            sweep_plot = gr.Plot(label="Loss curves of the sweep")
        build_export_panel(app)  # GGUF + Modelfile + model cards as a checked job (ui/tabs/runs_export.py)
        build_serve_panel(app)  # runs on an OpenAI-compatible API (ui/tabs/runs_serve.py)

    refresh_btn.click(list_runs, None, [table, run, picked], api_name="list_runs")
    sweeps_btn.click(list_sweeps, None, sweep, api_name="list_sweeps")
    app.load(list_sweeps, None, sweep, api_name=False)
    sweep_btn.click(show_sweep, sweep, [sweep_table, sweep_plot], api_name="show_sweep")
    app.load(list_runs, None, [table, run, picked], api_name=False)
    open_btn.click(open_run, run, [config, status, chart, evals_md, plan_md, out_dir], api_name="open_run")
    delete_btn.click(delete_run, [run, confirm], [delete_md, table, run, picked, confirm], api_name="delete_run")
    compare_btn.click(compare_runs, picked, [overlay, diff], api_name="compare_runs")
    merge_btn.click(merge_adapter, [run, out_dir], merge_md, api_name="merge_adapter")
    export_btn.click(export_adapter, run, adapter_zip, api_name="export_adapter")

