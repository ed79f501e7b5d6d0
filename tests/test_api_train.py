"""The Train tab's API, driven by gradio_client against the real app and the real default model.

One job runs per app, so every test that starts a run waits for it to end before returning.
"""
import time

import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError

from workbench.runs.folder import RunDir

# Tiny but real: 48 rows, 128 tokens, batch 2 (the same settings as conftest.quick_config).
TINY = dict(data__max_rows=48, data__max_length=128, train__batch_size=2, train__max_steps=3, train__save_steps=2,
            train__eval_steps=0, train__logging_steps=1)


def _status(client) -> dict:
    return client.predict(api_name="/training_status")


def _wait(client, until, timeout=600) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        snap = _status(client)
        if until(snap):
            return snap
        time.sleep(0.5)
    raise AssertionError(f"timed out; last status: {snap}")


def _wait_idle(client) -> dict:
    return _wait(client, lambda s: not s["active"])


@pytest.fixture
def idle(client):
    _wait_idle(client)
    yield client
    _wait_idle(client)


def test_estimate_endpoint_reports_memory_and_time_for_this_device(client):
    md = client.predict(**TINY, api_name="/estimate")
    assert "Estimate for `default` on CPU RAM" in md and "fits" in md and "per step" in md
    md = client.predict(model__name="meta-llama/Llama-2-7b-hf", adapter__method="qlora", api_name="/estimate")
    assert "needs a GPU" in md


def test_a_config_that_fails_validation_is_refused_with_its_message(idle):
    with pytest.raises(AppError, match=r"train.learning_rate must be > 0.0"):
        idle.predict(**TINY, train__learning_rate=0, api_name="/start_training")
    with pytest.raises(AppError, match="data.template 'klingon' is unknown"):
        idle.predict(**TINY, data__template="klingon", api_name="/start_training")
    assert _status(idle)["active"] is False


@pytest.mark.slow
def test_three_step_run_polled_to_completion_while_a_second_start_is_refused(idle, app_url):
    message = idle.predict(**TINY, api_name="/start_training")
    snap = _status(idle)
    run_id = snap["run_id"]
    assert run_id in message and snap["active"]
    with pytest.raises(AppError, match=f"{run_id}.* one run at a time"):
        idle.predict(**TINY, api_name="/start_training")

    # A second browser tab / a reloaded page: a new session sees the same run and its chart so far.
    snap = _wait(idle, lambda s: s["step"] >= 1 or not s["active"])
    other = Client(app_url, verbose=False)
    seen = _status(other)
    assert seen["run_id"] == run_id and len(seen["metrics"]) >= 1
    from workbench.ui.tabs.train_run import attach

    figure, progress, log, badge, timer, _resume = attach()
    assert timer.active and run_id in badge and any(t.name == "train loss" for t in figure.data)

    snap = _wait_idle(idle)
    assert snap["state"] == "completed" and snap["step"] == snap["max_steps"] == 3, snap
    assert [r["step"] for r in snap["metrics"] if "loss" in r] == [1, 2, 3]
    assert any("eval_loss" in r for r in snap["metrics"])
    run = RunDir(snap["run_dir"])
    assert snap["adapter"] == str(run.adapter) and (run.adapter / "adapter_model.safetensors").is_file()
    assert run.read_status()["state"] == "completed"
    *_, timer, _resume = attach()
    assert not timer.active  # a page opened now shows the finished run without polling


@pytest.mark.slow
def test_start_then_stop_then_resume(idle):
    idle.predict(**{**TINY, "train__max_steps": 4, "data__val_size": 0}, api_name="/start_training")
    _wait(idle, lambda s: s["step"] >= 1 or not s["active"])
    assert "Stopping run" in idle.predict(api_name="/stop_training")
    snap = _wait_idle(idle)
    assert snap["state"] == "stopped" and 1 <= snap["step"] < 4, snap
    run = RunDir(snap["run_dir"])
    assert run.read_status()["state"] == "stopped" and run.saved_model() and run.last_checkpoint()
    from workbench.runs.folder import resumable_runs

    assert snap["run_id"] in resumable_runs()

    assert snap["run_id"] in idle.predict(snap["run_id"], api_name="/resume_training")
    snap = _wait_idle(idle)
    assert snap["state"] == "completed" and snap["step"] == 4, snap
    assert [r["step"] for r in snap["metrics"] if "loss" in r] == [1, 2, 3, 4]
    assert idle.predict(api_name="/stop_training") == "No run is going."


