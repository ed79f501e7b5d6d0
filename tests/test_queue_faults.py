"""The job queue under real faults: a write lock another process holds, a full filesystem (a 2 MiB tmpfs the
test mounts), a read-only remount of it, a truncated file left by a crash, garbage. Only real damage sets the
file aside (as a copy, with its -wal and -shm); every other fault fails the one call with a clear JobError, and
every job committed before the fault is still there afterwards."""
import errno
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest

from conftest import ROOT, quick_config
from workbench.jobs import queue, queue_file, submit
from workbench.jobs.queue import Job, JobError

HOLDER = """
import sqlite3, sys
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")  # the write lock, held until the test closes our stdin
print("held", flush=True)
sys.stdin.read()
"""


@pytest.fixture
def jobs_db(no_app_supervisor, tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_JOBS_DB", str(tmp_path / "jobs.sqlite3"))
    monkeypatch.setenv("WORKBENCH_OUTPUTS", str(tmp_path / "outputs"))
    monkeypatch.setenv("WORKBENCH_JOBS_BUSY_TIMEOUT", "0.5")  # not the 30 s default
    return tmp_path / "jobs.sqlite3"


@pytest.fixture
def small_disk(jobs_db, tmp_path, monkeypatch):
    """A real 2 MiB filesystem holding the queue; skipped where mounting is refused (not root, a container)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(disk)], capture_output=True,
                             text=True)
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs was refused: {mounted.stderr.strip()}")
    monkeypatch.setenv("WORKBENCH_JOBS_DB", str(disk / "jobs.sqlite3"))
    try:
        yield disk
    finally:
        subprocess.run(["umount", str(disk)], check=True)


def _job(i: int, config: str = "{}") -> Job:
    return Job(id=f"job-{i:03d}", kind="merge", name=f"n{i}", config=config, state="queued", run_dir=f"/tmp/x{i}",
               created_at=1000.0 + i)


def _ids() -> list[str]:
    return sorted(j.id for j in queue.list_jobs())


def _new_process(path) -> None:
    """Forget that this process checked the file, as a freshly started app would not know it."""
    queue_file._ready.discard(str(path))


def _asides(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".damaged-" in p.name)


@pytest.fixture
def held_lock():
    holders = []

    def hold(path):
        holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                                  stdout=subprocess.PIPE, text=True)
        holders.append(holder)
        assert holder.stdout.readline().strip() == "held"
        return holder

    yield hold
    for holder in holders:
        _release(holder)


def _release(holder) -> None:
    holder.stdin.close()  # the holder reads to EOF, then exits: its lock goes with it
    holder.wait(30)
    holder.stdout.close()


def test_a_held_write_lock_fails_writes_after_the_timeout_and_drops_nothing(jobs_db, held_lock):
    for i in (1, 2, 3):
        queue.insert(_job(i))
    holder = held_lock(jobs_db)
    _new_process(jobs_db)
    assert _ids() == ["job-001", "job-002", "job-003"]  # a fresh process reads (and checks) the busy file
    started = time.monotonic()
    with pytest.raises(JobError, match="the job queue is busy") as busy:
        queue.insert(_job(4))
    assert 0.4 < time.monotonic() - started < 10  # it waited for the lock, then gave up
    assert "WORKBENCH_JOBS_BUSY_TIMEOUT" in busy.value.hint and "kept" in busy.value.hint
    with pytest.raises(JobError, match="busy"):
        queue.claim("a", lambda j, active: ())
    assert _asides(jobs_db.parent) == []  # busy is not damage: nothing set aside
    _release(holder)
    queue.insert(_job(4))
    assert _ids() == ["job-001", "job-002", "job-003", "job-004"]
    assert [j.state for j in queue.list_jobs()] == ["queued"] * 4


def test_jobs_list_in_a_new_process_shows_a_busy_queue_and_a_write_exits_2(jobs_db, held_lock):
    """The reported case: with three jobs queued and the lock held, `jobs list` threw the queue away."""
    for i in (1, 2, 3):
        queue.insert(_job(i))
    held_lock(jobs_db)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    listed = subprocess.run([sys.executable, "-m", "workbench", "jobs", "list"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert all(f"job-00{i}" in listed.stdout for i in (1, 2, 3))
    cancel = subprocess.run([sys.executable, "-m", "workbench", "jobs", "cancel", "job-002"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert cancel.returncode == 2 and "the job queue is busy" in cancel.stderr + cancel.stdout
    assert _asides(jobs_db.parent) == []
    assert [j.state for j in queue.list_jobs()] == ["queued"] * 3


def test_the_supervisor_outlives_a_busy_queue_and_recovers_after(jobs_db, held_lock, caplog):
    from workbench.jobs.processes import HOST
    from workbench.jobs.supervisor import Supervisor

    queue.insert(_job(1))
    queue.claim(f"{HOST}:4194999:1.0", lambda j, active: ())  # running; its supervisor and worker long gone
    holder = held_lock(jobs_db)
    with caplog.at_level("WARNING", logger="workbench.jobs.supervisor"):
        supervisor = Supervisor(poll_s=0.1).start()  # its recovery meets the lock: the app must start anyway
    try:
        assert any("busy" in r.getMessage() for r in caplog.records)
        time.sleep(1.5)  # several ticks fail on the lock
        assert supervisor._thread.is_alive()
        assert queue.get("job-001").state == "running"
        _release(holder)
        deadline = time.monotonic() + 30
        while queue.get("job-001").state == "running" and time.monotonic() < deadline:
            time.sleep(0.1)
        assert queue.get("job-001").state == "interrupted"  # recovered on a later tick
        assert supervisor._thread.is_alive()
    finally:
        supervisor.close()


def test_a_schema_1_file_gains_the_new_columns_and_keeps_its_jobs(jobs_db, held_lock):
    old = sqlite3.connect(jobs_db, isolation_level=None)
    old.execute("PRAGMA journal_mode = WAL")
    old.execute("CREATE TABLE jobs (id TEXT PRIMARY KEY, kind TEXT NOT NULL, name TEXT NOT NULL, config TEXT NOT "
                "NULL, state TEXT NOT NULL, run_dir TEXT NOT NULL, processes INTEGER NOT NULL DEFAULT 1, resume "
                "INTEGER NOT NULL DEFAULT 0, sweep_id TEXT, devices TEXT, owner TEXT, pid INTEGER, pid_started REAL,"
                " error TEXT, created_at REAL NOT NULL, started_at REAL, finished_at REAL)")
    for i, state in ((1, "completed"), (2, "queued")):
        old.execute("INSERT INTO jobs (id, kind, name, config, state, run_dir, created_at) VALUES (?, 'train', ?, "
                    "'{}', ?, '/tmp/r', ?)", (f"old-{i}", f"run{i}", state, 1000.0 + i))
    old.execute("PRAGMA user_version = 1")
    old.close()
    _new_process(jobs_db)

    holder = held_lock(jobs_db)  # the migration needs the write lock: busy now, tried again next call
    with pytest.raises(JobError, match="the job queue is busy"):
        queue.list_jobs()
    assert _asides(jobs_db.parent) == []
    _release(holder)

    jobs = {j.id: j for j in queue.list_jobs()}
    assert set(jobs) == {"old-1", "old-2"} and jobs["old-1"].state == "completed" and jobs["old-2"].name == "run2"
    assert jobs["old-2"].executor == "local" and jobs["old-2"].user is None and jobs["old-2"].slurm_job_id is None
    conn = sqlite3.connect(jobs_db)
    columns = {r[1] for r in conn.execute("PRAGMA table_info(jobs)")}
    assert {"user", "executor", "slurm_job_id", "node", "reason"} <= columns
    assert conn.execute("PRAGMA user_version").fetchone()[0] == queue.SCHEMA_VERSION == 2
    conn.close()
    queue.update("old-2", user="ann", node="n1")
    assert queue.get("old-2").user == "ann"


def _fill(disk) -> None:
    fd = os.open(disk / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        for chunk in (1 << 16, 1 << 12, 1):  # to the last byte tmpfs will give
            while True:
                try:
                    os.write(fd, b"\0" * chunk)
                except OSError as e:
                    assert e.errno == errno.ENOSPC
                    break
    finally:
        os.close(fd)


def test_a_full_disk_fails_the_submission_clearly_and_loses_nothing(small_disk, tmp_path):
    for i in (1, 2, 3):
        queue.insert(_job(i, config="x" * 2000))
    _fill(small_disk)
    with pytest.raises(JobError, match="the disk holding the job queue is full") as full:
        submit.submit("train", quick_config("", **{"data.val_size": 0}))
    assert "free some space" in full.value.hint and "kept" in full.value.hint
    with pytest.raises(JobError, match="full"):
        queue.insert(_job(4, config="y" * 300_000))  # a write that must grow the files, not just reuse pages
    assert _asides(small_disk) == []

    (small_disk / "filler").unlink()  # space again: every committed job is there, and the queue takes more
    assert _ids() == ["job-001", "job-002", "job-003"]
    job = submit.submit("train", quick_config("", **{"data.val_size": 0}))
    assert sorted(_ids()) == sorted(["job-001", "job-002", "job-003", job.id])
    assert queue.get("job-002").config == "x" * 2000


def test_a_read_only_disk_fails_clearly_and_loses_nothing(small_disk):
    for i in (1, 2):
        queue.insert(_job(i))
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    try:
        _new_process(queue.db_path())  # an app started on the read-only disk
        with pytest.raises(JobError, match="the job queue is read-only") as ro:
            queue.insert(_job(3))
        assert "writable" in ro.value.hint
        with pytest.raises(JobError, match="read-only"):
            queue.list_jobs()  # a WAL file cannot even be read without writing its -shm: said, not damage
    finally:
        subprocess.run(["mount", "-o", "remount,rw", str(small_disk)], check=True)
    assert _asides(small_disk) == []
    assert _ids() == ["job-001", "job-002"]
    queue.insert(_job(3))
    assert _ids() == ["job-001", "job-002", "job-003"]


CRASHER = """
import os, signal, sys
from workbench.jobs import queue, queue_file
from workbench.jobs.queue import Job
for i in range(60):  # checkpointed into the main file as each connection closes
    queue.insert(Job(id=f"old-{i:03d}", kind="merge", name="n", config="c" * 3000, state="queued", run_dir="/x"))
keep = queue_file.open_db(queue.db_path())  # from here on the WAL stays: this connection never closes
keep.execute("SELECT count(*) FROM jobs").fetchone()
for i in range(5):
    queue.insert(Job(id=f"new-{i}", kind="merge", name="n", config="d" * 3000, state="queued", run_dir="/x"))
os.kill(os.getpid(), signal.SIGKILL)  # a crash: the -wal and -shm are left behind
"""


def test_a_truncated_file_is_copied_aside_with_its_wal_and_a_fresh_queue_said(jobs_db):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    crashed = subprocess.run([sys.executable, "-c", CRASHER], cwd=ROOT, env=env, capture_output=True, text=True)
    assert crashed.returncode == -signal.SIGKILL, crashed.stderr
    wal, shm = jobs_db.with_name("jobs.sqlite3-wal"), jobs_db.with_name("jobs.sqlite3-shm")
    assert wal.stat().st_size > 5 * 3000 and shm.exists()
    with open(jobs_db, "r+b") as f:  # then the main file lost its second half (a disk, a copy cut short)
        f.truncate(jobs_db.stat().st_size // 2)
    truncated, wal_bytes = jobs_db.read_bytes(), wal.read_bytes()
    _new_process(jobs_db)

    assert queue.list_jobs() == []  # a fresh queue
    asides = _asides(jobs_db.parent)
    assert len(asides) == 3, asides  # the file, its -wal and its -shm, copied
    aside = jobs_db.parent / min(asides, key=len)
    assert aside.read_bytes() == truncated  # the damaged bytes, kept as they were
    assert aside.with_name(aside.name + "-wal").read_bytes() == wal_bytes  # its committed WAL frames too
    assert aside.with_name(aside.name + "-shm").exists()
    note = queue.damaged_note()
    assert aside.name in note and "set aside" in note and "new, empty queue" in note
    from workbench.ui.tabs.jobs import queue_notice

    assert aside.name in queue_notice()  # what the Jobs tab shows
    queue.insert(_job(1))  # the fresh queue works
    assert _ids() == ["job-001"]


def test_garbage_is_set_aside_as_a_copy_and_said(jobs_db, caplog):
    garbage = b"this is not a database at all" * 100
    jobs_db.write_bytes(garbage)
    _new_process(jobs_db)
    with caplog.at_level("ERROR", logger="workbench.jobs.queue_file"):
        assert queue.list_jobs() == []
    asides = _asides(jobs_db.parent)
    assert len(asides) == 1 and (jobs_db.parent / asides[0]).read_bytes() == garbage
    assert asides[0] in queue.damaged_note() and "not a database" in queue.damaged_note()
    assert any("damaged" in r.getMessage() for r in caplog.records)
    _new_process(jobs_db)
    queue.insert(_job(1))
    assert _ids() == ["job-001"] and len(_asides(jobs_db.parent)) == 1  # the fresh file is healthy: kept


def test_a_healthy_file_passes_the_integrity_check_and_keeps_its_jobs(jobs_db):
    for i in range(1, 21):
        queue.insert(_job(i, config="z" * 5000))
    _new_process(jobs_db)
    assert len(queue.list_jobs()) == 20 and _asides(jobs_db.parent) == []


def test_a_bad_busy_timeout_is_refused_in_words(jobs_db, monkeypatch):
    monkeypatch.setenv("WORKBENCH_JOBS_BUSY_TIMEOUT", "soon")
    with pytest.raises(JobError, match="WORKBENCH_JOBS_BUSY_TIMEOUT must be a number of seconds"):
        queue.list_jobs()


def test_a_damaged_file_on_a_full_disk_is_left_in_place_until_a_copy_fits(small_disk):
    garbage = b"\x00garbage, not SQLite\x00" * 20_000  # ~440 KB: no room for its copy once the disk is full
    db = small_disk / "jobs.sqlite3"
    db.write_bytes(garbage)
    _fill(small_disk)
    _new_process(db)
    with pytest.raises(JobError, match="is damaged .* a copy could not be set aside") as refused:
        queue.list_jobs()
    assert "free space" in refused.value.hint
    assert db.read_bytes() == garbage and _asides(small_disk) == []  # nothing moved, no half copy left
    (small_disk / "filler").unlink()
    assert queue.list_jobs() == []
    asides = _asides(small_disk)
    assert len(asides) == 1 and (small_disk / asides[0]).read_bytes() == garbage


RACER = """
import sys, time
from workbench.jobs import queue
while time.time() < float(sys.argv[1]):
    time.sleep(0.001)
print(len(queue.list_jobs()), queue.damaged_note() is not None)
"""


def test_two_processes_finding_the_same_damage_set_it_aside_once(jobs_db):
    garbage = b"not a queue " * 5000
    jobs_db.write_bytes(garbage)
    start = str(time.time() + 4)  # both past their imports, then at once
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    racers = [subprocess.Popen([sys.executable, "-c", RACER, start], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                               text=True) for _ in range(2)]
    said = sorted(r.communicate(timeout=120)[0].split() for r in racers)
    assert all(r.returncode == 0 for r in racers)
    assert said == [["0", "False"], ["0", "True"]]  # one set it aside (and says so); the other found it fresh
    asides = _asides(jobs_db.parent)
    assert len(asides) == 1 and (jobs_db.parent / asides[0]).read_bytes() == garbage
