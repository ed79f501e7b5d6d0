"""Several processes on Slurm: a 2-process training job submitted to the one-node test cluster runs under
accelerate launch inside its Slurm job (2 CPUs asked for) and trains to completion with world size 2."""
import pytest

from conftest import quick_config
from e2e_helpers import wait_for
from slurm_cluster import slurm_cluster  # noqa: F401 - the session fixture
from workbench.jobs import queue, submit
from workbench.jobs.supervisor import Supervisor
from workbench.runs.folder import RunDir

pytestmark = pytest.mark.slow


@pytest.fixture
def outputs(no_app_supervisor, slurm_cluster, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("WORKBENCH_OUTPUTS", str(tmp_path / "outputs"))
    monkeypatch.delenv("WORKBENCH_JOBS_DB", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setattr("workbench.jobs.executors.SLURM_POLL_S", 0.5)
    return tmp_path / "outputs"


@pytest.mark.timeout(1500)
def test_a_two_process_job_trains_on_slurm_with_world_size_2(outputs, model_dir):
    cfg = quick_config("", **{"data.val_size": 0, "train.max_steps": 2})
    job = submit.submit("train", cfg, processes=2, executor="slurm")
    sup = Supervisor(poll_s=0.2).start()
    try:
        wait_for(lambda: queue.get(job.id).state in queue.FINISHED, timeout=1200, what="the 2-process Slurm job")
    finally:
        sup.close()
    done = queue.get(job.id)
    assert done.state == "completed", done.error
    script = (outputs / "jobs" / job.id / "slurm.sh").read_text()
    assert "#SBATCH --cpus-per-task=2" in script and "launch --multi_gpu --num_processes 2" in script
    run = RunDir(done.run_dir)
    status = run.read_status()
    assert status["state"] == "completed" and status["world_size"] == 2 and status["step"] == 2
    assert [r["step"] for r in run.read_metrics() if "loss" in r] == [1, 2]
    assert (run.adapter / "adapter_model.safetensors").is_file()
