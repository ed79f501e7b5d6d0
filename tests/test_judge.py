"""The judge without a model: reading judges' replies (good and malformed), the intervals, the rubric files,
the verdicts from both answer orders, a judge that cannot be reached (a real closed port), one that fails with
429 / 503 / 401 or is too slow (a real local server), and the `judge:` section of the configs and its flags."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import free_port
from workbench.config.tasks import JudgeConfig
from workbench.core.errors import ConfigError
from workbench.judging import rubric as rubrics
from workbench.judging.rubric import JudgeOutputError, parse_score, parse_verdict
from workbench.judging.run import _fill_verdicts, judge_pairs, judge_rows, judgement_key
from workbench.judging.run import mean_ci, pairwise_summary, wilson


@pytest.mark.parametrize("reply,score,reason", [
    ("SCORE: 85\nREASON: Same meaning, other words.", 85, "Same meaning, other words."),
    ("**Score:** 40/100\n**Reason:** misses the second half", 40, "misses the second half"),
    ('Here you go: {"score": 72, "reason": "close"}', 72, "close"),
    ("90", 90, ""),
    ("score = 12.5 because it is vague", 12.5, ""),
])
def test_scores_are_read_from_the_shapes_judges_answer_in(reply, score, reason):
    assert parse_score(reply) == (score, reason)


@pytest.mark.parametrize("reply,problem", [
    ("The answer is quite good overall.", "no score"),
    ("", "no score"),
    ("SCORE: 250\nREASON: very good", "outside 0-100"),
    ('{"score": "high"}', "no score"),
])
def test_malformed_scores_are_an_unparseable_row_never_a_guess(reply, problem):
    with pytest.raises(JudgeOutputError, match=problem):
        parse_score(reply)


@pytest.mark.parametrize("reply,verdict", [("WINNER: A\nREASON: closer", "A"), ("Winner: **B**", "B"),
                                           ("WINNER: TIE", "tie"), ('{"winner": "b"}', "B"), ("A", "A")])
def test_verdicts(reply, verdict):
    assert parse_verdict(reply)[0] == verdict


def test_malformed_verdicts():
    for reply in ("Both are fine I guess", "WINNER: C", ""):
        with pytest.raises(JudgeOutputError, match="no winner"):
            parse_verdict(reply)


def test_intervals():
    assert wilson(5, 10) == pytest.approx((0.2366, 0.7634), abs=1e-4)  # the textbook Wilson interval
    assert wilson(0, 4)[0] == 0.0 and 0 < wilson(0, 4)[1] < 1 and wilson(0, 0) is None
    assert mean_ci([50, 60, 70]) == pytest.approx((48.68, 71.32), abs=0.01)  # 60 ± 1.96·10/√3 and mean_ci([50]) is None
    s = pairwise_summary(["win", "win", "tie", "loss"])
    assert (s["win_rate"], s["tie_rate"], s["loss_rate"], s["judged_rows"]) == (0.5, 0.25, 0.25, 4)
    assert s["win_rate_ci"][0] < 0.5 < s["win_rate_ci"][1]


def test_a_win_needs_both_orders_to_agree():
    # First order: A is the adapter's answer; second order: A is the base model's.
    found = {(0, "first"): ("A", "r"), (0, "second"): ("B", "r"),  # adapter both times: win
             (1, "first"): ("B", "r"), (1, "second"): ("A", "r"),  # base both times: loss
             (2, "first"): ("A", "r"), (2, "second"): ("A", "r"),  # position bias: tie
             (3, "first"): ("tie", "r"), (3, "second"): ("B", "r")}
    rows = [{"judge_status": "ok"} for _ in range(4)]
    assert _fill_verdicts(rows, found) == ["win", "loss", "tie", "tie"]


def test_rubrics_load_preview_and_save(tmp_path, monkeypatch):
    score = rubrics.for_mode("score")
    chat = score.messages(input="Q?", reference="R.", response="A {with braces}.")
    assert chat[0]["role"] == "system" and "R." in chat[-1]["content"] and "A {with braces}." in chat[-1]["content"]
    assert rubrics.for_mode("pairwise").mode == "pairwise"
    with pytest.raises(ConfigError, match="pairwise mode, not score"):
        rubrics.for_mode("score", "pairwise")
    with pytest.raises(ConfigError, match=r"lacks \{reference\}"):
        rubrics.parse("mode: score\nprompt: grade {input} {response}")
    text = rubrics.read_text("score")
    monkeypatch.setenv("WORKBENCH_TEMPLATES", str(tmp_path))
    path = rubrics.save_text(text.replace("strict", "kind"), "mine")
    assert path == tmp_path / "judge" / "mine.yaml" and "kind" in rubrics.load("mine").system
    with pytest.raises(ConfigError, match="already exists"):
        rubrics.save_text(text, "mine")
    rubrics.save_text(text, "mine", overwrite=True)
    assert rubrics.available() == ["mine"]


def test_half_set_judges_are_refused(monkeypatch):
    with pytest.raises(ConfigError, match="needs the judge's model name"):
        JudgeConfig(url="http://127.0.0.1:1/v1").validate()
    with pytest.raises(ConfigError, match="not both"):
        JudgeConfig(url="http://x/v1", model="m", local="default").validate()
    monkeypatch.delenv("WB_NO_SUCH_KEY", raising=False)
    with pytest.raises(ConfigError, match="WB_NO_SUCH_KEY .* is not set"):
        JudgeConfig(url="http://x/v1", model="m", key_env="WB_NO_SUCH_KEY").validate()


def test_an_unreachable_judge_fails_rows_not_the_evaluation():
    rows = [{"input": "q", "generated": "a", "base_generated": "b", "ground_truth": "t"} for _ in range(3)]
    cfg = JudgeConfig(url=f"http://127.0.0.1:{free_port()}/v1", model="m", retries=1, timeout=5)
    summary = judge_rows(rows, cfg)
    assert summary["failed_rows"] == 3 and summary["mean_score"] is None and summary["judged_rows"] == 0
    assert all(r["judge_status"].startswith("unreachable host 127.0.0.1:") for r in rows), rows[0]


def test_a_resumed_generation_reuses_only_final_verdicts_of_the_same_judge():
    """What a stopped Generate kept: a verdict read (or unreadable) by this judge is reused; a failed request, or
    another judge's verdict, is asked again (here of a real closed port, so it fails with its status)."""
    pairs = [{"id": f"t:{i}", "instruction": "Say hi", "text": "hi"} for i in range(4)]
    cfg = JudgeConfig(url=f"http://127.0.0.1:{free_port()}/v1", model="m", retries=0, timeout=5)
    key = judgement_key(cfg, "pair")
    known = {"t:0": {"judge": key, "judge_score": 80, "judge_reason": "fine", "judge_status": "ok", "final": True},
             "t:1": {"judge": key, "judge_score": None, "judge_reason": None, "judge_status": "unparseable",
                     "final": True},
             "t:2": {"judge": key, "judge_score": None, "judge_reason": None, "judge_status": "HTTP 503",
                     "final": False},
             "t:3": {"judge": "other|judge|pair|64", "judge_score": 10, "judge_reason": "", "judge_status": "ok",
                     "final": True}}
    asked = []
    summary = judge_pairs(pairs, cfg, known=known, record=asked.extend)
    assert [j["id"] for j in asked] == ["t:2", "t:3"] and not any(j["final"] for j in asked)
    assert [p["judge_score"] for p in pairs] == [80, None, None, None]
    assert pairs[1]["judge_status"] == "unparseable" and pairs[2]["judge_status"].startswith("unreachable host")
    assert (summary["judged_rows"], summary["failed_rows"], summary["mean_score"]) == (1, 3, 80)
    again = []
    assert judge_pairs(pairs[:2], cfg, known=known, record=again.extend)["judged_rows"] == 1
    assert again == []  # everything was known: nothing was asked


