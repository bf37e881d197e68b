"""One typed reading of a run's event stream: the state every front end shows.

The run panel, the Runs list, the CLI's progress bar and the curve loader all fold the same events
through `RunState.apply`, instead of each parsing raw event dicts its own way. Light module (no
torch), so the GUI may import it at start-up.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from studio.engine.events import iter_events

# What the worker is doing, in words a person reads in the status line.
PHASE_WORDS = {
    "starting": "Starting the worker",
    "checking the model": "Checking the model",
    "reading the corpus": "Reading the corpus",
    "reading data": "Reading the data",
    "training the tokenizer": "Training the tokenizer",
    "loading the model": "Loading the model",
    "building the model": "Building the model",
    "tokenizing": "Tokenizing",
    "evaluating": "Evaluating on the held-out data",
    "training": "Training",
    "scoring": "Evaluating",
    "saving": "Saving",
    "exporting": "Exporting",
    "merging": "Merging the adapter into the model",
}
TERMINAL = ("completed", "stopped", "failed")


def _number(value) -> float | None:
    """A finite float, or None (events write a diverged loss as the string 'nan')."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value) if math.isfinite(value) else None


# The fields every training log event has; any other number in one is a task's own figure (train_metrics).
LOG_FIELDS = frozenset({"type", "time", "step", "total_steps", "epoch", "loss", "learning_rate", "grad_norm",
                        "tokens_seen", "tokens_per_s", "elapsed_s", "eta_s", "candidate"})


@dataclass
class EvalPoint:
    step: int
    loss: float
    perplexity: float | None = None
    metrics: dict = field(default_factory=dict)  # task metrics such as masked_accuracy
    details: dict = field(default_factory=dict)  # non-numeric figures: a confusion matrix, per-class scores


