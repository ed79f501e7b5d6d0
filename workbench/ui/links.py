"""Actions that cross tabs, wired once every tab is built (a tab cannot reach components built after it).

Each tab builder may return the components other tabs need, by name; wire() connects them."""
from __future__ import annotations

from pathlib import Path

import gradio as gr

from workbench.backtranslation.scoring import FORWARD_TEMPLATE
from workbench.core.errors import DataError
from workbench.core.naming import safe_name
from workbench.ui.errors import handler


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
