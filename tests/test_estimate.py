"""Memory / time estimates: exact parameter counts where a config exists, sane orderings, fit verdicts."""
import pytest

from conftest import quick_config
from workbench.config import presets
from workbench.config.run import RunConfig
from workbench.runs.folder import RunDir
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
    with pytest.raises(ValueError, match="no size such as '7b'"):
        estimate(cfg, device="cpu")


@pytest.mark.slow
def test_time_estimate_is_the_right_order_of_magnitude_here(lora_run):
    """Against a real 3-step run of the same config on this machine (shared CPU: a loose bound)."""
    rows = [r for r in RunDir(lora_run.run_dir).read_metrics() if "loss" in r]
    measured = (rows[-1]["elapsed_s"] - rows[0]["elapsed_s"]) / (len(rows) - 1)
    est = estimate(quick_config(""), device="cpu")
    assert measured / 10 < est.step_seconds < measured * 10, (est.step_seconds, measured)