@dataclass
class RunState:
    status: str = "starting"  # starting | running | completed | stopped | failed
    phase: str = "starting"  # a key of PHASE_WORDS, or any phase the worker names
    phase_fraction: float | None = None
    first_time: float | None = None  # the time of the first event
    started_time: float | None = None  # the time training began (the `started` event)
    last_time: float | None = None  # the time of the latest event
    step: int = 0
    total_steps: int | None = None
    resumed_at: int = 0
    epoch: float | None = None
    train: list[tuple[int, float]] = field(default_factory=list)
    learning_rate: list[tuple[int, float]] = field(default_factory=list)
    # Other figures logged with the training loss (preference tuning's reward margin, …): name -> (step, value).
    train_metrics: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    evals: list[EvalPoint] = field(default_factory=list)
    elapsed_s: float | None = None
    eta_s: float | None = None
    eta_time: float | None = None  # when eta_s was measured, so the ETA can count down between events
    tokens_per_s: float | None = None
    tokens_seen: int | None = None
    started: dict = field(default_factory=dict)  # the `started` event's fields (device, parameters, …)
    data: dict = field(default_factory=dict)  # the dataset or corpus summary reported while tokenizing
    samples: list[dict] = field(default_factory=list)  # probe completions: {"step", "samples"}
    candidate: str | None = None  # an evaluation: the candidate being scored
    scored: list[dict] = field(default_factory=list)  # an evaluation: each finished candidate's figures
    checkpoints: list[tuple[int, str]] = field(default_factory=list)
    warning: str | None = None
    output: str | None = None
    summary: dict = field(default_factory=dict)
    error_kind: str | None = None
    error_message: str | None = None
    error_hint: str | None = None
    events: int = 0

    # -- folding ---------------------------------------------------------------------------------
    def apply(self, ev: dict) -> "RunState":
        """Fold one event into the state (returns self, so `state.apply(a).apply(b)` reads well)."""
        t = ev.get("type")
        now = _number(ev.get("time"))
        if now is not None:
            self.first_time = self.first_time if self.first_time is not None else now
            self.last_time = now
        self.events += 1
        handler = getattr(self, f"_on_{t}", None)
        if handler is not None:
            handler(ev, now)
        return self

    def _on_progress(self, ev: dict, now) -> None:
        self.phase = str(ev.get("phase") or self.phase)
        self.phase_fraction = _number(ev.get("fraction"))
        for key in ("dataset", "corpus"):
            if isinstance(ev.get(key), dict):
                self.data = {**ev[key], **{k: ev[k] for k in ("train_rows", "validation_rows") if k in ev}}

    def _on_started(self, ev: dict, now) -> None:
        self.status, self.phase, self.phase_fraction = "running", self._work_phase(ev), None
        self.started_time = now
        self.started = {k: v for k, v in ev.items() if k not in ("type", "time")}
        self.total_steps = int(ev["total_steps"]) if _number(ev.get("total_steps")) else self.total_steps
        self.resumed_at = int(ev.get("resumed_at") or 0)
        self.step = max(self.step, self.resumed_at) if self.resumed_at else self.step
        if self.resumed_at:
            # A resumed run continues from its checkpoint: what the earlier run did after it is superseded.
            self._truncate_after(self.resumed_at)
        self.warning = ev.get("warning") or self.warning

    def _truncate_after(self, step: int) -> None:
        self.train = [p for p in self.train if p[0] <= step]
        self.learning_rate = [p for p in self.learning_rate if p[0] <= step]
        self.train_metrics = {k: [p for p in v if p[0] <= step] for k, v in self.train_metrics.items()}
        self.evals = [e for e in self.evals if e.step <= step]
        self.samples = [s for s in self.samples if (s.get("step") or 0) <= step]

    def _work_phase(self, ev: dict) -> str:
        task = ev.get("task") or self.started.get("task")
        return {"eval": "scoring", "export": "exporting"}.get(task, "training")

    def _on_log(self, ev: dict, now) -> None:
        if self.status == "starting":
            self.status = "running"
        self.phase, self.phase_fraction = self._work_phase(ev), None
        self.candidate = ev.get("candidate") or self.candidate
        step = int(ev.get("step") or 0)
        self.step = step
        total = _number(ev.get("total_steps"))
        self.total_steps = int(total) if total else self.total_steps
        loss, lr = _number(ev.get("loss")), _number(ev.get("learning_rate"))
        if loss is not None:
            self.train.append((step, loss))
        if lr is not None:
            self.learning_rate.append((step, lr))
        for key, value in ev.items():
            if key not in LOG_FIELDS and _number(value) is not None:
                self.train_metrics.setdefault(key, []).append((step, _number(value)))
        self.epoch = _number(ev.get("epoch"))
        self.elapsed_s = _number(ev.get("elapsed_s"))
        eta = _number(ev.get("eta_s"))
        if eta is not None:
            self.eta_s, self.eta_time = eta, now
        self.tokens_per_s = _number(ev.get("tokens_per_s"))
        seen = _number(ev.get("tokens_seen"))
        self.tokens_seen = int(seen) if seen is not None else self.tokens_seen

    def _on_eval(self, ev: dict, now) -> None:
        loss = _number(ev.get("eval_loss"))
        if loss is None:
            return
        skip = {"type", "time", "step", "eval_loss", "perplexity"}
        metrics = {k: v for k, v in ev.items() if k not in skip and _number(v) is not None}
        details = {k: v for k, v in ev.items() if isinstance(v, (list, dict))}
        if ev.get("thresholds_tuned") and self.evals and self.evals[-1].step == int(ev.get("step") or 0):
            self.evals.pop()  # the same evaluation again with tuned thresholds: it replaces the first figures
        self.evals.append(EvalPoint(int(ev.get("step") or 0), loss, _number(ev.get("perplexity")), metrics,
                                    details))
        if self.phase == "evaluating":
            self.phase = "training"

    def _on_sample(self, ev: dict, now) -> None:
        self.samples.append({"step": ev.get("step"), "samples": ev.get("samples") or []})

    def _on_scored(self, ev: dict, now) -> None:
        if isinstance(ev.get("candidate"), dict):
            self.scored.append(ev["candidate"])

    def _on_checkpoint(self, ev: dict, now) -> None:
        self.checkpoints.append((int(ev.get("step") or 0), str(ev.get("path") or "")))

    def _on_finished(self, ev: dict, now) -> None:
        self.status = str(ev.get("status") or "completed")
        self.phase, self.phase_fraction, self.eta_s = "finished", None, None
        self.output = ev.get("output")
        self.summary = ev.get("summary") or {}

    def _on_failed(self, ev: dict, now) -> None:
        self.status, self.phase, self.phase_fraction, self.eta_s = "failed", "failed", None, None
        self.error_kind = ev.get("kind") or "internal"
        self.error_message = ev.get("message") or "The run failed."
        self.error_hint = ev.get("hint") or ""

    # -- reading ---------------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        return self.status in TERMINAL

    @property
    def best_eval_loss(self) -> float | None:
        best = _number(self.summary.get("best_eval_loss"))
        if best is not None:
            return best
        return min((e.loss for e in self.evals), default=None)

    @property
    def last_loss(self) -> float | None:
        return self.train[-1][1] if self.train else None

    def eta_at(self, now: float) -> float | None:
        """The ETA counted down from its last measurement (events come only at logged steps)."""
        if self.eta_s is None or self.done:
            return None
        waited = now - self.eta_time if self.eta_time is not None else 0.0
        return max(0.0, self.eta_s - max(0.0, waited))

    def phase_text(self) -> str:
        words = PHASE_WORDS.get(self.phase, self.phase.capitalize() if self.phase else "")
        if self.phase == "training":
            total = f" of {self.total_steps:,}" if self.total_steps else ""
            loss = f", loss {self.last_loss:.4f}" if self.last_loss is not None else ""
            return f"Training: step {self.step:,}{total}{loss}"
        if self.phase == "scoring":
            total = f" of {self.total_steps:,}" if self.total_steps else ""
            who = f" ({self.candidate})" if self.candidate else ""
            return f"Evaluating: {self.step:,}{total} scored{who}"
        if self.phase_fraction:
            return f"{words}… {self.phase_fraction:.0%}"
        return f"{words}…"


