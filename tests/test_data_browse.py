"""The dataset browser: pages, search, category filter, jump to row, row views, stats and their stats."""
from __future__ import annotations

import json

import numpy as np
import pytest

from workbench.core.errors import DataError
from workbench.data import browse, stats
from workbench.data.load import load_canonical


def jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


@pytest.fixture
def hundred(data_dir):
    """100 Dolly rows: category c0..c3 by i % 4; 'needle' in rows 7 and 70; empty context on odd rows;
    row 99 repeats row 98's text fields exactly (category c3); row 50's response repeats row 49's."""
    rows = [{"instruction": f"Instruction {i}" + (" NEEDLE" if i == 7 else ""), "context": "" if i % 2 else f"ctx {i}",
             "response": f"Response {i}" + (" with a needle" if i == 70 else ""), "category": f"c{i % 4}"}
            for i in range(100)]
    rows[99] = {**rows[98], "category": "c3"}
    rows[50]["response"] = rows[49]["response"]
    return browse.open_view(jsonl(data_dir / "hundred.jsonl", rows))


def test_pages(hundred):
    p = hundred.page(1, 25)
    assert p.columns == ["#", "category", "instruction", "input", "output"]
    assert [r["#"] for r in p.rows] == list(range(25)) and p.pages == 4 and p.matching == p.total == 100
    assert p.rows[2] == {"#": 2, "category": "c2", "instruction": "Instruction 2", "input": "ctx 2",
                         "output": "Response 2"}
    assert p.info == "rows 1–25 of 100 · page 1 of 4"
    last = hundred.page(99, 30)  # past the end: clamped to the last page
    assert last.page == 4 and [r["#"] for r in last.rows] == list(range(90, 100))
    assert hundred.page(2, 10).rows[0]["#"] == 10


def test_search_and_category_filter(hundred):
    p = hundred.page(1, 25, query="needle")  # case-insensitive, in any field
    assert [r["#"] for r in p.rows] == [7, 70] and p.matching == 2
    assert "2 matching of 100" in p.info
    c1 = hundred.page(1, 10, category="c1")
    assert c1.matching == 25 and all(r["category"] == "c1" for r in c1.rows) and c1.rows[0]["#"] == 1
    both = hundred.page(1, 10, query="needle", category="c2")
    assert [r["#"] for r in both.rows] == [70]
    none = hundred.page(1, 10, query="nothing like this")
    assert none.rows == [] and none.info.startswith("no row matches")


def test_jump_to_row_and_row_views(hundred):
    assert hundred.page_of_row(57, 25) == 3
    assert hundred.raw_row(7)["context"] == "" and hundred.raw_row(7)["instruction"].endswith("NEEDLE")
    assert hundred.canonical_row(8) == {"instruction": "Instruction 8", "input": "ctx 8", "output": "Response 8",
                                        "category": "c0"}
    for bad in (100, -1, "x"):
        with pytest.raises(DataError, match="no row|whole number"):
            hundred.canonical_row(bad)


def test_row_view_matches_what_training_uses(data_dir):
    """The row shown is the row the engine trains on (load.load_canonical)."""
    rows = [{"instruction": "I", "context": "C", "response": "R", "category": "k", "extra": 1}]
    path = jsonl(data_dir / "d.jsonl", rows)
    view = browse.open_view(path, "alpaca", {"context": "input", "response": "output"})
    trained, _ = load_canonical(path, "alpaca", {"context": "input", "response": "output"})
    assert view.canonical_row(0) == trained[0]
    assert "ignored: extra" in view.detection.reason


def test_views_are_cached_until_the_file_changes(data_dir):
    path = jsonl(data_dir / "c.jsonl", [{"instruction": "a", "output": "b"}])
    first = browse.open_view(path)
    assert browse.open_view(path) is first
    jsonl(data_dir / "c.jsonl", [{"instruction": "a", "output": "b"}, {"instruction": "c", "output": "d"}])
    assert len(browse.open_view(path)) == 2


