"""Beyond one machine: for any config, a Slurm `sbatch` script and the matching multi-node `accelerate launch`
command that run it unchanged on a cluster (one task per node; accelerate starts one process per GPU).

The script is plain bash (checked with `bash -n` in the tests) and the command parses with accelerate's own
argument parser, so what the UI shows is what the cluster runs.
"""
from __future__ import annotations

import shlex
from pathlib import Path

from workbench.core.errors import ConfigError

DEFAULT_PORT = 29500


def multinode_command(config_path: str | Path, *, num_machines: int, gpus_per_machine: int,
                      machine_rank: str | int = "$SLURM_NODEID", main_address: str = "$MAIN_ADDR",
                      main_port: int = DEFAULT_PORT, launcher: str = "accelerate",
                      worker_args: list[str] | None = None) -> str:
    """`accelerate launch` for one node of a multi-node DDP run; the rank and address are shell variables
    the sbatch script sets (or numbers, to run it by hand on each machine). `worker_args`: the workbench
    command to run instead of `train --config CONFIG` (a queued job's own, e.g. `train --resume RUN`)."""
    if num_machines < 1 or gpus_per_machine < 1:
        raise ConfigError("num_machines and gpus_per_machine must be at least 1")
    if not 1 <= int(main_port) <= 65535:
        raise ConfigError(f"main_process_port must be 1-65535; got {main_port}")
    total = num_machines * gpus_per_machine
    rank = machine_rank if isinstance(machine_rank, int) else f'"{machine_rank}"'
    address = f'"{main_address}"' if str(main_address).startswith("$") else shlex.quote(main_address)
    args = worker_args or ["train", "--config", str(config_path)]
    return (f"{shlex.quote(launcher)} launch --multi_gpu --num_machines {num_machines} --num_processes {total} "
            f"--machine_rank {rank} --main_process_ip {address} --main_process_port {int(main_port)} "
            f"--rdzv_backend static --same_network -m workbench {' '.join(shlex.quote(a) for a in args)}")


def sbatch_script(config_path: str | Path, *, job_name: str = "workbench", num_machines: int = 2,
                  gpus_per_machine: int = 8, cpus_per_gpu: int = 8, hours: int = 24, partition: str = "",
                  workdir: str | Path = ".", main_port: int = DEFAULT_PORT) -> str:
    """A Slurm script: one task per node; the first node's hostname is the rendezvous address."""
    if hours < 1:
        raise ConfigError("the time limit must be at least 1 hour")
    name = _job_name(job_name)
    command = multinode_command(config_path, num_machines=num_machines, gpus_per_machine=gpus_per_machine,
                                main_port=main_port)
    lines = [
        "#!/bin/bash",
        *_header(name, nodes=num_machines, gpus_per_node=gpus_per_machine,
                 cpus_per_task=cpus_per_gpu * gpus_per_machine, time=f"{hours}:00:00", partition=partition),
        f"#SBATCH --output={name}-%j.log",
        "set -euo pipefail",
        f"cd {shlex.quote(str(workdir))}",
        *_rendezvous(),
        f"srun --ntasks-per-node=1 bash -c {shlex.quote(command)}",
        "",
    ]
    return "\n".join(lines)


def _job_name(job_name: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "-" for c in job_name)[:60] or "workbench"


def _header(name: str, *, nodes: int, gpus_per_node: int, cpus_per_task: int, time: str = "", partition: str = "",
            account: str = "", extra: str = "") -> list[str]:
    """The #SBATCH lines both scripts share; `extra` adds the user's own options (one per line or ';')."""
    options = [f"--job-name={name}", f"--nodes={nodes}", "--ntasks-per-node=1",
               *([f"--gpus-per-node={gpus_per_node}"] if gpus_per_node else []),
               f"--cpus-per-task={max(1, cpus_per_task)}", *([f"--time={time}"] if time else []),
               *([f"--partition={partition}"] if partition else []), *([f"--account={account}"] if account else [])]
    for option in (o.strip() for o in extra.replace(";", "\n").splitlines()):
        if not option:
            continue
        if not option.startswith("-") or any(c in option for c in "`$\\\n"):
            raise ConfigError(f"slurm.extra: '{option}' is not an sbatch option", "write options like --qos=high")
        options.append(option)
    return [f"#SBATCH {o}" for o in options]


def _rendezvous() -> list[str]:
    return ["# The first node of the allocation hosts the rendezvous; every node runs the same command.",
            'MAIN_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
            "export MAIN_ADDR HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-0}"]


def worker_script(command: list[str], *, job_name: str, workdir: str | Path, log_path: str | Path,
                  exit_file: str | Path, env: dict[str, str], nodes: int = 1, gpus_per_node: int = 0,
                  cpus_per_task: int = 1, time: str = "", partition: str = "", account: str = "", extra: str = "",
                  per_node_command: str | None = None) -> str:
    """The script the queue's Slurm executor submits: a job's own worker command (the same CLI line a local
    worker runs), its log appended to the job's worker.log, and its exit code written to `exit_file` (the
    run folder lives on a shared filesystem, so the supervisor reads it there, with or without accounting).
    With several nodes, `per_node_command` (an `accelerate launch` line using $SLURM_NODEID and $MAIN_ADDR)
    runs once per node through srun."""
    name = _job_name(job_name)
    exports = " ".join(f"{k}={shlex.quote(v)}" for k, v in env.items())
    run = f"srun --ntasks-per-node=1 bash -c {shlex.quote(per_node_command)}" if per_node_command \
        else " ".join(shlex.quote(a) for a in command)
    exit_file = shlex.quote(str(exit_file))
    return "\n".join([
        "#!/bin/bash",
        *_header(name, nodes=nodes, gpus_per_node=gpus_per_node, cpus_per_task=cpus_per_task, time=time,
                 partition=partition, account=account, extra=extra),
        f"#SBATCH --output={log_path}", "#SBATCH --open-mode=append",
        # Never rerun this script from the start: a requeued run must resume from its checkpoint instead, which
        # the supervisor does once it has marked the job interrupted.
        "#SBATCH --no-requeue",
        "set -uo pipefail",
        f"cd {shlex.quote(str(workdir))}",
        *([f"export {exports}"] if exports else []),
        *(_rendezvous() if per_node_command else []),
        'echo "slurm job $SLURM_JOB_ID on $(hostname) started $(date -Is)"',
        run,
        "code=$?",
        f'echo "$code" > {exit_file}.tmp && mv {exit_file}.tmp {exit_file}',
        'exit "$code"',
        "",
    ])
