"""Trainer callbacks: metrics.jsonl rows with throughput and ETA, per-step progress, the stop flag, log lines
for the UI and the CLI's console (one formatter, format_log, for both)."""
from __future__ import annotations

import math
import sys
import threading
import time

from transformers import TrainerCallback

from workbench.core.formatting import clock, duration
from workbench.runs.folder import RunDir

# What DPO / ORPO / KTO log besides the loss, under TRL's own names (metrics.jsonl keeps them as they are).
PREFERENCE_KEYS = ("rewards/chosen", "rewards/rejected", "rewards/margins", "rewards/accuracies", "kl",
                   "logps/chosen", "logps/rejected", "nll_loss", "log_odds_ratio", "log_odds_chosen")


class NonFiniteLoss(RuntimeError):
    """Training diverged (loss became NaN or inf): the run is failed rather than left to waste time."""


class Pace:
    """Elapsed time, ETA and tokens per second since training (re)started, for the callbacks that report them."""

    def __init__(self):
        self.start(0)

    def start(self, step: int) -> None:
        self.t0 = time.monotonic()
        self.start_step = step  # > 0 when resuming: the ETA counts only the steps this process ran
        self.last_tokens, self.last_t = 0, self.t0

    def elapsed(self) -> float:
        return time.monotonic() - self.t0

    def eta(self, state) -> float | None:
        done = state.global_step - self.start_step
        if done <= 0 or not state.max_steps:
            return None
        return self.elapsed() / done * max(state.max_steps - state.global_step, 0)

    def tokens_per_second(self, logs: dict) -> float | None:
        """From TRL's running count of non-padding tokens (num_tokens) since the previous log event."""
        tokens, now = logs.get("num_tokens"), time.monotonic()
        if tokens is None or now <= self.last_t:
            return None
        tps = (tokens - self.last_tokens) / (now - self.last_t)
        self.last_tokens, self.last_t = tokens, now
        return tps


class MetricsCallback(TrainerCallback):
    """Appends one metrics row per log event and keeps status.json's progress (step, ETA) current.

    Rows: step, epoch, loss, eval_loss (when evaluated), learning_rate, grad_norm, tokens_per_second,
    elapsed_s, eta_s. Only the main process writes, so a multi-GPU run has one metrics file.
    """

    def __init__(self, run: RunDir, stop: threading.Event | None = None):
        self.run = run
        self.stop = stop or threading.Event()
        self.pace = Pace()

    def on_train_begin(self, args, state, control, **kw):
        self.pace.start(state.global_step)
        if state.is_world_process_zero:
            self.run.write_status("running", step=state.global_step, max_steps=state.max_steps)

    def on_step_end(self, args, state, control, **kw):
        if state.is_world_process_zero:
            self.run.write_status("stopping" if self.stop.is_set() else "running", step=state.global_step,
                                  max_steps=state.max_steps, elapsed_s=round(self.pace.elapsed(), 2),
                                  eta_s=_round(self.pace.eta(state)))

    def on_log(self, args, state, control, logs=None, **kw):
        logs = dict(logs or {})
        if "train_runtime" in logs:  # the Trainer's end-of-run summary, not a step
            return
        if "loss" in logs and not math.isfinite(float(logs["loss"])):
            raise NonFiniteLoss(f"loss became {logs['loss']} at step {state.global_step}; lower the learning "
                                "rate or check the data")
        tps = self.pace.tokens_per_second(logs)
        row = {"step": state.global_step, "epoch": _round(state.epoch, 4)}
        for key in ("loss", "eval_loss", "learning_rate", "grad_norm", "num_tokens", "mean_token_accuracy",
                    *PREFERENCE_KEYS, *(f"eval_{k}" for k in PREFERENCE_KEYS)):
            if key in logs:
                row[key] = _round(float(logs[key]), 6 if key == "learning_rate" else 5)
        row.update(tokens_per_second=_round(tps, 1), elapsed_s=round(self.pace.elapsed(), 2),
                   eta_s=_round(self.pace.eta(state)))
        if state.is_world_process_zero:
            self.run.append_metrics(row)


