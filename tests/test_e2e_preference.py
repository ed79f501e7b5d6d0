"""The preference panels in a real browser: the Data tab shows the bundled pairs side by side with both rendered
sequences coloured; the Evaluate tab turns a real saved evaluation of the session's SFT run into a pair file,
measures preference accuracy of the adapter and the base, and compares the adapter with another run's."""
from __future__ import annotations

import json
import re
import shutil

import pytest
from test_e2e_browser import labelled, open_tab, pick, set_slider, visible

from conftest import ROOT, screenshot
from e2e_helpers import wait_for

pytestmark = [pytest.mark.browser, pytest.mark.slow]


def test_data_tab_browses_pairs_and_previews_both_sequences(page):
    open_tab(page, "Data")
    # The page's own first load of the default dataset writes the Dataset box: let it end before typing there.
    visible(page.get_by_text(re.compile(r"^✅ .*240 rows"))).first.wait_for()
    visible(page.get_by_text("Preference pairs (DPO / ORPO / KTO)")).first.click()
    labelled(page, "Dataset").fill("data/dolly_pairs.jsonl")
    visible(page.get_by_role("button", name="Show pairs")).first.click()
    visible(page.get_by_text("format pairs: 240 of 240 rows kept")).first.wait_for()
    first = json.loads((ROOT / "data" / "dolly_pairs.jsonl").read_text().splitlines()[0])
    chosen = page.locator("#pair-chosen .tok-trained")
    chosen.first.wait_for(state="attached", timeout=180_000)  # the tokenizer loads on first use
    trained = "".join(chosen.all_inner_texts())
    assert first["chosen"].split()[0] in trained and first["rejected"].split()[0] not in trained
    assert page.locator("#pair-rejected .tok-trained").count() and page.locator("#pair-rejected .tok-masked").count()
    shown = page.locator("#pairs-panel").inner_text()
    assert "chosen chars" in shown and first["rejected"][:25] in shown
    screenshot(page, "preference-pairs")


def test_evaluate_tab_builds_pairs_from_an_evaluation_and_scores_them(page, lora_run, data_dir):
    from workbench.core.paths import outputs_dir
    from workbench.evaluation.side_by_side import evaluate

    run = outputs_dir() / "sft-for-preference"  # where the app lists runs
    if not run.exists():
        shutil.copytree(lora_run.run_dir, run, ignore=shutil.ignore_patterns("checkpoints"))
        rows = [json.loads(line) for line in (ROOT / "data" / "dolly_sample.jsonl").read_text().splitlines()[50:54]]
        held = data_dir / "held.jsonl"
        held.write_text("".join(json.dumps(r) + "\n" for r in rows))
        evaluate(run, data=str(held), n=4, compare_base=False, max_new_tokens=8, name="for-pairs")

    open_tab(page, "Evaluate")
    visible(page.get_by_role("button", name="Refresh runs")).first.click()
    pick(page, "Run", "sft-for-preference")
    visible(page.get_by_text("Preference: pairs from this evaluation")).first.click()
    labelled(page, "Evaluation").fill("for-pairs")
    set_slider(page, "Minimum difference", 0.1)
    labelled(page, "File name in data/").fill("pairs-from-eval")
    visible(page.get_by_role("button", name="Build preference pairs")).first.click()
    visible(page.get_by_text(re.compile(r"\d+ pairs from 4 rows written"))).first.wait_for()
    written = [json.loads(line) for line in (data_dir / "pairs-from-eval.jsonl").read_text().splitlines()]
    assert written and all({"prompt", "chosen", "rejected"} <= set(p) for p in written)

    labelled(page, "Held-out pairs").fill(str(data_dir / "pairs-from-eval.jsonl"))
    labelled(page, "Pairs (at most)").fill("2")
    visible(page.get_by_role("button", name="Preference accuracy", exact=True)).first.click()
    wait_for(lambda: visible(page.get_by_text(re.compile(r"Preference accuracy on \d pairs"))).count(), 300, 1,
             "the preference accuracy")
    text = visible(page.get_by_text(re.compile(r"Preference accuracy on"))).first.inner_text()
    assert "adapter" in text and "base" in text and "%" in text
    screenshot(page, "preference-evaluate")

    # Against another run's adapter instead of the base (a DPO run against the SFT run it continued; here a
    # second copy of the SFT run, so the mechanics are what is checked).
    other = outputs_dir() / "sft-baseline"
    if not other.exists():
        shutil.copytree(lora_run.run_dir, other, ignore=shutil.ignore_patterns("checkpoints", "eval"))
    visible(page.get_by_role("button", name="Refresh runs")).first.click()
    pick(page, "Baseline", "sft-baseline")
    visible(page.get_by_label("Rows (0 = all)")).first.fill("2")
    set_slider(page, "Max new tokens", 8)
    visible(page.get_by_role("button", name="Evaluate", exact=True)).click()
    visible(page.get_by_text(re.compile(r"2 rows · split:test"))).first.wait_for(timeout=300_000)
    assert visible(page.get_by_text("run sft-baseline", exact=True)).count()  # the summary's second row
    saved = json.loads((run / "eval" / "test-n2-seed0-vs-sft-baseline.json").read_text())
    assert saved["baseline"] == "sft-baseline" and saved["base_rouge_l"] == saved["adapter_rouge_l"]  # same weights
    screenshot(page, "evaluate-against-a-run")
