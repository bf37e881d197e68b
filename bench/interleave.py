"""Round-robin interleaving of several training runs in one process, step by step.

Each run is a Trainer in its own thread; a baton lets exactly one run work at a time, and each run
hands it on after every optimizer step. A run's step time is measured from when it gets the baton
to when it hands it on, so it covers everything the run does for that step (fetching and collating
the batch, forward, backward, optimizer, logging) and nothing the other runs do. Slow drifts of a
shared machine's load hit every run alike.
"""

from __future__ import annotations

import threading
import time


class Baton:
    def __init__(self, names: list[str]):
        self.order = list(names)
        self.active = list(names)
        self.current = names[0]
        self.cond = threading.Condition()

    def acquire(self, name: str) -> None:
        with self.cond:
            self.cond.wait_for(lambda: self.current == name)

    def _advance(self, name: str) -> None:
        if not self.active:
            self.current = None
            return
        i = self.order.index(name)
        for k in range(1, len(self.order) + 1):
            nxt = self.order[(i + k) % len(self.order)]
            if nxt in self.active:
                self.current = nxt
                return

    def pass_on(self, name: str) -> None:
        with self.cond:
            self._advance(name)
            self.cond.notify_all()

    def leave(self, name: str) -> None:
        with self.cond:
            if name in self.active:
                self.active.remove(name)
            if self.current == name:
                self._advance(name)
            self.cond.notify_all()


def step_timer(baton: Baton, name: str):
    """A TrainerCallback that takes turns on `baton` and records each step's time in `.times`."""
    from transformers import TrainerCallback

    class StepTimer(TrainerCallback):
        def __init__(self):
            self.times: list[float] = []
            self.t0 = 0.0

        def on_train_begin(self, args, state, control, **kwargs):
            baton.acquire(name)
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            self.times.append(time.perf_counter() - self.t0)
            baton.pass_on(name)
            baton.acquire(name)
            self.t0 = time.perf_counter()

        def on_train_end(self, args, state, control, **kwargs):
            baton.leave(name)

    return StepTimer()


def run_interleaved(jobs: dict, baton: Baton) -> dict:
    """jobs: name -> a function that runs to completion (taking turns on `baton` through its callbacks).
    Returns name -> the exception it raised, if any."""
    errors: dict = {}

    def wrap(name, fn):
        try:
            fn()
        except BaseException as exc:  # noqa: BLE001 - reported by the caller
            errors[name] = exc
        finally:
            baton.leave(name)

    threads = [threading.Thread(target=wrap, args=(n, f), name=n, daemon=True) for n, f in jobs.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


class Counting:
    """Wraps a collator and records, per batch, the real tokens and the positions computed."""

    def __init__(self, inner, pad_token_id: int | None = None):
        self.inner = inner
        self.pad_token_id = pad_token_id
        self.batches: list[dict] = []

    def __call__(self, features):
        batch = self.inner(features)
        lengths = [len(f["input_ids"]) for f in features]
        self.batches.append({"tokens": sum(lengths), "computed": int(batch["input_ids"].numel()),
                             "lengths": lengths})
        return batch
