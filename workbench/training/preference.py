"""Preference tuning: DPO, ORPO and KTO through TRL, on the same model, adapter, arguments and callbacks as SFT
(training/setup.py), called from engine.train when train.method is not sft.

The reference of DPO and KTO: with a fresh LoRA adapter TRL computes it with the adapter disabled (the base
weights, no second model in memory); when model.adapter_from continues an SFT adapter, TRL keeps a frozen copy
of that adapter (a few MB) named 'ref' and scores the reference with it, which is the SFT policy, as the DPO
paper's recipe asks. ORPO has no reference at all. TRL 1.16 ships DPOTrainer and KTOTrainer in the stable API
and ORPOTrainer under trl.experimental.
"""
from __future__ import annotations

import json
import logging
import os

from workbench.config.preflight import Plan
from workbench.config.run import RunConfig
from workbench.core.errors import DataError
from workbench.data.preference import load_pairs
from workbench.data.load import split as split_rows
from workbench.prompts import registry
from workbench.training.pref_sequences import sequences, truncate

log = logging.getLogger(__name__)

def build_datasets(cfg: RunConfig, tok, plan: Plan) -> dict:
    """Canonical pairs → split → the prompt / answer strings TRL takes, rendered with the run's template."""
    from datasets import Dataset

    d, p = cfg.data, cfg.pref
    pairs = load_pairs(plan.data_source, cfg.train.method, d.column_map, d.hub_config, d.hub_split, p.min_difference)
    rows = pairs.rows[: d.max_rows] if d.max_rows else pairs.rows
    # history is a list of turns, often empty: JSON text keeps Arrow from guessing a column type from nulls.
    table = Dataset.from_list([{**r, "history": json.dumps(r["history"], ensure_ascii=False)} for r in rows])
    parts = split_rows(table, d.val_size, d.test_size, d.seed)
    template = registry.load(d.template)

    def render(row):
        row = {**row, "history": json.loads(row["history"])}
        return truncate(sequences(template, row, tok), tok, p.max_prompt_length, p.max_completion_length, d.max_length)

    out = dict(parts, format=pairs.format, message=pairs.message())
    for name in ("validation", "test"):  # the Evaluate tab's side by side reads split/test.jsonl as SFT rows
        out[f"{name}_pairs"] = parts[name]
        out[name] = [sft_row(template, {**r, "history": json.loads(r["history"])}) for r in parts[name]]
    for name in ("train", "validation"):
        out[f"{name}_tokens"] = parts[name].map(render, remove_columns=parts[name].column_names,
                                                load_from_cache_file=False)
    if len(out["train_tokens"]) == 0:
        raise DataError("no preference row left to train on after the split", "use more rows or a smaller val_size")
    log.info("preference data: %s", pairs.message())
    return out


def sft_row(template, row: dict) -> dict:
    """A held-out pair as a canonical SFT row whose ground truth is the chosen answer (KTO: the completion)."""
    from workbench.generation.chat_prompts import prompt_fields, response_field

    answer = row.get("chosen", row.get("completion", ""))
    if template.kind == "instruction":
        fields = {"instruction": "", "input": "", "output": "", "category": ""}
        return {**fields, prompt_fields(template)[0]: row["prompt"], response_field(template): answer}
    turns = [*row.get("history", []), {"role": "user", "content": row["prompt"]}]
    return {"messages": [*turns, {"role": "assistant", "content": answer}], "category": ""}


def build_trainer(cfg: RunConfig, plan: Plan, model, tok, peft_config, splits: dict, common: dict, callbacks: list):
    """The TRL trainer of train.method with the shared arguments and this method's own settings."""
    p, method = cfg.pref, cfg.train.method
    has_eval = len(splits["validation"]) > 0
    kw = {"args": None, "train_dataset": splits["train_tokens"],
          "eval_dataset": splits["validation_tokens"] if has_eval else None,
          "processing_class": tok, "peft_config": peft_config, "callbacks": callbacks}
    # TRL's configs turn dropout off by default; the run's adapter.dropout is the user's choice either way.
    common = dict(common, max_length=cfg.data.max_length, disable_dropout=cfg.adapter.dropout == 0)
    if method == "orpo":
        # trl.experimental warns on import; the run log says it once instead.
        os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
        from trl.experimental.orpo import ORPOConfig, ORPOTrainer

        log.info("ORPO comes from trl.experimental in this TRL version")
        kw["args"] = ORPOConfig(**common, beta=p.beta, max_completion_length=p.max_completion_length or None)
        return ORPOTrainer(model=model, **kw)
    ref = _ref_model(cfg, plan)
    if method == "dpo":
        from trl import DPOConfig, DPOTrainer

        kw["args"] = DPOConfig(**common, beta=p.beta, loss_type=[p.dpo_loss], precompute_ref_log_probs=p.precompute_ref)
        return DPOTrainer(model=model, ref_model=ref, **kw)
    from trl import KTOConfig, KTOTrainer

    kw["args"] = KTOConfig(**common, beta=p.beta, loss_type=p.kto_loss, desirable_weight=p.desirable_weight,
                           undesirable_weight=p.undesirable_weight, precompute_ref_log_probs=p.precompute_ref)
    return KTOTrainer(model=model, ref_model=ref, **kw)


def _ref_model(cfg: RunConfig, plan: Plan):
    """A separate reference model only when pref.ref_model names one (full fine-tuning); else None (see above)."""
    name = cfg.pref.ref_model.strip()
    if not name:
        return None
    from workbench.models.load import load_model
    from workbench.models.resolve import resolve_model

    ref = load_model(resolve_model(name), **plan.load_kwargs(cfg)).model
    ref.eval()
    return ref
