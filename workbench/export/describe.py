"""The text files of an export: a model card (README.md) in each exported folder and the Ollama Modelfile next to
the GGUF files (the one the Modelfile loads: q8_0 when exported, else the first type asked for)."""
from __future__ import annotations

import json
from pathlib import Path

from workbench.export.card import base_license, model_card
from workbench.export.modelfile import create_command, modelfile


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
