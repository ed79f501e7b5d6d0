"""The supervisor with real worker processes on the default model: one job at a time on a CPU, a graceful
stop that leaves a resumable run, a worker killed by SIGKILL, a supervisor that dies while its worker runs
on (re-attached) or with it (interrupted, resumed to the same final step)."""
import os
import signal
import subprocess

import pytest

from conftest import PY, ROOT, quick_config
from e2e_helpers import wait_for
from workbench.core.errors import ConfigError
from workbench.jobs import queue, submit, view
from workbench.jobs.processes import same_process_alive
from workbench.jobs.supervisor import Supervisor
from workbench.runs.folder import RunDir


@pytest.fixture
def outputs(no_app_supervisor, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_OUTPUTS", str(tmp_path / "outputs"))
    monkeypatch.delenv("WORKBENCH_JOBS_DB", raising=False)
    return tmp_path / "outputs"


def tiny(**sets):
    # No validation split: a stopped run skips the final eval anyway, and this keeps the tests short.
    return quick_config("", **{"data.val_size": 0, "train.save_steps": 1, **sets})


def state(job_id):
    return queue.get(job_id).state


def steps(run: RunDir) -> list[int]:
    return [r["step"] for r in run.read_metrics() if "loss" in r]


def test_a_config_that_cannot_run_is_refused_and_nothing_is_queued(outputs):
    with pytest.raises(ConfigError, match="train.learning_rate must be > 0.0"):
        submit.submit("train", tiny(**{"train.learning_rate": 0}))
    with pytest.raises(ConfigError, match="data.source: file not found"):
        submit.submit("train", "data: {source: data/nope.jsonl}")
    with pytest.raises(ConfigError, match="unknown job kind 'fly'"):
        submit.submit("fly", "{}")
    assert queue.list_jobs() == [] and not (outputs / "jobs").exists()


@pytest.mark.slow
def test_one_at_a_time_stop_then_resume_to_the_same_final_step(outputs):
    a = submit.submit("train", tiny(**{"train.max_steps": 6, "run_name": "a"}))
    b = submit.submit("train", tiny(**{"train.max_steps": 2, "run_name": "b"}))
    sup = Supervisor(poll_s=0.2).start()
    try:
        run_a = RunDir(a.run_dir)
        wait_for(lambda: run_a.read_status().get("step", 0) >= 2, what="job a at step 2")
        assert state(b.id) == "queued"  # the CPU runs one job at a time
        assert "stopping job" in submit.cancel(a.id)
        wait_for(lambda: state(a.id) == "cancelled", what="job a to stop")
        status = run_a.read_status()
        assert status["state"] == "stopped" and 2 <= status["step"] < 6
        assert (run_a.adapter / "adapter_model.safetensors").is_file() and run_a.last_checkpoint() is not None
        wait_for(lambda: state(b.id) == "completed", what="job b to run next")
        assert queue.get(b.id).started_at >= queue.get(a.id).finished_at

        submit.resume(a.id)
        wait_for(lambda: state(a.id) == "completed", what="job a to resume and finish")
        final = run_a.read_status()
        assert final["state"] == "completed" and final["step"] == 6
        assert steps(run_a) == [1, 2, 3, 4, 5, 6]  # no gap, no duplicate
        snap = view.snapshot(queue.get(a.id))
        assert snap["state"] == "completed" and snap["step"] == 6 and snap["adapter"]
        assert any("step 6/6" in line for line in snap["log"])  # the worker's summary lines
    finally:
        sup.close()


@pytest.mark.slow
def test_a_worker_killed_by_sigkill_fails_its_job_and_the_next_one_runs(outputs):
    a = submit.submit("train", tiny(**{"train.max_steps": 40, "run_name": "victim"}))
    b = submit.submit("train", tiny(**{"train.max_steps": 1, "run_name": "next"}))
    sup = Supervisor(poll_s=0.2).start()
    try:
        wait_for(lambda: RunDir(a.run_dir).read_status().get("step", 0) >= 1, what="the victim's first step")
        os.killpg(queue.get(a.id).pid, signal.SIGKILL)
        wait_for(lambda: state(a.id) == "failed", what="the killed job to fail")
        error = queue.get(a.id).error
        assert "killed by SIGKILL" in error and "last lines of worker.log" in error
        assert RunDir(a.run_dir).read_status()["state"] == "interrupted"  # resumable from its checkpoint
        wait_for(lambda: state(b.id) == "completed", what="the next job")
    finally:
        sup.close()


def _headless_worker(outputs) -> subprocess.Popen:
    env = {**os.environ, "WORKBENCH_OUTPUTS": str(outputs), "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen([PY, "-m", "workbench", "worker"], cwd=ROOT, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


@pytest.mark.slow
def test_a_supervisor_killed_mid_run_leaves_a_worker_the_next_one_reattaches(outputs):
    job = submit.submit("train", tiny(**{"train.max_steps": 5, "run_name": "orphan"}))
    headless = _headless_worker(outputs)
    try:
        wait_for(lambda: RunDir(job.run_dir).read_status().get("step", 0) >= 1, what="the first step")
        worker_pid = queue.get(job.id).pid
        headless.send_signal(signal.SIGKILL)  # the supervisor dies; its worker leads its own session
        headless.wait(30)
        sup = Supervisor(poll_s=0.2)
        sup.recover()
        assert job.id in sup.workers and sup.workers[job.id].pid == worker_pid  # re-attached, not restarted
        assert queue.get(job.id).owner == sup.owner
        sup.start()
        wait_for(lambda: state(job.id) == "completed", what="the re-attached job to finish")
        sup.close()
        assert steps(RunDir(job.run_dir)) == [1, 2, 3, 4, 5]
    finally:
        headless.kill()


@pytest.mark.slow
def test_a_supervisor_and_its_worker_killed_then_resume_reaches_the_same_final_step(outputs):
    job = submit.submit("train", tiny(**{"train.max_steps": 6, "run_name": "both"}))
    headless = _headless_worker(outputs)
    run = RunDir(job.run_dir)
    wait_for(lambda: run.read_status().get("step", 0) >= 2 and run.last_checkpoint(), what="step 2 saved")
    worker = queue.get(job.id)
    os.killpg(worker.pid, signal.SIGKILL)
    headless.send_signal(signal.SIGKILL)
    headless.wait(30)
    # SIGKILL is delivered at once but a torch process takes a moment to exit: recover() must see it gone
    wait_for(lambda: not same_process_alive(worker.pid, worker.pid_started), what="the killed worker to exit")
    sup = Supervisor(poll_s=0.2)
    sup.recover()
    assert state(job.id) == "interrupted" and run.read_status()["state"] == "interrupted"
    submit.resume(job.id)
    sup.start()
    try:
        wait_for(lambda: state(job.id) == "completed", what="the resumed job")
    finally:
        sup.close()
    assert run.read_status()["step"] == 6 and steps(run) == [1, 2, 3, 4, 5, 6]


@pytest.mark.slow
def test_an_idle_supervisor_keeps_a_warm_worker_that_runs_the_next_job(outputs, monkeypatch):
    from workbench.jobs import supervisor

    monkeypatch.setattr(supervisor, "WARM_AFTER_IDLE_S", 1.0)  # the 10 s wait is for the app's start-up
    sup = Supervisor(poll_s=0.2).start()
    try:
        assert wait_for(lambda: sup.warm.ready.is_set(), 120, 0.2, "the standby to warm up")
        standby_pid = sup.warm.proc.pid
        job = submit.submit("train", tiny(**{"train.max_steps": 2, "run_name": "warm"}))
        wait_for(lambda: state(job.id) == "completed", what="the job on the warm worker")
        assert queue.get(job.id).pid == standby_pid  # no fresh process: the standby became the worker
        assert "step 2/2" in (submit.job_folder(job.id) / "worker.log").read_text()
        wait_for(lambda: sup.warm.ready.is_set() and sup.warm.proc.pid != standby_pid, 120, 0.2,
                 "a new standby once idle again")
    finally:
        sup.close()
    assert sup.warm.proc is None  # closing the supervisor takes its standby down
