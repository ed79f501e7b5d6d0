"""Talking to Slurm through its own commands (sbatch, squeue, scontrol, sacct, scancel): no library, no REST
daemon, so the workbench works with whatever Slurm a cluster's login node has. Every call has a timeout, and a
controller that does not answer is reported as such (the job is not given up on for it)."""
from __future__ import annotations

import logging
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from workbench.core.errors import WorkbenchError

log = logging.getLogger(__name__)
CALL_TIMEOUT_S = 30.0

# Job states (scontrol's JobState / sacct's State, without a "+" or "by <uid>" suffix).
WAITING = {"PENDING", "CONFIGURING", "SUSPENDED", "RESV_DEL_HOLD", "REQUEUE_HOLD", "REQUEUE_FED", "REQUEUED",
           "RESIZING", "SIGNALING", "STAGE_OUT", "SPECIAL_EXIT"}
RUNNING = {"RUNNING", "COMPLETING"}
# Ended for a reason outside the job: resumable from its last checkpoint.
LOST = {"NODE_FAIL", "PREEMPTED", "BOOT_FAIL", "TIMEOUT", "DEADLINE", "REVOKED"}
REQUEUE = {"REQUEUED", "REQUEUE_HOLD", "REQUEUE_FED"}


class SlurmError(WorkbenchError):
    """Slurm refused or could not be reached."""


@dataclass
class SlurmJob:
    state: str  # PENDING, RUNNING, COMPLETED, FAILED, CANCELLED, NODE_FAIL, ...
    reason: str = ""  # why it waits (Resources, Priority, ...) or ended
    node: str = ""
    exit_code: int | None = None  # the script's exit code once it ended
    signal: int = 0  # the signal that ended it, if any
    restarts: int = 0  # how often Slurm requeued it


def available() -> bool:
    return shutil.which("sbatch") is not None and shutil.which("scontrol") is not None


def _call(args: list[str], *, what: str) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=CALL_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise SlurmError(f"{args[0]} was not found: this machine has no Slurm client",
                         "run the app or worker on the cluster's login node, or use the local executor") from None
    except subprocess.TimeoutExpired:
        raise SlurmError(f"{what}: {args[0]} did not answer within {CALL_TIMEOUT_S:.0f} s") from None


def submit(script: Path, workdir: Path) -> str:
    """`sbatch --parsable SCRIPT`: the Slurm job id (a cluster name after ';' is dropped)."""
    done = _call(["sbatch", "--parsable", str(script)], what="sbatch")
    if done.returncode != 0:
        raise SlurmError(f"sbatch refused the job: {(done.stderr or done.stdout).strip()}",
                         "check slurm.partition / slurm.account / slurm.time and the cluster's limits (sinfo)")
    job_id = done.stdout.strip().split(";")[0]
    if not job_id.isdigit():
        raise SlurmError(f"sbatch answered {done.stdout.strip()!r}, not a job id")
    return job_id


def query(job_id: str) -> SlurmJob | None:
    """The job as the controller knows it (`scontrol show job`), else as accounting does (`sacct`), else None
    (finished longer ago than MinJobAge on a cluster without accounting). SlurmError: the controller is down."""
    done = _call(["scontrol", "show", "job", "-o", str(job_id)], what="scontrol show job")
    if done.returncode == 0 and done.stdout.strip():
        return parse_scontrol(done.stdout)
    text = (done.stderr or "") + (done.stdout or "")
    if "Invalid job id" not in text:
        raise SlurmError(f"scontrol show job {job_id}: {text.strip() or f'exit code {done.returncode}'}")
    return _sacct(job_id)


def parse_scontrol(text: str) -> SlurmJob:
    """One line of `scontrol show job -o`: Key=Value pairs separated by spaces."""
    fields = dict(part.split("=", 1) for part in text.split() if "=" in part)
    state = fields.get("JobState", "UNKNOWN").split("+")[0]
    code, sig = (fields.get("ExitCode") or "0:0").partition(":")[::2]
    reason = fields.get("Reason", "")
    node = fields.get("NodeList", "")
    return SlurmJob(state=state, reason="" if reason == "None" else reason,
                    node="" if node in ("(null)", "None") else node,
                    exit_code=int(code) if state not in WAITING | RUNNING and code.isdigit() else None,
                    signal=int(sig) if sig.isdigit() else 0, restarts=int(fields.get("Restarts", "0") or 0))


def _sacct(job_id: str) -> SlurmJob | None:
    if shutil.which("sacct") is None:
        return None
    done = _call(["sacct", "-n", "-P", "-X", "-j", str(job_id), "-o", "State,ExitCode,NodeList,Reason"],
                 what="sacct")
    line = done.stdout.strip().splitlines()[0] if done.returncode == 0 and done.stdout.strip() else ""
    if not line:
        return None  # accounting disabled ("Slurm accounting storage is disabled") or the job is unknown
    state, exit_code, node, reason = (line.split("|") + ["", "", "", ""])[:4]
    code, sig = exit_code.partition(":")[::2]
    return SlurmJob(state=state.split()[0], reason="" if reason == "None" else reason, node=node,
                    exit_code=int(code) if code.isdigit() else None, signal=int(sig) if sig.isdigit() else 0)


def cancel(job_id: str, signal: str | None = None) -> bool:
    """scancel the job; with `signal` (TERM) send it to the batch script and its children too (--full), which is
    where a single-node worker runs. True when Slurm accepted it."""
    args = ["scancel", *(["--full", f"--signal={signal}"] if signal else []), str(job_id)]
    try:
        done = _call(args, what="scancel")
    except SlurmError as e:
        log.warning("%s", e)
        return False
    if done.returncode != 0:
        log.warning("scancel %s: %s", job_id, done.stderr.strip())
    return done.returncode == 0
