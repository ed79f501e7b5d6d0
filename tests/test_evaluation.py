"""Evaluation: library metrics, sampling, and a real side-by-side evaluation of a real 3-step adapter."""
import csv
import dataclasses
import inspect
import io
import json

import pytest

from conftest import ROOT
from workbench.config.tasks import EvalConfig
from workbench.core.errors import EvalError
from workbench.evaluation.results import aggregate, bleu, rouge_l
from workbench.evaluation.results import COLUMNS, export, list_results, read_rows, sort_rows
from workbench.evaluation.side_by_side import evaluate, load_rows, sample
from workbench.runs.folder import RunDir


def test_metrics_come_from_rouge_score_and_sacrebleu():
    ref = "Describe the water cycle in three sentences."
    assert rouge_l(ref, ref) == pytest.approx(1.0) and bleu(ref, ref) == pytest.approx(1.0)
    assert rouge_l("completely unrelated words", ref) == 0.0
    assert 0 < rouge_l("Describe the carbon cycle.", ref) < 1
    assert 0 < bleu("Describe the water cycle in two sentences.", ref) < 1
    assert rouge_l("", ref) == 0.0 and bleu("anything", "") == 0.0
    # Stemming, as in the original ROUGE: "describes" matches "describe".
    assert rouge_l("describes water", "describe water") == pytest.approx(1.0)


def test_sampling_is_reproducible_and_zero_means_all():
    rows = [{"i": i} for i in range(50)]
    assert sample(rows, 8, seed=1) == sample(rows, 8, seed=1)
    assert sample(rows, 8, seed=1) != sample(rows, 8, seed=2)
    assert len(sample(rows, 8, 0)) == 8 and sample(rows, 0, 0) == rows and sample(rows, 99, 0) == rows


def test_aggregate_and_sort():
    rows = [{"rouge_l": 0.2, "bleu": 0.1, "base_rouge_l": 0.1, "base_bleu": 0.0},
            {"rouge_l": 0.6, "bleu": 0.3, "base_rouge_l": 0.3, "base_bleu": 0.2}]
    assert aggregate(rows) == {"adapter_rouge_l": 0.4, "base_rouge_l": 0.2, "adapter_bleu": 0.2,
                               "base_bleu": 0.1, "n": 2}
    assert [r["rouge_l"] for r in sort_rows(rows, "rouge_l", best_first=True)] == [0.6, 0.2]
    assert [r["rouge_l"] for r in sort_rows(rows, "rouge_l", best_first=False)] == [0.2, 0.6]
    assert aggregate([{"rouge_l": 0.5, "bleu": 0.5, "base_rouge_l": None, "base_bleu": None}])["base_rouge_l"] is None


def test_evaluate_takes_every_eval_config_field_by_name():
    """The CLI and the Evaluate tab call evaluate(cfg.run, **the other fields): a renamed field or keyword
    would break both at run time, so the names are pinned here."""
    params = inspect.signature(evaluate).parameters
    for name in (f.name for f in dataclasses.fields(EvalConfig)):  # a section (judge:) is one keyword
        if name != "run":
            assert params[name].kind is inspect.Parameter.KEYWORD_ONLY, name
    assert list(params)[0] == "run_dir" and "progress" in params


@pytest.mark.slow
def test_bad_choices_say_what_to_change(lora_run, tmp_path):
    with pytest.raises(EvalError, match="split must be one of"):
        load_rows(RunDir(lora_run.run_dir), "train")
    with pytest.raises(EvalError, match="not a run folder"):
        evaluate(tmp_path)
    with pytest.raises(EvalError, match="not found"):
        evaluate(lora_run.run_dir, data=str(tmp_path / "missing.jsonl"))
    with pytest.raises(EvalError, match="csv or jsonl"):
        export(lora_run.run_dir, [], "x", "xlsx")


@pytest.mark.slow
def test_side_by_side_on_the_held_out_split_is_scored_and_saved(lora_run):
    run = RunDir(lora_run.run_dir)
    held_out = [json.loads(x) for x in (run.path / "split" / "test.jsonl").read_text().splitlines()]
    seen = []
    result = evaluate(run.path, split="test", n=0, seed=0, batch_size=4, max_new_tokens=24,
                      progress=lambda done, total, what: seen.append((done, total, what)))
    assert len(result.rows) == len(held_out) >= 1
    for row, src in zip(result.rows, held_out):
        assert row["input"] == src["output"]  # reverse instruction: the response is the input
        assert row["ground_truth"] == src["instruction"].strip()
        assert row["generated"].strip() and row["base_generated"].strip()
        for key in ("rouge_l", "bleu", "base_rouge_l", "base_bleu"):
            assert 0.0 <= row[key] <= 1.0
    assert seen[-1][:2] == (2 * len(held_out), 2 * len(held_out)) and "base" in seen[-1][2]
    s = result.summary
    assert s["n"] == len(held_out) and {"adapter_rouge_l", "base_rouge_l", "adapter_bleu", "base_bleu"} <= set(s)

    # Saved into the run folder: rows (jsonl) and the summary (json).
    assert result.files["jsonl"] == run.path / "eval" / "test-all-seed0.jsonl"
    # Every column is in the file; without a judge its columns are None.
    assert read_rows(run.path, "test-all-seed0") == [{k: r.get(k) for k in COLUMNS} for r in result.rows]
    assert json.loads(result.files["summary"].read_text())["adapter_rouge_l"] == s["adapter_rouge_l"]
    assert any(e["name"] == "test-all-seed0" for e in list_results(run.path))

    path = export(run.path, sort_rows(result.rows, "rouge_l", False), "test-all-seed0", "csv")
    parsed = list(csv.DictReader(io.StringIO(path.read_text())))
    assert list(parsed[0]) == COLUMNS and len(parsed) == len(held_out)


@pytest.mark.slow
def test_a_file_in_another_format_is_mapped_through_the_run_template(lora_run, tmp_path):
    # An Alpaca-format CSV (not the Dolly JSONL the run trained on), evaluated without the base pass.
    f = tmp_path / "extra.csv"
    f.write_text("instruction,input,output\nName a primary colour.,,Red is a primary colour.\n"
                 "What is H2O?,,H2O is the chemical formula of water.\n"
                 "Give a synonym for big.,,Large is a synonym for big.\n")
    result = evaluate(lora_run.run_dir, data=str(f), n=2, seed=3, compare_base=False, max_new_tokens=16)
    assert len(result.rows) == 2 and result.name == "extra-n2-seed3"
    assert all(r["base_generated"] is None and r["base_rouge_l"] is None for r in result.rows)
    assert {r["input"] for r in result.rows} <= {"Red is a primary colour.", "H2O is the chemical formula of water.",
                                                 "Large is a synonym for big."}
    assert result.summary["base_rouge_l"] is None and result.summary["n"] == 2
    bundled = load_rows(RunDir(lora_run.run_dir), data=str(ROOT / "data" / "dolly_sample.jsonl"))
    assert len(bundled) > 100 and {"instruction", "output"} <= set(bundled[0])
