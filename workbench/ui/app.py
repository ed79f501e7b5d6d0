"""build_app(): the gr.Blocks with one tab per job; tab files only build components and wire events. The
Overview tab, the landing page (the model and the bundled dataset at a glance), is built here.

Actions that cross tabs are wired here once every tab is built (a tab cannot reach components built after
it): each tab builder may return the components other tabs need, by name; wire() connects them."""
from __future__ import annotations

import logging
from pathlib import Path

import gradio as gr

from workbench.backtranslation.review import FORWARD_TEMPLATE
from workbench.config.run import DEFAULT_DATA, RunConfig
from workbench.core.errors import DataError
from workbench.core.formatting import safe_name
from workbench.ui.errors import handler
from workbench.ui.tabs.chat import build_chat_tab
from workbench.ui.tabs.data import build_data_tab
from workbench.ui.tabs.data_panels import column_widths
from workbench.ui.tabs.evaluate import build_evaluate_tab
from workbench.ui.tabs.generate import build_generate_tab
from workbench.ui.tabs.jobs import build_jobs_tab
from workbench.ui.tabs.runs import build_runs_tab
from workbench.ui.tabs.templates import build_templates_tab
from workbench.ui.tabs.train import build_train_tab

log = logging.getLogger(__name__)
TITLE = "Fine-tuning workbench"


@handler
def overview():
    """(model markdown, dataset markdown, first rows) for the default run config."""
    import pandas as pd

    from workbench.data import browse
    from workbench.models.load import pick_attention, pick_dtype
    from workbench.models.resolve import DEFAULT_MODEL_ID, resolve_model

    cfg = RunConfig()
    path = resolve_model(cfg.model.name)
    impl, why = pick_attention("auto")
    model_md = (f"### Model\n**{DEFAULT_MODEL_ID}** (embedded default)  \nfolder: `{path}`  \n"
                f"compute dtype here: `{pick_dtype()}`  \nattention: `{impl}` ({why})")
    view = browse.open_view(DEFAULT_DATA)  # the Data tab's cached view: a page load re-reads nothing
    det = view.detection
    data_md = (f"### Dataset\n`{DEFAULT_DATA}`: **{len(view)} rows**, format **{det.format}** ({det.reason})  \n"
               + ", ".join(f"{k}: {v}" for k, v in view.categories().items()))
    first = view.page(1, 10)
    return model_md, data_md, pd.DataFrame(first.rows, columns=first.columns)


def build_overview_tab(app: gr.Blocks) -> None:
    with gr.Row():
        model_md = gr.Markdown()
        data_md = gr.Markdown()
    # The Data tab's widths for its rows table: sized from the cell text, long instructions left `input` a
    # column one letter wide.
    sample = gr.Dataframe(label="Bundled dataset (first rows)", interactive=False, wrap=True,
                          column_widths=column_widths(["#", "category", "instruction", "input", "output"]))
    refresh = gr.Button("Refresh", size="sm")
    outputs = [model_md, data_md, sample]
    refresh.click(overview, outputs=outputs, api_name="overview")
    app.load(overview, outputs=outputs, api_name=False)


# In the order a user goes: look at the data and templates (or generate a dataset from your own texts), train,
# compare runs, chat, evaluate.
TABS = (("Overview", build_overview_tab), ("Data", build_data_tab), ("Generate", build_generate_tab),
        ("Templates", build_templates_tab), ("Train", build_train_tab), ("Jobs", build_jobs_tab),
        ("Runs", build_runs_tab), ("Chat", build_chat_tab), ("Evaluate", build_evaluate_tab))


@handler
def forward_training(dataset: str):
    """The Train form, ready to train a forward model on a generated dataset: the dataset, the Alpaca template
    (the layout the back-translation score assumed), the loss on responses only; then the Train tab."""
    if not (dataset or "").strip():
        raise DataError("save the dataset first", "press Save dataset, then train on it")
    name = f"forward-{safe_name(Path(dataset).stem, 'generated', 40)}"
    return dataset, FORWARD_TEMPLATE, "responses", name, gr.Tabs(selected="train")


def wire(tabs: gr.Tabs, exposed: dict[str, dict]) -> None:
    generate, train = exposed.get("Generate"), exposed.get("Train")
    if generate and train:
        form = train["form"]
        generate["train_button"].click(
            forward_training, generate["dataset"],
            [form["data.source"], form["data.template"], form["data.train_on"], form["run_name"], tabs],
            api_name=False)


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
        wire(tabs, exposed)
    return app


# Table headers break between words, never inside one. A Dataframe with wrap=True gives its header text
# `word-break: break-word`, so a short header in a narrow column stacked its letters ("kee" over "p", the
# Overview's "input" one letter a line); columns are sized for their headers (column_widths) as well.
CSS = "th .header.text { word-break: normal; overflow-wrap: normal; }"


def launch_kwargs() -> dict:
    return {"theme": gr.themes.Soft(), "css": CSS}
