"""Sweeps (a grid of up to 3 settings, at most 32 points, one queued job per point) and the cluster export
(a Slurm script that bash accepts, an accelerate command that accelerate's own parser accepts)."""
import shlex
import subprocess
import time

import pytest

from conftest import quick_config
from workbench.core.errors import ConfigError
from workbench.jobs import queue
from workbench.jobs.sweep import expand, parse_axes, submit_sweep, sweep_ids, sweep_table
from workbench.training import cluster


@pytest.fixture
def outputs(no_app_supervisor, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_OUTPUTS", str(tmp_path / "outputs"))
    monkeypatch.delenv("WORKBENCH_JOBS_DB", raising=False)
    return tmp_path / "outputs"


def test_axes_are_parsed_and_bounded():
    assert parse_axes("train.learning_rate: 1e-4, 3e-4\nadapter.r: 8, 16") == {
        "train.learning_rate": ["1e-4", "3e-4"], "adapter.r": ["8", "16"]}
    assert parse_axes("{adapter.r: [4, 8]}") == {"adapter.r": [4, 8]}
    for text, message in [("", "at least one setting"), ("a: 1\nb: 2\nc: 3\nd: 4", "at most 3 settings"),
                          ("adapter.r: " + ", ".join(map(str, range(1, 34))), "33 points"),
                          ("adapter.r: 8, 8", "repeats a value"), ("- 1", "one setting per line")]:
        with pytest.raises(ConfigError, match=message):
            parse_axes(text)


def test_every_point_is_a_valid_config_or_the_bad_one_is_named():
    points = expand(quick_config(""), parse_axes("train.learning_rate: 1e-4, 3e-4\nadapter.r: 8, 16"))
    assert len(points) == 4 and points[3][0] == {"train.learning_rate": 3e-4, "adapter.r": 16}
    assert len({cfg.run_name for _, cfg in points}) == 4
    with pytest.raises(ConfigError, match=r"sweep point 2 \(adapter.r=0\): adapter.r must be >= 1"):
        expand(quick_config(""), parse_axes("adapter.r: 8, 0"))
    with pytest.raises(ConfigError, match="unknown setting 'train.nope'"):
        expand(quick_config(""), parse_axes("train.nope: 1, 2"))


def test_a_refused_point_queues_nothing(outputs):
    with pytest.raises(ConfigError, match="sweep point 2"):
        submit_sweep(quick_config(""), "adapter.r: 8, 0")
    assert queue.list_jobs() == []


@pytest.mark.slow
def test_a_two_point_sweep_runs_and_its_table_marks_the_best(outputs):
    from workbench.jobs.supervisor import Supervisor

    base = quick_config("", **{"train.max_steps": 2, "train.eval_steps": 2, "data.val_size": 0.1,
                                 "run_name": "lr"})
    sweep_id, jobs = submit_sweep(base, "train.learning_rate: 1e-4, 1e-3")
    assert sweep_ids() == [sweep_id] and {j.sweep_id for j in jobs} == {sweep_id}
    rows, _ = sweep_table(sweep_id)
    assert [r["state"] for r in rows] == ["queued", "queued"] and rows[0]["train.learning_rate"] == 1e-4
    sup = Supervisor(poll_s=0.2).start()
    try:
        deadline = time.time() + 900
        while any(queue.get(j.id).state != "completed" for j in jobs):
            assert time.time() < deadline, [queue.get(j.id) for j in jobs]
            assert not any(queue.get(j.id).state == "failed" for j in jobs), [queue.get(j.id).error for j in jobs]
            time.sleep(0.5)
    finally:
        sup.close()
    rows, folders = sweep_table(sweep_id)
    assert all(r["final loss"] is not None and r["best eval loss"] is not None for r in rows)
    best = min(rows, key=lambda r: r["best eval loss"])
    assert best["best"] == "★" and sum(r["best"] == "★" for r in rows) == 1
    assert len(set(folders)) == 2


def test_the_slurm_script_is_valid_bash(tmp_path):
    script = cluster.sbatch_script("outputs/configs/my run.yaml", job_name="my run", num_machines=4,
                                   gpus_per_machine=8, hours=12, partition="gpu")
    path = tmp_path / "job.sbatch"
    path.write_text(script)
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
    assert "#SBATCH --nodes=4" in script and "#SBATCH --gpus-per-node=8" in script
    assert "#SBATCH --partition=gpu" in script and "srun --ntasks-per-node=1" in script


def test_the_multinode_command_parses_with_accelerates_own_parser():
    from accelerate.commands.launch import launch_command_parser

    command = cluster.multinode_command("outputs/configs/x.yaml", num_machines=2, gpus_per_machine=4,
                                        machine_rank=1, main_address="node-01", main_port=29501)
    argv = shlex.split(command)
    assert argv[:2] == ["accelerate", "launch"]
    args = launch_command_parser().parse_args(argv[2:])
    assert (args.num_machines, args.num_processes, args.machine_rank) == (2, 8, 1)
    assert (args.main_process_ip, args.main_process_port, args.module) == ("node-01", 29501, True)
    assert args.training_script == "workbench" and args.training_script_args == ["train", "--config",
                                                                                 "outputs/configs/x.yaml"]
    # The script's form (shell variables for the rank and the address) parses once the shell expands them.
    in_script = cluster.multinode_command("x.yaml", num_machines=2, gpus_per_machine=4)
    expanded = in_script.replace('"$SLURM_NODEID"', "0").replace('"$MAIN_ADDR"', "node-01")
    assert launch_command_parser().parse_args(shlex.split(expanded)[2:]).machine_rank == 0
