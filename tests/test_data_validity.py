"""Rows with a missing, empty or non-text instruction or output: named in the load message, dropped before
training (data.drop_invalid, the default) or refused; never trained on silently."""
from __future__ import annotations

import json

import pytest

from workbench.core.errors import DataError
from workbench.data import browse
from workbench.data.load import load_canonical

ROWS = [{"instruction": "Q0", "output": "A0"},
        {"instruction": "Q1", "output": None},  # null
        {"instruction": "   ", "output": "A2"},  # blank
        {"instruction": "Q3", "output": "A3"},
        {"instruction": "Q4", "output": 42},  # a number, not text
        {"instruction": "Q5", "output": ""},  # empty
        {"instruction": "Q6", "output": "A6"}]


def jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


def test_invalid_rows_are_named_and_dropped(data_dir):
    path = jsonl(data_dir / "holes.jsonl", ROWS)
    ds, det = load_canonical(path)
    assert [r["instruction"] for r in ds] == ["Q0", "Q3", "Q6"]
    message = det.message()
    assert "4 of 7 rows have a missing, empty or non-text instruction or output" in message
    assert "#1: output is missing (null)" in message and "#2: instruction is empty" in message
    assert "#4: output is a int (42), not text" in message and "#5: output is empty" in message
    assert "dropped 4 unusable rows before training" in message


def test_with_drop_invalid_off_loading_for_training_fails(data_dir):
    path = jsonl(data_dir / "holes.jsonl", ROWS)
    with pytest.raises(DataError, match=r"4 of 7 rows .* #1: output is missing") as e:
        load_canonical(path, drop_invalid=False)
    assert "data.drop_invalid" in e.value.hint


def test_the_data_tab_shows_them_without_dropping(data_dir):
    path = jsonl(data_dir / "holes.jsonl", ROWS)
    view = browse.open_view(path)
    assert len(view) == 7  # the browser shows the file as it is
    text = browse.describe(view)
    assert "4 of 7 rows" in text and "#1: output is missing (null)" in text and "data.drop_invalid" in text


def test_many_invalid_rows_name_the_first_few(data_dir):
    rows = [{"prompt": f"P{i}", "completion": "" if i % 2 else f"C{i}"} for i in range(40)]
    ds, det = load_canonical(jsonl(data_dir / "pc.jsonl", rows))
    assert len(ds) == 20 and "#1: output (completion) is empty" in det.message()
    assert "(and 15 more)" in det.message()


def test_every_row_invalid_is_an_error_even_when_dropping(data_dir):
    with pytest.raises(DataError, match="no row can be trained on: every row"):
        load_canonical(jsonl(data_dir / "none.jsonl", [{"instruction": "Q", "output": None}] * 3))


def test_chat_rows_without_a_user_or_assistant_message(data_dir):
    rows = [{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]},
            {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": ""}]},
            {"messages": []},
            {"messages": [{"role": "system", "content": "S"}, {"role": "assistant", "content": "A"}]}]
    ds, det = load_canonical(jsonl(data_dir / "chat.jsonl", rows))
    assert len(ds) == 1
    message = det.message()
    assert "#1: has no assistant message with text" in message and "#2: has no messages" in message
    assert "#3: has no user message with text" in message


def test_csv_empty_cells_are_missing(data_dir):
    path = data_dir / "gaps.csv"
    path.write_text("question;answer\nWhat is 2+2?;4\nCapital of France?;\nNA;None\n")
    ds, det = load_canonical(str(path), "auto", {"question": "instruction", "answer": "output"})
    assert [r["output"] for r in ds] == ["4", "None"]  # "NA" and "None" are text someone wrote
    assert "#1: output is missing (null)" in det.message()


def test_training_drops_them_or_refuses_by_data_drop_invalid(data_dir, tokenizer):
    """The engine's own data step (no training): data.drop_invalid decides."""
    from workbench.config.preflight import preflight
    from workbench.config.run import RunConfig
    from workbench.training.engine import build_datasets

    cfg = RunConfig()
    for key, value in {"data.source": jsonl(data_dir / "holes.jsonl", ROWS), "data.template": "alpaca",
                       "data.val_size": 0.0, "data.test_size": 0.0}.items():
        cfg.set(key, value)
    parts = build_datasets(cfg, tokenizer, preflight(cfg))
    assert sorted(r["instruction"] for r in parts["train"]) == ["Q0", "Q3", "Q6"]
    cfg.set("data.drop_invalid", False)
    with pytest.raises(DataError, match="4 of 7 rows"):
        build_datasets(cfg, tokenizer, preflight(cfg))
