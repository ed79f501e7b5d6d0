"""`python -m workbench train` for real on tiny settings: the console shows one progress bar and one summary
line per logging step (never the Trainer's raw `{'loss': ...}` dicts), and a failed run exits 1."""
import json
import re
import subprocess

import pytest

from conftest import PY, ROOT
from workbench.runs.folder import RunDir
from workbench.training.callbacks import format_log

pytestmark = pytest.mark.slow

TINY = ["--set", "data.max_rows=24", "--set", "data.max_length=96", "--set", "train.batch_size=2",
        "--set", "train.logging_steps=1", "--set", "train.save_steps=2"]
SUMMARY = re.compile(r"^step (\d+)/2  loss [\d.]+  lr [\d.]+e[-+]\d\d  grad [\d.]+  \d+ tok/s  ETA \d+:\d\d$")


def _train(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PY, "-m", "workbench", "train", *TINY, *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=600)


def test_format_log_reads_as_one_line():
    logs = {"loss": 2.13412, "learning_rate": 1.2e-4, "grad_norm": 0.8213, "epoch": 0.5, "num_tokens": 900.0}
    assert format_log(3, 10, logs, tokens_per_second=312.4, eta_s=41) == \
        "step 3/10  loss 2.134  lr 1.2e-04  grad 0.821  312 tok/s  ETA 0:41"
    assert format_log(10, 10, {"eval_loss": 1.5}) == "step 10/10  eval loss 1.5"


def test_cli_train_shows_summary_lines_and_a_bar_not_raw_dicts(tmp_path):
    out = tmp_path / "run"
    proc = _train("--set", "train.max_steps=2", "--set", f"output_dir={out}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.splitlines()
    assert [int(m.group(1)) for m in map(SUMMARY.match, lines) if m] == [1, 2], proc.stdout
    assert "completed: step 2/2" in proc.stdout and f"run folder: {out}" in proc.stdout
    assert "{'" not in proc.stdout + proc.stderr  # no raw Trainer log dicts anywhere
    assert "2/2 [" in proc.stderr  # the tqdm bar, on stderr
    assert " INFO " not in proc.stderr  # the console shows WARNING and above unless --log-level says more
    rows = [r for r in RunDir(out).read_metrics() if "loss" in r]
    assert [r["step"] for r in rows] == [1, 2] and rows[-1]["tokens_per_second"] > 0
    assert rows[-1]["eta_s"] == 0 and rows[-1]["elapsed_s"] > 0


def test_cli_run_that_fails_exits_1_and_keeps_the_error(tmp_path):
    out = tmp_path / "run"
    # 16 tokens hold no response after the reverse-instruction prompt: the run starts, then fails on its data.
    proc = _train("--no-progress", "--set", "data.max_length=16", "--set", "train.max_steps=1",
                  "--set", f"output_dir={out}")
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert "error: training failed: no training row has a trained token left" in proc.stderr
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "failed" and "no training row" in status["error"]