def test_the_summary_shows_the_judge_and_a_score_histogram():
    from workbench.ui.tabs.evaluate_judge import judge_markdown, score_histogram

    rows = [{"judge_score": 95, "base_judge_score": 20}, {"judge_score": 91, "base_judge_score": None},
            {"judge_score": None, "base_judge_score": None}]
    fig = score_histogram(rows)
    assert [(t.name, list(t.x)) for t in fig.data] == [("adapter", [95.0, 91.0]), ("base model", [20.0])]
    assert fig.data[0].xbins.size == 10
    text = judge_markdown({"mode": "score", "model": "m", "rubric": "score", "mean_score": 93.0,
                           "mean_score_ci": [88.1, 97.9], "base_mean_score": 20.0, "failed_rows": 1})
    assert "**93.0** (95% CI 88.10–97.90)" in text and "1 row(s) failed" in text
    text = judge_markdown({"mode": "pairwise", "model": "m", "rubric": "pairwise", "win_rate": 0.5,
                           "win_rate_ci": [0.2, 0.8], "tie_rate": 0.5, "tie_rate_ci": [0.2, 0.8], "loss_rate": 0.0,
                           "loss_rate_ci": [0.0, 0.4], "failed_rows": 0})
    assert "win rate **0.50** (95% CI 0.20–0.80)" in text and "failed" not in text


