"""Submit → first logged training step: the same tiny queued job on the Slurm executor (a one-node Slurm on
this machine, scripts/slurm-test-cluster.sh) versus the local executor (a fresh worker process; the warm standby
is off so both start Python from scratch). One run each, in the order local, slurm, slurm, local, so a drift of
the machine's speed shows. Where Slurm's extra time goes is read from the files: sbatch until the script's
first line in worker.log (scheduling + job start), then the worker's own imports, model, data and first step.
Writes benchmarks/results/slurm_start.json.

    python benchmarks/slurm_start.py        # as root (it starts and stops the test cluster)
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "slurm_start.json"
SCRIPT = ROOT / "scripts" / "slurm-test-cluster.sh"
ORDER = ("local", "slurm", "slurm", "local")


def tiny_config(executor: str):
    from workbench.config.run import RunConfig

    cfg = RunConfig()
    for key, value in {"data.max_rows": 48, "data.max_length": 128, "train.batch_size": 2, "train.max_steps": 1,
                       "train.save_steps": 100, "data.val_size": 0.0, "executor": executor}.items():
        cfg.set(key, value)
    return cfg


def one(executor: str) -> dict:
    from workbench.jobs import queue, submit
    from workbench.jobs.supervisor import Supervisor

    sup = Supervisor(poll_s=0.1).start()
    try:
        t0 = time.time()
        job = submit.submit("train", tiny_config(executor), executor=executor)
        metrics, log = Path(job.run_dir) / "metrics.jsonl", submit.job_folder(job.id) / "worker.log"
        started = None
        while time.time() - t0 < 900:
            if started is None and log.is_file() and log.read_text(errors="replace").strip():
                started = time.time() - t0  # slurm: the script's first line; local: the worker's first output
            if metrics.is_file() and metrics.read_text().strip():
                break
            time.sleep(0.02)
        else:
            raise SystemExit(f"no first step after 900 s ({executor})")
        first = time.time() - t0
        while queue.get(job.id).state not in queue.FINISHED:
            time.sleep(0.2)
        return {"executor": executor, "to_first_step_s": round(first, 2),
                "to_first_output_s": round(started or first, 2), "state": queue.get(job.id).state}
    finally:
        sup.close()


def main() -> None:
    os.environ["WORKBENCH_OUTPUTS"] = tempfile.mkdtemp(prefix="wb-bench-slurm-")
    os.environ["WORKBENCH_WARM_WORKER"] = "0"
    os.environ["HF_HUB_OFFLINE"] = "1"
    state = tempfile.mkdtemp(prefix="wb-slurm-bench-")
    env = {**os.environ, "WORKBENCH_SLURM_DIR": state}
    t0 = time.time()
    done = subprocess.run([str(SCRIPT), "start"], env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"the Slurm test cluster did not start: {done.stderr.strip()}")
    cluster_start_s = round(time.time() - t0, 1)
    os.environ["SLURM_CONF"] = done.stdout.strip().splitlines()[-1].split("=", 1)[1]
    try:
        from workbench.jobs import supervisor

        supervisor.WARM_WORKER = False
        rows = [one(executor) for executor in ORDER]
    finally:
        subprocess.run([str(SCRIPT), "stop"], env=env, capture_output=True)
    mean = {e: round(sum(r["to_first_step_s"] for r in rows if r["executor"] == e) / 2, 2) for e in ("local", "slurm")}
    result = {"runs": rows, "mean_to_first_step_s": mean, "slurm_extra_s": round(mean["slurm"] - mean["local"], 2),
              "ratio_slurm_over_local": round(mean["slurm"] / mean["local"], 2), "cluster_start_s": cluster_start_s,
              "load_average_at_end": os.getloadavg()[0], "cpus": os.cpu_count()}
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
