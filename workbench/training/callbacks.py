"""Trainer callbacks: metrics.jsonl rows with throughput and ETA, per-step progress, the stop flag, log lines."""
from __future__ import annotations

import math
import threading
import time

from transformers import TrainerCallback

from workbench.runs.folder import RunDir


class NonFiniteLoss(RuntimeError):
    """Training diverged (loss became NaN or inf): the run is failed rather than left to waste time."""


class MetricsCallback(TrainerCallback):
    """Appends one metrics row per log event and keeps status.json's progress (step, ETA) current.

    Rows: step, epoch, loss, eval_loss (when evaluated), learning_rate, grad_norm, tokens_per_second,
    elapsed_s, eta_s. Only the main process writes, so a multi-GPU run has one metrics file.
    """

    def __init__(self, run: RunDir, stop: threading.Event | None = None):
        self.run = run
        self.stop = stop or threading.Event()
        self.t0 = time.monotonic()
        self.start_step = 0
        self.last_tokens, self.last_t = 0, self.t0

    def _eta(self, state) -> float | None:
        done = state.global_step - self.start_step
        if done <= 0 or not state.max_steps:
            return None
        return (time.monotonic() - self.t0) / done * max(state.max_steps - state.global_step, 0)

    def on_train_begin(self, args, state, control, **kw):
        self.t0 = time.monotonic()
        self.start_step = state.global_step  # > 0 when resuming
        self.last_tokens, self.last_t = 0, self.t0
        if state.is_world_process_zero:
            self.run.write_status("running", step=state.global_step, max_steps=state.max_steps)

    def on_step_end(self, args, state, control, **kw):
        if state.is_world_process_zero:
            self.run.write_status("stopping" if self.stop.is_set() else "running", step=state.global_step,
                                  max_steps=state.max_steps, elapsed_s=round(time.monotonic() - self.t0, 2), eta_s=_round(self._eta(state)))

    def on_log(self, args, state, control, logs=None, **kw):
        logs = dict(logs or {})
        if "train_runtime" in logs:  # the Trainer's end-of-run summary, not a step
            return
        if "loss" in logs and not math.isfinite(float(logs["loss"])):
            raise NonFiniteLoss(f"loss became {logs['loss']} at step {state.global_step}; lower the learning "
                                "rate or check the data")
        now = time.monotonic()
        tps = None
        tokens = logs.get("num_tokens")  # TRL's running count of non-padding tokens since (re)start
        if tokens is not None and now > self.last_t:
            tps = (tokens - self.last_tokens) / (now - self.last_t)
            self.last_tokens, self.last_t = tokens, now
        row = {"step": state.global_step, "epoch": _round(state.epoch, 4)}
        for key in ("loss", "eval_loss", "learning_rate", "grad_norm", "num_tokens", "mean_token_accuracy"):
            if key in logs:
                row[key] = _round(float(logs[key]), 6 if key == "learning_rate" else 5)
        row.update(tokens_per_second=_round(tps, 1), elapsed_s=round(now - self.t0, 2), eta_s=_round(self._eta(state)))
        if state.is_world_process_zero:
            self.run.append_metrics(row)


class StopCallback(TrainerCallback):
    """Ends training at the next step boundary when the flag is set, saving a checkpoint there."""

    def __init__(self, stop: threading.Event):
        self.stop = stop
        self.stopped_at: int | None = None

    def on_step_end(self, args, state, control, **kw):
        if self.stop.is_set():
            control.should_training_stop = True
            control.should_save = True
            self.stopped_at = state.global_step
        return control


class LogLinesCallback(TrainerCallback):
    """Turns the Trainer's log events into short human lines for the UI's log box."""

    def __init__(self, sink):
        self.sink = sink

    def on_train_begin(self, args, state, control, **kw):
        start = f" from step {state.global_step}" if state.global_step else ""
        self.sink(f"training {state.max_steps} steps{start}")

    def on_log(self, args, state, control, logs=None, **kw):
        self.sink(format_log(state.global_step, state.max_steps, logs or {}))

    def on_save(self, args, state, control, **kw):
        self.sink(f"checkpoint saved at step {state.global_step}")


def format_log(step: int, max_steps: int, logs: dict) -> str:
    names = {"loss": "loss", "eval_loss": "eval loss", "learning_rate": "lr", "grad_norm": "grad norm",
             "train_runtime": "runtime s", "train_loss": "mean train loss"}
    parts = []
    for key, label in names.items():
        if key in logs:
            value = float(logs[key])
            parts.append(f"{label} {value:.3g}" if key == "learning_rate" else f"{label} {value:.4g}")
    return f"step {step}/{max_steps}: " + (", ".join(parts) or ", ".join(f"{k} {v}" for k, v in logs.items()))


def _round(x, nd=2):
    return None if x is None else round(float(x), nd)
