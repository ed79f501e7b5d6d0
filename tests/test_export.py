"""Export (issue #17) on the embedded model: the session's real LoRA run exported once (adapter, merged, GGUF
f16 + q8_0 by llama.cpp's converter, Modelfile, cards) and checked for real; then every refusal, each leaving
nothing written."""
import json
import os
import shutil
import subprocess
import sys

import pytest

from workbench.config.tasks import ExportConfig
from workbench.core.errors import ExportError
from workbench.export.bundle import export_run
from workbench.export.card import front_matter
from workbench.export.gguf import parse_modelfile

pytestmark = pytest.mark.slow
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="module")
def exported(lora_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("export") / "bundle"
    steps = []
    manifest = export_run(ExportConfig(run=str(lora_run.run_dir), out=str(out), name="tiny-reverse"),
                          progress=lambda d, n, w: steps.append((d, n, w)))
    return out, manifest, steps


def test_export_files_and_check_pass(exported):
    out, manifest, steps = exported
    assert manifest["state"] == "completed" and manifest["check"]["passed"], manifest["check"]
    check = json.loads((out / "check.json").read_text())
    assert check["passed"] and check["tokenizer"]["same_ids"]
    assert check["results"]["merged"]["agreement"] == [1.0] * check["prompts"]
    assert check["results"]["f16"]["agreement"] == [1.0] * check["prompts"]
    assert check["results"]["q8_0"]["pooled"] >= 0.9  # one near-tie in a short reply is quantization noise
    sizes = {f["path"]: f["bytes"] for f in manifest["files"]}
    f16, q8 = sizes["gguf/tiny-reverse-f16.gguf"], sizes["gguf/tiny-reverse-q8_0.gguf"]
    assert 0.5 < q8 / f16 < 0.56  # q8_0: 34 bytes per 32 weights vs 64
    for name in ("adapter/adapter_model.safetensors", "merged/model.safetensors", "merged/tokenizer.json",
                 "gguf/Modelfile", "check.json"):
        assert name in sizes, name
    assert (out / "export.json").is_file() and steps[-1][0] == steps[-1][1]
    assert not list(out.parent.glob(".bundle.tmp-*"))
    assert manifest["ollama"]["command"] == f"ollama create tiny-reverse -f {out}/gguf/Modelfile"


def test_modelfile_is_the_run_template(exported, lora_run, tokenizer):
    from workbench.prompts.registry import load
    from workbench.prompts.rendering import prompt_text

    out, _, _ = exported
    pairs = parse_modelfile((out / "gguf" / "Modelfile").read_text())
    words = dict(pairs)
    assert words["FROM"] == "./tiny-reverse-q8_0.gguf" and (out / "gguf" / words["FROM"]).is_file()
    stops = [json.loads(a.split(" ", 1)[1]) for w, a in pairs if w == "PARAMETER" and a.startswith("stop ")]
    assert stops == load("reverse_instruction").stop
    assert "PARAMETER temperature 0" in (out / "gguf" / "Modelfile").read_text()  # the run decodes greedily
    # The Go template with the user's text as .Prompt and an empty .Response is the prompt the run was trained on.
    row = {"instruction": "", "input": "", "output": "Paris is the capital of France."}
    filled = words["TEMPLATE"].replace("{{ .Prompt }}", row["output"]).replace("{{ .Response }}", "")
    assert filled == prompt_text(load("reverse_instruction"), row, tokenizer)


def test_model_cards(exported):
    out, _, _ = exported
    for kind, library in (("adapter", "peft"), ("merged", "transformers"), ("gguf", "gguf")):
        text = (out / kind / "README.md").read_text()
        meta = front_matter(text)
        assert meta["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct" and meta["library_name"] == library
        assert meta["license"] == "apache-2.0" and meta["datasets"] == ["dolly_sample"]
        assert "reverse_instruction" in meta["tags"]
        assert "### Response:" in text and "## Limits" in text and "Export check:** passed" in text


def _copy_run(lora_run, dest, state=None, drop_adapter=False, base=None):
    shutil.copytree(lora_run.run_dir, dest, ignore=shutil.ignore_patterns("checkpoints"))
    if state:
        status = json.loads((dest / "status.json").read_text())
        (dest / "status.json").write_text(json.dumps({**status, "state": state}))
    if drop_adapter:
        shutil.rmtree(dest / "adapter")
    if base:
        text = (dest / "config.yaml").read_text().replace("name: default", f"name: {base}", 1)
        (dest / "config.yaml").write_text(text)
    return dest


def _refused(cfg, match, out):
    before = sorted(p.name for p in out.parent.iterdir()) if out.parent.is_dir() else []
    with pytest.raises(ExportError, match=match):
        export_run(cfg)
    after = sorted(p.name for p in out.parent.iterdir()) if out.parent.is_dir() else []
    assert after == before  # nothing half-written, no temporary folder left


def test_bad_inputs_are_refused_before_writing(lora_run, tmp_path):
    out = tmp_path / "out" / "x"
    out.parent.mkdir()
    run = str(lora_run.run_dir)
    _refused(ExportConfig(run=str(_copy_run(lora_run, tmp_path / "failed", state="failed")), out=str(out)),
             "failed, not completed", out)
    _refused(ExportConfig(run=str(_copy_run(lora_run, tmp_path / "running", state="stopped")), out=str(out)),
             "stopped, not completed", out)
    _refused(ExportConfig(run=str(_copy_run(lora_run, tmp_path / "noadapter", drop_adapter=True)), out=str(out)),
             "no saved adapter", out)
    _refused(ExportConfig(run=run, out=str(out), quant="f16,q3_xs"), "unknown GGUF quantization q3_xs", out)
    _refused(ExportConfig(run=run, out=str(out), quant="q4_k_m"), "llama-quantize", out)
    _refused(ExportConfig(run=run, out=str(out), min_free_gb=1e7), "only .* is free", out)
    # An architecture the converter does not know: a local base folder with that config.
    odd = tmp_path / "odd-base"
    odd.mkdir()
    (odd / "config.json").write_text(json.dumps({"architectures": ["NotARealForCausalLM"], "model_type": "llama"}))
    odd_run = _copy_run(lora_run, tmp_path / "oddrun", base=str(odd))
    (odd_run / "adapter" / "tokenizer_config.json").unlink()
    _refused(ExportConfig(run=str(odd_run), out=str(out)), "does not support the architecture NotARealForCausalLM", out)
    # An existing output folder is kept as it was without overwrite.
    out.mkdir()
    (out / "mine.txt").write_text("keep")
    _refused(ExportConfig(run=run, out=str(out)), "already exists", out)
    assert (out / "mine.txt").read_text() == "keep"
    # ... and with overwrite too: the workbench did not write it (no .workbench marker).
    _refused(ExportConfig(run=run, out=str(out), overwrite=True), "overwrite refused: .* not written by the workbench",
             out)
    assert (out / "mine.txt").read_text() == "keep"
    # A read-only target: root ignores permission bits, so a read-only place for root is /sys.
    ro = "/sys/wb-export-test" if os.geteuid() == 0 else str(tmp_path / "ro" / "x")
    if os.geteuid() != 0:
        (tmp_path / "ro").mkdir()
        os.chmod(tmp_path / "ro", 0o555)
    with pytest.raises(ExportError, match="cannot write to"):
        export_run(ExportConfig(run=run, out=ro))


def test_cli_exit_2_with_the_message(lora_run, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "workbench", "export", "--run", str(lora_run.run_dir), "--format",
                           "gguf", "--quant", "f16,q9", "--out", str(tmp_path / "o")], capture_output=True, text=True,
                          cwd=ROOT, timeout=120, check=False)
    assert proc.returncode == 2 and "unknown GGUF quantization q9" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_the_plan_made_at_submit_is_reused_while_the_world_matches(lora_run, tmp_path):
    from workbench.export.bundle import ExportPlan, plan_export

    run = _copy_run(lora_run, tmp_path / "run")
    plan = plan_export(ExportConfig(run=str(run), out=str(tmp_path / "o"), format="merged"))
    again = ExportPlan.saved(json.loads(json.dumps(plan.to_dict())))  # as the worker reads plan.json
    assert again.to_dict() == plan.to_dict()
    status = json.loads((run / "status.json").read_text())
    (run / "status.json").write_text(json.dumps({**status, "state": "stopped"}))
    with pytest.raises(ExportError, match="changed since the export was queued"):
        ExportPlan.saved(plan.to_dict())
    (run / "status.json").write_text(json.dumps(status))
    with pytest.raises(ExportError, match="only .* is free"):
        ExportPlan.saved({**plan.to_dict(), "min_free": 10**18})
