"""The Runs tab's Export panel: a finished run as files to hand over (merged Hugging Face folder, GGUF + Ollama
Modelfile, model cards), exported by an `export` job that checks each file against the run. Shows the job's
progress, the files with their sizes, the check's result and the `ollama create` command. Logic:
workbench.export (the files and the check), workbench.jobs (the job)."""
from __future__ import annotations

import json
from pathlib import Path

import gradio as gr
import pandas as pd

from workbench.config.tasks import FORMATS, ExportConfig
from workbench.core.errors import ExportError
from workbench.core.paths import confine
from workbench.export.gguf import QUANTIZE_QUANTS, QUANTS
from workbench.runs.compare import run_choices
from workbench.ui.errors import handler
from workbench.ui.form import setting_help

FILE_COLUMNS = ["file", "size"]


def export_config(run, fmt, quants, name, overwrite) -> ExportConfig:
    """The panel's inputs as an ExportConfig; the run and the output folder (<run>/export-<name>, or <run>/export
    without a name) must lie under the allowed folders."""
    if not run:
        raise ExportError("choose a finished run to export")
    run_path = confine(run)
    name = (name or "").strip()
    out = run_path / (f"export-{name}" if name else "export")
    picked = [quants] if isinstance(quants, str) else list(quants or [])
    if fmt == "gguf" and not picked:
        raise ExportError("choose at least one GGUF type (f16 and q8_0 are the checked defaults)")
    return ExportConfig(run=str(run_path), format=fmt or "gguf", quant=",".join(picked), out=str(out), name=name,
                        overwrite=bool(overwrite))


def manifest_view(out: str | Path) -> tuple[pd.DataFrame, str, str]:
    """(files with sizes, the check's result, the Ollama command) from the export.json of a finished export."""
    folder = Path(out)
    manifest = json.loads((folder / "export.json").read_text(encoding="utf-8"))
    files = pd.DataFrame([[f"{folder.name}/{f['path']}", f["size"]] for f in manifest["files"]], columns=FILE_COLUMNS)
    check = manifest.get("check")
    if check is None:
        verdict = "Check skipped (--no-check)."
    elif check["passed"]:
        verdict = _check_summary(folder)
    else:
        verdict = "❌ **Check failed**: " + "; ".join(check["failed"]) + " (details in check.json)"
    command = (manifest.get("ollama") or {}).get("command", "")
    return files, verdict, command


def _check_summary(folder: Path) -> str:
    """One line per checked format: its agreement with the run's tokens on each held-out prompt."""
    check = json.loads((folder / "check.json").read_text(encoding="utf-8"))
    lines = [f"✅ **Check passed**: {check['prompts']} held-out prompts, greedy decoding"]
    for fmt, result in check["results"].items():
        agreement = ", ".join(f"{a:.0%}" for a in result["agreement"])
        lines.append(f"- `{fmt}`: tokens agree {agreement}")
    return "\n".join(lines)


# -- handlers -----------------------------------------------------------------------------------------

@handler
def list_export_runs():
    return gr.update(choices=run_choices())


@handler
def start_export(run, fmt, quants, name, overwrite):
    """Queue an export job; every refusal (unfinished run, architecture, existing folder, disk space) comes now."""
    from workbench.jobs.submit import submit

    job = submit("export", export_config(run, fmt, quants, name, overwrite))
    return f"⏳ Queued export job `{job.id}`: {job.name}", job.id, gr.Timer(active=True)


@handler
def follow_export(job_id):
    """Timer: the job's step while it runs; the files, the check and the Ollama command once it ended."""
    from workbench.jobs import queue, view

    if not job_id:
        return gr.skip(), gr.skip(), gr.skip(), gr.skip(), gr.Timer(active=False)
    job = queue.get(job_id)
    if job.state in ("queued", *queue.ACTIVE):
        row = view.row(job)
        step = view.progress_note(job) or "starting"
        return (f"⏳ export job `{job.id}` is {job.state}: {step} ({row['progress'] or '0'} steps, "
                f"{row['elapsed']})", gr.skip(), gr.skip(), gr.skip(), gr.skip())
    out = ExportConfig.from_text(job.config).out
    landed = (Path(out) / "export.json").is_file()
    files, verdict, command = manifest_view(out) if landed else (pd.DataFrame(columns=FILE_COLUMNS), "", "")
    if job.state == "completed":
        status = f"✅ export job `{job.id}` completed: `{out}`"
    else:
        status = f"❌ export job `{job.id}` {job.state}" + (f": {job.error}" if job.error else "")
    return status, files, verdict, command, gr.Timer(active=False)


@handler
def export_model_api(run: str, format: str = "gguf", quant: str = "f16,q8_0", name: str = "",
                     overwrite: bool = False) -> dict:
    """The CLI's inputs as one call: queues an `export` job; follow it with /list_jobs and read the result from
    `out` (export.json lists the files, check.json the check)."""
    from workbench.jobs.submit import submit

    quants = [q.strip() for q in str(quant or "").split(",") if q.strip()]
    cfg = export_config(run, format, quants, name, overwrite)
    job = submit("export", cfg)
    return {"job_id": job.id, "name": job.name, "out": cfg.out}


# -- layout -------------------------------------------------------------------------------------------

def build_export_panel(app: gr.Blocks) -> None:
    with gr.Tab("Export"):
        gr.Markdown("Export a finished run as files to hand over: the adapter, the merged Hugging Face folder, and "
                    "GGUF for llama.cpp / Ollama / LM Studio with an Ollama `Modelfile`, a model card in each "
                    "folder. Every export is checked: greedy decoding of held-out prompts must give the run's "
                    "tokens (merged and f16 exactly, q8_0 on ≥ 90%). Disk space is checked before it starts. "
                    "GGUF covers the architectures of llama.cpp's converter (Llama, SmolLM, Mistral, Qwen2, …).")
        with gr.Row():
            run = gr.Dropdown([], label="Run", allow_custom_value=True, scale=3)
            refresh = gr.Button("Refresh runs", size="sm", scale=0)
        with gr.Row():
            fmt = gr.Radio(list(FORMATS), value=ExportConfig().format, label="Format",
                           info=setting_help(ExportConfig, "format"))
            quants = gr.CheckboxGroup(list(QUANTS), value=ExportConfig().quant.split(","), label="GGUF types",
                                      info=f"{', '.join(QUANTIZE_QUANTS)} need llama.cpp's llama-quantize on PATH")
        with gr.Row():
            name = gr.Textbox(label="Output name", info="Names the GGUF files and the Ollama model; the files go to "
                              "<run>/export-<name> (<run>/export without a name)")
            overwrite = gr.Checkbox(label="Replace an existing export of that name", value=False)
        start = gr.Button("Export", variant="primary")
        status = gr.Markdown()
        files = gr.Dataframe(headers=FILE_COLUMNS, label="Exported files", interactive=False)
        verdict = gr.Markdown()
        command = gr.Code(label="Run it with Ollama (copy)", language="shell", interactive=False)
        job_id = gr.Textbox(visible=False)
        timer = gr.Timer(1.0, active=False)
        gr.api(export_model_api, api_name="export_model")  # inside the Tab: gr.Tabs takes only Tab children
    refresh.click(list_export_runs, None, run, api_name=False)
    app.load(list_export_runs, None, run, api_name=False)
    start.click(start_export, [run, fmt, quants, name, overwrite], [status, job_id, timer], api_name=False)
    timer.tick(follow_export, job_id, [status, files, verdict, command, timer], api_name=False,
               show_progress="hidden")
