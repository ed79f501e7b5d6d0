"""Runs listing, config diff, loss-curve overlay and deletion, on run folders written the engine's way."""
import os
import socket

import pytest

from workbench.config.run import RunConfig
from workbench.core.errors import RunError
from workbench.core.files import atomic_write_text
from workbench.runs.compare import (
    compare,
    config_diff,
    delete_run,
    loss_curves,
    loss_figure,
    resolve_run,
    run_choices,
    run_summary,
    summaries,
)
from workbench.runs.folder import RunDir


def make_run(root, run_id, state="completed", losses=(2.0, 1.5, 1.2), **sets):
    run = RunDir(root / run_id)
    run.path.mkdir(parents=True)
    cfg = RunConfig()
    for key, value in sets.items():
        cfg.set(key.replace("__", "."), value)
    cfg.output_dir = str(run.path)
    atomic_write_text(run.config_file, cfg.to_yaml())
    for i, loss in enumerate(losses, start=1):
        run.append_metrics({"step": i, "loss": loss})
    run.append_metrics({"step": len(losses), "eval_loss": 1.4})
    extra = {"step": len(losses), "max_steps": len(losses)}
    if state == "completed":
        extra.update(final_loss=losses[-1], best_loss=min(losses))
    run.write_status(state, **extra)
    return run


@pytest.fixture
def root(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_OUTPUTS", str(tmp_path / "outputs"))
    return tmp_path / "outputs"


def test_summary_rows_show_what_a_run_is_and_how_it_went(root):
    a = make_run(root, "20240101-000000-a", **{"train__learning_rate": 1e-4})
    b = make_run(root, "20240102-000000-b", state="stopped", losses=(3.0, 2.5), data__template="alpaca")
    rows = summaries()
    assert [r["run"] for r in rows] == [b.id, a.id]  # newest first
    ra = run_summary(a)
    assert ra["status"] == "completed" and ra["base model"] == "default" and ra["template"] == "reverse_instruction"
    assert ra["method"] == "lora" and ra["steps"] == "3/3" and ra["final loss"] == 1.2 and ra["best loss"] == 1.2
    assert ra["eval loss"] == 1.4 and ra["created"]
    # A stopped run without final_loss in its status still shows its losses from metrics.jsonl.
    rb = run_summary(b)
    assert rb["status"] == "stopped" and rb["final loss"] == 2.5 and rb["best loss"] == 2.5
    assert rb["template"] == "alpaca"
    assert run_choices() == []  # neither saved an adapter


def test_config_diff_and_overlaid_curves(root):
    a = make_run(root, "a", **{"train__learning_rate": 1e-4})
    b = make_run(root, "b", losses=(2.2, 1.0), **{"train__learning_rate": 3e-4, "adapter__r": 8})
    diff = config_diff([a, b])
    assert {d["setting"] for d in diff} == {"train.learning_rate", "adapter.r"}  # output_dir is left out
    lr = next(d for d in diff if d["setting"] == "train.learning_rate")
    assert lr == {"setting": "train.learning_rate", "a": "0.0001", "b": "0.0003"}
    curves = loss_curves([a, b])
    assert curves["b"] == {"step": [1, 2], "loss": [2.2, 1.0], "eval_step": [2], "eval_loss": [1.4]}
    fig = loss_figure(curves)
    names = [t.name for t in fig.data]
    assert names == ["a train", "a eval", "b train", "b eval"]
    assert list(fig.data[2].y) == [2.2, 1.0]
    assert fig.data[0].line.color == fig.data[1].line.color != fig.data[2].line.color
    rows, c = compare(["a", str(b.path)])
    assert rows == diff and set(c) == {"a", "b"}
    with pytest.raises(RunError, match="at least two"):
        compare(["a", "a"])
    with pytest.raises(RunError, match="no run named"):
        resolve_run("missing")


def test_delete_needs_a_finished_run_inside_outputs(root, tmp_path):
    done = make_run(root, "done")
    running = make_run(root, "busy", state="running")
    # status.json of a live process on this host (ours): the run is really running.
    st = running.read_status()
    assert st["pid"] == os.getpid() and st["host"] == socket.gethostname()
    with pytest.raises(RunError, match="stop it before deleting"):
        delete_run("busy")
    outside = make_run(tmp_path / "elsewhere", "x")
    with pytest.raises(RunError, match="not inside"):
        delete_run(str(outside.path))
    assert delete_run("done") == "done"
    assert not done.path.exists() and running.path.exists() and outside.path.exists()
    assert [r["run"] for r in summaries()] == ["busy"]


@pytest.mark.slow
def test_a_real_run_is_summarised(lora_run, monkeypatch):
    s = run_summary(RunDir(lora_run.run_dir))
    assert s["status"] == "completed" and s["steps"] == "3/3" and s["final loss"] > 0
    monkeypatch.setenv("WORKBENCH_OUTPUTS", str(lora_run.run_dir.parent))
    assert any(path == str(lora_run.run_dir) for _, path in run_choices())
