"""The Slurm executor against a real one-node Slurm (tests/slurm_cluster.py): a training job submitted through
the queue runs as a Slurm job and its adapter loads; on the one-CPU partition a second job waits with Slurm's
reason and is cancelled there; the supervisor restarted while a Slurm job runs re-attaches it by its id; a
running job stopped (STOP file) is resumed to the same final step as a new Slurm job."""
import json
import socket
import subprocess

import pytest

from conftest import PY, ROOT, quick_config
from e2e_helpers import run_queued, wait_for
from slurm_cluster import slurm_cluster, slurm_outputs  # noqa: F401 - the fixtures (outputs)
from workbench.jobs import queue, submit, view
from workbench.jobs.supervisor import Supervisor
from workbench.runs.folder import RunDir

pytestmark = pytest.mark.slow


def tiny(**sets):
    return quick_config("", **{"data.val_size": 0, "train.save_steps": 1, "executor": "slurm", **sets})


def steps(run: RunDir) -> list[int]:
    return [r["step"] for r in run.read_metrics() if "loss" in r]


def squeue_ids() -> set[str]:
    out = subprocess.run(["squeue", "-h", "-o", "%i"], capture_output=True, text=True, check=True).stdout
    return set(out.split())


def test_a_train_job_runs_on_slurm_and_its_adapter_loads(outputs, model_dir):
    from workbench.generation.chat_model import load_chat_model

    job = submit.submit("train", quick_config("", **{"data.val_size": 0, "train.max_steps": 2}), executor="slurm")
    assert job.executor == "slurm"
    # A local supervisor: the job's own executor sends it to Slurm.
    done = run_queued(job.id, timeout=800, what="the Slurm job to end")
    assert done.state == "completed", done.error
    assert done.slurm_job_id and done.slurm_job_id.isdigit() and done.reason is None
    assert done.node == socket.gethostname().split(".")[0]
    script = (outputs / "jobs" / job.id / "slurm.sh").read_text()
    assert "#SBATCH --no-requeue" in script and f"--job-name=wb-{job.id}" in script
    assert subprocess.run(["bash", "-n", str(outputs / "jobs" / job.id / "slurm.sh")]).returncode == 0
    run = RunDir(done.run_dir)
    assert run.read_status()["state"] == "completed" and steps(run) == [1, 2]
    assert "slurm job" in view.snapshot(done)["log"][0]  # the script's own line in worker.log
    model = load_chat_model("", run.path)
    assert model.has_adapter and "adapter" in model.describe()
    rows = json.loads(subprocess.run([PY, "-m", "workbench", "jobs", "list", "--json"], cwd=ROOT, text=True,
                                     capture_output=True, check=True).stdout)
    assert [(r["executor"], r["slurm_job_id"]) for r in rows] == [("slurm", done.slurm_job_id)]


@pytest.mark.timeout(1800)
def test_pending_reason_cancel_reattach_stop_and_resume(outputs, model_dir):
    a = submit.submit("train", tiny(**{"train.max_steps": 5, "run_name": "a", "slurm.partition": "one"}))
    b = submit.submit("train", tiny(**{"train.max_steps": 2, "run_name": "b", "slurm.partition": "one"}))
    sup = Supervisor(poll_s=0.2, executor="slurm").start()
    try:
        # The partition runs one CPU's worth at a time: a runs, b waits with Slurm's reason.
        wait_for(lambda: queue.get(a.id).node and queue.get(b.id).reason == "Resources", timeout=300,
                 what="a running and b pending")
        rows = {r["id"]: r for r in view.table()}
        assert rows[b.id]["error"] == "Slurm: Resources" and rows[b.id]["node"] == ""
        assert rows[a.id]["executor"] == "slurm" and rows[a.id]["node"] and rows[a.id]["slurm_job_id"]
        pending_id = queue.get(b.id).slurm_job_id
        assert "stopping job" in submit.cancel(b.id)
        wait_for(lambda: queue.get(b.id).state == "cancelled", timeout=60, what="b cancelled")
        assert pending_id not in squeue_ids() and not RunDir(b.run_dir).read_metrics()
    finally:
        sup.close()  # the app goes away while a runs in Slurm

    run_a = RunDir(a.run_dir)
    first_id = queue.get(a.id).slurm_job_id
    sup = Supervisor(poll_s=0.2).start()  # a new app, local by default: it re-attaches a by its Slurm id
    try:
        assert a.id in sup.workers and sup.workers[a.id].slurm_id == first_id
        assert queue.get(a.id).state == "running" and queue.get(a.id).owner == sup.owner
        wait_for(lambda: run_a.read_status().get("step", 0) >= 2, timeout=600, what="a at step 2")
        assert "stopping job" in submit.cancel(a.id)
        wait_for(lambda: queue.get(a.id).state == "cancelled", timeout=400, what="a to stop")
        status = run_a.read_status()
        assert status["state"] == "stopped" and 2 <= status["step"] < 5 and run_a.last_checkpoint() is not None

        submit.resume(a.id)
        wait_for(lambda: queue.get(a.id).state in queue.FINISHED, timeout=800, what="a to resume and finish")
        again = queue.get(a.id)
        assert again.state == "completed", again.error
        assert again.slurm_job_id != first_id  # a new Slurm job, resumed from the checkpoint
        assert run_a.read_status()["step"] == 5 and steps(run_a) == [1, 2, 3, 4, 5]
    finally:
        sup.close()
