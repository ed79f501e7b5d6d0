"""Loading: every file type and row format, detection and overrides, bad files, path confinement, uploads."""
from __future__ import annotations

import json
import os

import pandas as pd
import pytest

from workbench.config.fields import parse_column_map
from workbench.core.errors import ConfigError, DataError, PathError
from workbench.core.paths import confine
from workbench.data import load
from workbench.data.load import load_canonical
from workbench.data.read import load_raw, ui_source
from workbench.data.repair import MalformedLinesError, write_valid_lines
from workbench.data.load import split_sizes

ALPACA = [{"instruction": f"Task {i}", "input": "" if i % 2 else f"ctx {i}", "output": f"Answer {i}"} for i in range(6)]
DOLLY = [{"instruction": "Q1", "context": "C1", "response": "R1", "category": "open_qa"},
         {"instruction": "Q2", "context": "", "response": "R2", "category": "brainstorming"}]
ROWS_BY_FORMAT = {
    "alpaca": ALPACA[:2],
    "dolly": DOLLY,
    "self_instruct": [{"task": "t1", "instruction": "I", "input": "", "output": "O"}],
    "sharegpt": [{"conversations": [{"from": "system", "value": "S"}, {"from": "human", "value": "H"},
                                    {"from": "gpt", "value": "G"}]}],
    "messages": [{"messages": [{"role": "user", "content": "U"}, {"role": "assistant", "content": "A"}]}],
    "prompt_completion": [{"prompt": "P", "completion": "C"}],
    "input_target": [{"input_text": "P", "target_text": "C"}],
}


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """A data/ folder of its own (WORKBENCH_DATA), so tests never write into the project's data/."""
    d = tmp_path / "data"
    d.mkdir()
    monkeypatch.setenv("WORKBENCH_DATA", str(d))
    monkeypatch.delenv("WORKBENCH_ALLOWED_ROOTS", raising=False)
    return d


def write(path, rows, kind=None):
    kind = kind or path.suffix.lstrip(".")
    if kind == "jsonl":
        path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    elif kind == "json":
        path.write_text(json.dumps(rows))
    elif kind == "csv":
        pd.DataFrame(rows).to_csv(path, index=False)
    elif kind == "parquet":
        pd.DataFrame(rows).to_parquet(path)
    return path


@pytest.mark.parametrize("suffix", ["json", "jsonl", "csv", "parquet"])
def test_every_file_type_loads_the_same_rows(data_dir, suffix):
    ds, det = load_canonical(str(write(data_dir / f"d.{suffix}", DOLLY)))
    assert det.format == "dolly" and "match the dolly schema" in det.reason
    assert ds[0] == {"instruction": "Q1", "input": "C1", "output": "R1", "category": "open_qa"}
    assert len(ds) == 2


@pytest.mark.parametrize("fmt", list(ROWS_BY_FORMAT))
def test_each_format_is_detected_and_mapped(data_dir, fmt):
    ds, det = load_canonical(str(write(data_dir / f"{fmt}.jsonl", ROWS_BY_FORMAT[fmt])))
    assert det.format == fmt
    row = ds[0]
    if fmt == "sharegpt":
        assert row["messages"] == [{"role": "system", "content": "S"}, {"role": "user", "content": "H"},
                                   {"role": "assistant", "content": "G"}]
    elif fmt == "messages":
        assert row["messages"][1] == {"role": "assistant", "content": "A"}
    else:
        assert set(row) == {"instruction", "input", "output", "category"} and row["output"]
    if fmt == "self_instruct":
        assert row["category"] == "t1"


def test_override_and_column_map(data_dir):
    path = str(write(data_dir / "d.jsonl", DOLLY))
    ds, det = load_canonical(path, "alpaca", parse_column_map("context→input, response→output"))
    assert det.format == "alpaca" and "chosen by the user" in det.reason
    assert ds[0]["input"] == "C1" and ds[0]["output"] == "R1" and ds[0]["category"] == "open_qa"
    with pytest.raises(DataError, match="format alpaca needs columns output"):
        load_canonical(path, "alpaca")
    with pytest.raises(DataError, match="not in the data: answer"):
        load_canonical(path, "auto", {"answer": "output"})
    with pytest.raises(DataError, match="two columns the name instruction"):
        load_canonical(path, "auto", {"context": "instruction"})


def test_parse_column_map_forms():
    expected = {"context": "input", "response": "output"}
    for text in ("context→input, response→output", "context -> input\nresponse: output",
                 "{context: input, response: output}", '{"context": "input", "response": "output"}'):
        assert parse_column_map(text) == expected
    assert parse_column_map("") == {}
    with pytest.raises(ConfigError, match="should look like"):
        parse_column_map("context")


def test_no_format_fits_lists_columns_and_whats_missing(data_dir):
    path = str(write(data_dir / "q.jsonl", [{"question": "q", "answer": "a", "instruction": "i"}]))
    with pytest.raises(DataError) as e:
        load_canonical(path)
    msg = str(e.value)
    assert "answer, instruction, question" in msg and "alpaca needs instruction, output (missing output)" in msg
    assert "question→instruction" in msg  # says how to fix it


