"""The Data tab's preference-pairs panel: a DPO / ORPO / KTO dataset as training reads it (the prompt once, the
two answers side by side, lengths, the pairs dropped and why) and both rendered sequences with the trained
tokens coloured. Logic: data/preference.py, training/pref_sequences.py."""
from __future__ import annotations

import gradio as gr
import pandas as pd

from workbench.config.column_map import parse_column_map
from workbench.config.run import DataCfg, PrefCfg
from workbench.core.errors import DataError
from workbench.data import preference, preview, read
from workbench.prompts import registry
from workbench.training.pref_sequences import preview_html
from workbench.ui.errors import handler

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
