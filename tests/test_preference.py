"""Preference tuning (DPO, ORPO, KTO): the pair formats, the rendered sequences, the bad inputs refused before
training, and real 3-step runs of each method on the embedded model with pairs written from the bundled sample."""
import itertools
import json
import math
import shutil
import subprocess
from pathlib import Path

import pytest
from safetensors.torch import load_file

from conftest import PY, ROOT, quick_config
from workbench.config.preflight import preflight
from workbench.core.errors import ConfigError, EvalError
from workbench.data import preference as pref
from workbench.runs.folder import RunDir
from workbench.training.engine import train


def _dolly(n):
    return [json.loads(line) for line in (ROOT / "data" / "dolly_sample.jsonl").read_text().splitlines()[:n]]


@pytest.fixture(scope="session")
def pair_file(tmp_path_factory):
    """12 pairs for the default reverse-instruction task: a response as the prompt, its own instruction
    chosen, the next row's instruction rejected; plus one identical and one empty pair that must be dropped."""
    rows = _dolly(13)
    pairs = [{"prompt": a["response"], "chosen": a["instruction"], "rejected": b["instruction"]}
             for a, b in itertools.pairwise(rows)]
    pairs += [{"prompt": "x", "chosen": "same", "rejected": "same"}, {"prompt": "y", "chosen": "", "rejected": "z"}]
    path = tmp_path_factory.mktemp("pairs") / "pairs.jsonl"
    path.write_text("".join(json.dumps(p) + "\n" for p in pairs))
    return path


def _cfg(out, source, method, **sets):
    return quick_config(out, **{"train.method": method, "data.source": str(source), "data.max_rows": 0,
                                "data.max_length": 64, "data.val_size": 0.0, "data.test_size": 0.0,
                                "train.save_steps": 3, **sets})


def _write(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def test_formats_are_detected_mapped_and_unusable_pairs_counted(pair_file):
    loaded = pref.load_pairs(str(pair_file), "dpo")
    assert loaded.format == "pairs" and len(loaded.rows) == 12 and loaded.total == 14
    assert loaded.dropped == {"pairs whose answers are identical": 1, "pairs with an empty answer": 1}
    assert "dropped 1 pairs whose answers are identical" in loaded.message()
    msgs = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "yo"}]
    cases = {
        "pairs": ({"prompt": [*msgs, {"role": "user", "content": "Q"}], "chosen": [{"role": "assistant",
                   "content": "A"}], "rejected": [{"role": "assistant", "content": "B"}]}),
        "alpaca_pairs": {"instruction": "Q0", "input": "ctx", "chosen": "A", "rejected": "B"},
        "sharegpt_pairs": {"conversations": [{"from": "human", "value": "Q"}], "chosen": {"from": "gpt", "value": "A"},
                           "rejected": {"from": "gpt", "value": "B"}},
        "implicit_pairs": {"chosen": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "A"}],
                           "rejected": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "B"}]},
    }
    for fmt, row in cases.items():
        assert pref.detect(row.keys()) == fmt
        canon = pref.to_canonical(row, fmt)
        assert (canon["chosen"], canon["rejected"]) == ("A", "B"), fmt
        assert canon["prompt"] == ("Q0\n\nctx" if fmt == "alpaca_pairs" else "Q"), fmt
    assert pref.to_canonical(cases["pairs"], "pairs")["history"] == msgs
    kto = pref.from_rows([{"prompt": "Q", "completion": "A", "label": "true"},
                          {"prompt": "Q", "completion": "B", "label": 0}], ["prompt", "completion", "label"], "kto")
    assert [r["label"] for r in kto.rows] == [True, False]
    # pairs for kto: each gives a desirable and an undesirable row
    assert len(pref.load_pairs(str(pair_file), "kto").rows) == 24