def fold(events) -> RunState:
    state = RunState()
    for ev in events:
        state.apply(ev)
    return state


def describe_event(ev: dict) -> str | None:
    """The log line for an event a person wants to read, or None for routine ones (each training step)."""
    t = ev.get("type")
    if t == "started" and ev.get("task") == "export":
        warning = f"\nWARNING: {ev['warning']}" if ev.get("warning") else ""
        return f"exporting {ev.get('source')} as {', '.join(ev.get('formats') or [])}" + warning
    if t == "started":
        params = ev.get("trainable_parameters")
        total = ev.get("total_steps")
        text = (f"started on {ev.get('device_name') or ev.get('device')} ({ev.get('precision')})"
                + (f", {total:,} steps" if isinstance(total, int) else "")
                + (f", {params:,} trainable parameters of {ev.get('parameters') or 0:,}" if params else ""))
        if ev.get("resumed_at"):
            text += f", resumed at step {ev['resumed_at']:,}"
        return text + (f"\nWARNING: {ev['warning']}" if ev.get("warning") else "")
    if t == "progress":
        if isinstance(ev.get("dataset"), dict):
            d = ev["dataset"]
            if "used" not in d and isinstance(d.get("labels"), dict):
                return describe_labels(d, ev)
            if "pairs" in d:
                text = (f"dataset: {d.get('pairs')} pairs and {d.get('marks')} marked replies ({d.get('format')}), "
                        f"{ev.get('train_rows')} rows for training, {ev.get('validation_rows')} for validation")
                for reason, drop in (d.get("dropped") or {}).items():
                    text += f"\ndropped {drop.get('count')}: {reason}" if isinstance(drop, dict) else ""
                return text
            text = (f"dataset: {d.get('used')} of {d.get('rows')} rows used, {ev.get('train_rows')} for training, "
                    f"{ev.get('validation_rows')} for validation")
            for reason, drop in (d.get("dropped") or {}).items():
                if isinstance(drop, dict):
                    examples = ", ".join(map(str, drop.get("examples") or []))
                    text += f"\ndropped {drop.get('count')}: {reason}" + (f" ({examples}…)" if examples else "")
            return text
        if isinstance(ev.get("corpus"), dict):
            return describe_corpus(ev["corpus"])
        if not ev.get("fraction"):
            return PHASE_WORDS.get(ev.get("phase"), str(ev.get("phase") or "")) + "…"
        return None
    if t == "eval":
        loss, ppl = _number(ev.get("eval_loss")), _number(ev.get("perplexity"))
        if loss is None:
            return None
        if _number(ev.get("macro_f1")) is not None or _number(ev.get("pearson")) is not None:
            shown = [f"{words} {ev[key]:.3f}" for key, words in (("accuracy", "accuracy"), ("macro_f1", "macro-F1"),
                     ("micro_f1", "micro-F1"), ("pearson", "Pearson"), ("spearman", "Spearman"))
                     if _number(ev.get(key)) is not None]
            return f"held-out at step {ev.get('step')}: loss {loss:.4f}, " + ", ".join(shown)
        if _number(ev.get("preference_accuracy")) is not None:
            margin = _number(ev.get("reward_margin"))
            shown = f", reward margin {margin:+.3f}" if margin is not None else ""
            return (f"held-out at step {ev.get('step')}: loss {loss:.4f}, preference accuracy "
                    f"{ev['preference_accuracy']:.1%}" + shown)
        acc = _number(ev.get("masked_accuracy"))
        return (f"held-out at step {ev.get('step')}: loss {loss:.4f}"
                + (f", perplexity {ppl:.2f}" if ppl is not None else "")
                + (f", masked-token accuracy {acc:.1%}" if acc is not None else ""))
    if t == "checkpoint":
        return f"checkpoint at step {ev.get('step')}: {ev.get('path')}"
    if t == "scored" and isinstance(ev.get("candidate"), dict):
        return describe_scored(ev["candidate"])
    if t == "finished":
        return f"finished ({ev.get('status')}): {ev.get('output')}"
    if t == "failed":
        return f"failed ({ev.get('kind')}): {ev.get('message')}"
    return None


