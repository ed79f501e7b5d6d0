"""The CLI's arguments and its one error path, without a model: generated options, help, exit statuses."""
import argparse
import logging
import subprocess

import pytest

from conftest import PY, ROOT
from workbench.cli import main
from workbench.cli import run_command
from workbench.cli.options import settings_from_args
from workbench.cli import build_parser
from workbench.config.run import RunConfig
from workbench.config.tasks import EvalConfig, MergeConfig
from workbench.core.errors import EvalError

pytestmark = pytest.mark.usefixtures("keep_logging")  # main() configures the root logger


def _help(capsys, command: str) -> str:
    with pytest.raises(SystemExit) as exit_:
        main([command, "--help"])
    assert exit_.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines; compare words


@pytest.mark.parametrize("command,cls,switches", [("eval", EvalConfig, {"compare_base": "--no-base"}),
                                                  ("merge", MergeConfig, {"adapter_only": "--adapter-only"})])
def test_help_is_generated_from_the_config_fields(capsys, command, cls, switches):
    text = _help(capsys, command)
    for name, f in cls.iter_fields():
        flag = switches.get(name, "--" + name.replace("_", "-").replace(".", "-"))  # judge.url: --judge-url
        assert flag in text and " ".join(f.metadata["help"].split()) in text, name
        if f.metadata.get("choices"):
            assert "{" + ",".join(f.metadata["choices"]) + "}" in text
    assert "--compare-base" not in text and "--log-level" in text


def test_train_help_lists_every_run_setting(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    out = capsys.readouterr().out
    for name, _f in RunConfig.iter_fields():
        assert f"\n  {name}=" in out, name


def test_generated_options_are_set_through_the_config():
    args = build_parser().parse_args(["eval", "--run", "r", "--no-base", "--max-new-tokens", "16", "--n", "0",
                                      "--data", "x.jsonl"])
    assert settings_from_args(EvalConfig, args) == EvalConfig(run="r", compare_base=False, max_new_tokens=16,
                                                              n=0, data="x.jsonl")
    assert settings_from_args(EvalConfig, build_parser().parse_args(["eval", "--run", "r"])) == EvalConfig(run="r")
    args = build_parser().parse_args(["merge", "--run", "r", "--out", "o", "--adapter-only", "--dtype", "float16"])
    assert settings_from_args(MergeConfig, args) == MergeConfig(run="r", out="o", adapter_only=True,
                                                                dtype="float16")


@pytest.mark.parametrize("argv,message", [
    (["train", "--set", "train.batch_size=0"], "error: train.batch_size must be >= 1"),
    (["train", "--set", "train.nope=1"], "error: unknown setting 'train.nope'"),
    (["train", "--resume", "somewhere", "--set", "train.max_steps=2"], "error: --resume continues a run"),
    (["eval", "--run", "/nonexistent"], "error: /nonexistent is not a run folder"),
    (["eval", "--run", "r", "--batch-size", "0"], "error: batch_size must be >= 1 and <= 512; got 0"),
    (["eval", "--run", "r", "--n", "many"], "error: n must be a number, got 'many'"),
    (["eval", "--run", "r", "--split", "train"], "error: split must be one of test, validation"),
    (["eval", "--run", "r", "--split", "test", "--data", "x.jsonl"], "error: give --split or --data, not both"),
    (["merge", "--run", "/nonexistent", "--out", "/tmp/never-written"], "error: adapter not found: /nonexistent"),
    (["merge", "--run", "r", "--out", "o", "--dtype", "int3"], "error: dtype must be one of auto,"),
])
def test_bad_input_exits_2_with_the_message(capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [(["eval"], "--run is required"),
                                          (["merge", "--run", "r"], "--out is required")])
def test_a_missing_required_setting_exits_2_naming_its_flag(capsys, argv, message):
    assert main(argv) == 2
    assert message in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["train", "--log-level", "LOUD"], ["fly"]])
def test_malformed_command_lines_exit_2_with_usage(capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        main(argv)
    assert exit_.value.code == 2 and "usage:" in capsys.readouterr().err


@pytest.mark.parametrize("argv,message", [
    (["train", "--set", "train.batch_size=0"], "error: train.batch_size must be >= 1"),
    (["train", "--set", "nonsense.key=1"], "error: unknown setting 'nonsense.key'"),
    (["eval", "--run", "/nonexistent"], "error: /nonexistent is not a run folder"),
])
def test_python_dash_m_exits_2_with_the_message_and_no_traceback(argv, message):
    proc = subprocess.run([PY, "-m", "workbench", *argv], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith(message) and "Traceback" not in proc.stderr


def test_log_level_configures_logging_on_every_command(capsys):
    assert main(["eval", "--log-level", "debug", "--run", "r", "--n", "x"]) == 2
    assert logging.getLogger().level == logging.DEBUG
    assert main(["merge", "--log-level", "ERROR", "--run", "r", "--out", "o", "--dtype", "x"]) == 2
    assert logging.getLogger().level == logging.ERROR


def test_the_one_error_path(capsys, caplog):
    def refuses(args):
        raise EvalError("the run has no adapter", "train it first")

    def crashes(args):
        return {}["missing"]

    args = argparse.Namespace(command="demo")
    assert run_command(refuses, args) == 2
    assert capsys.readouterr().err == "error: the run has no adapter\ntrain it first\n"
    with caplog.at_level(logging.ERROR):
        assert run_command(crashes, args) == 1
    assert "internal error (KeyError), see the log" in capsys.readouterr().err
    record = next(r for r in caplog.records if "internal error in `demo`" in r.getMessage())
    assert record.exc_info and record.exc_info[0] is KeyError  # the traceback is in the log
