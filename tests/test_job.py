"""TrainingJob: real background training on the default model; one run at a time, stop, interrupt, resume."""
import json
import subprocess
import sys

import pytest
from transformers import TrainerCallback

from conftest import quick_config
from workbench.core.errors import ConfigError, RunError
from workbench.runs.folder import RunDir, mark_interrupted_runs
from workbench.core.files import atomic_write_text
from workbench.training.job import JobBusy, TrainingJob
from workbench.runs.folder import resumable_runs


class StopAt(TrainerCallback):
    """Presses the job's Stop once `step` is done, exactly as the UI's Stop button does from another thread."""

    def __init__(self, job, step):
        self.job, self.step = job, step

    def on_step_end(self, args, state, control, **kw):
        if state.global_step >= self.step:
            self.job.stop()


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_idle_job_and_a_refused_config_leave_nothing_behind():
    job = TrainingJob()
    snap = job.snapshot()
    assert snap["state"] == "idle" and snap["metrics"] == [] and not snap["active"]
    with pytest.raises(ConfigError, match="train.learning_rate must be > 0.0"):
        job.start(quick_config("", **{"train.learning_rate": 0}))
    assert job.snapshot()["state"] == "idle" and job.stop() is None


def test_instance_is_one_job_per_process():
    assert TrainingJob.instance() is TrainingJob.instance()


@pytest.mark.slow
def test_start_refuse_second_stop_interrupt_resume_to_the_same_final_step():
    job = TrainingJob()
    # No validation split: a stopped run skips the final eval anyway, and this keeps the test short.
    run = job.start(quick_config("", **{"train.max_steps": 3, "data.val_size": 0, "run_name": "job-test"}),
                    extra_callbacks=[StopAt(job, 1)])
    with pytest.raises(JobBusy, match=f"run {run.id} is"):
        job.start(quick_config(""))
    assert job.wait(600)

    snap = job.snapshot()
    assert snap["state"] == "stopped" and snap["step"] == 1 and snap["max_steps"] == 3, snap
    assert [r["step"] for r in snap["metrics"] if "loss" in r] == [1]
    assert any("stop requested" in line for line in snap["log"]) and snap["log"][-1].endswith("stopped")
    assert snap["adapter"] and (run.adapter / "adapter_model.safetensors").is_file()
    assert run.last_checkpoint().name == "checkpoint-1" and run.id in resumable_runs()

    # Its process is killed (simulated: status still 'running' under a pid that no longer exists): on the
    # next app start it is marked interrupted, and Resume still picks it up.
    status = run.read_status() | {"state": "running", "pid": _dead_pid()}
    atomic_write_text(run.status_file, json.dumps(status))
    assert run.id in mark_interrupted_runs()
    assert run.read_status()["state"] == "interrupted" and run.id in resumable_runs()

    job.resume(run.id)
    assert job.wait(600)
    snap = job.snapshot()
    assert snap["state"] == "completed" and snap["step"] == 3 and snap["error"] is None, snap
    assert [r["step"] for r in snap["metrics"] if "loss" in r] == [1, 2, 3]  # no gap, no duplicate
    assert any("training 3 steps from step 1" in line for line in snap["log"])
    assert run.read_status()["state"] == "completed" and run.id not in resumable_runs()
    with pytest.raises(ConfigError, match="only a stopped or interrupted run can be resumed"):
        job.resume(run.id)


@pytest.mark.slow
def test_a_failing_run_ends_failed_with_its_message_and_the_job_is_free_again():
    job = TrainingJob()
    # 16 tokens cannot hold the reverse-instruction prompt: no row keeps a trained token.
    run = job.start(quick_config("", **{"data.max_length": 16}))
    assert job.wait(600)
    snap = job.snapshot()
    assert snap["state"] == "failed" and "no training row has a trained token left" in snap["error"]
    status = RunDir(run.path).read_status()
    assert status["state"] == "failed" and "no training row" in status["error"]
    assert "failed: TrainingError" in snap["log"][-1]
    with pytest.raises(ConfigError, match="adapter.r must be >= 1"):  # still serving: the next start is checked
        job.start(quick_config("", **{"adapter.r": 0}))


def test_resume_only_names_runs_under_outputs():
    job = TrainingJob()
    for bad, message in [("", "choose a run"), ("no-such-run", "no run named"), ("/etc", "is not a run this app may use"),
                         ("../x", "is not a run this app may use")]:
        with pytest.raises(RunError, match=message):
            job.resume(bad)