class StopCallback(TrainerCallback):
    """Ends training at the next step boundary when the flag is set, saving a checkpoint there.

    Under DDP every process must stop at the same step (one that stopped alone would leave the others
    waiting in an all-reduce), so the processes agree on the flag with a one-number all-reduce per step."""

    def __init__(self, stop: threading.Event):
        self.stop = stop
        self.stopped_at: int | None = None

    def _agreed(self) -> bool:
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return self.stop.is_set()
        import torch

        device = "cuda" if dist.get_backend() == "nccl" else "cpu"
        flag = torch.tensor([1.0 if self.stop.is_set() else 0.0], device=device)
        dist.all_reduce(flag, op=dist.ReduceOp.MAX)
        return bool(flag.item())

    def on_step_end(self, args, state, control, **kw):
        if self._agreed():
            control.should_training_stop = True
            control.should_save = True
            self.stopped_at = state.global_step
        return control


class LogLinesCallback(TrainerCallback):
    """Turns the Trainer's log events into short human lines (format_log) for a sink: the UI's log box.

    Only the main process emits, so a multi-GPU run reports each step once.
    """

    def __init__(self, sink):
        self.sink = sink
        self.pace = Pace()

    def on_train_begin(self, args, state, control, **kw):
        self.pace.start(state.global_step)
        start = f" from step {state.global_step}" if state.global_step else ""
        self.emit(state, f"training {state.max_steps} steps{start}")

    def on_log(self, args, state, control, logs=None, **kw):
        logs = logs or {}
        tps, eta = self.pace.tokens_per_second(logs), self.pace.eta(state)
        self.emit(state, format_log(state.global_step, state.max_steps, logs, tokens_per_second=tps,
                                    eta_s=None if "train_runtime" in logs else eta))

    def on_save(self, args, state, control, **kw):
        self.emit(state, f"checkpoint saved at step {state.global_step}")

    def emit(self, state, line: str) -> None:
        if state.is_world_process_zero:
            self.sink(line)


class ConsoleProgressCallback(LogLinesCallback):
    """The CLI's console: one tqdm bar (stderr) and LogLinesCallback's lines on stdout, written above the bar.

    It stands in for transformers' ProgressCallback / PrinterCallback, which print every log event as a raw
    `{'loss': ...}` dict; the engine leaves those out when called with progress_bar=False.
    """

    def __init__(self, bar: bool = True):
        super().__init__(self._write)
        self.show_bar = bar
        self.bar = None

    def on_train_begin(self, args, state, control, **kw):
        super().on_train_begin(args, state, control, **kw)
        if self.show_bar and state.is_world_process_zero:
            from tqdm import tqdm

            self.bar = tqdm(total=state.max_steps, initial=state.global_step, unit="step", dynamic_ncols=True,
                            file=sys.stderr)

    def on_step_end(self, args, state, control, **kw):
        if self.bar is not None:
            self.bar.update(state.global_step - self.bar.n)

    def on_train_end(self, args, state, control, **kw):
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def _write(self, line: str) -> None:
        from tqdm import tqdm

        # tqdm.write clears the bar, prints the line and redraws the bar below it.
        tqdm.write(line, file=sys.stdout)


# What a log line shows of a Trainer log event, in this order: (key, label, how the value reads).
_LOG_FIELDS = (("loss", "loss", "{:.4g}"), ("eval_loss", "eval loss", "{:.4g}"), ("learning_rate", "lr", "{:.1e}"),
               ("grad_norm", "grad", "{:.3g}"), ("rewards/margins", "margin", "{:.3g}"),
               ("rewards/accuracies", "pref acc", "{:.2f}"), ("train_loss", "mean train loss", "{:.4g}"),
               ("train_runtime", "runtime", None))


def format_log(step: int, max_steps: int, logs: dict, tokens_per_second: float | None = None,
               eta_s: float | None = None) -> str:
    """One log event as a line: `step 3/10  loss 2.134  lr 1.2e-04  grad 0.82  312 tok/s  ETA 0:41`."""
    parts = []
    for key, label, spec in _LOG_FIELDS:
        if logs.get(key) is not None:
            value = float(logs[key])
            parts.append(f"{label} {duration(value) if spec is None else spec.format(value)}")
    if not parts:  # an event of some other kind (a callback's own keys): show it as it came
        parts = [f"{k} {v}" for k, v in logs.items()]
    if tokens_per_second is not None:
        parts.append(f"{tokens_per_second:.0f} tok/s")
    if eta_s is not None:
        parts.append(f"ETA {clock(eta_s)}")
    return "  ".join([f"step {step}/{max_steps}", *parts])


def _round(x, nd=2):
    return None if x is None else round(float(x), nd)
