"""Several processes on Slurm: a 2-process training job submitted to the one-node test cluster runs under
accelerate launch inside its Slurm job (2 CPUs asked for) and trains to completion with world size 2."""
import pytest

from conftest import quick_config
from e2e_helpers import run_queued
from slurm_cluster import slurm_cluster, slurm_outputs  # noqa: F401 - the fixtures (outputs)
from workbench.jobs import submit
from workbench.runs.folder import RunDir

pytestmark = pytest.mark.slow


@pytest.fixture
def one_thread_each(monkeypatch):
    monkeypatch.setenv("OMP_NUM_THREADS", "1")  # two processes on two cores


@pytest.mark.timeout(1500)
def test_a_two_process_job_trains_on_slurm_with_world_size_2(outputs, one_thread_each, model_dir):
    cfg = quick_config("", **{"data.val_size": 0, "train.max_steps": 2})
    job = submit.submit("train", cfg, processes=2, executor="slurm")
    done = run_queued(job.id, timeout=1200, what="the 2-process Slurm job")
    assert done.state == "completed", done.error
    script = (outputs / "jobs" / job.id / "slurm.sh").read_text()
    assert "#SBATCH --cpus-per-task=2" in script and "launch --multi_gpu --num_processes 2" in script
    run = RunDir(done.run_dir)
    status = run.read_status()
    assert status["state"] == "completed" and status["world_size"] == 2 and status["step"] == 2
    assert [r["step"] for r in run.read_metrics() if "loss" in r] == [1, 2]
    assert (run.adapter / "adapter_model.safetensors").is_file()
