"""A Slurm node that dies mid-job (slurmd and the job's processes killed, as a power cut would): Slurm declares
the node failed, the job ends `interrupted` with Slurm's reason, and once slurmd is back it resumes, as a new
Slurm job, from its checkpoint to the same final step."""
import contextlib
import os
import signal
import subprocess
from pathlib import Path

import psutil
import pytest

from conftest import quick_config
from e2e_helpers import wait_for
from slurm_cluster import SCRIPT, slurm_cluster, slurm_outputs  # noqa: F401 - the fixtures (outputs)
from workbench.jobs import queue, submit
from workbench.jobs.supervisor import Supervisor
from workbench.runs.folder import RunDir

pytestmark = pytest.mark.slow


def kill_the_node(conf: str, job_id: str) -> None:
    """SIGKILL slurmd, then the job's slurmstepd and everything under it (the batch script, the worker) at once,
    so nothing is left to write an exit code: what a node losing its power leaves behind."""
    pid_file = Path(conf).parent / "slurmd.pid"
    slurmds = [int(pid_file.read_text())] if pid_file.is_file() else \
        [p.pid for p in psutil.process_iter(["name", "cmdline"]) if p.info["name"] == "slurmd"
         and conf in " ".join(p.info["cmdline"] or [])]  # a slurmd that lost its pid file is found by its conf
    for pid in slurmds:  # none found: slurmd is already gone (the job's slurmstepd outlives it), the node is down
        os.kill(pid, signal.SIGKILL)
    workers = []
    for proc in psutil.process_iter(["pid", "environ"]):
        try:
            if (proc.info["environ"] or {}).get("WORKBENCH_JOB_ID") == job_id:
                workers.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    assert workers, "the job's worker was not found"
    stepds = {p for w in workers for p in w.parents() if p.name().startswith("slurmstepd")}
    assert stepds, "the job's slurmstepd was not found"
    for stepd in stepds:
        tree = [stepd, *stepd.children(recursive=True)]
        for proc in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.suspend()  # first freeze them all: none may notice another's death
        for proc in tree:
            with contextlib.suppress(psutil.NoSuchProcess):
                proc.kill()


@pytest.mark.timeout(1800)
def test_a_dead_node_interrupts_the_job_and_it_resumes_once_slurmd_is_back(
        outputs, slurm_cluster, model_dir):  # noqa: F811
    job = submit.submit("train", quick_config("", **{"data.val_size": 0, "train.save_steps": 1,
                                                     "train.max_steps": 4}), executor="slurm")
    run = RunDir(job.run_dir)
    sup = Supervisor(poll_s=0.2).start()
    try:
        wait_for(lambda: run.read_status().get("step", 0) >= 1 and run.last_checkpoint(), timeout=600,
                 what="a checkpoint")
        first_id = queue.get(job.id).slurm_job_id
        kill_the_node(slurm_cluster, job.id)
        wait_for(lambda: queue.get(job.id).state in queue.FINISHED, timeout=180, what="the job to be given up")
        lost = queue.get(job.id)
        assert lost.state == "interrupted", (lost.state, lost.error)
        assert f"Slurm job {first_id} ended NODE_FAIL" in lost.error and "resume" in lost.error
        assert run.read_status()["state"] == "interrupted"

        env = {**os.environ, "WORKBENCH_SLURM_DIR": str(Path(slurm_cluster).parent)}
        subprocess.run([str(SCRIPT), "start"], env=env, check=True, capture_output=True, timeout=120)
        submit.resume(job.id)
        wait_for(lambda: queue.get(job.id).state in queue.FINISHED, timeout=800, what="the resumed job")
        done = queue.get(job.id)
        assert done.state == "completed", done.error
        assert done.slurm_job_id != first_id and run.read_status()["step"] == 4
        assert [r["step"] for r in run.read_metrics() if "loss" in r] == [1, 2, 3, 4]
    finally:
        sup.close()
