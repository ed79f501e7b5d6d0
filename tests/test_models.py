import json
import time

import pytest

from workbench.core.errors import ModelError
from workbench.models import resolve
from workbench.models.load import pick_dtype
from workbench.models.load import load_model
from workbench.models.resolve import resolve_model


def test_default_model_is_a_plain_hf_folder(model_dir):
    cfg = json.loads((model_dir / "config.json").read_text())
    assert "quantization_config" not in cfg  # the GGUF flag the Trainer refuses is gone
    assert (model_dir / "model.safetensors").is_file()
    assert (model_dir / "tokenizer.json").is_file()
    assert not list(model_dir.parent.glob(model_dir.name + ".tmp-*"))  # no half conversion left behind


def test_converted_model_loads_fast_and_generates(model_dir):
    t = time.monotonic()
    loaded = load_model("default")
    assert time.monotonic() - t < 20  # vs ~25 s from GGUF: proves the cached folder is used
    assert loaded.attention == "sdpa" and loaded.dtype == "float32"
    tok = loaded.tokenizer
    ids = tok.apply_chat_template([{"role": "user", "content": "What is 2+2?"}], add_generation_prompt=True,
                                  return_tensors="pt", return_dict=True)
    out = loaded.model.generate(**ids, max_new_tokens=8, do_sample=False)
    assert tok.decode(out[0, ids["input_ids"].shape[1]:], skip_special_tokens=True).strip()


def test_local_folder_and_hub_id_resolution(model_dir, tmp_path):
    assert resolve_model(str(model_dir)) == str(model_dir)
    assert resolve_model("HuggingFaceTB/SmolLM2-135M-Instruct") == str(model_dir)
    assert resolve_model("some-org/some-model") == "some-org/some-model"
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="has no config.json"):
        resolve_model(str(tmp_path / "empty"))


def test_offline_hub_miss_gives_a_clear_message(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelError, match="not in the local Hugging Face cache and HF_HUB_OFFLINE is set"):
        load_model("no-such-org/no-such-model-xyz")


def test_failed_conversion_leaves_nothing_behind(tmp_path, monkeypatch):
    """A conversion that dies midway leaves no folder a later call would mistake for a finished model."""
    import transformers

    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))

    def fail(*a, **k):
        raise RuntimeError("disk full")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", fail)
    with pytest.raises(RuntimeError, match="disk full"):
        resolve.default_model_dir()
    assert [p.name for p in tmp_path.iterdir()] == ["smollm2-135m-instruct.lock"]


def test_a_second_process_waits_for_the_conversion_lock(tmp_path, monkeypatch):
    import threading

    from filelock import FileLock

    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    calls = []

    def fake_convert(gguf, target):
        calls.append(target)
        target.mkdir()
        (target / "config.json").write_text("{}")

    monkeypatch.setattr(resolve, "_convert_gguf", fake_convert)
    lock = FileLock(str(tmp_path / "smollm2-135m-instruct") + ".lock")
    lock.acquire()
    result = []
    waiter = threading.Thread(target=lambda: result.append(resolve.default_model_dir()))
    waiter.start()
    time.sleep(0.5)
    assert not result  # blocked while another holder converts
    (tmp_path / "smollm2-135m-instruct").mkdir()
    (tmp_path / "smollm2-135m-instruct" / "config.json").write_text("{}")
    lock.release()
    waiter.join(10)
    assert result and not calls  # it saw the other holder's finished folder and did not convert again


def test_the_dtype_table():
    assert pick_dtype("auto", "cpu") == "float32"  # no native bf16 on most CPUs: 13x slower measured here
    assert pick_dtype("bfloat16", "cpu") == "bfloat16"  # an explicit choice is kept
    assert pick_dtype("auto", "cuda") in ("bfloat16", "float16")
