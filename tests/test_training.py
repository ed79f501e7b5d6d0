"""Real training on the real default model: LoRA, 4-bit QLoRA, resume, stop. Seconds each on 2 CPU cores."""
import json
import math
import subprocess
import threading

import pytest
import torch
from safetensors.torch import load_file
from transformers import TrainerCallback

from conftest import PY, ROOT, quick_config
from workbench.runs.folder import RunDir
from workbench.training.engine import train

pytestmark = pytest.mark.slow


def _metrics(run_dir):
    return RunDir(run_dir).read_metrics()


def test_lora_run_learns_and_leaves_a_standard_peft_folder(lora_run, model_dir):
    run = RunDir(lora_run.run_dir)
    assert lora_run.global_step == 3 and math.isfinite(lora_run.final_loss)
    rows = [r for r in run.read_metrics() if "loss" in r]
    assert [r["step"] for r in rows] == [1, 2, 3]
    for r in rows:
        assert math.isfinite(r["loss"]) and r["tokens_per_second"] > 0 and r["eta_s"] is not None
    assert any("eval_loss" in r for r in run.read_metrics())
    status = run.read_status()
    assert status["state"] == "completed" and status["dtype"] == "float32" and status["attention"] == "sdpa"
    for name in ("adapter_config.json", "adapter_model.safetensors", "tokenizer.json"):
        assert (run.adapter / name).is_file(), name
    assert (run.path / "config.yaml").is_file() and (run.path / "split" / "test.jsonl").is_file()

    # LoRA B matrices start at zero: non-zero now means the adapter was trained.
    weights = load_file(run.adapter / "adapter_model.safetensors")
    lora_b = [v for k, v in weights.items() if "lora_B" in k]
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b)
    # Only adapter weights were saved: the base model's weights are untouched by construction.
    assert all("lora_" in k for k in weights)


def test_base_weights_unchanged_and_adapter_reloads_with_peft(lora_run, model_dir):
    from peft import AutoPeftModelForCausalLM
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = RunDir(lora_run.run_dir)
    # The classic QLoRA notebooks' own inference code, unchanged:
    model = AutoPeftModelForCausalLM.from_pretrained(str(run.adapter))
    tok = AutoTokenizer.from_pretrained(str(run.adapter))
    base = AutoModelForCausalLM.from_pretrained(str(model_dir))
    name = "model.layers.0.self_attn.q_proj.weight"
    peft_base = dict(model.get_base_model().named_parameters())[name.replace("weight", "base_layer.weight")]
    assert torch.equal(peft_base, dict(base.named_parameters())[name])
    ids = tok("### Instruction:\nSay hello.\n\n### Response:\n", return_tensors="pt")
    out = model.generate(**ids, max_new_tokens=10, do_sample=False)
    assert tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()


def test_qlora_4bit_two_steps(tmp_path):
    result = train(quick_config(tmp_path / "q", **{"adapter.method": "qlora", "train.max_steps": 2}),
                   progress_bar=False)
    assert result.state == "completed", result.error
    status = RunDir(result.run_dir).read_status()
    assert status["quantization"] == "4bit" and math.isfinite(result.final_loss)
    cfg = json.loads((RunDir(result.run_dir).adapter / "adapter_config.json").read_text())
    assert cfg["peft_type"] == "LORA"
    weights = load_file(RunDir(result.run_dir).adapter / "adapter_model.safetensors")
    assert any(v.abs().sum() > 0 for k, v in weights.items() if "lora_B" in k)


def test_resume_reaches_the_same_final_step_with_the_same_losses(tmp_path, lora_run):
    """Stop after 2 of 3 steps, resume: same final step and the same losses as the uninterrupted run."""
    cut = _train_stopping_after(quick_config(tmp_path / "cut"), 2)
    assert cut.state == "stopped" and cut.global_step == 2
    resumed = train(quick_config("unused"), resume=cut.run_dir, progress_bar=False)
    assert resumed.state == "completed" and resumed.global_step == lora_run.global_step == 3
    loss = lambda d: [(r["step"], r["loss"]) for r in _metrics(d) if "loss" in r]  # noqa: E731
    assert [s for s, _ in loss(cut.run_dir)] == [1, 2, 3]  # no duplicated or missing steps
    for (s1, l1), (s2, l2) in zip(loss(lora_run.run_dir), loss(cut.run_dir)):
        assert s1 == s2 and l1 == pytest.approx(l2, rel=1e-3)


class StopAfter(TrainerCallback):
    """Sets the stop flag once `step` is done, as the UI's Stop button would from another thread."""

    def __init__(self, step):
        self.step, self.event = step, threading.Event()

    def on_step_end(self, args, state, control, **kw):
        if state.global_step >= self.step:
            self.event.set()


def _train_stopping_after(cfg, step):
    stopper = StopAfter(step)
    return train(cfg, progress_bar=False, stop=stopper.event, extra_callbacks=[stopper])


def test_stop_flag_stops_within_one_step_and_leaves_a_loadable_adapter(tmp_path):
    from peft import AutoPeftModelForCausalLM

    result = _train_stopping_after(quick_config(tmp_path / "s", **{"train.max_steps": 10}), 1)
    assert result.state == "stopped" and result.global_step == 1
    run = RunDir(result.run_dir)
    assert run.read_status()["state"] == "stopped"
    assert run.last_checkpoint().name == "checkpoint-1"
    AutoPeftModelForCausalLM.from_pretrained(str(run.adapter))


def test_cli_trains_with_set_overrides(tmp_path):
    out = tmp_path / "cli-run"
    proc = subprocess.run([PY, "-m", "workbench", "train", "--no-progress", "--set", "train.max_steps=2",
                           "--set", "data.max_rows=24", "--set", "data.max_length=96", "--set", f"output_dir={out}"],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "completed: step 2/2" in proc.stdout
    assert (out / "adapter" / "adapter_model.safetensors").is_file()
    cfg = (out / "config.yaml").read_text()
    assert "template: reverse_instruction" in cfg and "max_steps: 2" in cfg


@pytest.mark.parametrize("args,message", [
    (["--set", "train.learning_rate=0"], "error: train.learning_rate must be > 0.0"),
    (["--set", "adapter.r=-1"], "error: adapter.r must be >= 1"),
    (["--set", "data.template=klingon"], "error: data.template 'klingon' is unknown"),
    (["--set", "nonsense"], "error: --set expects section.key=value"),
    (["--config", "/no/such.yaml"], "error: config file not found: /no/such.yaml"),
])
def test_cli_bad_config_exits_2_with_the_message(args, message):
    proc = subprocess.run([PY, "-m", "workbench", "train", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr


def test_failure_mid_training_marks_the_run_failed(tmp_path):
    class Boom(TrainerCallback):
        def on_step_end(self, args, state, control, **kw):
            raise RuntimeError("injected fault")

    result = train(quick_config(tmp_path / "f"), progress_bar=False, extra_callbacks=[Boom()])
    assert result.state == "failed" and "injected fault" in result.error
    status = RunDir(result.run_dir).read_status()
    assert status["state"] == "failed" and "injected fault" in status["error"]