def test_stats_counts(hundred, tokenizer):
    s = hundred.stats(tokenizer, "SmolLM2")
    assert s.rows == 100 and s.categories == {"c0": 25, "c1": 25, "c2": 25, "c3": 25}
    assert s.empty == {"instruction": 0, "input": 49, "output": 0}  # odd rows, but 99 copies 98's context
    assert s.duplicates == {"instruction": 1, "input": 1, "output": 2}
    assert s.duplicate_rows == 1
    assert list(s.chars["instruction"][:3]) == [13, 13, 13] and len(s.chars["output"]) == 100
    assert s.token_rows == 100 and len(s.tokens["output"]) == 100
    assert s.tokens["instruction"][0] == len(tokenizer("Instruction 0", add_special_tokens=False)["input_ids"])
    md = stats.stats_markdown(s)
    assert "**100 rows** · 1 exact duplicate rows" in md and "| input | 49 | 1 |" in md and "all 100 rows" in md


def test_token_lengths_are_sampled_on_big_data(hundred, tokenizer):
    tokens, n = hundred.token_lengths(tokenizer, sample=20)
    assert n == 20 and all(len(v) == 20 for v in tokens.values())
    s = hundred.stats(tokenizer, "x", sample=20)
    assert "a random sample of 20 rows" in stats.stats_markdown(s)


def test_chat_datasets_browse_by_role(data_dir):
    rows = [{"conversations": [{"from": "system", "value": "Sys"}, {"from": "human", "value": "Hello there"},
                               {"from": "gpt", "value": "Hi"}, {"from": "human", "value": "More"},
                               {"from": "gpt", "value": "Sure"}]},
            {"conversations": [{"from": "human", "value": "Only"}, {"from": "gpt", "value": "One"}]}]
    view = browse.open_view(jsonl(data_dir / "sg.jsonl", rows))
    assert view.format == "sharegpt"
    p = view.page(1, 10)
    assert p.columns == ["#", "category", "turns", "system", "user", "assistant"]
    assert p.rows[0] == {"#": 0, "category": "", "turns": 2, "system": "Sys", "user": "Hello there\n\nMore",
                         "assistant": "Hi\n\nSure"}
    assert [r["#"] for r in view.page(1, 10, query="THERE").rows] == [0]
    assert view.canonical_row(1)["messages"][1] == {"role": "assistant", "content": "One"}
    s = view.stats()
    assert s.empty["system"] == 1 and s.rows == 2


def test_long_cells_are_cut_in_the_table_only(data_dir):
    view = browse.open_view(jsonl(data_dir / "long.jsonl", [{"instruction": "x" * 1000, "output": "y"}]))
    assert view.page(1, 10).rows[0]["instruction"] == "x" * browse.CELL_CHARS + "…"
    assert view.canonical_row(0)["instruction"] == "x" * 1000


def test_histograms_are_prebinned():
    lengths = {"a": np.array([1, 2, 3, 50, 1000]), "b": np.arange(200), "empty": np.array([], dtype=int)}
    fig = stats.length_histogram(lengths, "tokens")
    assert [t.name for t in fig.data] == ["a", "b"]
    assert sum(fig.data[0].y) == 5 and sum(fig.data[1].y) == 200  # every row in some bar, the tail in the last
    assert len(fig.data[1].x) <= stats.BINS + 2 and "last bar" in fig.layout.title.text
    bar = stats.category_bar({"x": 3, "": 1})
    assert list(bar.data[0].x) == ["x", "(none)"] and list(bar.data[0].y) == [3, 1]


@pytest.mark.browser
@pytest.mark.slow
def test_data_tab_in_a_browser(page):
    """The Data tab on load shows the first page and row 0's trained tokens; search and a row click work."""
    from conftest import screenshot

    page.get_by_role("tab", name="Data").click()
    page.get_by_text("Why does ice float on water?").first.wait_for()
    trained = page.locator(".token-preview .tok-trained")
    trained.first.wait_for()
    assert "".join(trained.all_inner_texts()).startswith("Why does ice float on water?")
    page.get_by_label("Search").fill("longest river")
    page.get_by_label("Search").press("Enter")
    page.get_by_text("rows 1–1 of 1 matching of 240").wait_for()
    page.get_by_role("gridcell", name="What is the longest river in South America?").first.click()
    target = page.get_by_label("Target (trained)")
    page.wait_for_function("el => el.value.startsWith('What is the longest river')", arg=target.element_handle())
    assert target.input_value() == "What is the longest river in South America?<|im_end|>"
    assert page.get_by_label("Row #").input_value() == "3"
    screenshot(page, "data_tab")
