"""The Generate tab in a real browser: paste your texts, let the session's reverse-instruction run label them
(a real `generate` job, each pair scored by the embedded model as the judge), review the pairs (threshold, drop
a row), save the dataset, find it in the Data tab's file list, and open the Train form ready to train a forward
model on it."""
from __future__ import annotations

import json
import re
import shutil

import pytest
from test_e2e_browser import labelled, open_tab, pick, set_slider, visible

from conftest import ROOT, screenshot
from e2e_helpers import wait_for
from workbench.backtranslation.workdir import WorkDir, generated_root

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SAMPLE = [json.loads(line) for line in (ROOT / "data" / "dolly_sample.jsonl").read_text().splitlines()]


def test_texts_to_a_reviewed_dataset_to_the_train_form(page, lora_run, data_dir):
    from workbench.core.paths import outputs_dir

    run = outputs_dir() / "reverse-for-generate"  # where the app lists runs
    if not run.exists():
        shutil.copytree(lora_run.run_dir, run, ignore=shutil.ignore_patterns("checkpoints"))

    open_tab(page, "Generate")
    visible(page.get_by_role("button", name="Refresh runs")).first.click()
    pick(page, "Reverse-instruction run", "reverse-for-generate")
    labelled(page, "…or paste texts").fill("\n\n".join(r["response"] for r in SAMPLE[:3]))
    visible(page.get_by_text("Settings", exact=True)).first.click()
    set_slider(page, "Max instruction tokens", 16)
    labelled(page, "Generation name").fill("e2e-judged")
    visible(page.get_by_text("LLM judge (optional)")).first.click()
    labelled(page, "…or a local judge model").fill("default")  # the embedded model scores each pair
    visible(page.get_by_role("button", name="Generate instructions")).first.click()
    wait_for(lambda: visible(page.get_by_text(re.compile(r"generation job .* completed"))).count(), 300, 1,
             "the generation job to complete")
    kept = visible(page.get_by_text(re.compile(r"rows kept")))
    assert "3 of 3 rows kept" in kept.first.inner_text()
    shown = page.locator("body").inner_text()
    assert "judge local:default: " in shown, shown[-3000:]  # a mean score, or why no pair could be scored
    assert all(r["response"][:30] in shown for r in SAMPLE[:3]), shown[-3000:]

    set_slider(page, "Keep score ≥", 100)  # nothing is that likely: every row falls below
    wait_for(lambda: "0 of 3 rows kept" in kept.first.inner_text(), 30, 0.5, "the threshold to apply")
    set_slider(page, "Keep score ≥", 0)
    wait_for(lambda: "3 of 3 rows kept" in kept.first.inner_text(), 30, 0.5, "the threshold to apply")
    pairs = WorkDir(generated_root() / "e2e-judged").pairs()
    passing = sum(p["judge_score"] is not None and p["judge_score"] >= 50 for p in pairs)
    set_slider(page, "Keep judge score ≥", 50)  # the judge's threshold: only pairs it scored 50 or more
    wait_for(lambda: f"{passing} of 3 rows kept" in kept.first.inner_text(), 30, 0.5, "the judge threshold")
    set_slider(page, "Keep judge score ≥", 0)
    wait_for(lambda: "3 of 3 rows kept" in kept.first.inner_text(), 30, 0.5, "the judge threshold to go")
    visible(page.locator("[role=gridcell] .bool-cell input[type=checkbox]")).first.click()  # drop one row by hand
    wait_for(lambda: "2 of 3 rows kept" in kept.first.inner_text(), 30, 0.5, "the dropped row to count")
    screenshot(page, "generate-review")

    labelled(page, "Dataset name").fill("e2e-generated")
    visible(page.get_by_role("button", name="Save dataset")).first.click()
    wait_for(lambda: visible(page.get_by_text(re.compile(r"saved 2 rows"))).count(), 60, 0.5, "the save")
    out = data_dir / "generated" / "e2e-generated.jsonl"
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert len(rows) == 2 and all(r["provenance"]["run"] == "reverse-for-generate" for r in rows)
    assert (data_dir / "generated" / "e2e-generated.card.md").exists()

    visible(page.get_by_role("button", name="Train a forward model on it")).first.click()
    wait_for(lambda: page.get_by_role("tab", name="Train", exact=True).first.get_attribute("aria-selected") == "true",
             30, 0.5, "the Train tab to open")
    def shown():
        return page.evaluate("() => [...document.querySelectorAll('input, textarea')].filter(e => e.offsetParent)"
                             ".map(e => e.value)")

    assert any(v.startswith("forward-e2e-generated") for v in shown())  # the run name, above the sections
    page.get_by_role("tab", name="Data", exact=True).last.click()  # the form's Data section
    assert any(v.endswith("generated/e2e-generated.jsonl") for v in shown()) and "alpaca" in shown()
    screenshot(page, "generate-train-form")

    open_tab(page, "Data")
    pick(page, "…or a file in data/", "e2e-generated.jsonl")
    wait_for(lambda: visible(page.get_by_text(re.compile(r"alpaca", re.I))).count(), 60, 0.5, "the dataset to load")
