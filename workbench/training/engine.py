"""train(cfg) → RunResult: TRL SFTTrainer + PEFT on a RunConfig and its preflight Plan, leaving a
self-describing run folder.

No gradio here: the CLI (which is also every training job's worker process) and the tests call this. Every
machine-dependent choice (model folder, dtype, attention, device, data file) comes from the Plan.
"""
from __future__ import annotations

import json
import logging
import os
import threading
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path

from workbench.config.preflight import Plan, preflight
from workbench.config.run import RunConfig
from workbench.core.errors import DataError, RunError, WorkbenchError
from workbench.core.files import atomic_dir, atomic_write_text
from workbench.core.logs import run_log
from workbench.data.load import load_canonical
from workbench.data.load import split as split_rows
from workbench.prompts import registry, rendering
from workbench.runs.folder import RunDir, new_run_path, resolve_run

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    run_dir: Path
    state: str
    global_step: int = 0
    max_steps: int = 0
    final_loss: float | None = None
    eval_loss: float | None = None
    error: str | None = None
    notes: list = field(default_factory=list)


def prepare_run(cfg: RunConfig, resume: str | Path | None = None, plan: Plan | None = None
                ) -> tuple[RunConfig, RunDir, Plan]:
    """Fix the run folder and the plan. On resume the saved config wins (same data, same final step)."""
    if resume:
        run = resolve_run(resume)
        if run.last_checkpoint() is None:
            raise RunError(f"{run.path} has no checkpoint to resume from")
        cfg = run.config()
        cfg.output_dir = str(run.path)
    else:
        run = RunDir(cfg.output_dir or _shared_run_dir(cfg))
        cfg.output_dir = str(run.path)
    if plan is None or plan.output_dir != cfg.output_dir:
        plan = preflight(cfg)
    if world_size() > 1:
        _init_distributed()  # before the model loads, so each process puts it on its own GPU
    return cfg, run, plan


def _shared_run_dir(cfg: RunConfig) -> Path:
    """A new outputs/<run-id>; under `accelerate launch` every process must agree on the same one."""
    path = new_run_path(cfg.run_name)
    if world_size() > 1:
        from accelerate.utils import broadcast_object_list

        _init_distributed()
        box = [str(path)]
        broadcast_object_list(box, from_process=0)
        path = Path(box[0])
    return path


def world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def _init_distributed() -> None:
    """Start the process group under `accelerate launch` / torchrun and pin this process to its GPU.

    cpu=True on a machine without CUDA, as the Trainer (use_cpu) asks for later: PartialState is a
    process-wide singleton and its first construction picks the backend (gloo for several CPU processes).
    """
    import torch
    from accelerate import PartialState

    PartialState(cpu=not torch.cuda.is_available())


def is_main_process() -> bool:
    return int(os.environ.get("RANK", "0")) == 0


def train(cfg: RunConfig, *, plan: Plan | None = None, resume: str | Path | None = None,
          stop: threading.Event | None = None, progress_bar: bool = True, extra_callbacks: list | None = None,
          sft_overrides: dict | None = None, speedups: bool = True) -> RunResult:
    """Run a whole training; never raises for training failures (they end as state 'failed').

    Raises a WorkbenchError only for a config or run folder that cannot start (before anything is written).
    sft_overrides and speedups=False exist for benchmarks/train_throughput.py, whose reference recipe is
    stock TRL with SFTConfig settings the RunConfig does not expose. The speedups patch TRL for the whole
    process, so speedups=False means stock TRL only in a process that has not trained with them.
    """
    cfg, run, plan = prepare_run(cfg, resume, plan)
    stop = stop or threading.Event()
    main = is_main_process()
    if main:
        run.path.mkdir(parents=True, exist_ok=True)
        if not resume:
            atomic_write_text(run.config_file, cfg.to_yaml())
        run.write_status("queued", plan=plan.to_dict())
    with run_log(run.log_file) if main else _nothing():
        log.info("run %s: %s", run.id, "resuming" if resume else "starting")
        for note in plan.notes:
            log.info("plan: %s", note)
        try:
            result = _train(cfg, plan, run, resume=resume, stop=stop, progress_bar=progress_bar,
                            extra_callbacks=extra_callbacks or [], main=main, sft_overrides=sft_overrides or {},
                            speedups=speedups)
        except Exception as e:  # OOM, NaN loss, bad data...: the run fails, the caller keeps going
            message = e.display() if isinstance(e, WorkbenchError) else f"{type(e).__name__}: {e}"
            if isinstance(e, WorkbenchError):
                log.error("run %s failed: %s", run.id, message)
            else:
                log.exception("run %s failed", run.id)
            if main:
                run.write_status("failed", error=message, traceback=traceback.format_exc()[-4000:])
            return RunResult(run.path, "failed", error=message)
        log.info("run %s %s at step %s/%s", run.id, result.state, result.global_step, result.max_steps)
        return result