def test_save_then_load_a_config_round_trips_through_the_form(idle):
    saved = idle.predict(config_name="api-round-trip", overwrite=False, num_gpus=4,
                         **{**TINY, "adapter__r": 8}, api_name="/save_config")
    assert "api-round-trip.yaml" in saved and "accelerate-fsdp.yaml" in saved
    with pytest.raises(AppError, match="already exists"):
        idle.predict(config_name="api-round-trip", overwrite=False, num_gpus=4, api_name="/save_config")
    values = idle.predict(None, "api-round-trip", api_name="/load_config")
    from workbench.ui.form import FIELD_NAMES

    loaded = dict(zip(FIELD_NAMES, values))
    assert loaded["adapter.r"] == 8 and loaded["train.max_steps"] == 3 and "Loaded" in values[-1]
    yaml_text, commands = idle.predict(config_name="api-round-trip", num_gpus=4, **TINY, api_name="/show_command")
    assert "max_steps: 3" in yaml_text
    assert "accelerate launch --multi_gpu --num_processes 4" in commands


def test_the_form_is_generated_from_runconfig_and_round_trips_every_preset():
    import gradio as gr

    from workbench.config import presets
    from workbench.config.run import RunConfig, iter_fields
    from workbench.ui import form

    with gr.Blocks():
        comps = form.build_form(presets.build(presets.DEFAULT_PRESET))
    assert set(comps) == {n for n, _ in iter_fields()
                          if n.split(".")[0] in form.SECTIONS or n == "run_name" or n in form.CLUSTER}
    fields = dict(iter_fields())
    steps, lr = comps["train.max_steps"], comps["train.learning_rate"]
    # No gradio-side bounds or rounding: validate() names the setting; the info line shows the range.
    assert isinstance(steps, gr.Number) and steps.minimum is None and steps.info.endswith("Allowed: >= -1.")
    assert isinstance(lr, gr.Number) and lr.precision is None
    assert lr.info == fields["train.learning_rate"].metadata["help"] + " Allowed: > 0.0 and <= 1.0."
    quant = comps["model.quantization"]
    assert isinstance(quant, gr.Dropdown) and [c[1] for c in quant.choices] == ["none", "8bit", "4bit"]
    assert isinstance(comps["data.packing"], gr.Checkbox) and isinstance(comps["data.column_map"], gr.Textbox)
    assert "reverse_instruction" in [c[1] for c in comps["data.template"].choices]
    for name in presets.names():
        cfg = presets.build(name)
        values = {form.param_name(n): v for n, v in zip(form.FIELD_NAMES, form.form_values(cfg))}
        assert form.config_from_values(values) == cfg, name
    back = form.config_from_values({"data__column_map": "{context: input}", "train__max_steps": 3.0})
    assert back.data.column_map == {"context": "input"} and back.train.max_steps == 3
    assert back.gen == RunConfig().gen  # generation settings belong to the Chat tab


@pytest.mark.browser
def test_train_tab_renders_the_generated_form_and_the_estimate(page):
    page.get_by_role("tab", name="Train").click()
    page.get_by_role("tab", name="Training", exact=True).click()
    from workbench.config import presets

    expected = presets.build(presets.DEFAULT_PRESET).train.learning_rate  # the form opens on the default preset
    assert float(page.get_by_label("learning rate").first.input_value()) == pytest.approx(expected)
    page.get_by_role("button", name="Estimate memory and time").click()
    page.get_by_text("Estimate for default on CPU RAM").wait_for()
    from conftest import screenshot

    screenshot(page, "train-tab")
