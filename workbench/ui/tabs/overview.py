"""Overview tab: the model and the bundled dataset at a glance."""
from __future__ import annotations

import gradio as gr

from workbench.config import DEFAULT_DATA, RunConfig


def overview():
    """(model markdown, dataset markdown, first rows) for the default run config."""
    from workbench.data import sources
    from workbench.models import DEFAULT_MODEL_ID, pick_attention, pick_dtype, resolve_model

    cfg = RunConfig()
    path = resolve_model(cfg.model.name)
    impl, why = pick_attention("auto")
    model_md = (f"### Model\n**{DEFAULT_MODEL_ID}** (embedded default)  \nfolder: `{path}`  \n"
                f"compute dtype here: `{str(pick_dtype()).replace('torch.', '')}`  \nattention: `{impl}` ({why})")
    ds, det = sources.load_canonical(DEFAULT_DATA)
    counts = ds.to_pandas()["category"].value_counts()
    data_md = (f"### Dataset\n`{DEFAULT_DATA}`: **{len(ds)} rows**, format **{det.format}** ({det.reason})  \n"
               + ", ".join(f"{k}: {v}" for k, v in counts.items()))
    return model_md, data_md, ds.select(range(min(10, len(ds)))).to_pandas()


def build_overview_tab(app: gr.Blocks) -> None:
    with gr.Row():
        model_md = gr.Markdown()
        data_md = gr.Markdown()
    sample = gr.Dataframe(label="Bundled dataset (first rows)", interactive=False, wrap=True)
    refresh = gr.Button("Refresh", size="sm")
    outputs = [model_md, data_md, sample]
    refresh.click(overview, outputs=outputs, api_name="overview")
    app.load(overview, outputs=outputs, api_name=False)
