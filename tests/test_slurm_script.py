"""The Slurm executor's script without a cluster: what the queue submits for a job is valid bash, carries the
job's slurm settings, writes its exit code for the supervisor, refuses a slurm.extra that is not an option, and a
2-node job's per-node command (a resumed job's own arguments) parses with accelerate's own parser."""
import shlex
import subprocess

import pytest

from conftest import quick_config
from workbench.core.errors import ConfigError
from workbench.jobs import executors, queue, submit
from workbench.training import cluster


@pytest.fixture
def outputs(no_app_supervisor, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_OUTPUTS", str(tmp_path / "outputs"))
    monkeypatch.delenv("WORKBENCH_JOBS_DB", raising=False)
    return tmp_path / "outputs"


def script_of(job):
    folder = submit.job_folder(job.id)
    return cluster.worker_script(
        [*executors.python_command(job), *executors.job_args(job)], job_name=f"wb-{job.id}", workdir="/w",
        log_path=folder / "worker.log", exit_file=folder / "slurm-exit", env=executors.worker_env(job), nodes=2,
        cpus_per_task=1, time="1:00:00", partition="gpu", account="lab", extra="--qos=high; --constraint=a100",
        per_node_command=executors.multinode_line(job, 2))


def test_the_queue_script_is_valid_bash_and_its_per_node_command_parses(outputs, tmp_path):
    from accelerate.commands.launch import launch_command_parser

    job = submit.submit("train", quick_config("", **{"slurm.nodes": 2}), processes=2, executor="slurm")
    assert queue.get(job.id).executor == "slurm" and executors.executor_of(job) == "slurm"
    job.resume = True  # a resumed job's nodes resume the run, never start it over
    script = script_of(job)
    path = tmp_path / "job.sh"
    path.write_text(script)
    assert subprocess.run(["bash", "-n", str(path)], capture_output=True).returncode == 0
    for line in ("#SBATCH --nodes=2", "#SBATCH --partition=gpu", "#SBATCH --account=lab", "#SBATCH --time=1:00:00",
                 "#SBATCH --qos=high", "#SBATCH --constraint=a100", "#SBATCH --no-requeue",
                 "#SBATCH --open-mode=append"):
        assert line in script.splitlines()
    assert f"WORKBENCH_JOB_ID={job.id}" in script and "slurm-exit" in script
    srun = next(line for line in script.splitlines() if line.startswith("srun "))
    per_node = shlex.split(srun)[-1].replace('"$SLURM_NODEID"', "1").replace('"$MAIN_ADDR"', "node-01")
    argv = shlex.split(per_node)
    assert argv[0].endswith("accelerate") and argv[1] == "launch"
    args = launch_command_parser().parse_args(argv[2:])
    assert (args.num_machines, args.num_processes, args.machine_rank, args.main_process_ip) == (2, 2, 1, "node-01")
    assert args.training_script_args == ["train", "--resume", job.run_dir, "--no-progress"]


def test_an_extra_that_is_not_an_sbatch_option_is_refused():
    with pytest.raises(ConfigError, match="slurm.extra: 'rm -rf /' is not an sbatch option"):
        cluster.worker_script(["true"], job_name="x", workdir="/w", log_path="/l", exit_file="/e", env={},
                              extra="rm -rf /")
    with pytest.raises(ConfigError, match="not an sbatch option"):
        cluster.worker_script(["true"], job_name="x", workdir="/w", log_path="/l", exit_file="/e", env={},
                              extra="--comment=$(reboot)")


def test_an_unknown_executor_is_refused_and_nothing_is_queued(outputs):
    with pytest.raises(ConfigError, match="unknown executor 'k8s'"):
        submit.submit("train", quick_config(""), executor="k8s")
    with pytest.raises(ConfigError, match="executor must be one of"):
        submit.submit("train", "executor: k8s\n")
    assert queue.list_jobs() == [] and not (outputs / "jobs").exists()
