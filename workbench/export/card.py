"""The model card (README.md) of each exported folder, in the Hugging Face form: YAML front matter (base_model,
library_name, license, datasets, tags), then the training settings, the data, the prompt template with an
example, the evaluation summary (RUN_DIR/eval/*.json) with three example rows, how to load it, and its limits.
write_descriptions() writes the cards of an export and the Ollama Modelfile next to the GGUF files (the one the
Modelfile loads: q8_0 when exported, else the first type asked for)."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

from workbench.evaluation.results import baseline_label
from workbench.export.gguf import create_command, modelfile
from workbench.models.resolve import DEFAULT_MODEL_ID

# Licences of bases whose folder does not say (the embedded default's model card says Apache 2.0).
KNOWN_LICENSES = {DEFAULT_MODEL_ID: "apache-2.0"}
LIBRARY = {"adapter": "peft", "merged": "transformers", "gguf": "gguf"}


def base_license(base: str, base_dir: Path | None) -> str:
    if base in KNOWN_LICENSES:
        return KNOWN_LICENSES[base]
    readme = Path(base_dir) / "README.md" if base_dir else None
    if readme and readme.is_file():
        text = readme.read_text(encoding="utf-8", errors="replace")
        if text.startswith("---"):
            try:
                meta = yaml.safe_load(text.split("---", 2)[1]) or {}
                if meta.get("license"):
                    return str(meta["license"])
            except yaml.YAMLError:
                pass
    return "other"


def _evaluations(run_path: Path) -> list[tuple[dict, list[dict]]]:
    out = []
    for summary in sorted((run_path / "eval").glob("*.json")):
        try:
            s = json.loads(summary.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        rows_file = summary.with_suffix(".jsonl")
        rows = [json.loads(x) for x in rows_file.read_text(encoding="utf-8").splitlines()[:3] if x.strip()] \
            if rows_file.is_file() else []
        out.append((s, rows))
    return out


def _eval_section(run_path: Path) -> str:
    evals = _evaluations(run_path)
    if not evals:
        return "No evaluation was saved with this run (run `python -m workbench eval --run RUN` to add one).\n"
    lines = ["| evaluation | rows | compared with | ROUGE-L (tuned / other) | BLEU (tuned / other) | judge score |",
             "|---|---|---|---|---|---|"]
    for s, _ in evals:
        judge = (s.get("judge") or {}).get("mean_score")
        lines.append(f"| {s.get('source', '')} | {s.get('n', '')} | {baseline_label(s)} "
                     f"| {s.get('adapter_rouge_l')} / {s.get('base_rouge_l')} | {s.get('adapter_bleu')} / "
                     f"{s.get('base_bleu')} | {judge if judge is not None else '-'} |")
    rows = evals[-1][1]
    if rows:
        lines += ["", "Example rows (latest evaluation):", ""]
        for r in rows:
            lines += [f"- **input:** {str(r.get('input', ''))[:200]!r}",
                      f"  **generated:** {str(r.get('generated', ''))[:200]!r}",
                      f"  **expected:** {str(r.get('ground_truth', ''))[:200]!r}"]
    return "\n".join(lines) + "\n"


def _usage(kind: str, name: str, base: str, gguf_files: list[str]) -> str:
    if kind == "adapter":
        return ("```python\nfrom peft import AutoPeftModelForCausalLM\nfrom transformers import AutoTokenizer\n"
                f"model = AutoPeftModelForCausalLM.from_pretrained(\"./adapter\")  # base: {base}\n"
                "tok = AutoTokenizer.from_pretrained(\"./adapter\")\n```\n")
    if kind == "merged":
        return ("```python\nfrom transformers import AutoModelForCausalLM, AutoTokenizer\n"
                "model = AutoModelForCausalLM.from_pretrained(\"./merged\")\n"
                "tok = AutoTokenizer.from_pretrained(\"./merged\")\n```\n")
    first = gguf_files[0] if gguf_files else f"{name}-q8_0.gguf"
    return (f"```bash\nllama-cli -m {first} -p \"...\" -n 128\nollama create {name.lower()} -f Modelfile && "
            f"ollama run {name.lower()}\n```\n```python\nfrom transformers import AutoModelForCausalLM\n"
            f"model = AutoModelForCausalLM.from_pretrained(\".\", gguf_file=\"{first}\")  # dequantized\n```\n")


def model_card(kind: str, *, name: str, run_id: str, base: str, license: str, cfg, data_rows: int | None,
               template, example_prompt: str, run_path: Path, gguf_files: list[str] | None = None,
               check: dict | None = None) -> str:
    """README.md text for one exported folder (kind: adapter, merged or gguf)."""
    source = cfg.data.source
    meta = {"base_model": base, "library_name": LIBRARY[kind], "license": license,
            "datasets": [source if "/" in source and not Path(source).exists() else Path(source).stem],
            "tags": ["fine-tuning-workbench", cfg.adapter.method if cfg.adapter.method else "sft", cfg.train.method,
                     template.name] + (["gguf"] if kind == "gguf" else []),
            "pipeline_tag": "text-generation"}
    settings = {"method": cfg.adapter.method, "r": cfg.adapter.r, "alpha": cfg.adapter.alpha,
                "target_modules": cfg.adapter.target_modules, "learning_rate": cfg.train.learning_rate,
                "epochs": cfg.train.epochs, "max_steps": cfg.train.max_steps, "batch_size": cfg.train.batch_size,
                "grad_accum": cfg.train.grad_accum, "max_length": cfg.data.max_length,
                "quantization": cfg.model.quantization, "seed": cfg.train.seed}
    check_line = ""
    if check:
        check_line = (f"\n**Export check:** {'passed' if check['passed'] else 'FAILED'}: {check['prompts']} held-out "
                      f"prompts, {check['tokens']} greedy tokens each, "
                      + ", ".join(f"{k} agreement {v['pooled']:.0%}" for k, v in check["results"].items())
                      + ".\n")
    files = "".join(f"- `{f}`\n" for f in gguf_files or [])
    return ("---\n" + yaml.safe_dump(meta, sort_keys=False) + "---\n\n"
            f"# {name}\n\nFine-tuned from `{base}` with the fine-tuning workbench (run `{run_id}`); this folder is "
            f"the {'LoRA adapter' if kind == 'adapter' else 'merged model' if kind == 'merged' else 'GGUF export'}."
            f"\n{check_line}\n"
            + (f"## Files\n\n{files}\n" if files else "")
            + "## Training\n\n```yaml\n" + yaml.safe_dump(settings, sort_keys=False) + "```\n\n"
            f"## Data\n\n`{source}` ({data_rows if data_rows is not None else 'unknown'} training rows; "
            f"format {cfg.data.format}).\n\n"
            f"## Prompt template\n\n`{template.name}`: {template.description}\n\nExample prompt (the model writes the "
            f"rest):\n\n```text\n{example_prompt}\n```\n\n"
            f"## Evaluation\n\n{_eval_section(run_path)}\n"
            f"## How to use\n\n{_usage(kind, name, base, gguf_files or [])}\n"
            "## Limits\n\nA small model fine-tuned briefly (often on a CPU): it follows its training template and "
            "task, not general instructions, and can be wrong with confidence. The training data's licence applies "
            f"to its outputs as well as the base model's licence ({license}); check both before use.\n")


def front_matter(text: str) -> dict:
    """The YAML front matter of a model card (for tests and the UI)."""
    if not text.startswith("---\n"):
        return {}
    return yaml.safe_load(text.split("---\n", 2)[1]) or {}


# -- the text files of an export: a card in each folder, the Modelfile ----------------------------------------
def _train_rows(run_path: Path) -> int | None:
    try:
        counts = json.loads((run_path / "split.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    value = counts.get("train", counts.get("train_rows"))
    return int(value) if isinstance(value, (int, float)) else None


def _example_prompt(run_path: Path, template, tokenizer) -> str:
    from workbench.prompts.rendering import prompt_text

    for split in ("test", "val"):
        path = run_path / "split" / f"{split}.jsonl"
        if path.is_file():
            line = next((x for x in path.read_text(encoding="utf-8").splitlines() if x.strip()), "")
            if line:
                return prompt_text(template, json.loads(line), tokenizer)
    return prompt_text(template, {"instruction": "…", "input": "", "output": "…"}, tokenizer)


def modelfile_target(quants: list[str]) -> str | None:
    return "q8_0" if "q8_0" in quants else (quants[0] if quants else None)


def write_descriptions(plan, run_cfg, tmp: Path, ggufs: dict[str, Path], check: dict | None) -> dict | None:
    """Write the cards (and the Modelfile); returns {"modelfile", "command", "gguf"} or None without GGUF."""
    from transformers import AutoTokenizer

    from workbench.prompts.registry import load

    template = load(run_cfg.data.template)
    tok = AutoTokenizer.from_pretrained(str(tmp / "merged"))
    base_dir = None if plan.adapter is None else plan.model_dir
    license = base_license(plan.base, base_dir)
    common = {"name": plan.name, "run_id": plan.run.id, "base": plan.base, "license": license, "cfg": run_cfg,
              "data_rows": _train_rows(plan.run.path), "template": template,
              "example_prompt": _example_prompt(plan.run.path, template, tok), "run_path": plan.run.path,
              "check": check}
    for kind in ("adapter", "merged", "gguf"):
        folder = tmp / kind
        if folder.is_dir():
            files = sorted(p.name for p in ggufs.values()) if kind == "gguf" else None
            (folder / "README.md").write_text(model_card(kind, gguf_files=files, **common), encoding="utf-8")
    target = modelfile_target(list(ggufs))
    if target is None:
        return None
    gen = run_cfg.gen.to_dict() if hasattr(run_cfg.gen, "to_dict") else vars(run_cfg.gen)
    text = modelfile(ggufs[target].name, template, gen, bos=tok.bos_token or "", eos=tok.eos_token or "")
    (tmp / "gguf" / "Modelfile").write_text(text, encoding="utf-8")
    final = plan.out / "gguf" / "Modelfile"
    return {"modelfile": str(final), "gguf": ggufs[target].name, "command": create_command(plan.name, final)}
