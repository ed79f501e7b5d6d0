"""Memory / time estimates: exact parameter counts where a config exists, sane orderings, fit verdicts, and the
machine decisions taken from the preflight Plan. tests/test_estimate_measured.py holds the numbers to a real run."""
import dataclasses
import json

import pytest

from conftest import quick_config
from workbench.config import presets
from workbench.config.preflight import preflight
from workbench.config.run import RunConfig
from workbench.core.errors import ModelError, PathError
from workbench.models.load import pick_dtype
from workbench.training.estimate import GB, estimate, lora_params, model_shape, planned_steps

GPU_24GB = dict(device="cuda", available_bytes=24 * GB)


def _qlora_7b(**sets) -> RunConfig:
    cfg = presets.build(presets.QLORA_7B)
    for k, v in sets.items():
        cfg.set(k, v)
    return cfg


@pytest.mark.slow
def test_trainable_lora_params_match_what_peft_actually_trains(model_dir):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base = AutoModelForCausalLM.from_pretrained(str(model_dir))
    shape = model_shape("default")
    assert shape.params == sum(p.numel() for p in base.parameters())
    for targets in ("all-linear", "q_proj,v_proj"):
        model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(model_dir)), LoraConfig(
            r=8, target_modules=targets if targets == "all-linear" else targets.split(","), task_type="CAUSAL_LM"))
        trained = sum(p.numel() for p in model.parameters() if p.requires_grad)
        assert lora_params(shape, 8, targets) == trained, targets


def test_seven_b_four_bit_needs_far_less_than_sixteen_bit():
    q4 = estimate(_qlora_7b(), **GPU_24GB)
    b16 = estimate(_qlora_7b(**{"adapter.method": "lora", "model.quantization": "none"}), **GPU_24GB)
    assert "guessed from '7b'" in q4.shape_source and 6.5e9 < q4.params < 7e9
    assert q4.weights_bytes < 0.35 * b16.weights_bytes  # ~4.1 bits vs 16 bits per Linear weight
    assert q4.total_bytes < b16.total_bytes
    assert q4.trainable_params == b16.trainable_params  # same adapters on either base


def test_the_qlora_recipe_fits_24gb_and_full_16bit_training_does_not():
    q = estimate(_qlora_7b(), **GPU_24GB)
    assert q.fits and not any("does not fit" in w or "needs about" in w for w in q.warnings)
    full = estimate(_qlora_7b(**{"adapter.method": "full", "model.quantization": "none"}), **GPU_24GB)
    assert full.fits is False and full.trainable_params == full.params
    assert any("needs about" in w and "qlora" in w for w in full.warnings)
    assert "**does not fit**" in full.markdown()


def test_on_this_cpu_a_7b_model_is_flagged_as_needing_a_gpu():
    est = estimate(_qlora_7b(), device="cpu")
    assert any("needs a GPU" in w for w in est.warnings)
    assert any("bfloat16 on a CPU" in w for w in est.warnings)


def test_memory_grows_with_batch_and_length_and_checkpointing_saves_activations():
    small = estimate(quick_config(""), device="cpu")
    bigger = estimate(quick_config("", **{"train.batch_size": 8, "data.max_length": 512}), device="cpu")
    assert bigger.activation_bytes > 10 * small.activation_bytes
    checkpointed = estimate(quick_config("", **{"train.batch_size": 8, "data.max_length": 512,
                                                "train.gradient_checkpointing": True}), device="cpu")
    assert checkpointed.activation_bytes < 0.5 * bigger.activation_bytes
    assert checkpointed.step_seconds > bigger.step_seconds  # recomputation costs time


def test_preference_methods_count_their_pairs_and_reference_passes():
    """DPO: chosen + rejected with gradients, both again through the reference: 2x the activations and 3x the
    step's FLOPs of SFT at the same batch (measured 2.95x, benchmarks/preference.py); ORPO has no reference."""
    sft = estimate(quick_config(""), device="cpu")

    def ratios(**sets):
        est = estimate(quick_config("", **sets), device="cpu")
        return est.activation_bytes / sft.activation_bytes, est.step_seconds / sft.step_seconds

    assert ratios(**{"train.method": "dpo"}) == pytest.approx((2, 3), rel=0.05)
    assert ratios(**{"train.method": "orpo"}) == pytest.approx((2, 2), rel=0.05)
    assert ratios(**{"train.method": "dpo", "pref.precompute_ref": True}) == pytest.approx((2, 2), rel=0.05)
    kto_memory, kto_time = ratios(**{"train.method": "kto"})
    assert kto_memory == pytest.approx(1) and 2 < kto_time < 2.6


def test_fit_verdict_follows_the_available_memory():
    cfg = quick_config("")
    assert estimate(cfg, device="cpu", available_bytes=64 * GB).fits
    tight = estimate(cfg, device="cpu", available_bytes=0.5 * GB)
    assert tight.fits is False and "does not fit" in tight.markdown()


