"""Processes the supervisor watches: identity that survives a restart (pid AND start time, since a pid alone
can be reused), liveness, and this machine's devices and who may use them."""
from __future__ import annotations

import functools
import os
import socket
from pathlib import Path

import psutil

from workbench.jobs.kinds import get_kind

HOST = socket.gethostname()


def start_time(pid: int) -> float | None:
    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None


def same_process_alive(pid: int | None, started: float | None) -> bool:
    """True when `pid` runs and is the very process that started at `started` (not a reused pid)."""
    if not pid or started is None:
        return False
    now = start_time(int(pid))
    if now is None or abs(now - float(started)) > 0.5:
        return False
    try:
        return psutil.Process(int(pid)).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def own_identity() -> str:
    """host:pid:start of this process: the owner written on the jobs a supervisor claims."""
    pid = os.getpid()
    return f"{HOST}:{pid}:{start_time(pid)}"


def owner_alive(owner: str | None) -> bool:
    """Whether the supervisor named by `owner` still runs. One on another host cannot be checked: alive."""
    if not owner:
        return False
    try:
        host, pid, started = owner.rsplit(":", 2)
        started_f = float(started)
    except ValueError:
        return False
    if host != HOST:
        return True
    return same_process_alive(int(pid), started_f)


@functools.lru_cache(maxsize=1)
def gpu_ids() -> tuple[int, ...]:
    """The CUDA devices jobs may use ((): none, so jobs run on the CPU one at a time).

    Read from CUDA_VISIBLE_DEVICES or the driver's device files, not from torch: importing torch in the app's
    supervisor thread at start-up doubled the app's cold start (3.4 → 6.9 s, benchmarks/ui_latency.py)."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        return tuple(int(d) for d in visible.split(",") if d.strip().isdigit())
    return tuple(sorted(int(p.name[len("nvidia"):]) for p in Path("/dev").glob("nvidia[0-9]*")))


def devices_for(kind: str, processes: int, active: list) -> tuple[int, ...] | None:
    """The GPUs a job of `kind` on `processes` processes gets beside the running jobs (of every supervisor), () on
    a CPU; None: not yet. The one rule for a supervisor's claim and for the Train tab's Start."""
    gpus = gpu_ids()
    if not gpus:
        # CPU: one job at a time (each one uses every core), but kinds that mostly wait (serve) run beside them
        busy = any(get_kind(j.kind).cpu_exclusive for j in active)
        return None if busy and get_kind(kind).cpu_exclusive else ()
    busy_gpus = {int(d) for j in active for d in (j.devices or "").split(",") if d}
    free = [g for g in gpus if g not in busy_gpus]
    return tuple(free[:processes]) if len(free) >= processes else None
