"""The distributed path for real: the UI's accelerate command runs 2 processes on this CPU and leaves one run."""
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from conftest import PY, ROOT, quick_config
from workbench.runs.folder import RunDir
from workbench.training import launch

pytestmark = pytest.mark.slow


def test_accelerate_launch_two_processes_trains_one_run_with_one_adapter(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_OUTPUTS", str(tmp_path))
    cfg = quick_config("", **{"train.max_steps": 2, "run_name": "ddp"})
    config = launch.save_config(cfg, "ddp-test", num_gpus=2)["config"]
    command = shlex.split(launch.accelerate_command(config, 2, "ddp"))
    assert command[:4] == ["accelerate", "launch", "--multi_gpu", "--num_processes"]
    command[0] = str(Path(PY).parent / "accelerate")  # the venv's accelerate, exactly as the UI shows it
    env = {**os.environ, "WORKBENCH_OUTPUTS": str(tmp_path), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr[-3000:]

    # Both processes ran the whole training (each prints its summary)...
    assert proc.stdout.count("completed: step 2/2") == 2, proc.stdout
    # ...on one shared run folder: one config, one metrics file, one checkpoint series, one adapter.
    runs = [p for p in tmp_path.iterdir() if p.is_dir() and p.name != "configs"]
    assert len(runs) == 1, runs
    run = RunDir(runs[0])
    status = run.read_status()
    assert status["state"] == "completed" and status["world_size"] == 2 and status["step"] == 2
    # One row per step: the two processes formed one process group (two independent trainings would both
    # count as "world process zero" and write every row twice).
    assert [r["step"] for r in run.read_metrics() if "loss" in r] == [1, 2]
    assert [p.name for p in run.checkpoints.glob("checkpoint-*")] == ["checkpoint-2"]
    assert sorted(p.name for p in run.path.iterdir() if p.name.startswith(("adapter", ".adapter"))) == ["adapter"]
    assert (run.adapter / "adapter_model.safetensors").is_file()