def describe_scored(cand: dict) -> str:
    """One candidate's headline figures, for the log and the CLI."""
    from studio.engine.evaluate.results import METRIC_WORDS, format_metric

    shown = [f"{METRIC_WORDS.get(k, k)} {format_metric(k, v)}" for k, v in (cand.get("metrics") or {}).items()
             if v is not None][:4]
    tokens = (cand.get("cost") or {}).get("prompt_tokens")
    if tokens is not None:
        shown.append(f"{tokens:,.0f} prompt tokens per request")
    return f"{cand.get('label', cand.get('id'))}: " + (", ".join(shown) or "nothing scored")


def describe_labels(d: dict, ev: dict) -> str:
    """A labelled file's summary: rows, the split, and the labels with their counts."""
    labels = d.get("labels") or {}
    shown = ", ".join(f"{name} {count}" for name, count in list(labels.items())[:8])
    more = f" and {len(labels) - 8} more" if len(labels) > 8 else ""
    text = (f"dataset: {d.get('rows')} rows, {ev.get('train_rows')} for training, {ev.get('validation_rows')} for "
            f"validation; {len(labels)} labels: {shown}{more}")
    if d.get("skipped"):
        text += f"\nskipped {d['skipped']} row(s)"
    for warning in d.get("warnings") or []:
        text += f"\nWARNING: {warning}"
    return text


def describe_corpus(c: dict) -> str:
    return (f"{c.get('documents')} documents, {c.get('tokens', 0):,} tokens, {c.get('blocks', 0):,} blocks of "
            f"{c.get('block_size')} ({c.get('train_blocks')} for training, {c.get('validation_blocks')} held out)"
            + (f"; {c['duplicates_removed']} duplicates removed" if c.get("duplicates_removed") else ""))


def load_run_state(run_dir: Path, *, with_history: bool = True, _depth: int = 0) -> RunState:
    """The state of a run folder from its events.jsonl. With `with_history`, a resumed run starts from the
    state of the run it resumed (its curve continues the original's instead of starting a second one)."""
    from studio.engine.runs import EVENTS_FILE, resumed_from_run

    state = RunState()
    parent = resumed_from_run(run_dir) if with_history and _depth < 20 else None
    if parent is not None:
        state = load_run_state(parent, _depth=_depth + 1)
        # The parent's ending is history; this run's own events decide how it ends.
        state.status, state.output, state.summary = "starting", None, {}
        state.error_kind = state.error_message = state.error_hint = None
        state.phase, state.first_time = "starting", None
    for ev in iter_events(Path(run_dir) / EVENTS_FILE):
        state.apply(ev)
    return state
