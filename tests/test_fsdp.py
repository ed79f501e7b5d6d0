"""FSDP from the queue: a 2-process training job with distributed.strategy fsdp runs on this CPU (torch's FSDP2
over gloo) from accelerate's FSDP config written into its run folder, and leaves one run with one adapter.
DeepSpeed's ZeRO is refused at submit on a machine without GPUs, and nothing is queued or written."""
import pytest
import yaml

from conftest import quick_config
from e2e_helpers import run_queued
from workbench.core.errors import ConfigError
from workbench.jobs import queue, submit
from workbench.jobs.processes import gpu_ids
from workbench.runs.folder import RunDir


@pytest.fixture
def outputs(no_app_supervisor, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_OUTPUTS", str(tmp_path / "outputs"))
    monkeypatch.delenv("WORKBENCH_JOBS_DB", raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return tmp_path / "outputs"


@pytest.mark.skipif(bool(gpu_ids()), reason="the refusal is for machines without GPUs")
@pytest.mark.parametrize("strategy", ["zero2", "zero3"])
def test_deepspeed_zero_is_refused_without_a_gpu_and_nothing_is_written(outputs, strategy):
    cfg = quick_config("", **{"distributed.strategy": strategy})
    with pytest.raises(ConfigError, match=f"{strategy} \\(DeepSpeed ZeRO\\) needs GPUs") as e:
        submit.submit("train", cfg, processes=2)
    assert "slurm.gpus_per_node" in e.value.hint
    with pytest.raises(ConfigError, match="needs GPUs"):  # a Slurm job that asks for no GPUs neither
        submit.submit("train", cfg, processes=2, executor="slurm")
    assert queue.list_jobs() == [] and not (outputs / "jobs").exists()


@pytest.mark.slow
def test_a_two_process_fsdp_job_trains_on_the_cpu(outputs):
    cfg = quick_config("", **{"data.val_size": 0, "train.max_steps": 2, "distributed.strategy": "fsdp"})
    job = submit.submit("train", cfg, processes=2)
    done = run_queued(job.id, timeout=600, what="the FSDP job to end")
    assert done.state == "completed", done.error
    run = RunDir(done.run_dir)
    acc = yaml.safe_load((run.path / "accelerate-fsdp.yaml").read_text())
    assert acc["distributed_type"] == "FSDP" and acc["num_processes"] == 2 and acc["use_cpu"] is True
    status = run.read_status()
    assert status["state"] == "completed" and status["world_size"] == 2 and status["step"] == 2
    assert [r["step"] for r in run.read_metrics() if "loss" in r] == [1, 2]
    assert (run.adapter / "adapter_model.safetensors").is_file()
