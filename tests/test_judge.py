"""The judge without a model: reading judges' replies (good and malformed), the intervals, the rubric files,
the verdicts from both answer orders, and a judge that cannot be reached (a real closed port)."""
from __future__ import annotations

import pytest

from conftest import free_port
from workbench.config.judge import JudgeConfig
from workbench.core.errors import ConfigError
from workbench.judging import rubric as rubrics
from workbench.judging.parse import JudgeOutputError, parse_score, parse_verdict
from workbench.judging.run import _fill_verdicts, judge_pairs, judge_rows, judgement_key
from workbench.judging.stats import mean_ci, pairwise_summary, wilson


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
