"""The Data tab's own wiring, without a browser: its column-map box and the Train form / YAML read each
other's text, and the rows table has a width for every column of both layouts (instruction and chat)."""
from __future__ import annotations

import json

import gradio as gr
import pandas as pd
import pytest

from workbench.config.fields import format_column_map, parse_column_map
from workbench.config.run import RunConfig
from workbench.ui import form
from workbench.ui.tabs import data as data_tab

DOLLY = [{"instruction": "Q1", "context": "C1", "response": "R1", "category": "open_qa"},
         {"instruction": "Q2", "context": "", "response": "R2", "category": "brainstorming"}]
MAPPING = {"context": "input", "response": "output"}


def load_status(path, column_map: str) -> str:
    return data_tab.load_dataset(str(path), "", "train", "alpaca", column_map, False, 25)[0]


def saved_and_shown(mapping: dict) -> str:
    """The column map of a config saved as YAML, loaded back and shown in the Train form."""
    cfg = RunConfig()
    cfg.set("data.column_map", mapping)
    return form.to_form_value(RunConfig.from_text(cfg.to_yaml()).data.column_map)


@pytest.mark.parametrize("text", [
    form.to_form_value(MAPPING),  # what the Train form shows: {context: input, response: output}
    saved_and_shown(MAPPING),  # the same after a YAML round trip
    format_column_map(MAPPING),  # the canonical text form: context: input, response: output
])
def test_train_form_and_yaml_text_works_in_the_data_tab(data_dir, text):
    path = data_dir / "dolly.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in DOLLY))
    status = load_status(path, text)
    assert status.startswith("✅") and "format **alpaca**" in status, status


@pytest.mark.parametrize("text", ["context→input, response→output", "context -> input\nresponse: output",
                                  "context=input; response=>output"])
def test_data_tab_text_works_in_the_train_form_and_yaml(text):
    assert parse_column_map(text) == MAPPING  # what the Data tab reads
    assert form.config_from_values({"data__column_map": text}).data.column_map == MAPPING  # the Train form
    cfg = RunConfig.from_text(f"data:\n  column_map: {json.dumps(text)}\n")  # a YAML config with the same text
    assert cfg.data.column_map == MAPPING


def test_a_bad_column_map_is_a_clear_status_in_the_data_tab(data_dir):
    path = data_dir / "dolly.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in DOLLY))
    with pytest.warns(UserWarning, match="column map entry"):  # gr.Warning's toast, outside a browser
        assert "column map entry 'oops' should look like" in load_status(path, "context→input, oops")


def test_rows_table_has_widths_for_every_column_of_both_layouts():
    with gr.Blocks() as app:
        data_tab.build_data_tab(app)
    table = next(b for b in app.blocks.values()
                 if isinstance(b, gr.Dataframe) and str(b.label).startswith("Rows"))
    assert table.wrap and table.column_widths == ["5%", "11%", "28%", "24%", "32%"]  # #, category, I, I, O
    chat = data_tab.fit_columns(pd.DataFrame(columns=["#", "category", "turns", "system", "user", "assistant"]))
    assert chat["column_widths"] == ["5%", "11%", "6%", "16%", "31%", "31%"]
    for widths in (table.column_widths, chat["column_widths"]):
        assert sum(float(w.rstrip("%")) for w in widths) == 100
