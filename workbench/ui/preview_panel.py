"""The template-preview widgets the Data and Templates tabs share: tokenizer settings in, masked tokens out."""
from __future__ import annotations

import gradio as gr

from workbench.config.run import DataCfg, iter_fields

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
