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
                      main_port: int = DEFAULT_PORT) -> str:
    """`accelerate launch` for one node of a multi-node DDP run; the rank and address are shell variables
    the sbatch script sets (or numbers, to run it by hand on each machine)."""
    if num_machines < 1 or gpus_per_machine < 1:
        raise ConfigError("num_machines and gpus_per_machine must be at least 1")
    if not 1 <= int(main_port) <= 65535:
        raise ConfigError(f"main_process_port must be 1-65535; got {main_port}")
    total = num_machines * gpus_per_machine
    rank = machine_rank if isinstance(machine_rank, int) else f'"{machine_rank}"'
    address = f'"{main_address}"' if str(main_address).startswith("$") else shlex.quote(main_address)
    return (f"accelerate launch --multi_gpu --num_machines {num_machines} --num_processes {total} "
            f"--machine_rank {rank} --main_process_ip {address} --main_process_port {int(main_port)} "
            f"--rdzv_backend static --same_network -m workbench train --config {shlex.quote(str(config_path))}")


def sbatch_script(config_path: str | Path, *, job_name: str = "workbench", num_machines: int = 2,
                  gpus_per_machine: int = 8, cpus_per_gpu: int = 8, hours: int = 24, partition: str = "",
                  workdir: str | Path = ".", main_port: int = DEFAULT_PORT) -> str:
    """A Slurm script: one task per node; the first node's hostname is the rendezvous address."""
    if hours < 1:
        raise ConfigError("the time limit must be at least 1 hour")
    name = "".join(c if c.isalnum() or c in "-_." else "-" for c in job_name)[:60] or "workbench"
    command = multinode_command(config_path, num_machines=num_machines, gpus_per_machine=gpus_per_machine,
                                main_port=main_port)
    lines = [
        "#!/bin/bash",
        f"#SBATCH --job-name={name}",
        f"#SBATCH --nodes={num_machines}",
        "#SBATCH --ntasks-per-node=1",
        f"#SBATCH --gpus-per-node={gpus_per_machine}",
        f"#SBATCH --cpus-per-task={cpus_per_gpu * gpus_per_machine}",
        f"#SBATCH --time={hours}:00:00",
        f"#SBATCH --output={name}-%j.log",
        *([f"#SBATCH --partition={partition}"] if partition else []),
        "set -euo pipefail",
        f"cd {shlex.quote(str(workdir))}",
        "# The first node of the allocation hosts the rendezvous; every node runs the same command.",
        'MAIN_ADDR=$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)',
        "export MAIN_ADDR HF_HUB_OFFLINE=${HF_HUB_OFFLINE:-0}",
        f"srun --ntasks-per-node=1 bash -c {shlex.quote(command)}",
        "",
    ]
    return "\n".join(lines)
