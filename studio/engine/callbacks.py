"""A transformers TrainerCallback that turns training into events, and honours a stop request."""

from __future__ import annotations

import math
import threading
import time
from pathlib import Path

from transformers import TrainerCallback

from studio.engine.errors import NanLoss
from studio.engine.events import EventWriter
from studio.engine.runs import mark_complete


class EventCallback(TrainerCallback):
    DIVERGED_LOGS = 3  # consecutive logged losses above the limit that count as divergence

    def __init__(self, events: EventWriter, stop_requested: threading.Event, *, started_fields: dict,
                 extra_eval=None, diverge_above: float | None = None, perplexity: bool = True,
                 metric_names: dict[str, str] | None = None):
        self.events = events
        self.stop_requested = stop_requested
        self.started_fields = started_fields
        self.extra_eval = extra_eval  # called with (step) at each evaluation, returns extra fields
        self.perplexity = perplexity  # a language model's eval reports it; a classifier's loss is no perplexity
        # Trainer metrics to report, under the names events use (e.g. TRL's "rewards/margins": "reward_margin").
        self.metric_names = metric_names or {}
        self.stopped_by_user = False
        # A loss far above ln(vocabulary size) is worse than guessing uniformly: the run has diverged
        # even if AdamW keeps it finite.
        self.diverge_above = diverge_above
        self._above = 0
        self._t0 = None
        self._first_step = 0
        self._last_time = None
        self._last_tokens = 0

    def on_train_begin(self, args, state, control, **kwargs):
        # A resumed run loads the checkpoint's TrainerState after the Trainer has set the intervals from the
        # arguments, so the logging, evaluation and save intervals would be the first run's: this run's apply.
        state.compute_steps(args, state.max_steps)
        self._t0 = self._last_time = time.monotonic()
        self._first_step = state.global_step
        self._last_tokens = state.num_input_tokens_seen
        fields = dict(self.started_fields)
        if fields.get("device") == "cpu":
            from studio.engine.gpu_check import cpu_fallback_warning

            warning = cpu_fallback_warning()  # an NVIDIA GPU that torch cannot use
            if warning:
                fields["warning"] = warning
        self.events.emit("started", total_steps=state.max_steps, resumed_at=state.global_step, **fields)

    def on_step_end(self, args, state, control, **kwargs):
        if self.stop_requested.is_set() and not self.stopped_by_user:
            self.stopped_by_user = True
            control.should_training_stop = True
            control.should_save = True  # a resumable checkpoint whatever the save interval
        if control.should_evaluate and not control.should_log:
            self._evaluating()

    def _evaluating(self) -> None:
        # Evaluation can take longer than many steps: say so, or the status and ETA look frozen.
        self.events.emit("progress", phase="evaluating", fraction=None)

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" not in logs:
            return
        loss = float(logs["loss"])
        if not math.isfinite(loss):
            raise NanLoss(f"The training loss became {loss} at step {state.global_step}.")
        self._above = self._above + 1 if self.diverge_above and loss > self.diverge_above else 0
        if self._above >= self.DIVERGED_LOGS:
            raise NanLoss(f"The training diverged: the loss is {loss:.1f} at step {state.global_step}, far worse "
                          f"than random guessing ({self.diverge_above / 2:.1f}).")
        now = time.monotonic()
        tokens = state.num_input_tokens_seen
        dt = max(now - self._last_time, 1e-9)
        tokens_per_s = (tokens - self._last_tokens) / dt
        self._last_time, self._last_tokens = now, tokens
        done = state.global_step - self._first_step
        elapsed = now - self._t0
        eta = elapsed / done * (state.max_steps - state.global_step) if done > 0 else None
        self.events.emit("log", step=state.global_step, total_steps=state.max_steps, epoch=state.epoch,
                         loss=loss, learning_rate=logs.get("learning_rate"), grad_norm=logs.get("grad_norm"),
                         tokens_seen=tokens, tokens_per_s=tokens_per_s if tokens else None, elapsed_s=elapsed,
                         eta_s=eta,
                         **{name: float(logs[key]) for key, name in self.metric_names.items() if key in logs})
        if control.should_evaluate:
            self._evaluating()

    def on_evaluate(self, args, state, control, metrics=None, **kwargs):
        metrics = metrics or {}
        loss = metrics.get("eval_loss")
        if loss is None:
            return
        fields = {self.metric_names.get(k[5:], k[5:]): v for k, v in metrics.items()
                  if k.startswith("eval_") and k != "eval_loss" and not k.endswith(("_runtime", "_per_second"))
                  and (not self.metric_names or k[5:] in self.metric_names)}
        if self.extra_eval:
            fields.update(self.extra_eval(state.global_step))
        if self.perplexity:
            fields["perplexity"] = math.exp(min(loss, 50.0))
        self.events.emit("eval", step=state.global_step, eval_loss=loss, **fields)

    def on_save(self, args, state, control, **kwargs):
        path = Path(args.output_dir) / f"checkpoint-{state.global_step}"
        if path.is_dir():
            mark_complete(path)
            self.events.emit("checkpoint", step=state.global_step, path=str(path))
