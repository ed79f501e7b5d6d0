import importlib.util

import pytest

from workbench.config import preflight as preflight_mod
from workbench.config.fields import format_column_map, parse_column_map
from workbench.config.preflight import preflight
from workbench.config.run import RunConfig, iter_fields
from workbench.core.errors import ConfigError


def _flash_usable() -> bool:
    """Ask this machine, never assume it: flash-attn installed and an Ampere+ GPU."""
    import torch

    return (importlib.util.find_spec("flash_attn") is not None and torch.cuda.is_available()
            and torch.cuda.get_device_capability()[0] >= 8)


def test_yaml_round_trip_keeps_every_field():
    cfg = RunConfig()
    cfg.set("train.learning_rate", "3e-4")
    cfg.set("adapter.target_modules", "q_proj,v_proj")
    cfg.set("data.column_map", "{context: input, response: output}")
    cfg.set("model.quantization", "4bit")
    back = RunConfig.from_yaml(cfg.to_yaml())
    assert back == cfg
    assert back.train.learning_rate == pytest.approx(3e-4)
    assert back.data.column_map == {"context": "input", "response": "output"}


def test_defaults_preflight_into_a_plan_that_says_what_will_run(model_dir):
    import torch

    plan = preflight(RunConfig())
    assert plan.model_path == str(model_dir) and plan.model_is_local
    assert plan.device == ("cuda" if torch.cuda.is_available() else "cpu")
    assert plan.dtype == ("float32" if plan.device == "cpu" else plan.dtype)
    assert plan.attention == ("flash_attention_2" if _flash_usable() else "sdpa")
    assert plan.data_is_local and plan.data_source.endswith("data/dolly_sample.jsonl")
    assert any(n.startswith(f"attention: {plan.attention}") for n in plan.notes)


def test_validate_is_pure_and_preflight_looks_at_the_world():
    """validate() checks values only: a missing file or template passes it; preflight() refuses them."""
    cfg = RunConfig()
    cfg.set("data.source", "missing/file.jsonl")
    cfg.set("data.template", "nope")
    cfg.validate()  # no error: it touches no file
    with pytest.raises(ConfigError, match="data.template 'nope' is unknown"):
        preflight(cfg)


@pytest.mark.parametrize("text", ["context: input, response: output", "context→input; response->output",
                                  "{context: input, response: output}", "context=input\nresponse => output",
                                  '{"context": "input", "response": "output"}'])
def test_one_column_map_syntax_everywhere(text):
    expected = {"context": "input", "response": "output"}
    assert parse_column_map(text) == expected
    cfg = RunConfig()
    cfg.set("data.column_map", text)
    assert cfg.data.column_map == expected
    assert parse_column_map(format_column_map(expected)) == expected  # what the forms show reads back


@pytest.mark.parametrize("key,value,message", [
    ("train.learning_rate", 0, "train.learning_rate must be > 0.0 and <= 1.0; got 0.0"),
    ("train.learning_rate", -1e-4, "train.learning_rate must be > 0.0"),
    ("adapter.r", 0, "adapter.r must be >= 1 and <= 1024; got 0"),
    ("adapter.dropout", 0.95, "adapter.dropout must be >= 0.0 and <= 0.9; got 0.95"),
    ("train.batch_size", 0, "train.batch_size must be >= 1"),
    ("model.quantization", "3bit", "model.quantization must be one of none, 8bit, 4bit; got '3bit'"),
    ("train.scheduler", "wavy", "train.scheduler must be one of constant"),
])
def test_validation_names_the_field_and_the_allowed_range(key, value, message):
    cfg = RunConfig()
    cfg.set(key, value)
    with pytest.raises(ConfigError) as e:
        cfg.validate()
    assert message in str(e.value)


@pytest.mark.parametrize("key,value,message", [
    ("data.template", "nope", "data.template 'nope' is unknown; available: alpaca"),
    ("data.source", "missing/file.jsonl", "data.source: file not found: missing/file.jsonl"),
    ("model.name", "./no/such/model", "model.name: model folder not found: ./no/such/model"),
])
def test_preflight_names_the_setting_that_cannot_work_here(key, value, message):
    cfg = RunConfig()
    cfg.set(key, value)
    with pytest.raises(ConfigError) as e:
        preflight(cfg)
    assert message in str(e.value)


def test_four_bit_without_bitsandbytes_is_refused(monkeypatch):
    real = preflight_mod.has_package
    monkeypatch.setattr(preflight_mod, "has_package", lambda n: False if n == "bitsandbytes" else real(n))
    cfg = RunConfig()
    cfg.set("adapter.method", "qlora")
    with pytest.raises(ConfigError, match="model.quantization 4bit needs the bitsandbytes package"):
        preflight(cfg)


def test_flash_attention_is_planned_only_where_it_can_run():
    import torch

    cfg = RunConfig()
    cfg.set("model.attention", "flash_attention_2")
    if _flash_usable():
        assert preflight(cfg).attention == "flash_attention_2"
        return
    why = ("flash-attn is not installed" if importlib.util.find_spec("flash_attn") is None
           else "no CUDA GPU" if not torch.cuda.is_available() else "GPU compute capability < 8")
    with pytest.raises(ConfigError, match="model.attention flash_attention_2 is not available here: "
                                          f"flash_attention_2 unavailable: {why}"):
        preflight(cfg)


@pytest.mark.parametrize("method,quant,message", [
    ("qlora", "8bit", "qlora trains on a 4-bit base"),
    ("full", "4bit", "full cannot train quantized weights"),
])
def test_incoherent_method_and_quantization(method, quant, message):
    cfg = RunConfig()
    cfg.set("adapter.method", method)
    cfg.set("model.quantization", quant)
    with pytest.raises(ConfigError, match=message):
        cfg.validate()


@pytest.mark.parametrize("key,value,message", [
    ("train.nope", 1, "unknown setting 'train.nope'"),
    ("bogus.lr", 1, "unknown setting 'bogus.lr'"),
    ("train.max_steps", "ten", "train.max_steps must be a number, got 'ten'"),
    ("train.max_steps", "2.5", "train.max_steps must be a whole number"),
    ("train.gradient_checkpointing", "maybe", "must be true or false"),
])
def test_bad_values_are_refused_when_set(key, value, message):
    with pytest.raises(ConfigError, match=message):
        RunConfig().set(key, value)


def test_bad_yaml_is_a_config_error():
    with pytest.raises(ConfigError, match="not valid YAML"):
        RunConfig.from_yaml("train: [unclosed")
    with pytest.raises(ConfigError, match="must be a mapping of settings"):
        RunConfig.from_yaml("- a\n- b")
    with pytest.raises(ConfigError, match="'train' must be a mapping"):
        RunConfig.from_yaml("train: 3")


def test_every_field_has_help_text():
    for name, f in iter_fields():
        assert f.metadata.get("help"), name
