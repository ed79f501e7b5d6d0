"""The Data and Templates tabs through their API (gradio_client against the launched app): every public
action, and every kind of bad input answered with a clear message while the app keeps serving."""
from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
from gradio_client import handle_file
from gradio_client.exceptions import AppError

DOLLY = ["data/dolly_sample.jsonl", "", "train", "auto", ""]  # source, hub config, hub split, format, column map


@pytest.fixture(scope="module")
def dirs(tmp_path_factory):
    """Own data/ and templates/ folders (the app runs in this process and reads the env per call)."""
    from workbench.core.paths import templates_dir

    root = tmp_path_factory.mktemp("api-data")
    data, tpl = root / "data", root / "templates"
    data.mkdir()
    shutil.copytree(templates_dir(), tpl)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("WORKBENCH_DATA", str(data))
        mp.setenv("WORKBENCH_TEMPLATES", str(tpl))
        mp.delenv("WORKBENCH_ALLOWED_ROOTS", raising=False)
        yield data, tpl


def view(source, fmt="auto", column_map=""):
    return [str(source), "", "train", fmt, column_map]


def load(client, source, skip=False, fmt="auto", column_map=""):
    return client.predict(*view(source, fmt, column_map), skip, 25, api_name="/load_dataset")


def test_load_browse_and_row(client, dirs):
    status, source, category, page, table, info, split = load(client, DOLLY[0])
    assert status.startswith("✅") and "240 rows" in status and "format **dolly**" in status
    assert "context→input" in status and "response→output" in status  # what the model is trained on
    assert source == DOLLY[0] and page == 1 and info == "rows 1–25 of 240 · page 1 of 10"
    assert table["headers"] == ["#", "category", "instruction", "input", "output"] and len(table["data"]) == 25
    assert [c[0] for c in category["choices"]][:2] == ["(all)", "brainstorming"]
    assert "train 204" in split and "validation 24" in split and "test 12" in split

    table, info, page = client.predict(*DOLLY, "", "open_qa", 2, 10, api_name="/dataset_page")
    assert page == 2 and "30 matching of 240" in info and {r[1] for r in table["data"]} == {"open_qa"}
    table, info, page = client.predict(*DOLLY, "EMAIL ADDRESSES", "(all)", 1, 10, api_name="/dataset_page")
    assert len(table["data"]) >= 1 and all("email" in " ".join(map(str, r)).lower() for r in table["data"])

    raw, canonical = client.predict(*DOLLY, 3, api_name="/dataset_row")
    assert raw["response"] == canonical["output"] and raw["context"] == canonical["input"]
    table, info, page, query, cat, raw, canonical = client.predict(*DOLLY, 57, 25, api_name="/jump_to_row")
    assert page == 3 and 57 in [r[0] for r in table["data"]] and raw["instruction"] == canonical["instruction"]
    with pytest.raises(AppError, match="there is no row 240"):
        client.predict(*DOLLY, 240, api_name="/dataset_row")
    assert "train 168** · validation 48 · test 24" in client.predict(*DOLLY, 0.2, 0.1, 7, api_name="/split_sizes")


def test_preview_stats_and_templates(client, dirs):
    prompt, target, counts, html = client.predict(*DOLLY, 3, "reverse_instruction", "default", 512, "responses",
                                                  api_name="/preview_template")
    assert prompt.startswith("### Instruction:\nUse the Input below to create an instruction")
    assert target == "What is the longest river in South America?<|im_end|>"
    assert "target (trained)" in counts and "of max_length 512" in counts and "Truncated" not in counts
    assert "tok-trained" in html and "tok-masked" in html
    *_, counts, _ = client.predict(*DOLLY, 3, "chatml", "default", 40, "responses", api_name="/preview_template")
    assert "Truncated" in counts
    with pytest.raises(AppError, match="outside the folders"):  # a model folder is a path like any other
        client.predict(*DOLLY, 0, "alpaca", "/etc", 512, "responses", api_name="/preview_template")
    with pytest.raises(AppError, match="not in the local Hugging Face cache"):
        client.predict(*DOLLY, 0, "alpaca", "someone/no-such-model", 512, "responses", api_name="/preview_template")

    md, chars, tokens, cats = client.predict(*DOLLY, "default", api_name="/dataset_stats")
    assert "**240 rows**" in md and "| input | 146 |" in md and "all 240 rows" in md
    assert all(p and p.get("type") == "plotly" for p in (chars, tokens, cats))

    text, about, name = client.predict("alpaca", api_name="/template_source")
    assert "### Instruction:" in text and "trained: the response" in about and name == "alpaca"
    prompt, target, counts, _ = client.predict(text.replace("### Response:", "### Answer:"), DOLLY[0], "", 0, "default",
                                               512, "responses", api_name="/preview_template_draft")
    assert prompt.endswith("### Answer:\n") and target.endswith("<|im_end|>")


