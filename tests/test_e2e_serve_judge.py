"""The judge over real HTTP: an evaluation judged by the project's own `serve` (score mode in-process,
pairwise through the `eval` CLI), retries against a stdlib server that fails the first calls then forwards
to `serve`, a wrong key; and the Serve panel and the rubric preview clicked in the browser."""
from __future__ import annotations

import json
import re
import shutil
import threading
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import openai
import pytest
from test_e2e_browser import open_tab, pick, visible

from conftest import free_port, screenshot
from e2e_helpers import wait_for
from workbench.cli import main
from workbench.config.tasks import JudgeConfig, ServeConfig
from workbench.core.errors import EvalError
from workbench.core.paths import outputs_dir
from workbench.evaluation.results import pairs_from_eval
from workbench.evaluation.side_by_side import evaluate
from workbench.judging.client import HttpJudge, JudgeCallError
from workbench.serving.server import start_in_thread

ASK = [{"role": "user", "content": "Rate this: the sky is blue."}]


@pytest.fixture(scope="module")
def served(lora_run):
    srv = start_in_thread(ServeConfig(run=str(lora_run.run_dir), port=free_port()))
    yield srv
    srv.stop()


def check_rows(rows: list[dict], judge: dict, key: str) -> None:
    """Every row is judged or carries the reason it was not; the summary counts exactly those."""
    failed = [r for r in rows if r["judge_status"] != "ok"]
    assert judge["failed_rows"] == len(failed) and judge["judged_rows"] == len(rows) - len(failed)
    for r in rows:
        if r["judge_status"] == "ok":
            assert r[key] is not None
        else:
            assert r[key] is None and r["judge_status"].startswith("unparseable judge output"), r["judge_status"]


@pytest.mark.slow
@pytest.mark.usefixtures("keep_logging")  # main() configures the root logger
def test_an_evaluation_judged_by_the_served_model_in_both_modes(lora_run, served, capsys, tmp_path):
    run = lora_run.run_dir
    before = served.batcher.batches
    result = evaluate(run, n=2, max_new_tokens=8, name="judged",
                      judge=JudgeConfig(url=served.url, model="base", max_tokens=12))
    judge = result.summary["judge"]
    assert served.batcher.batches > before  # the judge's requests reached the server
    assert (judge["mode"], judge["model"], judge["rubric"]) == ("score", "base", "score")
    check_rows(result.rows, judge, "judge_score")
    assert all(0 <= r["judge_score"] <= 100 for r in result.rows if r["judge_score"] is not None)
    saved = json.loads((run / "eval" / "judged.json").read_text())
    assert saved["judge"] == judge and "mean_score" in judge
    from workbench.ui.tabs.runs import judge_text  # the Runs tab's evaluations list

    assert judge_text(saved["judge"]).startswith(f"; judge `base`: mean score {judge['mean_score']}")
    lines = [json.loads(x) for x in (run / "eval" / "judged.jsonl").read_text().splitlines()]
    assert [x["judge_status"] for x in lines] == [r["judge_status"] for r in result.rows]
    # What the Evaluate tab shows for this result once its job completed: the judge's summary and columns.
    from workbench.config.tasks import EvalConfig
    from workbench.ui.tabs.evaluate import _shown

    summary_md, table, _, histogram = _shown(EvalConfig(run=str(run), name="judged"))
    assert "**Judge** `base` · score mode" in summary_md and "judge_score" in table.columns
    assert histogram["visible"] == any(r["judge_score"] is not None for r in result.rows)

    # Pairwise through the eval CLI (in this process: the model loaded above is reused from the cache).
    code = main(["eval", "--run", str(run), "--n", "2", "--max-new-tokens", "8", "--name", "pairwise",
                 "--judge-url", served.url, "--judge-model", "base", "--judge-mode", "pairwise",
                 "--judge-max-tokens", "12"])
    out = capsys.readouterr()
    assert code == 0, out.err[-2000:]
    assert re.search(r"judge base: win \S+ .*tie .*loss .*\(\d rows failed\)", out.out), out.out
    pairwise = json.loads((run / "eval" / "pairwise.json").read_text())["judge"]
    assert {"win_rate", "tie_rate", "loss_rate", "win_rate_ci", "failed_rows"} <= set(pairwise)
    assert f"win {pairwise['win_rate']} / tie" in judge_text(pairwise)
    rows = [json.loads(x) for x in (run / "eval" / "pairwise.jsonl").read_text().splitlines()]
    check_rows(rows, pairwise, "judge_verdict")

    # Preference pairs from this judged evaluation (issue 16): the judge's preferred answer is `chosen`. A row is
    # decided only when both answer orders agree, which the weak embedded judge does not manage: then nothing is
    # left, and the refusal says why.
    decided = [r for r in rows if r["judge_verdict"] in ("win", "loss")]
    if decided:
        built = pairs_from_eval(run, "pairwise", tmp_path / "judged-pairs.jsonl", source="judge", min_difference=0)
        assert built["pairs"] == len(decided)
    else:
        with pytest.raises(EvalError, match=r"no pair left .*2 no judge verdict") as refused:
            pairs_from_eval(run, "pairwise", tmp_path / "judged-pairs.jsonl", source="judge")
        assert "judge the evaluation pairwise first" in refused.value.hint


