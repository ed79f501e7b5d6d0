"""Preference tuning: DPO, ORPO and KTO through TRL, on the same model, adapter, arguments and callbacks as SFT
(training/setup.py), called from engine.train when train.method is not sft.

The reference of DPO and KTO: with a fresh LoRA adapter TRL computes it with the adapter disabled (the base
weights, no second model in memory); when model.adapter_from continues an SFT adapter, TRL keeps a frozen copy
of that adapter (a few MB) named 'ref' and scores the reference with it, which is the SFT policy, as the DPO
paper's recipe asks. ORPO has no reference at all. TRL 1.16 ships DPOTrainer and KTOTrainer in the stable API
and ORPOTrainer under trl.experimental.

A pair is rendered with the run's template (reverse_instruction, alpaca, chatml, the model's own), the same
rendering SFT and chat use (generation/chat_model.py): TRL's preference trainers take plain prompt / completion
strings and score only the completion tokens, so the template stays in charge of what the model sees.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os

from workbench.config.preflight import Plan
from workbench.config.run import RunConfig
from workbench.core.errors import DataError
from workbench.data.preference import load_pairs
from workbench.data.load import split as split_rows
from workbench.generation.chat_model import chat_prompt, prompt_fields, response_field
from workbench.prompts import registry, rendering
from workbench.prompts.registry import Template

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
    answer = row.get("chosen", row.get("completion", ""))
    if template.kind == "instruction":
        fields = {"instruction": "", "input": "", "output": "", "category": ""}
        return {**fields, prompt_fields(template)[0]: row["prompt"], response_field(template): answer}
    turns = [*row.get("history", []), {"role": "user", "content": row["prompt"]}]
    return {"messages": [*turns, {"role": "assistant", "content": answer}], "category": ""}


def _full_text(template: Template, row: dict, answer: str, tokenizer) -> tuple[str, str]:
    """(prompt, completion): the whole exchange rendered, split where the prompt ends."""
    prompt = chat_prompt(template, row.get("history") or [], row["prompt"], tokenizer)
    if template.kind == "instruction":
        # chat_prompt renders past exchanges, then the last prompt (its preface only when it is the first):
        # the same last exchange rendered with the answer replaces that tail.
        ask, say = prompt_fields(template)[0], response_field(template)
        t = template
        if prompt != rendering.prompt_text(template, {ask: row["prompt"], say: None}, tokenizer):
            t = dataclasses.replace(template, preface="")
        tail = rendering.prompt_text(t, {ask: row["prompt"], say: None}, tokenizer)
        last = "".join(text for text, _ in rendering.render(t, {ask: row["prompt"], say: answer}, tokenizer))
        full = prompt[: len(prompt) - len(tail)] + last
    else:
        history = [m for m in row.get("history") or [] if m.get("role") in ("user", "assistant", "system")]
        msgs = [*history, {"role": "user", "content": row["prompt"]}, {"role": "assistant", "content": answer}]
        full = "".join(t for t, _ in rendering.render(template, {"messages": msgs}, tokenizer))
    if full.startswith(prompt):
        return prompt, full[len(prompt):]
    return prompt, answer  # a template that renders the prompt differently alone: the answer as written


def sequences(template: Template, row: dict, tokenizer) -> dict:
    """{prompt, chosen, rejected} (pairs) or {prompt, completion, label} (KTO) as the trainer gets them."""
    out = {}
    for key in ("chosen", "rejected", "completion"):
        if key in row:
            out["prompt"], out[key] = _full_text(template, row, row[key], tokenizer)
    if "label" in row:
        out["label"] = bool(row["label"])
    return out


def truncate(seq: dict, tokenizer, max_prompt: int = 0, max_completion: int = 0, max_length: int = 0) -> dict:
    """Cut the prompt's start and the answers' end to these token counts (0 = no own limit).

    Within max_length the answers keep room: a prompt that would leave them none is cut to what is left after
    the longest answer (at least half of max_length), the old TRL max_prompt_length rule. Without it a long
    prompt fills the sequence, the answers are truncated away and the preference losses turn NaN.
    """
    def ids(text: str) -> list[int]:
        return tokenizer(text, add_special_tokens=False)["input_ids"]

    def cut(text: str, n: int, keep_end: bool) -> str:
        tokens = ids(text)
        if not n or len(tokens) <= n:
            return text
        return tokenizer.decode(tokens[-n:] if keep_end else tokens[:n])

    answers = [k for k in ("chosen", "rejected", "completion") if k in seq]
    out = {**seq, **{k: cut(seq[k], max_completion, keep_end=False) for k in answers}}
    prompt_cap = max_prompt
    if max_length:
        longest = max(len(ids(out[k])) for k in answers)
        room = max(max_length - longest, max_length // 2)
        prompt_cap = min(prompt_cap or room, room)
    out["prompt"] = cut(seq["prompt"], prompt_cap, keep_end=True)
    return out


def preview_segments(template: Template, row: dict, tokenizer) -> dict:
    """For the template preview: {answer key: [(text, trained)]} with the prompt masked and the answer trained."""
    seq = sequences(template, row, tokenizer)
    return {key: [(seq["prompt"], False), (seq[key], True)] for key in ("chosen", "rejected", "completion")
            if key in seq}


def preview_html(template: Template, row: dict, tokenizer, max_length: int = 512) -> dict:
    """{answer key: (counts markdown, tokens html)}: each rendered sequence with the trained tokens coloured,
    through the Data tab's own token view (data/preview.py)."""
    from workbench.data.preview import Preview, tokens_html
    from workbench.prompts.rendering import tokenize

    out = {}
    for key, segs in preview_segments(template, row, tokenizer).items():
        enc = tokenize(segs, tokenizer, None)
        p = Preview(segs[0][0], segs[1][0], enc["input_ids"], enc["labels"], int(max_length))
        out[key] = (f"**{key}**: " + p.counts_markdown(), tokens_html(p, tokenizer))
    return out


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
