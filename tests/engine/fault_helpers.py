"""Killing workers at random moments and checking what survives (used by test_faults and bench/faults.py)."""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass
from pathlib import Path

from studio.engine.runs import CHECKPOINTS_DIR, COMPLETE_MARKER, last_checkpoint, summarize_run
from studio.engine.supervisor import WorkerProcess, prepare_run


@dataclass
class KillResult:
    run_dir: Path
    moment: str  # what the worker was doing: step, checkpoint, output
    final_event: dict
    checkpoint: Path | None


def _moment(run_dir: Path, saving_output: bool) -> str:
    if saving_output:
        return "output"
    partial = [p for p in (run_dir / CHECKPOINTS_DIR).glob("checkpoint-*") if not (p / COMPLETE_MARKER).exists()]
    return "checkpoint" if partial else "step"


def kill_at(cfg, workspace: Path, *, after_s: float | None = None, on_saving_output: bool = False,
            latest_step: int | None = None) -> KillResult:
    """Start a run and SIGKILL its worker after a delay (counted from its first step), or as soon as it
    starts writing its output. With `latest_step`, a run fast enough to reach that step before the delay
    is killed there, so the kill always lands before the run can finish."""
    run_dir = prepare_run(cfg, workspace)
    worker = WorkerProcess(run_dir)
    worker.start()
    timer = None
    saving = False
    for event in worker.events():
        if event["type"] == "log" and timer is None and after_s is not None:
            timer = threading.Timer(after_s, worker.proc.kill)
            timer.start()
        if event["type"] == "log" and latest_step is not None and event.get("step", 0) >= latest_step:
            worker.proc.kill()
        if on_saving_output and event["type"] == "progress" and event.get("phase") == "saving":
            saving = True
            worker.proc.kill()
    if timer:
        timer.cancel()
    return KillResult(run_dir, _moment(run_dir, saving), worker.final_event, last_checkpoint(run_dir))


def check_checkpoint_loads(checkpoint: Path) -> None:
    import torch
    from safetensors.torch import load_file

    load_file(checkpoint / "adapter_model.safetensors")
    torch.load(checkpoint / "optimizer.pt", weights_only=True)
    assert (checkpoint / "scheduler.pt").is_file() and (checkpoint / "trainer_state.json").is_file()


def random_delays(n: int, upper_s: float, seed: int = 0) -> list[float]:
    rng = random.Random(seed)
    return [rng.uniform(0.05, upper_s) for _ in range(n)]


def run_status(run_dir: Path) -> str:
    return summarize_run(run_dir).status