def test_planned_steps_from_epochs_and_rows():
    cfg = quick_config("", **{"train.max_steps": -1, "train.epochs": 2, "train.batch_size": 4, "data.max_rows": 100})
    assert planned_steps(cfg) == 2 * 22  # 100 rows - 15% held out = 85 → 22 batches of 4, twice
    assert planned_steps(quick_config("", **{"train.max_steps": 7})) == 7


def test_cpu_guidance_and_markdown():
    est = estimate(presets.build(presets.CPU_DEMO), device="cpu")
    md = est.markdown()
    assert "On CPU it works, slowly" in md and "train.max_steps ~" in md
    assert "CPU RAM" in md and "GB" in md and est.step_seconds > 0 and est.total_seconds > est.step_seconds


def test_a_model_with_no_config_and_no_size_in_its_name_says_why():
    cfg = RunConfig()
    cfg.set("model.name", "someone/mystery-model")
    with pytest.raises(ModelError, match="no size such as '7b'"):
        estimate(cfg, device="cpu")


def test_the_estimate_takes_dtype_and_quantization_from_the_plan():
    """The Plan decides once; the estimate must not decide again from the config ('auto' stays 'auto' there)."""
    cfg = quick_config("")
    plan = preflight(cfg)
    as_planned = estimate(cfg, plan)
    assert (as_planned.device, as_planned.dtype, as_planned.quantization) == (plan.device, plan.dtype, "none")
    other = "bfloat16" if plan.dtype == "float32" else "float32"
    replanned = estimate(cfg, dataclasses.replace(plan, dtype=other))
    assert replanned.dtype == other and cfg.model.dtype == "auto"
    assert replanned.weights_bytes == as_planned.weights_bytes * (2 if other == "float32" else 0.5)
    four_bit = estimate(cfg, dataclasses.replace(plan, quantization="4bit"))
    assert four_bit.quantization == "4bit" and four_bit.weights_bytes < 0.5 * as_planned.weights_bytes


def test_asking_about_another_device_decides_its_dtype_by_the_same_rule():
    cfg = quick_config("")
    plan = preflight(cfg)
    elsewhere = "cuda" if plan.device == "cpu" else "cpu"
    est = estimate(cfg, plan, device=elsewhere, available_bytes=24 * GB)
    assert (est.device, est.dtype) == (elsewhere, pick_dtype(cfg.model.dtype, elsewhere))
    assert est.device_label.endswith("with 24.0 GB")


def test_steps_are_counted_in_the_plans_data_file(data_dir):
    def rows_file(name: str, n: int) -> str:
        path = data_dir / name
        path.write_text("".join(json.dumps({"instruction": f"Say {i}.", "response": f"{i}"}) + "\n"
                                for i in range(n)), encoding="utf-8")
        return str(path.resolve())

    forty, eighty = rows_file("forty.jsonl", 40), rows_file("eighty.jsonl", 80)
    cfg = quick_config("", **{"data.source": forty, "data.max_rows": 0, "train.max_steps": -1,
                              "train.epochs": 1, "train.batch_size": 4})
    plan = preflight(cfg)
    assert plan.data_is_local and plan.data_source == forty
    assert estimate(cfg, plan).steps == 9  # 40 rows - 15% held out = 34 → 9 batches of 4
    # The file the Plan resolved is the one counted, not the config's spelling of it.
    assert estimate(cfg, dataclasses.replace(plan, data_source=eighty)).steps == 17  # 68 rows → 17 batches


def test_the_train_tab_estimates_as_preflight_plans_and_only_readable_paths(tmp_path):
    from workbench.ui.tabs.train_run import estimate_for

    est = estimate_for(quick_config(""))
    assert est.dtype == preflight(quick_config("")).dtype and "per step" in est.markdown()
    outside = tmp_path / "elsewhere.jsonl"
    outside.write_text('{"instruction": "a", "response": "b"}\n', encoding="utf-8")
    with pytest.raises(PathError, match="outside the folders"):
        estimate_for(quick_config("", **{"data.source": str(outside)}))


def test_the_estimate_counts_training_rows_as_the_split_does(tmp_path):
    """One row count everywhere: the estimate's training rows are the split's own (small datasets included)."""
    from workbench.data.load import split_sizes
    from workbench.training.estimate import count_train_rows

    for n in (5, 7, 13, 21, 40):
        data = tmp_path / f"rows{n}.jsonl"
        data.write_text("".join(json.dumps({"instruction": f"q{i}", "output": f"a{i}"}) + "\n" for i in range(n)))
        cfg = RunConfig()
        cfg.set("data.source", str(data))
        assert count_train_rows(cfg) == split_sizes(n, cfg.data.val_size, cfg.data.test_size)["train"], n
