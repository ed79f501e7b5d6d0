"""Texts in every script and encoding, as people save them: one folder of files in GB18030, Shift-JIS, UTF-16
with a byte-order mark, cp1252 with curly quotes, Thai in UTF-8, an empty file and a binary file. Every text
file yields its text decoded right, the empty and binary ones are named as skipped with the reason; chunks in
scripts without spaces are counted in tokens (labelled, not dropped as "one word"); the `generate` CLI's last
lines and the dataset card say what happened to each file."""
from __future__ import annotations

import codecs
import json
from pathlib import Path

import pytest

from workbench.backtranslation.chunks import chunk_texts
from workbench.backtranslation.sources import SourceText, read_texts
from workbench.core.errors import DataError
from workbench.data.text_files import decode

CHINESE = ("春天来了，公园里的花都开了。每天早上，很多老人在湖边打太极拳，孩子们在草地上放风筝。我们周末常常去那里散步，"
           "呼吸新鲜空气，心情也变得很好。")
JAPANESE = ("日本の秋はとても美しい季節です。山の木々が赤や黄色に色づき、多くの人が紅葉を見に出かけます。京都の寺では、"
            "夜になるとライトアップが行われます。")
NOTEPAD = "Größe, naïve café — “Unicode” as Windows Notepad saves it: UTF-16 with a byte-order mark, CRLF lines."
QUOTES = ("“Don’t worry,” she said — “the café opens at nine, and we’ll get there in time.” He smiled; it was the "
          "best news he’d heard all week.")
THAI = ("กรุงเทพมหานครเป็นเมืองหลวงของประเทศไทย มีประชากรมากกว่าสิบล้านคน และมีวัดที่สวยงามมากมาย "
        "นักท่องเที่ยวจากทั่วโลกมาเยี่ยมชมพระบรมมหาราชวังทุกปี")
ARABIC = "القاهرة هي عاصمة مصر وأكبر مدنها، ويعيش فيها ملايين الناس على ضفاف نهر النيل منذ آلاف السنين."
TEXTS = {"chinese.txt": CHINESE, "japanese.txt": JAPANESE, "notepad.txt": NOTEPAD, "quotes.txt": QUOTES,
         "thai.md": THAI}


@pytest.fixture
def mixed(data_dir) -> Path:
    folder = data_dir / "world"
    folder.mkdir()
    (folder / "chinese.txt").write_bytes(CHINESE.encode("gb18030"))
    (folder / "japanese.txt").write_bytes(JAPANESE.encode("shift_jis"))
    (folder / "notepad.txt").write_bytes(codecs.BOM_UTF16_LE + NOTEPAD.replace("\n", "\r\n").encode("utf-16-le"))
    (folder / "quotes.txt").write_bytes(QUOTES.encode("cp1252"))
    (folder / "thai.md").write_text(THAI, encoding="utf-8")
    (folder / "empty.txt").write_bytes(b"")
    (folder / "blob.txt").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    return folder


def test_every_text_file_is_decoded_right_and_the_others_are_named_with_the_reason(mixed):
    reading = read_texts(str(mixed))
    got = {Path(t.source).name: t.text for t in reading.texts}
    assert got == TEXTS  # every character right: the curly quotes, the kana, the Thai vowels
    assert {Path(f).name: why for f, why in reading.skipped} == {"blob.txt": "binary file (NUL bytes)",
                                                                  "empty.txt": "empty file (0 bytes)"}
    detected = {Path(f).name: enc for f, enc in reading.encodings.items()}
    assert detected["chinese.txt"] == "gb18030" and detected["quotes.txt"] == "cp1252"
    assert detected["japanese.txt"] in ("cp932", "shift_jis") and set(detected) == {"chinese.txt", "japanese.txt",
                                                                                     "quotes.txt"}
    assert {Path(f).name: e for f, e in reading.marked.items()} == {"notepad.txt": "utf-16-le"}
    summary = reading.summary()
    assert "decoded by detection: chinese.txt (gb18030)" in summary and "notepad.txt (utf-16-le)" in summary
    assert "2 files skipped: blob.txt (binary file (NUL bytes)); empty.txt (empty file (0 bytes))" in summary

    # One such file given alone is refused with its name and why.
    with pytest.raises(DataError, match="empty.txt cannot be read as text: empty file"):
        read_texts(str(mixed / "empty.txt"))


