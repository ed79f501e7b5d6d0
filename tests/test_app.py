"""The app as a program uses it: one real handler per tab through the official gradio_client, on the real
default model, a real tiny run started from one YAML document, and evaluated afterwards."""
import json
import time
import urllib.request

import pytest
from gradio_client.exceptions import AppError

TINY_YAML = """
run_name: app-test
data: {max_rows: 24, max_length: 96, val_size: 0.1, test_size: 0.15}
train: {batch_size: 2, max_steps: 2, save_steps: 2, logging_steps: 1}
"""


def _wait_idle(client, timeout=600) -> dict:
    deadline = time.time() + timeout
    while time.time() < deadline:
        snap = client.predict(api_name="/training_status")
        if not snap["active"]:
            return snap
        time.sleep(0.5)
    raise AssertionError("the run did not end in time")


def test_overview_data_and_templates_tabs(client, app_url):
    html = urllib.request.urlopen(app_url, timeout=30).read().decode()
    assert "Fine-tuning workbench" in html
    model_md, data_md, _sample = client.predict(api_name="/overview")
    assert "SmolLM2-135M-Instruct" in model_md and "dolly" in data_md
    status, source, *_ = client.predict("data/dolly_sample.jsonl", "", "train", "auto", "", False, 10,
                                        api_name="/load_dataset")
    assert status.startswith("✅") and "dolly" in status and source == "data/dolly_sample.jsonl"
    text, about, name = client.predict("alpaca", api_name="/template_source")
    assert name == "alpaca" and "prompt" in text and about


def test_start_training_config_takes_one_document_and_refuses_a_bad_one(client):
    _wait_idle(client)
    with pytest.raises(AppError, match="not valid YAML or JSON"):
        client.predict("train: [unclosed", api_name="/start_training_config")
    with pytest.raises(AppError, match="train.batch_size must be >= 1"):
        client.predict(json.dumps({"train": {"batch_size": 0}}), api_name="/start_training_config")
    with pytest.raises(AppError, match="unknown setting 'train.nope'"):
        client.predict("train: {nope: 1}", api_name="/start_training_config")
    assert client.predict(api_name="/training_status")["active"] is False


@pytest.mark.slow
def test_train_runs_chat_and_evaluate_tabs_on_a_run_started_from_yaml(client):
    _wait_idle(client)
    message = client.predict(TINY_YAML, api_name="/start_training_config")
    assert message.startswith("Started run")
    snap = _wait_idle(client)
    assert snap["state"] == "completed", snap["error"]
    assert snap["run_id"].endswith("app-test") and snap["adapter"]
    run_dir = snap["run_dir"]
    status = json.loads(open(f"{run_dir}/status.json").read())
    assert status["plan"]["dtype"] == "float32" or status["plan"]["device"] == "cuda"  # the plan is kept
    assert "plan: attention" in open(f"{run_dir}/run.log").read()  # the run wrote its own log

    table, *_ = client.predict(api_name="/list_runs")  # Runs tab
    assert any(snap["run_id"] in str(row) for row in table["data"])
    history, _, _ = client.predict("Paris is the capital of France.", [], [], "default", run_dir, "auto", False, 8,
                                   0.7, 0.9, 50, 1.1, False, 0, api_name="/chat")  # Chat tab
    assert history[-1]["role"] == "assistant"
    summary, rows, name = client.predict(run_dir, "test", None, "", 2, 0, 2, 8, False,
                                         api_name="/evaluate")  # Evaluate tab
    assert len(rows["data"]) == 2 and "ROUGE-L" in summary and name