class Flaky(BaseHTTPRequestHandler):
    """Fails the first `fail` POSTs with `status` (asking for a 10 ms wait, which the openai client honours instead
    of its own backoff), then forwards to `target`."""
    fail, status, target, calls = 0, 503, "", 0

    def do_POST(self):
        cls = type(self)
        cls.calls += 1
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        if cls.calls <= cls.fail:
            self.send_response(cls.status)
            # The wait the server asks for (a short one, so the test stays fast), in both spellings.
            self.send_header(*(("Retry-After", "0.01") if cls.status == 429 else ("Retry-After-Ms", "10")))
            self.end_headers()
            self.wfile.write(b'{"error": {"message": "busy"}}')
            return
        req = urllib.request.Request(cls.target + self.path.removeprefix("/v1"), body,
                                     {"Content-Type": "application/json"})
        with urllib.request.urlopen(req, timeout=120) as r:
            data = r.read()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        """Silent: the stdlib server would print every request to stderr."""


@pytest.mark.slow
def test_retries_with_backoff_then_a_clear_status(served, lora_run, monkeypatch):
    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Flaky)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    Flaky.target = served.url
    try:
        for status in (503, 429):
            Flaky.fail, Flaky.status, Flaky.calls = 2, status, 0
            judge = HttpJudge(f"http://127.0.0.1:{port}/v1", "base", retries=3, max_tokens=4)
            assert judge.complete(ASK).strip()  # the served model's answer, after two failures
            assert Flaky.calls == 3
        Flaky.fail, Flaky.status, Flaky.calls = 100, 503, 0
        judge = HttpJudge(f"http://127.0.0.1:{port}/v1", "base", retries=2, max_tokens=4)
        with pytest.raises(JudgeCallError, match=r"HTTP 503 .*busy \(after 3 attempts\)"):
            judge.complete(ASK)
        assert Flaky.calls == 3
    finally:
        server.shutdown()
    monkeypatch.setenv("WB_TEST_JUDGE_KEY", "right")
    keyed = start_in_thread(ServeConfig(run=str(lora_run.run_dir), port=free_port(), api_key_env="WB_TEST_JUDGE_KEY"),
                            registry=served.registry)
    try:
        with pytest.raises(JudgeCallError, match="HTTP 401 .*Incorrect API key"):
            HttpJudge(keyed.url, "base", api_key="wrong", retries=3).complete(ASK)
        assert HttpJudge(keyed.url, "base", api_key="right", max_tokens=4).complete(ASK).strip()
    finally:
        keyed.stop()


@pytest.mark.browser
@pytest.mark.slow
def test_serve_panel_and_rubric_preview_in_the_browser(page, lora_run):
    run_id = "20990101-000000-serve-ui"
    target = outputs_dir() / run_id
    shutil.copytree(lora_run.run_dir, target, ignore=shutil.ignore_patterns("checkpoints", "eval", "merged"))
    port = free_port()
    try:
        open_tab(page, "Runs")
        page.get_by_role("tab", name="Serve", exact=True).first.click()
        visible(page.get_by_role("button", name="Refresh runs")).first.click()
        pick(page, "Runs to serve", run_id)
        port_box = visible(page.get_by_label("Port", exact=False)).first
        port_box.fill(str(port))
        port_box.press("Tab")
        visible(page.get_by_role("button", name="Start serving")).click()
        visible(page.get_by_text(re.compile(r"Serving .* at"))).first.wait_for(timeout=240_000)
        url = f"http://127.0.0.1:{port}/v1"
        assert visible(page.get_by_text(url)).count()
        client = openai.OpenAI(base_url=url, api_key="unused", max_retries=0, timeout=120)
        assert [m.id for m in client.models.list()] == [run_id, "base"]
        reply = client.chat.completions.create(model=run_id, messages=ASK, max_tokens=4)
        assert reply.choices[0].message.content.strip()
        screenshot(page, "serve-panel")
        visible(page.get_by_role("button", name="Stop serving")).click()
        visible(page.get_by_text(re.compile(r"serve job \S+ cancelled"))).first.wait_for(timeout=120_000)
        wait_for(lambda: _refused(url), 30, what="the server to stop listening")

        open_tab(page, "Evaluate")
        visible(page.get_by_text("LLM judge (optional)")).first.click()
        visible(page.get_by_text("Rubric file (templates/judge/)")).first.click()
        visible(page.get_by_role("button", name="Preview")).first.click()
        preview = visible(page.get_by_text(re.compile(r"Preview \(score rubric on a sample row\)"))).first
        preview.wait_for(timeout=30_000)
        assert visible(page.get_by_text("The capital of France is Paris.")).count()
        screenshot(page, "judge-rubric-preview")
    finally:
        shutil.rmtree(target, ignore_errors=True)


def _refused(url: str) -> bool:
    try:
        urllib.request.urlopen(url + "/models", timeout=2)
    except OSError:
        return True
    return False
