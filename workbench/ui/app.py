"""build_app(): the gr.Blocks with one tab per job; tab files only build components and wire events."""
from __future__ import annotations

import logging

import gradio as gr

from workbench.ui import links
from workbench.ui.tabs.chat import build_chat_tab
from workbench.ui.tabs.data import build_data_tab
from workbench.ui.tabs.evaluate import build_evaluate_tab
from workbench.ui.tabs.generate import build_generate_tab
from workbench.ui.tabs.jobs import build_jobs_tab
from workbench.ui.tabs.overview import build_overview_tab
from workbench.ui.tabs.runs import build_runs_tab
from workbench.ui.tabs.templates import build_templates_tab
from workbench.ui.tabs.train import build_train_tab

log = logging.getLogger(__name__)
TITLE = "Fine-tuning workbench"
# In the order a user goes: look at the data and templates (or generate a dataset from your own texts), train,
# compare runs, chat, evaluate.
TABS = (("Overview", build_overview_tab), ("Data", build_data_tab), ("Generate", build_generate_tab),
        ("Templates", build_templates_tab), ("Train", build_train_tab), ("Jobs", build_jobs_tab),
        ("Runs", build_runs_tab), ("Chat", build_chat_tab), ("Evaluate", build_evaluate_tab))


def build_app() -> gr.Blocks:
    from workbench.jobs.supervisor import ensure_started
    from workbench.runs.folder import mark_interrupted_runs

    ensure_started()  # the supervisor thread: re-attaches running workers, then starts queued jobs
    interrupted = mark_interrupted_runs()  # runs left 'running' by a killed process
    if interrupted:
        log.warning("runs left running by a process that ended are now 'interrupted': %s", ", ".join(interrupted))
    with gr.Blocks(title=TITLE) as app:
        gr.Markdown(f"# {TITLE}\nFrom a dataset to a working LoRA adapter: see what the model is trained on, "
                    "watch it learn, judge the result.")
        exposed: dict[str, dict] = {}
        with gr.Tabs() as tabs:
            for label, build_tab in TABS:
                with gr.Tab(label, id=label.lower()):
                    exposed[label] = build_tab(app) or {}
        links.wire(tabs, exposed)
    return app


def launch_kwargs() -> dict:
    return {"theme": gr.themes.Soft()}