@pytest.mark.parametrize("mark, codec", [(codecs.BOM_UTF32_LE, "utf-32-le"), (codecs.BOM_UTF32_BE, "utf-32-be"),
                                         (codecs.BOM_UTF16_BE, "utf-16-be"), (codecs.BOM_UTF8, "utf-8")])
def test_every_byte_order_mark_comes_before_the_binary_test(mark, codec):
    decoded = decode(mark + CHINESE.encode(codec))
    assert decoded.text == CHINESE and decoded.encoding == codec
    assert decoded.how == ("utf-8" if codec == "utf-8" else "byte-order mark")  # UTF-8's mark is not news


def test_lengths_are_tokens_so_every_script_is_labelled_and_split(tokenizer):
    texts = [SourceText(name, text) for name, text in
             [("zh", CHINESE), ("ja", JAPANESE), ("th", THAI), ("ar", ARABIC), ("short", "Too short.")]]
    chunking = chunk_texts(texts, tokenizer, budget=400, min_tokens=10)
    assert [c.source for c in chunking.chunks] == ["zh", "ja", "th", "ar"]  # one whitespace "word" each, kept
    assert chunking.too_short == 1

    # A long text without a space is split at its sentence ends (。) and, where a sentence is longer than the
    # budget, at the budget's tokens: every piece fits, nothing is lost.
    long = "".join(f"第{i}段：" + CHINESE for i in range(8)) + "没有句号的长句" * 60
    chunking = chunk_texts([SourceText("long", long)], tokenizer, budget=48, min_tokens=1, dedup=False)
    pieces = [c.text for c in chunking.chunks]
    assert len(pieces) > 8 and chunking.split_texts == 1
    count = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in pieces]
    assert max(count) <= 48, count
    assert "".join("".join(p.split()) for p in pieces) == "".join(long.split())


def test_the_cli_the_tab_and_the_card_name_every_skipped_file_and_every_encoding(lora_run, mixed, data_dir, capsys,
                                                                               tokenizer):
    from workbench.cli import main
    from workbench.ui.tabs.generate_review import files_note, open_generation

    out = data_dir / "generated" / "world.jsonl"
    rc = main(["generate", "--run", str(lora_run.run_dir), "--texts", str(mixed), "--out", str(out),
               "--gen.max-new-tokens", "4", "--batch-size", "8"])
    printed = capsys.readouterr()
    assert rc == 0, printed.err
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    last = printed.out.strip().splitlines()[-4:]  # the summary's lines, at the default log level
    assert last[0].startswith(f"{len(rows)} pairs labelled and scored") and f"kept {len(rows)}" in last[0]
    assert last[1].startswith("decoded by detection: chinese.txt (gb18030), japanese.txt (")
    assert last[1].endswith("quotes.txt (cp1252)")
    assert last[2] == "decoded by byte-order mark: notepad.txt (utf-16-le)"
    assert last[3] == "2 files skipped: blob.txt (binary file (NUL bytes)); empty.txt (empty file (0 bytes))"

    # Every text is labelled whole: the run's 128-token budget splits the longer ones, nothing is dropped.
    by_source: dict[str, list] = {}
    for r in sorted(rows, key=lambda r: r["provenance"]["chunk"]):
        by_source.setdefault(Path(r["provenance"]["source"]).name, []).append(r["output"])
    assert {name: "".join("".join(parts).split()) for name, parts in by_source.items()} == \
        {name: "".join(text.split()) for name, text in TEXTS.items()}

    card = out.with_name("world.card.md").read_text(encoding="utf-8")
    assert "| files skipped | 2 |" in card and "(< 10 tokens)" in card
    assert "blob.txt`: skipped, binary file (NUL bytes)" in card and "empty.txt`: skipped, empty file" in card
    assert "chinese.txt`: decoded as gb18030 (detection)" in card
    assert "notepad.txt`: decoded as utf-16-le (byte-order mark)" in card

    # The Generate tab says the same in the job's message; its length column is the instruction's tokens.
    note = files_note("world")
    assert "chinese.txt (gb18030)" in note and "blob.txt (binary file (NUL bytes))" in note
    table, _ = open_generation("world", 0)
    counts = [len(tokenizer(i, add_special_tokens=False)["input_ids"]) for i in table["instruction"]]
    assert table["tokens"].tolist() == counts