class _nothing:
    def __enter__(self):
        return None

    def __exit__(self, *exc):
        return False


def _train(cfg: RunConfig, plan: Plan, run: RunDir, *, resume, stop, progress_bar, extra_callbacks, main,
           sft_overrides, speedups) -> RunResult:
    from transformers import PrinterCallback

    from workbench.models.load import load_model
    from workbench.training import setup

    t_start = time.time()
    loaded = load_model(plan.model_path, **plan.load_kwargs(cfg))
    model, tok = loaded.model, loaded.tokenizer
    model, peft_config = setup.adapter(cfg, plan, model)
    sft = cfg.train.method == "sft"
    if sft:
        splits = build_datasets(cfg, tok, plan)
    else:
        from workbench.training import preference

        splits = preference.build_datasets(cfg, tok, plan)
    if main:
        save_split(run, splits)

    has_eval = len(splits["validation"]) > 0
    common = setup.trainer_args(cfg, plan, run, has_eval=has_eval, progress_bar=progress_bar)
    callbacks, stop_cb = setup.callbacks(cfg, run, stop, extra_callbacks, has_eval)
    if sft:
        trainer = _sft_trainer(cfg, model, tok, peft_config, splits, common, callbacks, sft_overrides, speedups)
    else:
        trainer = preference.build_trainer(cfg, plan, model, tok, peft_config, splits, common, callbacks)
    args = trainer.args
    if not progress_bar:  # else the Trainer prints every log event as a raw dict; callers report progress
        trainer.remove_callback(PrinterCallback)

    checkpoint = None
    if resume:
        checkpoint = run.last_checkpoint()
        if main:
            run.truncate_metrics_after(int(checkpoint.name.split("-")[-1]))
    if main:
        run.write_status("running", step=0, method=cfg.train.method, dtype=plan.dtype, attention=plan.attention,
                         attention_reason=plan.attention_reason, quantization=plan.quantization, device=plan.device,
                         trainable_params=_trainable(trainer.model), train_rows=len(splits["train"]),
                         resumed_from=str(checkpoint) if checkpoint else None, world_size=world_size())
    trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)

    stopped = stop_cb.stopped_at is not None and trainer.state.global_step < trainer.state.max_steps
    # The Trainer ends early on its own when EarlyStoppingCallback fires: a completed run that says so.
    stopped_early = not stopped and trainer.state.global_step < trainer.state.max_steps
    eval_loss = None
    if has_eval and not stopped:
        eval_loss = trainer.evaluate().get("eval_loss")  # logged through MetricsCallback too
    sharded = bool(getattr(trainer, "is_fsdp_enabled", False) or getattr(trainer, "is_deepspeed_enabled", False))
    if main or sharded:  # FSDP / DeepSpeed hold shards: every process must join the gather
        _save_model(trainer, tok, run, cfg.adapter.method, sharded=sharded, main=main)
    losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    result = RunResult(run.path, "stopped" if stopped else "completed", trainer.state.global_step,
                       trainer.state.max_steps, losses[-1] if losses else None, eval_loss)
    if main:
        run.write_status(result.state, step=result.global_step, max_steps=result.max_steps,
                         final_loss=result.final_loss, best_loss=min(losses) if losses else None,
                         eval_loss=eval_loss, eta_s=0, wall_s=round(time.time() - t_start, 1),
                         stopped_early=stopped_early, best_eval_loss=trainer.state.best_metric,
                         best_checkpoint=trainer.state.best_model_checkpoint,
                         saved="best checkpoint" if args.load_best_model_at_end and trainer.state.best_model_checkpoint
                         else "last step")
    return result


