"""The Data tab's panels, built into its layout by data.py:
- the rows table: column widths per layout (instruction or chat) and the clicked row;
- the template-preview widgets (tokenizer settings in, masked tokens out), shared with the Templates tab;
- the preference-pairs panel: a DPO / ORPO / KTO dataset as training reads it (the prompt once, the two
  answers side by side, lengths, the pairs dropped and why) and both rendered sequences with the trained
  tokens coloured. Logic: data/preference.py, training/preference.py.
"""
from __future__ import annotations

import gradio as gr
import pandas as pd

from workbench.config.fields import parse_column_map
from workbench.config.run import DataCfg, PrefCfg, iter_fields
from workbench.core.errors import DataError
from workbench.data import preference, preview, read
from workbench.prompts import registry
from workbench.training.preference import preview_html
from workbench.ui.errors import handler

# Rows table widths (% of the table). Sized from the cell text, long instructions took the room: the `input`
# header got one letter a line and `output` ran off the edge. Each layout (instruction, chat) adds up to 100%.
COLUMN_WIDTHS = {"#": "5%", "category": "11%", "turns": "6%", "instruction": "28%", "input": "24%",
                 "output": "32%", "system": "16%", "user": "31%", "assistant": "31%"}


def column_widths(columns) -> list[str]:
    return [COLUMN_WIDTHS.get(str(c), "15%") for c in columns]


@handler
def fit_columns(frame):
    """The rows table's column widths for the columns it shows now (instruction or chat layout)."""
    columns = list(frame.columns) if isinstance(frame, pd.DataFrame) else []
    return gr.update(column_widths=column_widths(columns)) if columns else gr.skip()


@handler
def selected_row(evt: gr.SelectData):
    """The row number (the '#' column) of the clicked table cell."""
    values = evt.row_value or []
    if not values:
        raise gr.Error("click a row of the table")
    return int(values[0])


TRAIN_ON_CHOICES = list(dict(iter_fields())["data.train_on"].metadata["choices"])


def preview_settings(d: DataCfg) -> tuple[gr.Textbox, gr.Number, gr.Dropdown]:
    """Model (whose tokenizer counts), max_length and train_on, placed in the caller's row."""
    model = gr.Textbox(value="default", label="Model (its tokenizer)", scale=2)
    max_length = gr.Number(value=d.max_length, precision=0, minimum=16, label="max_length")
    train_on = gr.Dropdown(TRAIN_ON_CHOICES, value=d.train_on, label="Train on")
    return model, max_length, train_on


def preview_outputs() -> list:
    """[prompt, target, token counts, tokens coloured by trained/masked]: what preview handlers return."""
    with gr.Row():
        prompt_box = gr.Textbox(label="Prompt (masked)", lines=8, max_lines=20)
        target_box = gr.Textbox(label="Target (trained)", lines=8, max_lines=20)
    return [prompt_box, target_box, gr.Markdown(), gr.HTML(max_height=400)]


METHODS = ["dpo", "orpo", "kto"]


def _pairs(source, hub_config, hub_split, column_map, method, min_difference) -> preference.PairSet:
    return preference.load_pairs(read.ui_source(source), method or "dpo", parse_column_map(column_map),
                                 (hub_config or "").strip(), (hub_split or "train").strip(), float(min_difference or 0))


@handler
def show_pairs(source, hub_config, hub_split, fmt, column_map, method, min_difference, page_size=25):
    """The pairs as training uses them: a status line (format, kept, dropped and why) and the first page."""
    pairs = _pairs(source, hub_config, hub_split, column_map, method, min_difference)
    columns, rows = preference.table(pairs, 0, int(page_size or 25))
    return f"✅ {pairs.message()}", pd.DataFrame(rows, columns=columns)


@handler
def preview_pair(source, hub_config, hub_split, fmt, column_map, method, min_difference, row_no, template_name,
                 model, max_length):
    """Both rendered sequences of one pair (or the KTO row) with the trained tokens coloured."""
    pairs = _pairs(source, hub_config, hub_split, column_map, method, min_difference)
    i = int(row_no or 0)
    if not 0 <= i < len(pairs.rows):
        raise DataError(f"row {i} is out of range (0 to {len(pairs.rows) - 1})")
    tok = preview.tokenizer_for(model or "default")
    shown = preview_html(registry.load(template_name), pairs.rows[i], tok, int(max_length or 512))
    first, second = list(shown.values()) + [("", "")] * (2 - len(shown))
    return first[0], first[1], second[0], second[1]


def build_pairs_panel(view_inputs: list) -> None:
    """Placed in the Data tab under its dataset fields (source, hub config, hub split, format, column map)."""
    d, p = DataCfg(), PrefCfg()
    with gr.Accordion("Preference pairs (DPO / ORPO / KTO)", open=False, elem_id="pairs-panel"):
        with gr.Row():
            method = gr.Dropdown(METHODS, value="dpo", label="Method", info="kto turns each pair into 👍 and 👎 rows")
            min_difference = gr.Slider(0.0, 1.0, value=p.min_difference, step=0.05, label="Minimum difference",
                                       info="drop pairs whose answers are more alike (0 = identical only)")
            show_btn = gr.Button("Show pairs", variant="primary")
        pairs_md = gr.Markdown()
        pairs_table = gr.Dataframe(interactive=False, wrap=True, max_height=420, label="Pairs")
        with gr.Row():
            row_no = gr.Number(value=0, precision=0, minimum=0, label="Pair #")
            template = gr.Dropdown(registry.available(), value=d.template, label="Template", allow_custom_value=True)
            model = gr.Textbox(value="default", label="Model (its tokenizer)")
            max_length = gr.Number(value=d.max_length, precision=0, minimum=16, label="max_length")
            preview_btn = gr.Button("Preview both sequences")
        with gr.Row():
            with gr.Column():
                chosen_md, chosen_html = gr.Markdown(), gr.HTML(max_height=360, elem_id="pair-chosen")
            with gr.Column():
                rejected_md, rejected_html = gr.Markdown(), gr.HTML(max_height=360, elem_id="pair-rejected")
    inputs = [*view_inputs, method, min_difference]
    show_btn.click(show_pairs, inputs, [pairs_md, pairs_table], api_name="show_pairs").success(
        preview_pair, [*inputs, row_no, template, model, max_length],
        [chosen_md, chosen_html, rejected_md, rejected_html], api_name=False)
    preview_btn.click(preview_pair, [*inputs, row_no, template, model, max_length],
                      [chosen_md, chosen_html, rejected_md, rejected_html], api_name="preview_pair")
