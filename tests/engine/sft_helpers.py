"""Helpers shared by the fine-tuning tests."""

import threading
from pathlib import Path

from studio.engine.config import FineTuneConfig
from studio.engine.events import EventWriter, read_events

MEMORISE = dict(method="lora", lora_r=16, lora_alpha=32, lora_dropout=0.0, learning_rate=3e-3, epochs=100,
                batch_size=4, validation_fraction=0.0, eval_every=0, save_every=0, warmup_ratio=0.0,
                log_every=10, scheduler="constant")


def sft_config(model: Path, dataset: Path, **overrides) -> FineTuneConfig:
    return FineTuneConfig(**{**dict(model=str(model), dataset=str(dataset), name="test"), **overrides})


def run_in_process(cfg: FineTuneConfig, run_dir: Path) -> list[dict]:
    from studio.engine.sft import run_sft

    run_dir.mkdir(parents=True, exist_ok=True)
    writer = EventWriter(run_dir / "events.jsonl", None)
    try:
        run_sft(cfg, run_dir, writer, threading.Event())
    finally:
        writer.close()
    return read_events(run_dir / "events.jsonl")


def losses(events: list[dict]) -> dict[int, float]:
    return {e["step"]: e["loss"] for e in events if e["type"] == "log"}
