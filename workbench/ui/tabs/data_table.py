"""The Data tab's rows table: column widths per layout (instruction or chat) and the clicked row."""
from __future__ import annotations

import gradio as gr
import pandas as pd

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
