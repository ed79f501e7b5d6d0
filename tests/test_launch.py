"""The equivalent command: CLI line and YAML round-trip exactly, accelerate accepts the commands and files."""
import shlex

import pytest
import yaml

from workbench.cli import build_parser
from workbench.cli.tasks import load_config
from workbench.config import presets
from workbench.config.run import RunConfig
from workbench.core.errors import ConfigError, PathError
from workbench.training import launch


@pytest.fixture
def outputs(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_OUTPUTS", str(tmp_path))
    return tmp_path


def _edited_config() -> RunConfig:
    cfg = presets.build(presets.QLORA_7B)
    cfg.set("data.column_map", "{context: input, response: output}")
    cfg.set("run_name", "my run with spaces")
    cfg.set("data.packing", True)
    return cfg


def test_cli_command_with_set_rebuilds_exactly_the_same_config():
    cfg = _edited_config()
    argv = shlex.split(launch.cli_command(cfg))
    assert argv[:4] == ["python", "-m", "workbench", "train"]
    args = build_parser().parse_args(argv[3:])
    assert load_config(args.config, args.set) == cfg
    assert launch.set_args(RunConfig()) == []  # defaults need no --set at all


def test_cli_command_with_a_file_parses(outputs):
    args = build_parser().parse_args(shlex.split(launch.cli_command(config_path="a b/x.yaml"))[3:])
    assert args.config == "a b/x.yaml" and args.set == []


@pytest.mark.parametrize("strategy,gpus", [("ddp", 4), ("ddp", 1), ("fsdp", 8), ("zero2", 2), ("zero3", 2)])
def test_accelerate_commands_parse_with_accelerates_own_parser(strategy, gpus):
    from accelerate.commands.launch import launch_command_parser

    cmd = launch.accelerate_command("outputs/configs/x.yaml", gpus, strategy)
    argv = shlex.split(cmd)
    assert argv[:2] == ["accelerate", "launch"]
    args = launch_command_parser().parse_args(argv[2:])
    assert args.module and args.training_script == "workbench"
    assert args.training_script_args == ["train", "--config", "outputs/configs/x.yaml"]
    if strategy == "ddp":
        assert args.num_processes == gpus and args.multi_gpu == (gpus > 1)
    else:
        assert args.config_file == f"outputs/configs/x.accelerate-{strategy}.yaml"


def test_save_config_writes_yaml_and_accelerate_files_that_accelerate_loads(outputs):
    from accelerate.commands.config.config_args import load_config_from_file

    cfg = _edited_config()
    cfg.output_dir = "/somewhere/else"
    written = launch.save_config(cfg, "qlora-7b", num_gpus=4)
    assert written["config"] == outputs / "configs" / "qlora-7b.yaml"
    back = RunConfig.load(written["config"])
    assert back.output_dir == ""  # each launch of a saved config makes its own run folder
    back.output_dir = cfg.output_dir
    assert back == cfg
    fsdp = load_config_from_file(str(written["fsdp"]))
    assert str(fsdp.distributed_type).endswith("FSDP") and fsdp.num_processes == 4
    assert fsdp.fsdp_config["fsdp_state_dict_type"] == "FULL_STATE_DICT" and fsdp.mixed_precision == "bf16"
    for stage in (2, 3):
        ds = load_config_from_file(str(written[f"zero{stage}"]))
        assert str(ds.distributed_type).endswith("DEEPSPEED") and ds.deepspeed_config["zero_stage"] == stage
        assert ds.deepspeed_config["gradient_accumulation_steps"] == cfg.train.grad_accum
    # the commands shown in the UI point at exactly these files
    text = launch.equivalent_commands(cfg, written["config"], 4)
    for key in ("fsdp", "zero2", "zero3"):
        assert f"--config_file {written[key]}" in text
    assert "use ddp or zero2 for QLoRA" in text  # 4-bit weights cannot be sharded by FSDP / ZeRO-3 here


def test_save_config_never_overwrites_silently(outputs):
    first, second = RunConfig(), RunConfig()
    second.set("train.max_steps", 7)
    path = launch.save_config(first, "mine")["config"]
    with pytest.raises(ConfigError, match="already exists"):
        launch.save_config(second, "mine")
    assert RunConfig.load(path) == first  # untouched
    launch.save_config(second, "mine", overwrite=True)
    assert RunConfig.load(path).train.max_steps == 7
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp files left behind


@pytest.mark.parametrize("name", ["../escape", "a/b", "", " ", ".hidden"])
def test_bad_config_names_are_refused(outputs, name):
    with pytest.raises(ConfigError, match="config name"):
        launch.save_config(RunConfig(), name)


def test_load_config_by_name_path_or_upload_but_not_from_anywhere(outputs, tmp_path_factory):
    cfg = RunConfig()
    cfg.set("adapter.r", 8)
    path = launch.save_config(cfg, "eight")["config"]
    assert launch.load_config_file("eight").adapter.r == 8
    assert launch.load_config_file(str(path)).adapter.r == 8
    elsewhere = tmp_path_factory.mktemp("elsewhere") / "x.yaml"
    elsewhere.write_text(yaml.safe_dump({"adapter": {"r": 4}}))
    with pytest.raises(PathError, match="config file: .* is outside the folders this app may read"):
        launch.load_config_file(str(elsewhere))
    assert launch.load_config_file(str(elsewhere), uploaded=True).adapter.r == 4  # an upload is fine
    with pytest.raises(ConfigError, match="not a .yaml file"):
        launch.load_config_file("/etc/hostname")
    with pytest.raises(ConfigError, match="config file not found"):
        launch.load_config_file("never-saved")
