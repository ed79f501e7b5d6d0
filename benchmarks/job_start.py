"""Time from "start" to the first logged training step: a queued job run by a worker process (a fresh one,
and the warm standby the supervisor keeps) versus the old in-process start (engine.train in a thread of the
caller). Goal: the worker adds at most 5 s.

All use the same tiny config on the default model, in the same run of this script, in an ABBA-style order
so drift in the machine's speed cancels out. Where the worker's time goes is read from its files: claim and
spawn (the supervisor's poll), imports (until run.log's first line), model + data + first step (until the
first metrics row). Writes benchmarks/results/job_start.json.

    python benchmarks/job_start.py
"""
from __future__ import annotations

import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
RESULTS = ROOT / "benchmarks" / "results" / "job_start.json"
ORDER = ("in_process", "worker_cold", "worker_warm", "worker_warm", "worker_cold", "in_process")


def tiny_config(out: str):
    from workbench.config.run import RunConfig

    cfg = RunConfig()
    for key, value in {"data.max_rows": 48, "data.max_length": 128, "train.batch_size": 2, "train.max_steps": 3,
                       "train.save_steps": 100, "data.val_size": 0.0, "output_dir": out}.items():
        cfg.set(key, value)
    return cfg


def first_row_time(run_dir: Path, t0: float, timeout: float = 600) -> float:
    metrics = run_dir / "metrics.jsonl"
    while time.time() - t0 < timeout:
        if metrics.is_file() and metrics.read_text().strip():
            return time.time() - t0
        time.sleep(0.02)
    raise SystemExit(f"no metrics row in {run_dir} after {timeout} s")


def in_process(base: Path) -> dict:
    from workbench.training.engine import train

    out = base / f"inproc-{time.time_ns()}"
    t0 = time.time()
    thread = threading.Thread(target=train, args=(tiny_config(str(out)),), kwargs={"progress_bar": False})
    thread.start()
    total = first_row_time(out, t0)
    thread.join()
    return {"to_first_step_s": round(total, 2)}


def worker(base: Path, warm: bool) -> dict:
    from workbench.jobs import queue, submit
    from workbench.jobs.supervisor import Supervisor

    sup = Supervisor(poll_s=0.2)
    sup.warm.enabled = warm
    sup.start()
    if warm:  # what a job meets when the app was idle before it: the standby warmed up meanwhile
        sup.warm.ready.wait(120)
    try:
        cfg = tiny_config("")
        cfg.run_name = "bench"
        t0 = time.time()
        job = submit.submit("train", cfg)
        run = Path(job.run_dir)
        total = first_row_time(run, t0)
        started = queue.get(job.id).started_at
        log_first = _first_log_time(run / "run.log")
        while queue.get(job.id).state in ("queued", "running"):
            time.sleep(0.2)
    finally:
        sup.close()
    return {"to_first_step_s": round(total, 2), "claimed_and_spawned_s": round(started - t0, 2),
            "imports_until_run_log_s": round(log_first - started, 2) if log_first else None,
            "model_data_first_step_s": round(t0 + total - log_first, 2) if log_first else None}


def _first_log_time(path: Path) -> float | None:
    from datetime import datetime

    try:
        first = path.read_text().splitlines()[0]
    except (OSError, IndexError):
        return None
    return datetime.strptime(first[:23], "%Y-%m-%d %H:%M:%S,%f").timestamp()


def main() -> None:
    base = Path(tempfile.mkdtemp(prefix="wb-bench-jobs-"))
    os.environ["WORKBENCH_OUTPUTS"] = str(base / "outputs")
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from workbench.models.resolve import default_model_dir

    default_model_dir()  # converted once, outside the measurement
    in_process(base)  # warm the page cache and this process's imports for both contenders
    results = {kind: [] for kind in ORDER}
    for kind in ORDER:
        results[kind].append(in_process(base) if kind == "in_process" else worker(base, kind == "worker_warm"))
        print(kind, results[kind][-1], flush=True)
    med = {k: round(statistics.median(r["to_first_step_s"] for r in v), 2) for k, v in results.items()}
    summary = {"median_to_first_step_s": med,
               "cold_worker_minus_in_process_s": round(med["worker_cold"] - med["in_process"], 2),
               "warm_worker_minus_in_process_s": round(med["worker_warm"] - med["in_process"], 2),
               "runs": results}
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(summary, indent=2))
    print(json.dumps({k: v for k, v in summary.items() if k != "runs"}, indent=2))


if __name__ == "__main__":
    main()
