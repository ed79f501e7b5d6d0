"""build_app(): the gr.Blocks with one tab per job; tab files only build components and wire events."""
from __future__ import annotations

import gradio as gr

from workbench.ui.tabs.chat import build_chat_tab
from workbench.ui.tabs.data import build_data_tab
from workbench.ui.tabs.evaluate import build_evaluate_tab
from workbench.ui.tabs.overview import build_overview_tab
from workbench.ui.tabs.runs import build_runs_tab
from workbench.ui.tabs.templates import build_templates_tab
from workbench.ui.tabs.train import build_train_tab

TITLE = "Fine-tuning workbench"


def build_app() -> gr.Blocks:
    from workbench.runs import mark_interrupted_runs

    mark_interrupted_runs()  # runs left 'running' by a killed process
    with gr.Blocks(title=TITLE) as app:
        gr.Markdown(f"# {TITLE}\nFrom a dataset to a working LoRA adapter: see what the model is trained on, "
                    "watch it learn, judge the result.")
        with gr.Tabs():
            with gr.Tab("Overview", id="overview"):
                build_overview_tab(app)
            with gr.Tab("Data", id="data"):
                build_data_tab(app)
            with gr.Tab("Templates", id="templates"):
                build_templates_tab(app)
            with gr.Tab("Train", id="train"):
                build_train_tab(app)
            with gr.Tab("Runs", id="runs"):
                build_runs_tab(app)
            with gr.Tab("Chat", id="chat"):
                build_chat_tab(app)
            with gr.Tab("Evaluate", id="evaluate"):
                build_evaluate_tab(app)
    return app


def launch_kwargs() -> dict:
    return {"theme": gr.themes.Soft()}