def test_save_template_validates_names_and_never_overwrites_silently(client, dirs):
    _, tpl = dirs
    text = 'kind: instruction\ndescription: Q and A\nprompt: "Q: {instruction}\\nA: "\nresponse: "{output}"\n'
    status, choices = client.predict(text, "qa_short", False, api_name="/save_template")
    assert status.startswith("✅") and (tpl / "qa_short.yaml").read_text() == text
    assert "qa_short" in [c[0] for c in choices["choices"]]
    status, _ = client.predict(text.replace("Q and A", "changed"), "qa_short", False, api_name="/save_template")
    assert "already exists" in status and "Q and A" in (tpl / "qa_short.yaml").read_text()
    status, _ = client.predict(text.replace("Q and A", "changed"), "qa_short", True, api_name="/save_template")
    assert status.startswith("✅") and "changed" in (tpl / "qa_short.yaml").read_text()
    for bad_name, why in (("../escape", "name"), ("Has Space", "name")):
        assert why in client.predict(text, bad_name, False, api_name="/save_template")[0]
    assert "not valid YAML" in client.predict("prompt: [", "broken", False, api_name="/save_template")[0]
    prompt, *_ = client.predict(*DOLLY, 0, "qa_short", "default", 512, "responses", api_name="/preview_template")
    assert prompt.startswith("Q: Why does ice float on water?\nA: ")


def test_clean_saves_a_new_file_and_leaves_the_source(client, dirs):
    data, _ = dirs
    src = data / "dups.jsonl"
    rows = [{"instruction": f"Question number {i}?", "output": f"Answer {i}, mail me at a{i}@example.com"}
            for i in range(5)]
    src.write_text("".join(json.dumps(r) + "\n" for r in rows + rows[:2]))
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    report, path = client.predict(*view(src), 0, 0, "", True, True, 0.85, True, "default", api_name="/clean_dataset")
    assert "7 rows in → 5 rows out" in report and "Exact duplicates**: removed 2 rows" in report
    assert Path(path) == data / "cleaned" / "dups.clean-v1.jsonl"
    assert "[EMAIL]" in Path(path).read_text() and "@example.com" not in Path(path).read_text()
    assert hashlib.sha256(src.read_bytes()).hexdigest() == digest
    status, *_ = load(client, path)
    assert status.startswith("✅") and "5 rows" in status


def test_upload_then_load(client, dirs, tmp_path):
    data, _ = dirs
    up = tmp_path / "my upload.csv"
    up.write_text("question,answer\nWhat is 2+2?,4\nCapital of France?,Paris\n")
    source = client.predict(handle_file(str(up)), api_name="/upload_dataset")
    assert Path(source) == data / "uploads" / "my-upload.csv" and Path(source).read_text() == up.read_text()
    status, *_ = load(client, source)
    assert "no known format fits" in status and "answer, question" in status  # columns found, what is missing
    status, *_, table, info, _ = load(client, source, column_map="question→instruction, answer→output")
    assert status.startswith("✅") and "format **alpaca**" in status and table["data"][1][4] == "Paris"


def test_load_message_says_how_the_file_was_read_and_names_unusable_rows(client, dirs):
    data, _ = dirs
    src = data / "excel.csv"
    src.write_bytes("instruction;output\nSay hi, please;Hi, you\nEmpty answer;\nCount;3\n".encode("utf-8-sig"))
    status, *_, table, info, _ = load(client, src)
    assert status.startswith("✅") and "CSV delimiter ';' (semicolon); UTF-8 byte-order mark skipped" in status
    assert "1 of 3 rows has a missing" in status and "#1: output is missing (null)" in status
    assert table["data"][0][2:] == ["Say hi, please", "", "Hi, you"] and "of 3" in info


@pytest.mark.parametrize("name,content,message", [
    ("empty.jsonl", b"", "is empty"),
    ("latin1.jsonl", '{"instruction": "café", "output": "x"}\n'.encode("latin-1"), "not UTF-8 text"),
    ("picture.json", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00", "binary file"),
    ("cols.jsonl", b'{"text": "a", "label": 1}\n', "no known format fits the columns found (label, text)"),
    ("../../etc/passwd", None, "outside the folders"),
    ("/etc/hostname", None, "outside the folders"),
])
def test_bad_input_gives_a_clear_message_and_the_app_keeps_serving(client, dirs, name, content, message):
    data, _ = dirs
    source = name
    if content is not None:
        (data / name).write_bytes(content)
        source = str(data / name)
    status, *_ = load(client, source)
    assert status.startswith("❌") and message in status
    status, *_ = load(client, DOLLY[0])
    assert status.startswith("✅")


def test_malformed_lines_are_named_and_can_be_skipped(client, dirs):
    data, _ = dirs
    src = data / "broken.jsonl"
    src.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "c", "output":\n'
                   '{"instruction": "d", "output": "e"}\nnot json\n')
    status, *_ = load(client, src)
    assert "2 malformed lines" in status and "line 2:" in status and "line 4:" in status
    status, source, _, _, table, *_ = load(client, src, skip=True)
    assert status.startswith("✅") and "Skipped 2 malformed lines" in status
    assert Path(source) == data / "cleaned" / "broken.valid-v1.jsonl" and len(table["data"]) == 2
    with pytest.raises(AppError, match="outside the folders"):  # every handler refuses, not only load
        client.predict(*view("/etc/passwd"), "", "(all)", 1, 10, api_name="/dataset_page")
