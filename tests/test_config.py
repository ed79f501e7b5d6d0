import pytest

from workbench import config as config_mod
from workbench.core.errors import ConfigError
from workbench.config.run import RunConfig


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


def test_defaults_validate_and_say_which_attention_is_used():
    notes = RunConfig().validate()
    assert any(n.startswith("attention: sdpa") and "flash-attn is not installed" in n for n in notes)


@pytest.mark.parametrize("key,value,message", [
    ("train.learning_rate", 0, "train.learning_rate must be > 0.0 and <= 1.0; got 0.0"),
    ("train.learning_rate", -1e-4, "train.learning_rate must be > 0.0"),
    ("adapter.r", 0, "adapter.r must be >= 1 and <= 1024; got 0"),
    ("adapter.dropout", 0.95, "adapter.dropout must be >= 0.0 and <= 0.9; got 0.95"),
    ("train.batch_size", 0, "train.batch_size must be >= 1"),
    ("data.template", "nope", "data.template 'nope' is unknown; available: alpaca"),
    ("model.quantization", "3bit", "model.quantization must be one of none, 8bit, 4bit; got '3bit'"),
    ("train.scheduler", "wavy", "train.scheduler must be one of constant"),
    ("data.source", "missing/file.jsonl", "data.source: file not found: missing/file.jsonl"),
    ("model.name", "./no/such/model", "model.name: model folder not found: ./no/such/model"),
])
def test_validation_names_the_field_and_the_allowed_range(key, value, message):
    cfg = RunConfig()
    cfg.set(key, value)
    with pytest.raises(ConfigError) as e:
        cfg.validate()
    assert message in str(e.value)


def test_four_bit_without_bitsandbytes_is_refused(monkeypatch):
    real = config_mod.has_package
    monkeypatch.setattr(config_mod, "has_package", lambda n: False if n == "bitsandbytes" else real(n))
    cfg = RunConfig()
    cfg.set("adapter.method", "qlora")
    with pytest.raises(ConfigError, match="model.quantization 4bit needs the bitsandbytes package"):
        cfg.validate()


def test_flash_attention_without_flash_attn_says_why():
    cfg = RunConfig()
    cfg.set("model.attention", "flash_attention_2")
    with pytest.raises(ConfigError, match="model.attention flash_attention_2 is not available here: "
                                          "flash_attention_2 unavailable: flash-attn is not installed"):
        cfg.validate()


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
    with pytest.raises(ConfigError, match="must be a YAML mapping"):
        RunConfig.from_yaml("- a\n- b")
    with pytest.raises(ConfigError, match="'train' must be a mapping"):
        RunConfig.from_yaml("train: 3")


def test_every_field_has_help_text():
    for name, f in config_mod.iter_fields():
        assert f.metadata.get("help"), name
