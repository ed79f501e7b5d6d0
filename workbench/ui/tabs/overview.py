"""Overview tab: the model and the bundled dataset at a glance."""
from __future__ import annotations

import gradio as gr

from workbench.config.run import DEFAULT_DATA, RunConfig
from workbench.ui.errors import handler
from workbench.ui.tabs.data_panels import column_widths


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
