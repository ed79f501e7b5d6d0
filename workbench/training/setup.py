"""What every training method shares: the adapter (fresh LoRA or an existing run's adapter continued), the
Trainer arguments the RunConfig decides, the callbacks (metrics.jsonl, stop flag, early stopping), and the
speed fixes applied on top of stock TRL (each one measured in benchmarks/NOTES.md).

The SFT path (engine.py) and the preference path (preference.py) both build their TRL config from
trainer_args(), so a setting means the same thing whichever method trains.
"""
from __future__ import annotations

import logging

from workbench.config.preflight import Plan
from workbench.config.run import RunConfig
from workbench.runs.folder import RunDir

log = logging.getLogger(__name__)


def adapter(cfg: RunConfig, plan: Plan, model):
    """(model, peft_config): a fresh LoRA config for the trainer to apply, or the model wrapped with the adapter
    of model.adapter_from, trainable, and no config (TRL refuses a PeftModel together with a peft_config)."""
    if cfg.adapter.method not in ("lora", "qlora"):
        return model, None
    if plan.adapter_from:
        from peft import PeftModel

        if plan.quantization != "none":
            from peft import prepare_model_for_kbit_training

            model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.train.gradient_checkpointing)
        log.info("continuing the adapter of %s", plan.adapter_from)
        return PeftModel.from_pretrained(model, plan.adapter_from, is_trainable=True), None
    from peft import LoraConfig

    a = cfg.adapter
    return model, LoraConfig(r=a.r, lora_alpha=a.alpha, lora_dropout=a.dropout, bias=a.bias,
                             target_modules=a.targets(), task_type="CAUSAL_LM")


def trainer_args(cfg: RunConfig, plan: Plan, run: RunDir, *, has_eval: bool, progress_bar: bool) -> dict:
    """The TrainingArguments every method's TRL config takes, as keywords."""
    on_gpu = plan.device == "cuda"
    t = cfg.train
    keep_best = has_eval and (t.load_best_at_end or bool(t.early_stopping_patience))
    return dict(
        output_dir=str(run.checkpoints),
        learning_rate=t.learning_rate, num_train_epochs=t.epochs, max_steps=t.max_steps,
        per_device_train_batch_size=t.batch_size, per_device_eval_batch_size=t.batch_size,
        gradient_accumulation_steps=t.grad_accum, lr_scheduler_type=t.scheduler,
        warmup_steps=t.warmup_ratio,  # a float < 1 is a ratio of the total steps in transformers 5
        weight_decay=t.weight_decay, max_grad_norm=t.max_grad_norm, optim=t.optimizer,
        logging_steps=t.logging_steps, save_strategy="steps", save_steps=t.save_steps,
        save_total_limit=t.save_total_limit,
        eval_strategy="steps" if (has_eval and t.eval_steps) else "no", eval_steps=t.eval_steps or None,
        activation_checkpointing=t.gradient_checkpointing, seed=t.seed, data_seed=cfg.data.seed,
        report_to=[] if t.report_to == "none" else [t.report_to],
        # The dtype trap: TRL's configs default to bf16=True, which runs ~13x slower on a CPU without
        # native bf16. Mixed precision is switched on only where the plan put the run on a GPU.
        bf16=on_gpu and plan.dtype == "bfloat16", fp16=on_gpu and plan.dtype == "float16",
        use_cpu=not on_gpu, disable_tqdm=not progress_bar, dataloader_pin_memory=on_gpu, save_only_model=False,
        # Early stopping and the best checkpoint are the Trainer's own mechanisms, judged on the eval loss.
        load_best_model_at_end=keep_best, metric_for_best_model="eval_loss" if keep_best else None,
        greater_is_better=False if keep_best else None,
    )


def callbacks(cfg: RunConfig, run: RunDir, stop, extra: list, has_eval: bool) -> tuple[list, object]:
    """(the Trainer's callbacks, the StopCallback whose stopped_at says whether the user stopped the run)."""
    from workbench.training.callbacks import MetricsCallback, StopCallback

    stop_cb = StopCallback(stop)
    out = [*extra, MetricsCallback(run, stop), stop_cb]
    if cfg.train.early_stopping_patience and has_eval:
        from transformers import EarlyStoppingCallback

        out.append(EarlyStoppingCallback(early_stopping_patience=cfg.train.early_stopping_patience))
    return out, stop_cb


def trained_adapters(model) -> dict:
    """save_pretrained keywords that keep only the trained adapter: TRL adds a frozen 'ref' copy when it
    continues an existing adapter, which is the reference, not a result."""
    config = getattr(model, "peft_config", None)
    if isinstance(config, dict) and "ref" in config:
        return {"selected_adapters": ["default"]}
    return {}


def score_only_trained_positions() -> bool:
    """Make TRL's fused LM head project only the positions that carry the loss, on every device but XLA.

    TRL 1.x does that only on Triton devices (CUDA/XPU); elsewhere it projects every position through the
    49k-word vocabulary so that XLA/Neuron compilers see fixed tile shapes. In eager mode on a CPU nothing is
    compiled, and most positions are prompt or padding (89% in the benchmark's reverse-instruction data):
    scoring only the trained ones took a LoRA step on the default model from 77.7 to 117.6 tokens/s and
    its peak RSS from 7.7 to 5.5 GB. The loss and gradients are the same (tests/test_speedups.py). Returns
    False when this TRL no longer has the hook, so the run goes on at stock speed.
    """
    import trl.trainer.utils as trl_utils

    stock = getattr(trl_utils, "_use_triton", None)
    if stock is None:
        return False
    if getattr(stock, "workbench_patched", False):
        return True

    def compact(device) -> bool:  # TRL reads this only to choose compact vs every-position scoring
        return device.type != "xla" or stock(device)

    compact.workbench_patched, compact.stock = True, stock
    trl_utils._use_triton = compact
    return True
