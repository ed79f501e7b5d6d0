"""Early stopping and the best checkpoint, through the Trainer's own mechanisms, shown in the run's status."""
import pytest

from conftest import quick_config
from workbench.core.errors import ConfigError
from workbench.runs.folder import RunDir


@pytest.mark.slow
def test_a_diverging_run_stops_early_and_keeps_its_best_checkpoint(tmp_path):
    from workbench.training.engine import train

    # lr 0.5 makes the eval loss climb after the first evaluation: patience 1 ends the run there.
    cfg = quick_config(tmp_path / "run", **{"train.max_steps": 12, "train.eval_steps": 2, "train.save_steps": 2,
                                           "train.early_stopping_patience": 1, "train.learning_rate": 0.5,
                                           "data.val_size": 0.2})
    result = train(cfg, progress_bar=False)
    status = RunDir(result.run_dir).read_status()
    assert result.state == "completed" and result.global_step < 12
    assert status["stopped_early"] is True and status["saved"] == "best checkpoint"
    assert status["best_checkpoint"].endswith("checkpoint-2")
    evals = [r["eval_loss"] for r in RunDir(result.run_dir).read_metrics() if "eval_loss" in r]
    assert status["best_eval_loss"] == pytest.approx(min(evals))


@pytest.mark.parametrize("sets,message", [
    ({"train.early_stopping_patience": 2}, "set train.eval_steps > 0"),
    ({"train.load_best_at_end": True, "train.eval_steps": 3, "train.save_steps": 4}, "multiple of train.eval_steps"),
])
def test_early_stopping_needs_evaluations(sets, message):
    with pytest.raises(ConfigError, match=message):
        quick_config("", **sets).validate()
