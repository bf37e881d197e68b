"""The real worker process: event order and persistence, graceful stop, exact resume, SIGKILL."""

import os
import signal

import pytest

from sft_helpers import MEMORISE, losses, sft_config
from studio.engine.config import save_config
from studio.engine.events import read_events
from studio.engine.runs import complete_checkpoints, create_run_dir, last_checkpoint, summarize_run
from studio.engine.supervisor import WorkerProcess, prepare_run

LONG = dict(MEMORISE, epochs=1000, max_steps=400, log_every=1, save_every=0, lora_dropout=0.1,
            learning_rate=1e-3, scheduler="linear", batch_size=2)


def start(cfg, workspace, *, checked: bool = True):
    """A worker on a new run folder; unchecked skips the pre-flight check, to test what the worker itself
    reports for a run folder written by hand (or by an older version)."""
    if checked:
        run_dir = prepare_run(cfg, workspace)
    else:
        run_dir = create_run_dir(workspace, cfg.name)
        save_config(cfg, run_dir / "config.yaml")
    worker = WorkerProcess(run_dir)
    worker.start()
    return run_dir, worker


def run_until(worker, step, action):
    """Iterate the worker's events; call action() once the log reaches `step`."""
    streamed, acted = [], False
    for event in worker.events():
        streamed.append(event)
        if not acted and event["type"] == "log" and event["step"] >= step:
            action()
            acted = True
    return streamed


def test_events_arrive_in_order_and_are_persisted(tiny_llama, qa_dataset, tmp_path):
    run_dir, worker = start(sft_config(tiny_llama, qa_dataset, **dict(MEMORISE, max_steps=4, log_every=1,
                                                                     save_every=2)), tmp_path)
    streamed = list(worker.events())
    types = [e["type"] for e in streamed]
    assert types.index("started") < types.index("log") < types.index("checkpoint") < types.index("finished")
    assert types[-1] == "finished" and streamed[-1]["status"] == "completed"
    assert [e["step"] for e in streamed if e["type"] == "log"] == [1, 2, 3, 4]
    assert all(e["time"] for e in streamed)
    assert read_events(run_dir / "events.jsonl") == streamed
    assert worker.outcome().returncode == 0
    assert summarize_run(run_dir).status == "completed"
    assert (run_dir / "worker.log").exists() and not (run_dir / "worker.pid").exists()


def test_stop_then_resume_continues_the_same_loss_curve(tiny_llama, qa_dataset, tmp_path):
    cfg = dict(LONG, max_steps=24)
    _, whole = start(sft_config(tiny_llama, qa_dataset, **cfg), tmp_path / "whole")
    reference = losses(list(whole.events()))

    run_dir, worker = start(sft_config(tiny_llama, qa_dataset, **cfg), tmp_path / "stopped")
    streamed = run_until(worker, 5, worker.request_stop)
    final = streamed[-1]
    assert final["type"] == "finished" and final["status"] == "stopped"
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
    checkpoint = last_checkpoint(run_dir)
    stopped_at = final["summary"]["steps"]
    assert checkpoint is not None and checkpoint.name == f"checkpoint-{stopped_at}"
    assert 5 <= stopped_at < 24
    assert summarize_run(run_dir).status == "stopped"

    _, resumed = start(sft_config(tiny_llama, qa_dataset, **cfg, resume_from=str(checkpoint)), tmp_path / "resumed")
    events = list(resumed.events())
    started = next(e for e in events if e["type"] == "started")
    assert started["resumed_at"] == stopped_at
    after = losses(events)
    assert min(after) == stopped_at + 1 and max(after) == 24
    assert after == pytest.approx({s: reference[s] for s in after}, abs=1e-5)


def test_sigkill_mid_run_leaves_no_half_written_adapter(tiny_llama, qa_dataset, tmp_path):
    cfg = sft_config(tiny_llama, qa_dataset, **dict(LONG, save_every=3))
    run_dir, worker = start(cfg, tmp_path)
    streamed = run_until(worker, 7, lambda: os.kill(worker.proc.pid, signal.SIGKILL))
    assert streamed[-1]["type"] == "failed" and streamed[-1]["kind"] == "crashed"
    assert not (run_dir / "adapter").exists()
    assert summarize_run(run_dir).status == "failed"
    assert read_events(run_dir / "events.jsonl")[-1]["type"] == "failed"
    for checkpoint in complete_checkpoints(run_dir):
        assert (checkpoint / "adapter_model.safetensors").is_file() and (checkpoint / "optimizer.pt").is_file()


def test_a_bad_dataset_fails_with_a_classified_event(tiny_llama, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "a", "output": "b"}\n{oops\n')
    run_dir, worker = start(sft_config(tiny_llama, bad), tmp_path / "ws", checked=False)
    final = list(worker.events())[-1]
    assert final["type"] == "failed" and final["kind"] == "bad_dataset"
    assert "line 2" in final["message"] and final["hint"]
    assert worker.outcome().returncode == 1


def test_a_folder_without_config_is_a_bad_model(qa_dataset, tmp_path):
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    (empty / "weights.txt").write_text("x")
    run_dir, worker = start(sft_config(empty, qa_dataset), tmp_path / "ws", checked=False)
    final = list(worker.events())[-1]
    assert final["kind"] == "bad_model" and "config.json" in final["message"] and "weights.txt" in final["message"]
