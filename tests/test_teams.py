"""Teams (--auth): every job records who submitted it; everyone sees the queue, but only its owner or an --admin
may cancel or resume it, or delete the run. The real app in its own process, three real logins."""
from __future__ import annotations

import os
import subprocess
import time

import pytest
import yaml
from gradio_client import Client
from gradio_client.exceptions import AppError

from conftest import PY, ROOT, free_port

pytestmark = pytest.mark.slow
USERS = {"alice": "alice-pw-1", "bob": "bob-pw-22", "carol": "carol-pw-333"}


@pytest.fixture(scope="module")
def team_app(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("team")
    users = tmp / "users.txt"
    users.write_text("".join(f"{u}:{p}\n" for u, p in USERS.items()))
    port = free_port()
    env = {**os.environ, "WORKBENCH_OUTPUTS": str(tmp / "outputs")}
    proc = subprocess.Popen([PY, "app.py", "--port", str(port), "--auth", str(users), "--admin", "carol"], cwd=ROOT,
                            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 240
    clients = {}
    while not clients:
        try:
            clients = {u: Client(url, auth=(u, p), verbose=False) for u, p in USERS.items()}
        except Exception:  # noqa: BLE001 - not listening yet
            assert proc.poll() is None and time.monotonic() < deadline, "the app did not start"
            time.sleep(1)
    yield clients, tmp / "outputs"
    proc.terminate()
    proc.wait(timeout=60)


def _job(client, job_id: str) -> dict:
    return next(j for j in client.predict(api_name="/list_jobs") if j["id"] == job_id)


def test_only_the_owner_or_an_admin_manages_a_job(team_app):
    clients, outputs = team_app
    config = yaml.safe_dump({"data": {"max_rows": 16, "max_length": 64}, "train": {"max_steps": 200,
                                                                                  "save_steps": 1}})
    job = clients["alice"].predict("train", config, 1, api_name="/submit_job")
    assert job["user"] == "alice"
    assert _job(clients["bob"], job["id"])["user"] == "alice"  # everyone sees the queue, with its owner
    assert (outputs / job["run_dir"].split("/")[-1] / "owner").read_text() == "alice"
    deadline = time.monotonic() + 300  # running, with its run folder written: a run there is to delete later
    while not (_job(clients["alice"], job["id"])["state"] == "running"
               and (outputs / job["run_dir"].split("/")[-1] / "status.json").is_file()):
        assert time.monotonic() < deadline, _job(clients["alice"], job["id"])
        time.sleep(0.5)

    with pytest.raises(AppError, match="bob may not cancel or stop alice's job"):
        clients["bob"].predict(job["id"], api_name="/cancel_job")
    assert _job(clients["alice"], job["id"])["state"] in ("queued", "running")  # untouched

    said = clients["carol"].predict(job["id"], api_name="/cancel_job")  # an admin may
    assert job["id"] in said
    deadline = time.monotonic() + 180
    while _job(clients["alice"], job["id"])["state"] not in ("cancelled", "interrupted", "completed", "failed"):
        assert time.monotonic() < deadline
        time.sleep(1)
    state = _job(clients["alice"], job["id"])["state"]
    if state in ("cancelled", "interrupted"):
        with pytest.raises(AppError, match="bob may not resume alice's job"):
            clients["bob"].predict(job["id"], api_name="/resume_job")

    run_id = job["run_dir"].split("/")[-1]
    with pytest.raises(AppError, match="bob may not delete alice's job"):
        clients["bob"].predict(job["run_dir"], True, api_name="/delete_run")
    assert (outputs / run_id).is_dir()
    table, *_ = clients["bob"].predict(api_name="/list_runs")  # the Runs tab shows whose run it is
    rows = [dict(zip(table["headers"], row)) for row in table["data"]]
    assert any(r["run"] == run_id and r["owner"] == "alice" for r in rows), rows
