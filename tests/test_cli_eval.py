"""`python -m workbench eval` and `merge` on a real short run."""
import json
import shutil
import subprocess

import pytest

from conftest import PY, ROOT
from workbench.cli import main

pytestmark = [pytest.mark.slow, pytest.mark.usefixtures("keep_logging")]

KEYS = {"input", "generated", "base_generated", "ground_truth", "rouge_l", "bleu"}


@pytest.fixture(scope="module")
def run_copy(lora_run, tmp_path_factory):
    """A private copy, so files this module writes under eval/ do not meet other modules' files."""
    target = tmp_path_factory.mktemp("cli") / "run"
    shutil.copytree(lora_run.run_dir, target, ignore=shutil.ignore_patterns("checkpoints", "eval", "merged"))
    return target


def test_eval_command_writes_rows_and_summary(run_copy):
    proc = subprocess.run([PY, "-m", "workbench", "eval", "--run", str(run_copy), "--n", "2", "--split", "test",
                           "--seed", "1", "--max-new-tokens", "16"], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)
    assert proc.returncode == 0, proc.stderr
    assert "ROUGE-L adapter" in proc.stdout
    rows = [json.loads(x) for x in (run_copy / "eval" / "test-n2-seed1.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(KEYS <= set(r) for r in rows)
    assert all(0 <= r[k] <= 1 for r in rows for k in ("rouge_l", "bleu"))
    summary = json.loads((run_copy / "eval" / "test-n2-seed1.json").read_text())
    assert {"adapter_rouge_l", "base_rouge_l", "adapter_bleu", "base_bleu", "n"} <= set(summary)
    assert summary["n"] == 2


def test_eval_of_a_file_and_bad_input(run_copy, tmp_path, capsys):
    assert main(["eval", "--run", str(run_copy), "--data", str(ROOT / "data" / "dolly_sample.jsonl"), "--n", "3",
                 "--max-new-tokens", "12", "--no-base", "--name", "sample3"]) == 0
    rows = [json.loads(x) for x in (run_copy / "eval" / "sample3.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(r["base_generated"] is None for r in rows)
    assert json.loads((run_copy / "eval" / "sample3.json").read_text())["base_rouge_l"] is None

    assert main(["eval", "--run", str(tmp_path)]) == 2
    assert "not a run folder" in capsys.readouterr().err
    assert main(["eval", "--run", str(run_copy), "--data", str(tmp_path / "none.jsonl")]) == 2
    assert "not found" in capsys.readouterr().err


def test_merge_command(run_copy, tmp_path, capsys):
    out = tmp_path / "merged"
    assert main(["merge", "--run", str(run_copy), "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "MB to write" in captured.err and "merged model:" in captured.out
    from transformers import AutoModelForCausalLM

    assert AutoModelForCausalLM.from_pretrained(str(out)).config.vocab_size == 49152
    assert main(["merge", "--run", str(run_copy), "--out", str(out)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert main(["merge", "--run", str(run_copy), "--out", str(tmp_path / "only"), "--adapter-only"]) == 0
    assert (tmp_path / "only" / "adapter_config.json").is_file()
