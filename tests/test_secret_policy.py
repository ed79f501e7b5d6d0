"""Secrets stay home (issue 23): a caller chooses a key only among the environment variables the operator offered
(--secret-env), a key is sent only to loopback or an endpoint the operator allowed (--judge-endpoint), and the
key's value never reaches a job row, a job config, a worker log, a result or an error. Proven with a real HTTP
server that records every request's headers, real jobs in a real queue and a real worker process."""
from __future__ import annotations

import json
import shutil
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from workbench.config.tasks import EvalConfig, JudgeConfig, ServeConfig
from workbench.core import policy
from workbench.core.errors import PolicyError
from workbench.jobs import queue, submit

SECRET = "sk-wb-test-7f3a9c-never-leaves"
ROWS = [{"input": "q", "generated": "a", "base_generated": None, "ground_truth": "t"}]


class Recorder(BaseHTTPRequestHandler):
    """An OpenAI-compatible judge that records each request's path and headers; it answers every chat with a
    score, or with `status` and a body a caller must not get to read from a server the operator did not allow."""
    seen: list[tuple[str, dict]] = []
    status = 200

    def do_POST(self):
        type(self).seen.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if type(self).status != 200:
            body = json.dumps({"error": {"message": "internal page: db password is hunter2"}}).encode()
        else:
            body = json.dumps({"id": "c", "object": "chat.completion", "created": 0, "model": "judge",
                               "choices": [{"index": 0, "finish_reason": "stop", "message": {
                                   "role": "assistant", "content": "SCORE: 70\nREASON: close"}}]}).encode()
        self.send_response(type(self).status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        """Silent: the stdlib server would print every request to stderr."""


def outside_host() -> str:
    """An address the policy does not count as loopback (so a key may not go there by default) that still reaches
    the recorder on this machine: 0.0.0.0, which Linux connects to over loopback. No traffic leaves the machine,
    not even to its own private address."""
    return "0.0.0.0"


@pytest.fixture
def recorder():
    Recorder.seen, Recorder.status = [], 200
    server = ThreadingHTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def governed(no_app_supervisor, tmp_path, monkeypatch):
    """The app's policy as `--secret-env WB_OFFERED_KEY` sets it, a fresh queue, and a key the operator did not
    offer lying in the same environment."""
    monkeypatch.setenv("WORKBENCH_OUTPUTS", str(tmp_path / "outputs"))
    monkeypatch.delenv("WORKBENCH_JOBS_DB", raising=False)
    monkeypatch.setenv(policy.ENV_SECRETS, "WB_OFFERED_KEY")
    monkeypatch.setenv(policy.ENV_ENDPOINTS, "")
    monkeypatch.setenv("WB_OFFERED_KEY", SECRET)
    monkeypatch.setenv("WB_PRIVATE_KEY", "private-" + SECRET)
    return tmp_path / "outputs"


def nothing_queued(outputs) -> bool:
    return queue.list_jobs() == [] and not (outputs / "jobs").exists()


def test_a_key_name_the_operator_did_not_offer_is_refused_at_every_door(governed, recorder):
    url = f"http://127.0.0.1:{recorder}/v1"  # loopback: the endpoint is fine, the key's name is not
    judge = {"url": url, "model": "m", "key_env": "WB_PRIVATE_KEY"}
    with pytest.raises(PolicyError, match=r"judge.key_env: 'WB_PRIVATE_KEY' is not a key this server offers "
                                          r"\(offered: WB_OFFERED_KEY\)") as refused:
        submit.submit("eval", EvalConfig(run="any-run", judge=JudgeConfig(**judge)))
    assert "--secret-env WB_PRIVATE_KEY" in refused.value.hint and SECRET not in str(refused.value)
    # The same through the API's YAML (a queued job's own text), with the older flat keys too.
    for text in (f"run: r\njudge: {json.dumps(judge)}", f"run: r\njudge_url: {url}\njudge_model: m\n"
                                                         "judge_key_env: WB_PRIVATE_KEY"):
        with pytest.raises(PolicyError, match="judge.key_env"):
            submit.submit("eval", text)
    with pytest.raises(PolicyError, match="judge.key_env"):
        submit.submit("generate", f"run: r\npasted: some text\njudge: {json.dumps(judge)}")
    with pytest.raises(PolicyError, match="api_key_env: 'WB_PRIVATE_KEY' is not a key"):
        submit.submit("serve", ServeConfig(run="r", host="0.0.0.0", api_key_env="WB_PRIVATE_KEY"))
    # /evaluate runs in the request, without the queue: its form check applies the same policy.
    from workbench.ui.tabs.evaluate import eval_config

    with pytest.raises(PolicyError, match="judge.key_env"):
        eval_config(str(governed / "a-run"), "test", None, "", 1, 0, 1, 0, True, "", "score", url, "m",
                    "WB_PRIVATE_KEY", "", "", 1)
    assert Recorder.seen == [] and nothing_queued(governed)


def test_a_key_is_never_sent_to_an_endpoint_the_operator_did_not_allow(governed, recorder, monkeypatch):
    url = f"http://{outside_host()}:{recorder}/v1"
    cfg = JudgeConfig(url=url, model="m", key_env="WB_OFFERED_KEY", retries=0, timeout=10)
    with pytest.raises(PolicyError, match=r"judge.url: a key may not be sent to .* \(allowed: loopback only\)"):
        submit.submit("eval", EvalConfig(run="any-run", judge=cfg))
    assert nothing_queued(governed)
    # A worker checks again right before reading the key (a job queued before the operator narrowed the policy).
    with pytest.raises(PolicyError, match="judge.url"):
        from workbench.judging.run import judge_rows

        judge_rows([dict(r) for r in ROWS], cfg)
    assert Recorder.seen == []  # not one request: no Authorization header went anywhere
    # Allowed by the operator (--judge-endpoint): now, and only now, the key goes there, as the Bearer header.
    monkeypatch.setenv(policy.ENV_ENDPOINTS, url)
    rows = [dict(r) for r in ROWS]
    summary = judge_rows(rows, cfg)
    assert summary["judged_rows"] == 1 and rows[0]["judge_score"] == 70
    assert [h.get("authorization") for _, h in Recorder.seen] == [f"Bearer {SECRET}"]
    # The openai client reads OPENAI_* variables from the environment unless told otherwise; none of them leaks.
    monkeypatch.setenv("OPENAI_API_KEY", "env-" + SECRET)
    monkeypatch.setenv("OPENAI_ORG_ID", "org-private")
    Recorder.seen.clear()
    judge_rows([dict(r) for r in ROWS], JudgeConfig(url=url, model="m", retries=0))
    assert "authorization" not in Recorder.seen[0][1] and "org-private" not in json.dumps(Recorder.seen)


def test_an_error_body_is_quoted_only_from_an_allowed_endpoint(governed, recorder):
    Recorder.status = 404
    outside = [dict(r) for r in ROWS]  # no key: any endpoint may be asked, but what it says stays there
    judge_rows_of(outside, f"http://{outside_host()}:{recorder}/v1")
    assert outside[0]["judge_status"] == f"HTTP 404 from {outside_host()}:{recorder}"
    home = [dict(r) for r in ROWS]
    judge_rows_of(home, f"http://127.0.0.1:{recorder}/v1")
    assert home[0]["judge_status"] == f"HTTP 404 from 127.0.0.1:{recorder}: internal page: db password is hunter2"
    assert len(Recorder.seen) == 2


def judge_rows_of(rows, url):
    from workbench.judging.run import judge_rows

    return judge_rows(rows, JudgeConfig(url=url, model="m", retries=0, timeout=10))


def test_the_forms_offer_only_the_operators_key_names(governed):
    import gradio as gr

    from workbench.ui.tabs.evaluate_judge import key_choice

    with gr.Blocks():
        box = key_choice()
    assert [c[1] for c in box.choices] == ["", "WB_OFFERED_KEY"] and not box.allow_custom_value


@pytest.mark.slow
def test_a_judged_eval_job_keeps_the_key_out_of_its_row_config_log_and_results(governed, recorder, lora_run):
    """A real eval job through the real supervisor and worker process: the key reaches the (loopback) judge as
    its Bearer header and is found nowhere in what the job leaves behind."""
    from e2e_helpers import wait_for
    from workbench.jobs.supervisor import Supervisor

    run = governed / lora_run.run_dir.name
    shutil.copytree(lora_run.run_dir, run, ignore=shutil.ignore_patterns("checkpoints", "eval", "merged"))
    cfg = EvalConfig(run=str(run), n=1, max_new_tokens=4, compare_base=False, name="judged",
                     judge=JudgeConfig(url=f"http://127.0.0.1:{recorder}/v1", model="judge", key_env="WB_OFFERED_KEY"))
    job = submit.submit("eval", cfg)
    sup = Supervisor(poll_s=0.2).start()
    try:
        wait_for(lambda: queue.get(job.id).state in ("completed", "failed"), what="the eval job")
    finally:
        sup.close()
    row = queue.get(job.id)
    assert row.state == "completed", row.error
    assert [h.get("authorization") for _, h in Recorder.seen] == [f"Bearer {SECRET}"]
    assert json.loads((run / "eval" / "judged.json").read_text())["judge"]["mean_score"] == 70
    assert "key_env: WB_OFFERED_KEY" in row.config and SECRET not in json.dumps(row.__dict__, default=str)
    left = [p for p in governed.rglob("*") if p.is_file() and p.stat().st_size < 50_000_000]
    assert any(p.name == "worker.log" for p in left)
    assert not [p for p in left if SECRET.encode() in p.read_bytes()]
