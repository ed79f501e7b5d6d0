"""Merge & export: a real LoRA merge into the real base, checked against base + adapter; refusals."""
import json
import zipfile

import pytest
import torch
from safetensors.torch import load_file

from workbench.core.errors import ExportError
from workbench.core.formatting import human_size
from workbench.export.merge import adapter_archive, estimate_size, export_adapter, merge_adapter, merge_plan
from workbench.runs.folder import RunDir

pytestmark = pytest.mark.slow


def test_size_estimate_before_writing(lora_run, model_dir):
    weights = load_file(model_dir / "model.safetensors")
    params = sum(t.numel() for t in weights.values())
    assert estimate_size("default") == params * 4  # fp32 on CPU
    assert estimate_size("default", "bfloat16") == params * 2
    plan = merge_plan(lora_run.run_dir)
    assert plan["base"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and plan["bytes"] == params * 4
    assert plan["size"].endswith("MB") and human_size(1536) == "1.5 KB"


def test_merged_model_loads_without_peft_and_matches_base_plus_adapter(lora_run, tmp_path, model_dir):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    run = RunDir(lora_run.run_dir)
    out = tmp_path / "merged"
    result = merge_adapter(run.path, out)
    assert result.path == out and not list(tmp_path.glob(".merged.tmp-*"))
    for name in ("config.json", "model.safetensors", "tokenizer.json", "workbench_merge.json"):
        assert (out / name).is_file(), name
    assert not (out / "adapter_config.json").exists()
    assert abs(result.bytes_written - estimate_size("default")) / estimate_size("default") < 0.05

    merged = AutoModelForCausalLM.from_pretrained(str(out)).eval()
    base = AutoModelForCausalLM.from_pretrained(str(model_dir))
    peft = PeftModel.from_pretrained(base, str(run.adapter)).eval()
    tok = AutoTokenizer.from_pretrained(str(out))
    ids = tok("### Instruction:\nUse the Input below to create an instruction.\n\n### Input:\nParis is the "
              "capital of France.\n\n### Response:\n", return_tensors="pt")
    with torch.inference_mode():
        a, b = merged(**ids).logits, peft(**ids).logits
        assert torch.allclose(a, b, atol=1e-4)
        g1 = merged.generate(**ids, max_new_tokens=12, do_sample=False)
        g2 = peft.generate(**ids, max_new_tokens=12, do_sample=False)
    assert tok.decode(g1[0]) == tok.decode(g2[0])
    # The LoRA update is really folded in: merged weights differ from the base's.
    name = "model.layers.0.self_attn.q_proj.weight"
    plain = load_file(model_dir / "model.safetensors")[name]
    assert not torch.equal(dict(merged.named_parameters())[name], plain)

    # A second merge into the same (now non-empty) folder is refused and leaves it as it was.
    before = sorted(p.name for p in out.iterdir())
    with pytest.raises(ExportError, match="not empty"):
        merge_adapter(run.path, out)
    assert sorted(p.name for p in out.iterdir()) == before


def test_adapter_export_and_archive(lora_run, tmp_path):
    run = RunDir(lora_run.run_dir)
    out = export_adapter(run.path, tmp_path / "adapter-copy")
    assert json.loads((out / "adapter_config.json").read_text())["peft_type"] == "LORA"
    assert (out / "adapter_model.safetensors").read_bytes() == (run.adapter / "adapter_model.safetensors").read_bytes()
    with pytest.raises(ExportError, match="not empty"):
        export_adapter(run.path, out)
    zipped = adapter_archive(run.path, tmp_path / "zips")
    assert zipped.name == f"{run.id}-adapter.zip"
    assert {"adapter_config.json", "adapter_model.safetensors"} <= set(zipfile.ZipFile(zipped).namelist())
    with pytest.raises(ExportError, match="choose a run"):
        merge_plan("")
    with pytest.raises(ExportError, match="not found"):
        merge_adapter(tmp_path / "nope", tmp_path / "x")
