"""Cleaning: PII masking, length filter, exact and near-duplicate removal, the report and the new file."""
from __future__ import annotations

import hashlib
import json

import pytest

from workbench.core.errors import DataError
from workbench.data import quality
from workbench.data.formats import detect_format
from workbench.data.load import load_canonical
from workbench.data.repair import mask_pii
from workbench.data.quality import CleanOptions
from workbench.data.read import load_raw


@pytest.mark.parametrize("text,expected,kinds", [
    ("Write to jane.doe+news@mail.example.org today", "Write to [EMAIL] today", {"email": 1}),
    ("Call +1 (555) 123-4567 or 555-123-4567.", "Call [PHONE] or [PHONE].", {"phone": 2}),
    ("Ring +44 20 7946 0958", "Ring [PHONE]", {"phone": 1}),
    ("Server 192.168.10.254 and 2001:db8::8a2e:370:7334 up", "Server [IP] and [IP] up", {"ip": 2}),
    ("Card 4111 1111 1111 1111, also 5500-0000-0000-0004", "Card [CARD], also [CARD]", {"card": 2}),
])
def test_pii_is_masked(text, expected, kinds):
    masked, counts = mask_pii(text)
    assert masked == expected and dict(counts) == kinds


@pytest.mark.parametrize("text", [
    "The war lasted 1939-1945 and cost 12 345 lives.",  # year ranges, grouped numbers
    "Released 2023-10-12, or 12.10.2023 in Europe.",  # dates
    "Order 4111 1111 1111 1112 failed.",  # card-like but fails the Luhn check
    "999.1.1.1 is not an address, 10:30 is a time.",  # invalid IPv4, a time
    "Pi is 3.14159 and e is 2.71828.",
])
def test_things_that_are_not_pii_stay(text):
    assert mask_pii(text) == (text, {})


def rows_file(data_dir, rows, name="src.jsonl"):
    path = data_dir / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def load(path):
    raw = load_raw(str(path))
    return raw, detect_format(raw.column_names).format


STORY = ("the quick brown fox jumps over the lazy dog while the farmer watches from the old red barn near the "
         "river and the children play in the tall green grass of the summer meadow; later that evening the whole "
         "family sits down to a long dinner of bread, cheese and soup, talks about the harvest and the weather, "
         "and goes to bed early because the cows must be milked before the sun rises over the eastern hills")


def test_clean_pipeline_report_and_versioned_output(data_dir, tokenizer):
    rows = [
        {"instruction": "Summarize.", "input": STORY, "output": "A fox jumps over a dog.", "category": "s"},  # 0
        {"instruction": "Summarize.", "input": STORY, "output": "A fox jumps over a dog.", "category": "s"},  # 1 exact
        {"instruction": "Summarize.", "input": STORY.replace("long dinner", "late dinner"),
         "output": "A fox jumps over a dog.", "category": "s"},  # 2 near-duplicate of 0
        {"instruction": "Hi", "input": "", "output": "Yo", "category": "t"},  # 3 too short
        {"instruction": "Email me at bob@example.com", "input": "", "output": "Sure, I will write soon.",
         "category": "t"},  # 4 masked
        {"instruction": "Name three colours of the rainbow.", "input": "", "output": "Red, orange and yellow.",
         "category": "t"},  # 5 kept as is
    ]
    src = rows_file(data_dir, rows)
    digest = hashlib.sha256(src.read_bytes()).hexdigest()
    raw, fmt = load(src)
    result = quality.clean_dataset(raw, fmt, CleanOptions(min_tokens=8, max_tokens=200), tokenizer, "src")
    assert (result.rows_in, result.rows_out) == (6, 3)
    steps = {s.step: s for s in result.steps}
    assert steps["Length filter"].removed == 1 and steps["Length filter"].examples[0].startswith("row 3: ")
    assert steps["Exact duplicates"].removed == 1 and steps["Exact duplicates"].examples[0].startswith("row 1 = row 0")
    assert steps["Near duplicates"].removed == 1 and steps["Near duplicates"].examples[0].startswith("row 2 ≈ row 0")
    assert steps["PII masking"].changed == 1 and "email: 1" in steps["PII masking"].detail
    assert "[EMAIL]" in steps["PII masking"].examples[0]
    assert result.path == data_dir / "cleaned" / "src.clean-v1.jsonl"
    out = [json.loads(line) for line in result.path.read_text().splitlines()]
    assert [r["instruction"] for r in out] == ["Summarize.", "Email me at [EMAIL]", rows[5]["instruction"]]
    assert out[2] == rows[5]
    report = json.loads(result.report_path.read_text())
    assert report["rows_out"] == 3 and report["options"]["min_tokens"] == 8
    md = result.markdown()
    assert "6 rows in → 3 rows out" in md and "src.clean-v1.jsonl" in md
    assert hashlib.sha256(src.read_bytes()).hexdigest() == digest  # the source is never modified
    # the cleaned file is a dataset the engine loads as it is
    ds, det = load_canonical(str(result.path))
    assert det.format == "alpaca" and len(ds) == 3
    # cleaning again makes v2 (nothing overwritten), and cleaning the cleaned file does not stack names
    again = quality.clean_dataset(raw, fmt, CleanOptions(near_dedup=False, mask_pii=False), None, "src")
    assert again.path.name == "src.clean-v2.jsonl" and again.rows_out == 5
    assert quality.clean_dataset(*load(result.path), CleanOptions(), None, result.path.stem).path.name == \
        "src.clean-v3.jsonl"


def test_length_filter_under_a_template_and_chat_rows(data_dir, tokenizer):
    rows = [{"messages": [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": "Hi there"}]},
            {"messages": [{"role": "user", "content": "word " * 300}, {"role": "assistant", "content": "ok"}]}]
    raw, fmt = load(rows_file(data_dir, rows, "chat.jsonl"))
    result = quality.clean_dataset(raw, fmt, CleanOptions(max_tokens=100, template="chatml"), tokenizer, "chat")
    assert result.rows_out == 1 and "template 'chatml'" in result.steps[0].detail
    assert json.loads(result.path.read_text())["messages"][1]["content"] == "Hi there"


def test_removing_every_row_is_refused(data_dir, tokenizer):
    raw, fmt = load(rows_file(data_dir, [{"instruction": "a", "output": "b"}]))
    with pytest.raises(DataError, match="removed every row"):
        quality.clean_dataset(raw, fmt, CleanOptions(min_tokens=1000), tokenizer, "src")
    assert not list((data_dir / "cleaned").glob("*.jsonl"))
