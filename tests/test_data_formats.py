"""Files people really have: input_text/target_text rows, bare message lists, ';' / tab CSV with a BOM, rows
under one top-level JSON key; and the format list every form offers is the one the loader knows."""
from __future__ import annotations

import csv
import json

import pytest

from workbench.config.run import DataCfg
from workbench.core.errors import DataError
from workbench.data import browse
from workbench.data.formats import FORMATS
from workbench.data.load import load_canonical
from workbench.data.read import read_raw
from workbench.data.repair import MalformedLinesError, write_valid_lines

CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello."}]


def test_format_choices_are_the_loaders_formats_plus_auto():
    import dataclasses

    choices = next(f for f in dataclasses.fields(DataCfg) if f.name == "format").metadata["choices"]
    assert choices == ["auto", *FORMATS]


def test_input_target_rows(data_dir):
    path = data_dir / "it.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in [{"input_text": "Translate: chat", "target_text": "cat"},
                                                           {"input_text": "Translate: chien", "target_text": "dog"}]))
    ds, det = load_canonical(str(path))
    assert det.format == "input_target" and "input_text, target_text match the input_target schema" in det.reason
    assert ds[1] == {"instruction": "Translate: chien", "input": "", "output": "dog", "category": ""}
    assert "input_text→instruction" in browse.describe(browse.open_view(str(path)))


def test_jsonl_lines_that_are_bare_message_lists(data_dir):
    path = data_dir / "chats.jsonl"
    second = [{"role": "user", "content": "2+2?"}, {"role": "assistant", "content": "4"}]
    path.write_text(json.dumps(CHAT) + "\n\n" + json.dumps(second) + "\n")
    ds, det = load_canonical(str(path))
    assert det.format == "messages" and len(ds) == 2
    assert ds[0]["messages"] == CHAT and ds[1]["messages"][1] == {"role": "assistant", "content": "4"}
    assert any("bare list of {role, content} messages" in n for n in det.notes)
    view = browse.open_view(str(path))
    assert view.page(1, 10).rows[1]["assistant"] == "4" and "bare list" in browse.describe(view)


def test_bare_message_lines_with_a_broken_line_can_be_repaired(data_dir):
    path = data_dir / "chats_bad.jsonl"
    path.write_text(json.dumps(CHAT) + "\n" + '[{"role": "user"' + "\n" + json.dumps(CHAT) + "\n[1, 2]\n")
    with pytest.raises(MalformedLinesError) as e:
        load_canonical(str(path))
    assert [n for n, _ in e.value.bad] == [2, 4] and e.value.n_good == 2
    assert "line 4: not a list of {role, content} messages" in str(e.value)
    fixed, skipped = write_valid_lines(path)
    assert skipped == 2
    ds, det = load_canonical(str(fixed))
    assert det.format == "messages" and len(ds) == 2


@pytest.mark.parametrize("delimiter,name", [(";", "semicolon"), ("\t", "tab"), (",", "comma")])
def test_csv_delimiter_is_sniffed_and_a_bom_skipped(data_dir, delimiter, name):
    path = data_dir / "excel.csv"
    rows = [["instruction", "output"], ["Say hello, politely", "Hello, dear friend"], ["Count: 1, 2", "3"],
            ["Name a colour", "Blue, or red"]]
    # utf-8-sig writes the byte-order mark Excel puts in front of "UTF-8 CSV" files; csv quotes as Excel does
    with open(path, "w", encoding="utf-8-sig", newline="") as f:
        csv.writer(f, delimiter=delimiter).writerows(rows)
    raw, notes = read_raw(str(path))
    assert raw.column_names == ["instruction", "output"]  # no "\ufeffinstruction", no single merged column
    assert notes == [f"CSV delimiter {delimiter!r} ({name}); UTF-8 byte-order mark skipped"]
    ds, det = load_canonical(str(path))
    assert det.format == "alpaca" and ds[0]["output"] == "Hello, dear friend"
    assert ds[1]["output"] == "3"  # CSV cells are text: a number is an answer like any other
    assert f"CSV delimiter {delimiter!r}" in browse.describe(browse.open_view(str(path)))