def test_the_judge_is_one_section_in_yaml_json_the_api_and_the_cli():
    from workbench.cli import build_parser
    from workbench.cli.options import settings_from_args
    from workbench.config.generate import GenerateConfig
    from workbench.config.tasks import EvalConfig

    url = "http://127.0.0.1:11434/v1"
    want = JudgeConfig(url=url, model="m", key_env="K", concurrency=2)
    for text in (f"run: r\njudge:\n  url: {url}\n  model: m\n  key_env: K\n  concurrency: 2\n",
                 json.dumps({"run": "r", "judge": {"url": url, "model": "m", "key_env": "K", "concurrency": 2}}),
                 f"run: r\njudge_url: {url}\njudge_model: m\njudge_key_env: K\njudge_concurrency: 2\n"):  # older flat keys
        assert EvalConfig.from_text(text).judge == want
    assert EvalConfig.from_text(EvalConfig(run="r", judge=want).to_yaml()).judge == want
    assert "judge:\n  mode: score\n  url: " in EvalConfig(run="r", judge=want).to_yaml()
    with pytest.raises(ConfigError, match="judge_url and judge.url are the same setting"):
        EvalConfig.from_text(f"judge_url: {url}\njudge: {{url: {url}}}")
    with pytest.raises(ConfigError, match="unknown setting 'judge.nope'"):
        EvalConfig.from_text("judge: {nope: 1}")
    with pytest.raises(ConfigError, match="judge.concurrency must be >= 1"):
        EvalConfig.from_text("judge: {concurrency: 0}").check_ranges()
    # The documented flags still set the section.
    args = build_parser().parse_args(["eval", "--run", "r", "--judge-url", url, "--judge-model", "m",
                                      "--judge-key-env", "K", "--judge-concurrency", "2"])
    assert settings_from_args(EvalConfig, args).judge == want
    args = build_parser().parse_args(["generate", "--run", "r", "--pasted", "t", "--judge-local", "default"])
    assert settings_from_args(GenerateConfig, args).judge == JudgeConfig(local="default")
    args = build_parser().parse_args(["generate", "--run", "r", "--pasted", "t", "--judge-mode", "pairwise"])
    with pytest.raises(ConfigError, match="judge.mode: a generated pair is always scored"):
        settings_from_args(GenerateConfig, args).validate()


class Failing(BaseHTTPRequestHandler):
    """Answers the first `fail` requests with `status` (asking for a 10 ms wait in Retry-After), then a chat
    completion; `sleep` seconds before answering (a slow judge)."""
    fail, status, calls, sleep, arrived = 0, 503, 0, 0.0, []

    def do_POST(self):
        cls = type(self)
        cls.calls += 1
        cls.arrived.append(time.monotonic())
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        time.sleep(cls.sleep)
        ok = cls.calls > cls.fail
        body = json.dumps({"id": "c", "object": "chat.completion", "created": 0, "model": "m", "choices": [
            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": "SCORE: 9"}}]}
            if ok else {"error": {"message": "busy" if cls.status != 401 else "Incorrect API key"}}).encode()
        self.send_response(200 if ok else cls.status)
        if not ok:
            self.send_header("Retry-After", "0.01")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        """Silent: the stdlib server would print every request to stderr."""


class QuietServer(ThreadingHTTPServer):
    def handle_error(self, request, client_address):
        """The slow judge's reply meets a client that already gave up (a broken pipe): expected, not printed."""


def test_the_official_client_retries_honours_retry_after_and_each_failure_has_its_status():
    from workbench.judging.client import HttpJudge, JudgeCallError

    server = QuietServer(("127.0.0.1", 0), Failing)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url, ask = f"http://127.0.0.1:{server.server_address[1]}/v1", [{"role": "user", "content": "hi"}]
    try:
        Failing.fail, Failing.status, Failing.calls, Failing.arrived = 2, 429, 0, []
        assert HttpJudge(url, "m", retries=3).complete(ask) == "SCORE: 9"
        gaps = [b - a for a, b in zip(Failing.arrived, Failing.arrived[1:])]
        assert Failing.calls == 3 and max(gaps) < 0.3, gaps  # the server's 10 ms, not the client's 0.5 s, 1 s backoff
        Failing.fail, Failing.status, Failing.calls = 100, 503, 0
        with pytest.raises(JudgeCallError, match=r"^HTTP 503 from 127.0.0.1:\d+: busy \(after 3 attempts\)$"):
            HttpJudge(url, "m", retries=2).complete(ask)
        Failing.fail, Failing.status, Failing.calls = 100, 401, 0
        replies = HttpJudge(url, "m", api_key="wrong", retries=3, concurrency=2).complete_all([ask, ask])
        assert [str(r) for r in replies] == [f"HTTP 401 from 127.0.0.1:{server.server_address[1]}: Incorrect API "
                                             "key"] * 2 and Failing.calls == 2  # a 401 is not retried
        Failing.fail, Failing.calls, Failing.sleep = 0, 0, 1.0
        with pytest.raises(JudgeCallError, match=r"^timeout after 0.2 s \(127.0.0.1:\d+\)$"):
            HttpJudge(url, "m", retries=0, timeout=0.2).complete(ask)
    finally:
        Failing.sleep = 0.0
        server.shutdown()
        server.server_close()