def test_the_judges_preferred_answer_is_chosen(tmp_path):
    """An evaluation judged pairwise as a stronger judge leaves it (verdicts written here: the embedded judge never
    decides a row, tests/test_e2e_serve_judge.py): a win makes the adapter's answer `chosen`, a loss the base's;
    ties and failed rows are skipped and counted."""
    from workbench.evaluation.results import pairs_from_eval

    def row(verdict, adapter, base):
        return {"input": f"Write about {adapter}", "generated": adapter, "base_generated": base,
                "ground_truth": "ref", "judge_verdict": verdict}

    (tmp_path / "eval").mkdir()
    rows = [row("win", "a fine answer", "off topic"), row("loss", "wrong words", "the right words"),
            row("tie", "same", "same too"), row(None, "x y", "z w")]
    (tmp_path / "eval" / "judged.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    built = pairs_from_eval(tmp_path, "judged", tmp_path / "pairs.jsonl", source="judge", min_difference=0.1)
    assert built["pairs"] == 2 and built["skipped"]["no judge verdict"] == 2
    pairs = [json.loads(line) for line in (tmp_path / "pairs.jsonl").read_text().splitlines()]
    assert [(p["chosen"], p["rejected"]) for p in pairs] == [("a fine answer", "off topic"),
                                                             ("the right words", "wrong words")]


def test_min_difference_keeps_only_pairs_that_differ_enough():
    rows = [{"prompt": "p", "chosen": "the cat sat on the mat", "rejected": "the cat sat on the hat"},
            {"prompt": "p", "chosen": "Paris", "rejected": "a completely different answer"}]
    kept = pref.from_rows(rows, ["prompt", "chosen", "rejected"], "dpo", min_difference=0.3)
    assert [r["chosen"] for r in kept.rows] == ["Paris"] and sum(kept.dropped.values()) == 1


def test_sequences_render_the_run_template_and_color_only_the_answer(tokenizer):
    from workbench.prompts import registry
    from workbench.training.preference import preview_segments, sequences, truncate

    row = {"history": [], "prompt": "Ice floats on water.", "chosen": "Why does ice float?", "rejected": "Hi"}
    seq = sequences(registry.load("reverse_instruction"), row, tokenizer)
    assert seq["prompt"].endswith("### Input:\nIce floats on water.\n\n### Response:\n")
    assert seq["chosen"] == "Why does ice float?" + tokenizer.eos_token
    segs = preview_segments(registry.load("chatml"), row, tokenizer)
    assert [t for _, t in segs["rejected"]] == [False, True] and segs["rejected"][1][0].startswith("Hi")
    cut = truncate({**seq, "prompt": seq["prompt"] * 20}, tokenizer, max_length=64)
    assert len(tokenizer(cut["prompt"])["input_ids"]) <= 64 - len(tokenizer(seq["chosen"])["input_ids"]) + 1


def test_bad_inputs_are_refused_before_training(tmp_path, pair_file):
    dolly = ROOT / "data" / "dolly_sample.jsonl"
    with pytest.raises(ConfigError, match="needs preference data.*instruction"):
        preflight(_cfg(tmp_path / "a", dolly, "dpo"))
    missing = _write(tmp_path / "missing.jsonl", [{"prompt": "p", "chosen": "a"}])
    with pytest.raises(ConfigError, match=r"missing rejected"):
        preflight(_cfg(tmp_path / "b", missing, "orpo"))
    one_label = _write(tmp_path / "up.jsonl", [{"prompt": "p", "completion": "a", "label": True}] * 3)
    with pytest.raises(ConfigError, match="kto needs both labels"):
        preflight(_cfg(tmp_path / "c", one_label, "kto"))
    with pytest.raises(ConfigError, match="dpo needs pairs"):
        preflight(_cfg(tmp_path / "c2", one_label, "dpo"))
    with pytest.raises(ConfigError, match="orpo uses no reference model"):
        _cfg(tmp_path / "d", pair_file, "orpo", **{"pref.precompute_ref": True}).validate()
    with pytest.raises(ConfigError, match="orpo uses no reference model"):
        _cfg(tmp_path / "d2", pair_file, "orpo", **{"pref.ref_model": "default"}).validate()
    other = tmp_path / "other-adapter"
    other.mkdir()
    (other / "adapter_config.json").write_text(json.dumps({"base_model_name_or_path": "meta-llama/Llama-2-7b-hf",
                                                           "peft_type": "LORA"}))
    with pytest.raises(ConfigError, match="model.adapter_from: .*trained for"):
        preflight(_cfg(tmp_path / "e", pair_file, "dpo", **{"model.adapter_from": str(other)}))
    assert not (tmp_path / "a").exists()  # nothing was written for any of them


def test_cli_refuses_a_preference_method_on_data_without_pairs():
    proc = subprocess.run([PY, "-m", "workbench", "train", "--set", "train.method=kto"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300, check=False)
    assert proc.returncode == 2 and "needs preference data" in proc.stderr and "Traceback" not in proc.stderr


def _check_adapter(run_dir):
    from peft import AutoPeftModelForCausalLM

    run = RunDir(run_dir)
    weights = load_file(run.adapter / "adapter_model.safetensors")
    assert weights and all("lora_" in k for k in weights) and any(v.abs().sum() > 0 for k, v in weights.items()
                                                                      if "lora_B" in k)
    assert not (run.adapter / "ref").exists()  # TRL's frozen reference copy is not a result
    AutoPeftModelForCausalLM.from_pretrained(str(run.adapter))
    return run


@pytest.mark.slow
@pytest.mark.parametrize("method", ["dpo", "orpo", "kto"])
def test_three_real_steps_save_an_adapter_and_log_the_reward_margin(tmp_path, pair_file, method):
    # KTO logs the margin only for a batch holding both labels: 4 rows make that every step here.
    sets = {"kto": {"train.batch_size": 4}, "dpo": {"data.test_size": 0.2}}.get(method, {})
    result = train(_cfg(tmp_path / method, pair_file, method, **sets), progress_bar=False)
    assert result.state == "completed" and result.global_step == 3, result.error
    run = _check_adapter(result.run_dir)
    rows = [r for r in run.read_metrics() if "loss" in r]
    assert [r["step"] for r in rows] == [1, 2, 3] and all(math.isfinite(r["loss"]) for r in rows)
    assert any(math.isfinite(r.get("rewards/margins", math.nan)) for r in rows)
    assert {"kto": "kl", "orpo": "log_odds_ratio", "dpo": "rewards/accuracies"}[method] in rows[-1]
    if method == "dpo":  # held-out pairs: kept as pairs, and as SFT rows for the side-by-side evaluation
        from workbench.evaluation.results import held_out_pairs

        pairs, rows = held_out_pairs(run.path), [json.loads(x) for x in (run.split_dir / "test.jsonl").open()]
        assert len(pairs) == len(rows) == 2
        assert [(r["output"], r["instruction"]) for r in rows] == [(p["prompt"], p["chosen"]) for p in pairs]
        from workbench.evaluation.side_by_side import evaluate

        shown = evaluate(run.path, split="test", n=2, max_new_tokens=4, name="held-out").rows
        assert sorted(r["ground_truth"] for r in shown) == sorted(p["chosen"] for p in pairs)
        assert all(r["base_generated"] is not None for r in shown)
    status = run.read_status()
    assert status["method"] == method and "format pairs: 12 of 14 rows kept" in " ".join(status["plan"]["notes"])


@pytest.mark.slow
def test_dpo_from_the_sft_adapter_on_pairs_built_from_its_evaluation(tmp_path, lora_run):
    from workbench.evaluation.results import pairs_from_eval, preference_accuracy
    from workbench.evaluation.side_by_side import evaluate

    held_out = _write(tmp_path / "held.jsonl", _dolly(40)[-6:])
    evaluate(lora_run.run_dir, data=str(held_out), n=6, compare_base=False, max_new_tokens=12, name="to-pairs")
    built = pairs_from_eval(lora_run.run_dir, "to-pairs", tmp_path / "from-eval.jsonl", min_difference=0.2)
    assert built["pairs"] >= 4 and built["rows"] == 6
    assert pref.load_pairs(built["path"], "dpo").format == "pairs"
    written = Path(built["path"]).read_bytes()
    with pytest.raises(EvalError, match="already exists; nothing was replaced"):  # no silent replace in data/
        pairs_from_eval(lora_run.run_dir, "to-pairs", tmp_path / "from-eval.jsonl", min_difference=0.2)
    assert Path(built["path"]).read_bytes() == written
    assert pairs_from_eval(lora_run.run_dir, "to-pairs", tmp_path / "from-eval.jsonl", min_difference=0.2,
                           overwrite=True)["pairs"] == built["pairs"]

    cfg = _cfg(tmp_path / "dpo-after-sft", built["path"], "dpo", **{"model.adapter_from": str(lora_run.run_dir)})
    assert preflight(cfg).adapter_from.endswith("adapter")
    result = train(cfg, progress_bar=False)
    assert result.state == "completed" and result.global_step == 3, result.error
    run = _check_adapter(result.run_dir)
    assert any("rewards/margins" in r for r in run.read_metrics())

    pairs = pref.load_pairs(built["path"], "dpo").rows[:3]
    acc = preference_accuracy(run.path, pairs)
    assert acc["pairs"] == 3 and 0 <= acc["adapter"]["accuracy"] <= 1 and 0 <= acc["base"]["accuracy"] <= 1
    assert acc["adapter"]["mean_margin"] != acc["base"]["mean_margin"]  # the trained adapter changed the scores

    # Side by side with the SFT adapter it continued instead of the base: the baseline's answers are exactly
    # what the SFT run answers when evaluated alone.
    sft_id = RunDir(lora_run.run_dir).id
    versus = evaluate(run.path, data=str(held_out), n=3, max_new_tokens=6, baseline=str(lora_run.run_dir))
    alone = evaluate(lora_run.run_dir, data=str(held_out), n=3, max_new_tokens=6, compare_base=False, save=False)
    assert versus.summary["baseline"] == sft_id and versus.name == f"held-n3-seed0-vs-{sft_id}"
    assert [r["base_generated"] for r in versus.rows] == [r["generated"] for r in alone.rows]
    assert (run.path / "eval" / f"{versus.name}.json").is_file()
    bare = tmp_path / "config-only"  # a run folder whose training never saved an adapter
    bare.mkdir()
    shutil.copy(run.config_file, bare / "config.yaml")
    for baseline, message in ((str(run.path), "that is the evaluated run itself"),
                              ("no-such-run", "baseline: no run named 'no-such-run'"),
                              (str(bare), "baseline: run config-only has no saved adapter")):
        with pytest.raises(EvalError, match=message):
            evaluate(run.path, data=str(held_out), n=1, baseline=baseline)


def test_charts_show_trl_preference_metrics_and_presets_validate():
    from workbench.config import presets
    from workbench.ui.plots import training_figure

    rows = [{"step": s, "loss": 0.69 - s / 100, "rewards/margins": s / 10, "rewards/chosen": s / 20,
             "rewards/rejected": -s / 20, "rewards/accuracies": 0.5, "kl": 0.1} for s in (1, 2, 3)]
    names = {t.name for t in training_figure(rows).data}
    assert {"rewards/margins", "rewards/chosen", "rewards/rejected", "rewards/accuracies", "kl"} <= names
    assert "rewards/margins" not in {t.name for t in training_figure([{"step": 1, "loss": 1.0}]).data}
    for name in (presets.DPO_AFTER_SFT, presets.ORPO_FROM_BASE):
        cfg = presets.build(name).validate()
        assert cfg.train.method in ("dpo", "orpo") and (ROOT / cfg.data.source).is_file()