def test_malformed_lines_are_reported_and_can_be_skipped(data_dir):
    path = data_dir / "bad.jsonl"
    lines = [json.dumps(r) for r in ALPACA]
    lines[2] = '{"instruction": "broken",'
    lines[4] = "[1, 2]"
    path.write_text("\n".join(lines) + "\n")
    original = path.read_bytes()
    with pytest.raises(MalformedLinesError) as e:
        load_raw(str(path))
    assert [n for n, _ in e.value.bad] == [3, 5] and e.value.n_good == 4
    assert "line 3:" in str(e.value) and "line 5: a JSON list, not an object" in str(e.value)
    assert "skip malformed lines" in str(e.value)
    fixed, skipped = write_valid_lines(path)
    assert skipped == 2 and fixed.parent == data_dir / "cleaned" and fixed.name == "bad.valid-v1.jsonl"
    assert len(load_raw(str(fixed))) == 4
    assert path.read_bytes() == original  # the source is never modified
    assert write_valid_lines(path)[0].name == "bad.valid-v2.jsonl"  # versioned, never overwritten


@pytest.mark.parametrize("name,content,match", [
    ("empty.jsonl", b"", "is empty"),
    ("blank.json", b"  \n\n ", "only whitespace"),
    ("latin1.jsonl", '{"instruction": "café", "output": "x"}\n'.encode("latin-1"), "not UTF-8 text.*line 1"),
    ("image.json", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "binary file"),
    ("noise.json", bytes(range(1, 255)) * 4, "not UTF-8"),
    ("array.json", b'[{"instruction": "a", "output": "b"},\n {"instruction": }]', "not valid JSON.*line 2"),
    ("wrapped.json", b'{\n  "data": [\n    {"instruction": "a",}\n  ]\n}\n', "not valid JSON.*line 3, column"),
    ("scalars.jsonl", b"1\n2\n", "no line is a JSON object"),
    ("table.txt", b"a,b\n", "unsupported file type"),
    ("header_only.csv", b"instruction,output\n", "no rows"),
])
def test_bad_files_give_clear_messages(data_dir, name, content, match):
    (data_dir / name).write_bytes(content)
    with pytest.raises(DataError, match=match):
        load_canonical(str(data_dir / name))


def test_missing_file_and_offline_hub_id():
    with pytest.raises(DataError, match="not found"):
        load_raw("data/does_not_exist.jsonl")
    with pytest.raises(DataError, match="HF_HUB_OFFLINE.*local JSON/JSONL/CSV/Parquet"):
        load_raw("someone/some-dataset")


def test_split_sizes_default_85_10_5():
    assert split_sizes(240, 0.10, 0.05) == {"train": 204, "validation": 24, "test": 12}
    with pytest.raises(DataError, match="too few"):
        split_sizes(2, 0.5, 0.5)


def test_confine_refuses_paths_outside_the_allowed_roots(data_dir, tmp_path, monkeypatch):
    inside = write(data_dir / "ok.jsonl", ALPACA)
    assert confine(str(inside)) == inside.resolve()
    assert confine("data/dolly_sample.jsonl").name == "dolly_sample.jsonl"  # the project's data/, relative
    outside = tmp_path / "secret.jsonl"
    outside.write_text("{}\n")
    for bad in ("../../etc/passwd", "/etc/passwd", "data/../../etc/passwd", str(outside), "~/.bashrc"):
        with pytest.raises(PathError, match="outside the folders"):
            confine(bad)
    link = data_dir / "link.jsonl"
    os.symlink(outside, link)  # a link inside data/ pointing out of it
    with pytest.raises(PathError):
        confine(str(link))
    with pytest.raises(DataError, match="outside the folders"):
        ui_source(str(link))
    assert ui_source("someone/hub-dataset") == "someone/hub-dataset"  # hub ids are not paths
    monkeypatch.setenv("WORKBENCH_ALLOWED_ROOTS", str(tmp_path))
    assert confine(str(link)) == outside.resolve()


def test_upload_copies_under_a_new_name_with_a_size_limit(data_dir, tmp_path, monkeypatch):
    src = write(tmp_path / "my data.jsonl", ALPACA)
    first = load.save_upload(src)
    second = load.save_upload(src)
    assert first == data_dir / "uploads" / "my-data.jsonl" and second.name == "my-data-2.jsonl"  # core.formatting.safe_name
    assert first.read_bytes() == second.read_bytes() == src.read_bytes()
    with pytest.raises(DataError, match="unsupported file type"):
        load.save_upload(write(tmp_path / "x.txt", ALPACA, "jsonl"))
    monkeypatch.setenv("WORKBENCH_MAX_UPLOAD_MB", "0.0001")  # ~100 bytes
    with pytest.raises(DataError, match="over the 0 MB upload limit"):
        load.save_upload(src)
    assert len(list((data_dir / "uploads").iterdir())) == 2
