"""metrics rows → Plotly figure and progress numbers (pure functions, no training)."""
import math

import pytest

from workbench.ui import plots

ROWS = [
    {"step": 1, "loss": 2.0, "learning_rate": 0.0, "tokens_per_second": 40.0},
    {"step": 2, "loss": 1.0, "learning_rate": 2e-4, "tokens_per_second": 50.0},
    {"step": 3, "loss": float("nan"), "learning_rate": 1e-4, "tokens_per_second": None},
    {"step": 4, "loss": 1.5, "learning_rate": 5e-5, "tokens_per_second": 45.0},
    {"step": 4, "eval_loss": 1.8, "tokens_per_second": None},
]


def test_smoothing_is_debiased_and_follows_a_constant():
    assert plots.smooth([3.0, 3.0, 3.0]) == pytest.approx([3.0, 3.0, 3.0])  # no pull toward 0 at the start
    assert plots.smooth([1.0, 2.0], weight=0) == [1.0, 2.0]
    s = plots.smooth([2.0, 0.0], weight=0.5)
    assert s[0] == pytest.approx(2.0) and s[1] == pytest.approx((0.5 * 1.0 + 0) / 0.75)


def test_series_skips_missing_and_non_finite_values_and_sorts_by_step():
    rows = [{"step": 2, "loss": 1.0}, {"step": 1, "loss": 2.0}, {"step": 3, "loss": None}, {"step": 4}]
    assert plots.series(rows, "loss") == ([1, 2], [2.0, 1.0])
    assert plots.series(ROWS, "loss") == ([1, 2, 4], [2.0, 1.0, 1.5])


def test_training_figure_has_raw_smoothed_eval_lr_and_throughput():
    fig = plots.training_figure(ROWS, smoothing=0.6, title="run-x")
    traces = {t.name: t for t in fig.data}
    assert set(traces) == {plots.LOSS, plots.SMOOTH, plots.EVAL, plots.LR, plots.TPS}
    assert list(traces[plots.LOSS].x) == [1, 2, 4] and list(traces[plots.LOSS].y) == [2.0, 1.0, 1.5]
    assert list(traces[plots.SMOOTH].y) == pytest.approx(plots.smooth([2.0, 1.0, 1.5], 0.6))
    assert list(traces[plots.EVAL].x) == [4] and list(traces[plots.EVAL].y) == [1.8]
    assert list(traces[plots.LR].y) == [0.0, 2e-4, 1e-4, 5e-5]
    assert list(traces[plots.TPS].x) == [1, 2, 4]
    # loss on the top panel, learning rate and tokens/s below it on a shared step axis
    assert traces[plots.LOSS].yaxis == "y" and traces[plots.LR].yaxis == "y2" and traces[plots.TPS].yaxis == "y3"
    assert fig.layout.title.text == "run-x"


def test_empty_metrics_give_an_explaining_figure_not_an_error():
    fig = plots.training_figure([])
    assert len(fig.data) == 0
    assert any("no metrics yet" in a.text for a in fig.layout.annotations)


@pytest.mark.parametrize("step,total,elapsed,eta,percent,elapsed_s,eta_s", [
    (0, 0, None, None, 0.0, "—", "—"),
    (3, 12, 42.4, 3725, 25.0, "0:42", "1:02:05"),
    (12, 12, 61, 0, 100.0, "1:01", "0:00"),
])
def test_progress_numbers(step, total, elapsed, eta, percent, elapsed_s, eta_s):
    p = plots.progress(step, total, elapsed, eta)
    assert p["percent"] == percent and p["elapsed"] == elapsed_s and p["eta"] == eta_s
    assert math.isclose(p["fraction"], percent / 100)


def test_the_jobs_live_view_fits_the_kind(no_app_supervisor, tmp_path, monkeypatch):
    """Issue 25, 7: a finished eval job shows its scores and where its table is, not an empty loss chart; a
    merge job shows no chart; a training job keeps its curves. A real queue row and real eval/ files."""
    from types import SimpleNamespace

    from workbench.evaluation.results import save_result
    from workbench.jobs import queue, view
    from workbench.jobs.queue import Job
    from workbench.runs.folder import RunDir

    monkeypatch.setenv("WORKBENCH_JOBS_DB", str(tmp_path / "jobs.sqlite3"))
    monkeypatch.setenv("WORKBENCH_OUTPUTS", str(tmp_path / "outputs"))
    run_dir = tmp_path / "outputs" / "run-1"
    run_dir.mkdir(parents=True)
    summary = {"n": 3, "adapter_rouge_l": 0.41, "base_rouge_l": 0.22, "adapter_bleu": 0.12, "base_bleu": 0.05}
    files = save_result(RunDir(run_dir), SimpleNamespace(name="test-n3", rows=[{"input": "a"}], summary=summary))
    for i, kind in enumerate(("eval", "merge", "train")):
        queue.insert(Job(id=f"job-{i}", kind=kind, name=kind, config="{}", state="completed", run_dir=str(run_dir)))

    figure, progress, _log, _badge = plots.render(view.snapshot(queue.get("job-0")))
    assert [t.type for t in figure.data] == ["bar", "bar"] and figure.data[0].y == (0.41, 0.12)
    assert str(files["jsonl"]) in progress and "3 rows" in progress
    assert plots.render(view.snapshot(queue.get("job-1")))[0] is None
    assert plots.SMOOTH not in str(figure.to_dict())  # no training curve on an evaluation
    train_figure = plots.render(view.snapshot(queue.get("job-2")))[0]
    assert "no metrics yet" in str(train_figure.to_dict())
