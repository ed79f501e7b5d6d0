"""The job queue on a real SQLite file: WAL and a schema version, one transaction per submission, exactly one
winner per claim even across processes, clear refusals. Faults (busy, full, read-only, damaged) are in
test_queue_faults.py."""
import sqlite3
import subprocess
import sys

import pytest

from conftest import ROOT
from workbench.jobs import queue, submit
from workbench.jobs.queue import Job, JobError


@pytest.fixture
def jobs_db(no_app_supervisor, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_JOBS_DB", str(tmp_path / "jobs.sqlite3"))
    monkeypatch.setenv("WORKBENCH_OUTPUTS", str(tmp_path / "outputs"))
    return tmp_path / "jobs.sqlite3"


def _job(i: int, state="queued") -> Job:
    return Job(id=f"job-{i:03d}", kind="merge", name=f"n{i}", config="{}", state=state, run_dir=f"/tmp/x{i}",
               created_at=1000.0 + i)


def test_the_file_is_wal_with_a_schema_version(jobs_db):
    queue.insert(_job(1))
    conn = sqlite3.connect(jobs_db)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    assert conn.execute("PRAGMA user_version").fetchone()[0] == queue.SCHEMA_VERSION
    assert conn.execute("SELECT id, state FROM jobs").fetchall() == [("job-001", "queued")]


def test_claim_takes_the_oldest_job_that_fits_once(jobs_db):
    for i in (1, 2, 3):
        queue.insert(_job(i))
    first = queue.claim("a", lambda j, active: ())
    assert first.id == "job-001" and first.state == "running" and first.owner == "a"
    picky = queue.claim("b", lambda j, active: (1,) if j.id == "job-003" else None)
    assert picky.id == "job-003" and queue.get("job-003").devices == "1"
    seen = []
    assert queue.claim("c", lambda j, active: seen.append(sorted(a.id for a in active))) is None
    assert seen == [["job-001", "job-003"]]  # fits() sees every supervisor's running jobs
    assert queue.claim("c", lambda j, active: () if j.id == "job-001" else None) is None  # never twice
    assert [j.id for j in queue.list_jobs(("queued",))] == ["job-002"]


CLAIMER = """
import sys
from workbench.jobs import queue
won = []
while (job := queue.claim(sys.argv[1], lambda j, active: ())) is not None:
    won.append(job.id)
print(",".join(won))
"""


def test_two_processes_racing_never_claim_the_same_job(jobs_db, tmp_path):
    for i in range(60):
        queue.insert(_job(i))
    env_cmd = [sys.executable, "-c", CLAIMER]
    procs = [subprocess.Popen([*env_cmd, name], cwd=ROOT, stdout=subprocess.PIPE, text=True) for name in "ab"]
    won = [set(filter(None, p.communicate(timeout=120)[0].strip().split(","))) for p in procs]
    assert not (won[0] & won[1])  # exactly one winner per job
    assert len(won[0] | won[1]) == 60
    owners = {j.id: j.owner for j in queue.list_jobs()}
    assert all(owners[j] == "a" for j in won[0]) and all(owners[j] == "b" for j in won[1])


def test_cancel_and_resume_say_what_cannot_be_done(jobs_db):
    queue.insert(_job(1))
    assert "cancelled before it started" in submit.cancel("job-001")
    with pytest.raises(JobError, match="already ended \\(cancelled\\)"):
        submit.cancel("job-001")
    with pytest.raises(JobError, match="no job with id 'nope'"):
        submit.cancel("nope")
    with pytest.raises(JobError, match="which does not resume"):
        submit.resume("job-001")


def test_on_a_cpu_a_job_starts_only_when_no_supervisor_runs_one(jobs_db):
    from workbench.jobs.processes import gpu_ids
    from workbench.jobs.supervisor import Supervisor

    if gpu_ids():
        pytest.skip("this machine has GPUs: jobs share them by device instead")
    queue.insert(_job(1))
    queue.insert(_job(2))
    other = queue.claim("another-app", Supervisor()._fits)  # e.g. a headless worker on the same outputs/
    assert other.id == "job-001" and other.devices == ""
    assert queue.claim("this-app", Supervisor()._fits) is None  # its job holds the CPU
    queue.set_state("job-001", "completed")
    assert queue.claim("this-app", Supervisor()._fits).id == "job-002"


def test_start_now_is_refused_while_a_worker_holds_the_cpu(jobs_db):
    """The Train tab's Start asks the supervisor's own rule (processes.devices_for) about a job that is not queued
    yet; with a job already running (claimed, nothing waiting) it must refuse in words, not fail on the question."""
    from conftest import quick_config
    from workbench.jobs.processes import gpu_ids
    from workbench.jobs.supervisor import Supervisor
    from workbench.ui.tabs.train_run import submit_run

    if gpu_ids():
        pytest.skip("this machine has GPUs: jobs share them by device instead")
    queue.insert(_job(1))
    assert queue.claim("another-app", Supervisor()._fits).id == "job-001"
    with pytest.raises(JobError, match="job-001 .* is running: one run at a time"):
        submit_run(quick_config(jobs_db.parent / "run"), now=True)
    assert [j.id for j in queue.list_jobs()] == ["job-001"]  # nothing was queued