def _sft_trainer(cfg: RunConfig, model, tok, peft_config, splits: dict, common: dict, callbacks: list,
                 sft_overrides: dict, speedups: bool):
    from trl import SFTConfig, SFTTrainer

    has_eval = len(splits["validation"]) > 0
    sampling = "group_by_length" if cfg.train.group_by_length and not cfg.data.packing else "random"
    args = SFTConfig(**common, max_length=cfg.data.max_length, packing=cfg.data.packing,
                     train_sampling_strategy=sampling, **sft_overrides)
    if speedups:
        from workbench.training.setup import score_only_trained_positions

        score_only_trained_positions()
    return SFTTrainer(model=model, args=args, train_dataset=splits["train_tokens"],
                      eval_dataset=splits["validation_tokens"] if has_eval else None,
                      processing_class=tok, peft_config=peft_config, callbacks=callbacks)


def build_datasets(cfg: RunConfig, tok, plan: Plan) -> dict:
    """Load, map, split and tokenize. Labels carry -100 on tokens the template does not train."""
    canonical, detection = load_canonical(plan.data_source, cfg.data.format, cfg.data.column_map,
                                          cfg.data.hub_config, cfg.data.hub_split, drop_invalid=cfg.data.drop_invalid)
    if cfg.data.max_rows:
        canonical = canonical.select(range(min(cfg.data.max_rows, len(canonical))))
    parts = split_rows(canonical, cfg.data.val_size, cfg.data.test_size, cfg.data.seed)
    template = registry.load(cfg.data.template)

    def encode(row):
        return rendering.encode_row(template, row, tok, cfg.data.max_length, cfg.data.train_on)

    out = dict(parts, format=detection.format)
    for name in ("train", "validation"):
        tokens = parts[name].map(encode, remove_columns=parts[name].column_names, load_from_cache_file=False)
        out[f"{name}_tokens"] = tokens.filter(lambda r: any(x != rendering.IGNORE_INDEX for x in r["labels"]))
    if len(out["train_tokens"]) == 0:
        raise DataError("no training row has a trained token left (all responses empty or truncated away)",
                        "check the template and data.max_length")
    return out


def save_split(run: RunDir, splits: dict) -> None:
    """Keep the held-out rows with the run, so evaluation later uses exactly the rows training never saw."""
    for name in ("validation", "test", "validation_pairs", "test_pairs"):  # *_pairs: preference runs only
        if name in splits:
            atomic_write_text(run.split_dir / f"{name}.jsonl",
                              "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in splits[name]))
    atomic_write_text(run.split_file, json.dumps({k: len(splits[k]) for k in ("train", "validation", "test")}
                                                 | {"format": splits["format"]}, indent=2))


def _trainable(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _save_model(trainer, tok, run: RunDir, method: str, *, sharded: bool = False, main: bool = True) -> None:
    """Write adapter/ (or model/ for full fine-tuning) under a temporary name, then swap it in.

    sharded (FSDP, DeepSpeed): every process must join Trainer.save_model, which gathers the full weights;
    only the main process writes them.
    """
    final = run.full_model if method == "full" else run.adapter
    if not main:
        trainer.accelerator.wait_for_everyone()
        trainer.save_model(str(run.path / ".gather"))  # writes nothing off the main process
        trainer.accelerator.wait_for_everyone()
        return
    with atomic_dir(final, replace=True) as tmp:
        if sharded:
            trainer.accelerator.wait_for_everyone()
            trainer.save_model(str(tmp))
            trainer.accelerator.wait_for_everyone()
        else:
            from workbench.training.setup import trained_adapters

            trainer.model.save_pretrained(str(tmp), safe_serialization=True, **trained_adapters(trainer.model))
        tok.save_pretrained(str(tmp))