def test_csv_with_a_column_named_twice_is_refused(data_dir):
    path = data_dir / "twice.csv"
    path.write_text("instruction;output;output\na;b;c\n")
    with pytest.raises(DataError, match="names the column output more than once"):
        load_canonical(str(path))


@pytest.mark.parametrize("key", ["data", "rows", "examples", "train", "items"])
@pytest.mark.parametrize("indent", [None, 2])
def test_json_rows_under_one_top_level_key(data_dir, key, indent):
    path = data_dir / "wrapped.json"
    rows = [{"instruction": "Q1", "output": "A1"}, {"instruction": "Q2", "output": "A2"}]
    path.write_text(json.dumps({"version": "1.0", key: rows}, indent=indent))
    ds, det = load_canonical(str(path))
    assert det.format == "alpaca" and [r["output"] for r in ds] == ["A1", "A2"]
    assert det.notes == [f"rows read from the top-level key {key!r}"]
    assert f"top-level key '{key}'" in browse.describe(browse.open_view(str(path)))


def test_a_one_line_row_is_not_taken_for_a_wrapper(data_dir):
    """{"messages": [...]} on one line is one row of the messages format, not rows under "messages"."""
    path = data_dir / "one.jsonl"
    path.write_text(json.dumps({"messages": CHAT}) + "\n")
    ds, det = load_canonical(str(path))
    assert det.format == "messages" and len(ds) == 1 and det.notes == []


def test_json_object_without_one_list_of_rows_says_what_it_needs(data_dir):
    path = data_dir / "two_lists.json"
    path.write_text(json.dumps({"train": [{"instruction": "a", "output": "b"}],
                                "test": [{"instruction": "c", "output": "d"}]}, indent=2))
    with pytest.raises(DataError, match=r"several lists of rows \(train, test\); keep one"):
        load_canonical(str(path))


def test_excel_unicode_text_and_a_chinese_excel_csv_load_with_their_columns(data_dir):
    """Excel's "Unicode text" export: UTF-16 with a byte-order mark, tab-separated, CRLF lines. A CSV saved by a
    Chinese Excel: GB18030. A Latin-1 CSV: detected too. Each loads with its columns and its text decoded."""
    import codecs

    rows = [("写一首关于春天的诗", "春风吹绿了江南岸，桃花开满山坡。"), ("Größe?", "“Naïve” café — 5 €")]
    tsv = data_dir / "excel-unicode.tsv"
    body = "\r\n".join("\t".join(r) for r in [("instruction", "output"), *rows]) + "\r\n"
    tsv.write_bytes(codecs.BOM_UTF16_LE + body.encode("utf-16-le"))
    raw, notes = read_raw(str(tsv))
    assert raw.column_names == ["instruction", "output"] and [tuple(r.values()) for r in raw] == rows
    assert "tab" in notes[0] and "decoded as utf-16" in notes[0]
    ds, det = load_canonical(str(tsv))
    assert det.format == "alpaca" and ds[0]["output"] == rows[0][1]

    gb = data_dir / "chinese-excel.csv"
    chinese = [("问题", "回答"), *[(f"第{i}个问题：今天天气怎么样？", f"今天是晴天，气温二十五度，适合出门散步。{i}") for i in range(3)]]
    gb.write_bytes("\r\n".join(",".join(r) for r in chinese).encode("gb18030"))
    raw, notes = read_raw(str(gb))
    assert raw.column_names == ["问题", "回答"] and raw[2]["回答"] == chinese[3][1]
    assert "decoded as gb18030" in notes[0]

    latin = data_dir / "latin1.csv"
    latin.write_bytes("instruction,output\nok,x\ncafé crème,y\n".encode("latin-1"))
    assert read_raw(str(latin))[0][1]["instruction"] == "café crème"

    # JSON stays UTF-8 (pyarrow reads nothing else): a UTF-16 JSON file is refused with what to do.
    utf16 = data_dir / "notepad.jsonl"
    utf16.write_bytes(codecs.BOM_UTF16_LE + '{"instruction": "a", "output": "b"}\n'.encode("utf-16-le"))
    with pytest.raises(DataError, match="notepad.jsonl is utf-16-le text .*JSON files must be UTF-8"):
        read_raw(str(utf16))
