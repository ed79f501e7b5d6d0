"""The Slurm executor from a terminal: `jobs submit CONFIG` (no executor in it) then `worker --executor slurm
--until-empty` runs the job as a Slurm job and exits once the queue is empty; `jobs list` shows where it ran."""
import subprocess

import pytest
import yaml

from conftest import PY, ROOT, quick_config
from slurm_cluster import slurm_cluster  # noqa: F401 - the session fixture
from workbench.jobs import queue

pytestmark = pytest.mark.slow


@pytest.mark.timeout(1200)
def test_worker_with_the_slurm_executor_runs_the_queue_on_slurm(no_app_supervisor, slurm_cluster,  # noqa: F811
                                                                 tmp_path, monkeypatch, model_dir):
    monkeypatch.setenv("WORKBENCH_OUTPUTS", str(tmp_path / "outputs"))
    monkeypatch.delenv("WORKBENCH_JOBS_DB", raising=False)
    config = tmp_path / "run.yaml"
    config.write_text(yaml.safe_dump(quick_config("", **{"data.val_size": 0, "train.max_steps": 1}).to_dict()))
    cli = [PY, "-m", "workbench"]
    out = subprocess.run([*cli, "jobs", "submit", str(config)], cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    job = queue.list_jobs()[0]
    assert job.executor == "local" and job.slurm_job_id is None  # the worker's --executor decides
    done = subprocess.run([*cli, "worker", "--executor", "slurm", "--until-empty"], cwd=ROOT, capture_output=True,
                          text=True, timeout=1100)
    assert done.returncode == 0 and "no job queued or running" in done.stdout, done.stderr[-2000:]
    job = queue.get(job.id)
    assert job.state == "completed" and job.executor == "slurm" and job.slurm_job_id.isdigit(), job.error
    listed = subprocess.run([*cli, "jobs", "list"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    assert f"slurm {job.slurm_job_id} on {job.node}" in listed
    refused = subprocess.run([*cli, "worker", "--executor", "k8s"], cwd=ROOT, capture_output=True, text=True)
    assert refused.returncode == 2 and "invalid choice: 'k8s'" in refused.stderr
