"""Decide once, across processes: a Train-tab Start plans once (the submit check; the estimate shown after Start
reads the same plan), the plan is saved with the job, and the worker checks that the world still matches it
(the data file's size and mtime) instead of planning again. Counted from the real log lines: before this,
one Start ran preflight three times (submit, estimate, worker)."""
from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess

import pytest

from conftest import PY, ROOT, quick_config

pytestmark = pytest.mark.slow


def _preflights(records) -> int:
    return sum(1 for r in records if r.name == "workbench.config.preflight" and r.getMessage().startswith("preflight: Plan("))


def _worker(job, env_extra=None) -> subprocess.CompletedProcess:
    from workbench.jobs.submit import config_file, job_folder

    env = {**os.environ, "WORKBENCH_JOB_DIR": str(job_folder(job.id)), **(env_extra or {})}
    return subprocess.run([PY, "-m", "workbench", "train", "--log-level", "DEBUG", "--config",
                           str(config_file(job.id)), "--no-progress"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=600)


def test_one_start_plans_once_and_the_worker_reuses_the_plan(no_app_supervisor, data_dir, caplog):
    from workbench.jobs import queue
    from workbench.jobs.submit import plan_file
    from workbench.ui.tabs.train_run import submit_run

    data = data_dir / "rows.jsonl"
    shutil.copy(ROOT / "data" / "dolly_sample.jsonl", data)
    cfg = quick_config("", **{"data.source": str(data), "train.max_steps": 1, "train.save_steps": 1})
    caplog.set_level(logging.DEBUG, logger="workbench.config.preflight")
    said = submit_run(cfg, now=False)
    assert _preflights(caplog.records) == 1, said  # the submit check; the estimate after it used its plan
    job = next(j for j in queue.list_jobs() if j.id in said)
    saved = json.loads(plan_file(job.id).read_text())
    assert saved["plan"]["data_source"] == str(data) and saved["world"]["data_file"][1] == data.stat().st_size

    done = _worker(job)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "using the plan made when the job was queued" in done.stdout + done.stderr
    assert "preflight: Plan(" not in done.stdout + done.stderr  # the worker did not plan again (its DEBUG line)
    queue.set_state(job.id, "cancelled")


def test_a_data_file_changed_after_submit_stops_the_worker_with_the_reason(no_app_supervisor, data_dir):
    from workbench.jobs import queue, submit

    data = data_dir / "rows.jsonl"
    shutil.copy(ROOT / "data" / "dolly_sample.jsonl", data)
    job = submit.submit("train", quick_config("", **{"data.source": str(data), "train.max_steps": 1}))
    with open(data, "a", encoding="utf-8") as f:
        f.write(json.dumps({"instruction": "late", "output": "row"}) + "\n")
    done = _worker(job)
    assert done.returncode == 2
    assert "changed since the job was queued" in done.stderr
    queue.set_state(job.id, "cancelled")
