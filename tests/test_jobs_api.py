"""The jobs API of the real app (gradio_client): submit a 2-process DDP training job and follow it to the end,
list jobs, refuse a bad submission and a cancel of a finished job with clear messages."""
import json

import pytest
from gradio_client.exceptions import AppError

from e2e_helpers import wait_for, wait_idle
from workbench.runs.folder import RunDir

TWO_PROCESS_YAML = """
run_name: ddp-api
data: {max_rows: 32, max_length: 96, val_size: 0, test_size: 0.1}
train: {batch_size: 2, max_steps: 2, save_steps: 2, logging_steps: 1}
"""


def _job(client, job_id):
    return next(j for j in client.predict(api_name="/list_jobs") if j["id"] == job_id)


def test_a_bad_submission_is_refused_and_nothing_is_queued(client):
    before = len(client.predict(api_name="/list_jobs"))
    with pytest.raises(AppError, match="train.batch_size must be >= 1"):
        client.predict("train", "train: {batch_size: 0}", 1, api_name="/submit_job")
    with pytest.raises(AppError, match="eval jobs run as one process"):
        client.predict("eval", json.dumps({"run": "x"}), 2, api_name="/submit_job")
    with pytest.raises(AppError, match="no job with id 'nope'"):
        client.predict("nope", api_name="/cancel_job")
    assert len(client.predict(api_name="/list_jobs")) == before


@pytest.mark.slow
def test_a_two_process_job_runs_to_completed_with_one_chart_and_one_adapter(client):
    wait_idle(client)
    job = client.predict("train", TWO_PROCESS_YAML, 2, api_name="/submit_job")
    assert job["state"] == "queued" and job["processes"] == 2 and job["kind"] == "train"
    done = wait_for(lambda: (j := _job(client, job["id"])) and j["state"] not in ("queued", "running") and j,
                    900, 1.0, "the 2-process job")
    assert done["state"] == "completed", done["error"]
    assert {"id", "kind", "state", "run_dir", "error"} <= set(done)
    run = RunDir(done["run_dir"])
    status = run.read_status()
    assert status["world_size"] == 2 and status["step"] == 2
    assert [r["step"] for r in run.read_metrics() if "loss" in r] == [1, 2]  # one process group: rows once
    assert sorted(p.name for p in run.path.iterdir() if p.name.startswith(("adapter", ".adapter"))) == ["adapter"]
    assert (run.adapter / "adapter_model.safetensors").is_file()
    with pytest.raises(AppError, match="already ended \\(completed\\); there is nothing to cancel"):
        client.predict(job["id"], api_name="/cancel_job")

    # The Evaluate button's path: the evaluation runs as an eval job, the request returns at once.
    message, eval_id = client.predict(done["run_dir"], "test", None, "", 2, 0, 2, 8, False,
                                      api_name="/submit_evaluation")
    assert eval_id in message and _job(client, eval_id)["kind"] == "eval"
    ended = wait_for(lambda: (j := _job(client, eval_id)) and j["state"] not in ("queued", "running") and j,
                     600, 1.0, "the eval job")
    assert ended["state"] == "completed", ended["error"]
    summary = json.loads((run.path / "eval" / "test-n2-seed0.json").read_text())
    assert summary["n"] == 2 and summary["adapter_rouge_l"] is not None
