"""Jobs tab: the queue every browser and the headless worker share. A table of jobs (state, progress,
elapsed, ETA), one job's live view, and cancel / stop / resume. Also the programs' API: /submit_job,
/list_jobs, /cancel_job, /resume_job. Logic: workbench.jobs; this file only wires."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from workbench.jobs import queue, submit, view
from workbench.jobs.kinds import kind_names
from workbench.ui import plots
from workbench.ui.errors import handler

TICK_SECONDS = 2.0


def _frame() -> pd.DataFrame:
    return pd.DataFrame(view.table(), columns=view.COLUMNS)


@handler
def queue_notice() -> str:
    """What the user must know about the queue itself: a damaged queue file whose copy was set aside (the note
    names the copy and its folder) and the fresh queue started in its place."""
    damaged = queue.damaged_note()
    return f"⚠️ {damaged}" if damaged else ""


@handler
def submit_job(kind: str, config: str, processes: int = 1) -> dict:
    """Queue a job of `kind` (train, eval, merge) from one YAML or JSON config; a config that cannot run is
    refused with its message and nothing is queued. Returns the job record."""
    return queue.json_ready(submit.submit(kind, config, processes=int(processes or 1)))


@handler
def list_jobs() -> list[dict]:
    """Every job, newest first: id, kind, name, state, run_dir, processes, error, timestamps, config."""
    return [queue.json_ready(j) for j in queue.list_jobs()]


@handler
def cancel_job(job_id: str) -> str:
    """Cancel a queued job, or stop a running one (checkpoint and adapter saved at the next step)."""
    return submit.cancel(job_id)


@handler
def resume_job(job_id: str) -> str:
    """Queue an interrupted or cancelled training job again, from its last checkpoint to the same final step."""
    job = submit.resume(job_id)
    return f"job {job.id} queued again: it resumes from its last checkpoint"


@handler
def refresh(selected: str | None):
    """The table, the selected job's live view (the newest job when none is selected), and the notice."""
    jobs = queue.list_jobs(limit=1)
    job_id = selected or (jobs[0].id if jobs else None)
    snap = view.snapshot(queue.get(job_id)) if job_id else view.snapshot(None)
    figure, progress, log, badge = plots.render(snap)
    return _frame(), badge, progress, figure, log, queue_notice()


@handler
def select_job(evt: gr.SelectData, table) -> str:
    row = evt.index[0] if isinstance(evt.index, (list, tuple)) else evt.index
    frame = table if isinstance(table, pd.DataFrame) else pd.DataFrame(table)
    return str(frame.iloc[int(row)]["id"])


@handler
def act(action: str, job_id: str) -> str:
    if not (job_id or "").strip():
        raise queue.JobError("select a job in the table first")
    return {"cancel": cancel_job, "resume": resume_job}[action](job_id)


def build_jobs_tab(app: gr.Blocks) -> None:
    gr.Markdown("Every long task is a job: it runs as its own process, one after another on a CPU (side by side "
                "on separate GPUs), and keeps running if this page closes or the app restarts. "
                "`python -m workbench worker` runs the same queue without a browser.")
    notice = gr.Markdown()
    table = gr.Dataframe(_frame(), label="Jobs (newest first) · click a row to follow it", interactive=False,
                         wrap=True, column_widths=["15%", "6%", "25%", "9%", "7%", "7%", "7%", "6%", "18%"])
    with gr.Row():
        job_id = gr.Textbox(label="Selected job", scale=2, elem_id="jobs-selected")
        cancel_btn = gr.Button("Cancel / stop", variant="stop", size="sm")
        resume_btn = gr.Button("Resume", size="sm")
        refresh_btn = gr.Button("Refresh", size="sm")
    message = gr.Markdown()
    badge = gr.HTML()
    progress = gr.HTML()
    plot = gr.Plot(label="Metrics")
    log = gr.Textbox(label="Worker log (last lines)", lines=10, max_lines=10, autoscroll=True, interactive=False)
    with gr.Accordion("Submit a job from a config (YAML or JSON)", open=False):
        with gr.Row():
            kind = gr.Dropdown(kind_names(), value="train", label="kind")
            processes = gr.Number(1, precision=0, minimum=1, label="processes")
        config = gr.Code(language="yaml", label="config", value="train: {max_steps: 3}\n", interactive=True)
        submit_btn = gr.Button("Submit", size="sm")
        submitted = gr.JSON(label="queued job")
    timer = gr.Timer(TICK_SECONDS)

    outputs = [table, badge, progress, plot, log, notice]
    timer.tick(refresh, inputs=job_id, outputs=outputs, api_name=False, show_progress="hidden")
    refresh_btn.click(refresh, inputs=job_id, outputs=outputs, api_name=False)
    app.load(refresh, inputs=job_id, outputs=outputs, api_name=False)
    table.select(select_job, inputs=table, outputs=job_id, api_name=False).success(
        refresh, inputs=job_id, outputs=outputs, api_name=False)
    cancel_btn.click(lambda j: act("cancel", j), inputs=job_id, outputs=message, api_name=False)
    resume_btn.click(lambda j: act("resume", j), inputs=job_id, outputs=message, api_name=False)
    submit_btn.click(submit_job, inputs=[kind, config, processes], outputs=submitted, api_name="submit_job")
    gr.api(list_jobs, api_name="list_jobs")
    gr.api(queue_notice, api_name="queue_notice")
    gr.api(cancel_job, api_name="cancel_job")
    gr.api(resume_job, api_name="resume_job")
