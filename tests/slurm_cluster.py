"""The real one-node Slurm cluster (scripts/slurm-test-cluster.sh) as a session fixture: started once, on first
use, stopped at the end of the session. Where it cannot start (not root and Slurm not installed, no apt), the
tests that use it skip with the script's own reason. Import `slurm_cluster` into a test module to use it."""
from __future__ import annotations

import os
import shutil
import subprocess
import tempfile

import pytest

from conftest import ROOT

SCRIPT = ROOT / "scripts" / "slurm-test-cluster.sh"


@pytest.fixture(scope="session")
def slurm_cluster():
    """SLURM_CONF of a running one-node cluster (partitions `debug`, the default, and `one`: one CPU in use)."""
    state = tempfile.mkdtemp(prefix="wb-slurm-")
    env = {**os.environ, "WORKBENCH_SLURM_DIR": state}
    try:
        done = subprocess.run([str(SCRIPT), "start"], env=env, capture_output=True, text=True, timeout=300)
    except subprocess.TimeoutExpired:
        pytest.skip("the Slurm test cluster did not start within 300 s")
    if done.returncode != 0:
        subprocess.run([str(SCRIPT), "stop"], env=env, capture_output=True, timeout=60)
        shutil.rmtree(state, ignore_errors=True)
        why = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        pytest.skip(f"no Slurm test cluster here: {why}")
    conf = done.stdout.strip().splitlines()[-1].split("=", 1)[1]
    previous = os.environ.get("SLURM_CONF")
    os.environ["SLURM_CONF"] = conf  # sbatch / squeue / scontrol of this process and its children find it
    yield conf
    subprocess.run([str(SCRIPT), "stop"], env=env, capture_output=True, timeout=120)
    shutil.rmtree(state, ignore_errors=True)
    if previous is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = previous


@pytest.fixture(name="outputs")
def slurm_outputs(no_app_supervisor, slurm_cluster, tmp_path, monkeypatch):  # noqa: F811
    """A queue and outputs folder of the test's own, with the cluster running and Slurm polled every 0.5 s."""
    monkeypatch.setenv("WORKBENCH_OUTPUTS", str(tmp_path / "outputs"))
    monkeypatch.delenv("WORKBENCH_JOBS_DB", raising=False)
    monkeypatch.setenv("WORKBENCH_SLURM_POLL_S", "0.5")
    monkeypatch.setattr("workbench.jobs.executors.SLURM_POLL_S", 0.5)
    return tmp_path / "outputs"
