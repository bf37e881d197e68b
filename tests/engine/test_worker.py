"""The real worker process: event order and persistence, graceful stop, SIGKILL, exact resume, a worker that
fails before it can report, and failures reported as events.

A worker start costs the imports of torch and transformers, so the real-worker tests share one chain of runs
of the same 24-step config (the module's `chain` fixture): a worker stopped at step 5; a worker resuming it,
killed with SIGKILL after a checkpoint; then the rest of the run from the checkpoint the kill left (in-process:
the worker runs this same recipe). Every loss on the way must equal the loss of the same step in one
uninterrupted run (in-process too).
"""

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from sft_helpers import MEMORISE, losses, run_in_process, sft_config
from studio.engine.config import save_config
from studio.engine.events import read_events
from studio.engine.runs import complete_checkpoints, create_run_dir, last_checkpoint, summarize_run, worker_alive
from studio.engine.supervisor import WorkerProcess, prepare_run

ROOT = Path(__file__).resolve().parents[2]
FAKE_WORKER = ROOT / "tests" / "fake_worker.py"
# A resumed run keeps the checkpoint interval of the run it resumes (the trainer's state comes from the
# checkpoint), so every leg has the same one.
LONG = dict(MEMORISE, epochs=1000, max_steps=24, log_every=1, save_every=3, lora_dropout=0.1,
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


@dataclass
class Leg:
    run_dir: Path
    events: list[dict]  # as streamed by the worker
    returncode: int | None


@dataclass
class Chain:
    reference: dict[int, float]  # step -> loss of one uninterrupted run
    stopped: Leg
    killed: Leg
    finished: Leg
    pids: list[int]


@pytest.fixture(scope="module")
def chain(tiny_llama, qa_dataset, tmp_path_factory) -> Chain:
    workspace = tmp_path_factory.mktemp("chain")
    reference = losses(run_in_process(sft_config(tiny_llama, qa_dataset, **LONG), workspace / "reference"))
    pids = []

    run_dir, worker = start(sft_config(tiny_llama, qa_dataset, **LONG), workspace)
    pids.append(worker.pid)
    stopped = Leg(run_dir, run_until(worker, 5, worker.request_stop), worker.outcome().returncode)

    cfg = sft_config(tiny_llama, qa_dataset, **dict(LONG, resume_from=str(stopped.run_dir)))
    run_dir, worker = start(cfg, workspace)
    pids.append(worker.pid)
    # Killed once a checkpoint of this leg has been saved: a kill, not a stop, mid-run.
    events = []
    for event in worker.events():
        events.append(event)
        if event["type"] == "checkpoint" and worker.running():
            psutil.Process(worker.pid).kill()
    killed = Leg(run_dir, events, worker.outcome().returncode)

    cfg = sft_config(tiny_llama, qa_dataset, **dict(LONG, resume_from=str(last_checkpoint(killed.run_dir))))
    run_dir = workspace / "finished"
    finished = Leg(run_dir, run_in_process(cfg, run_dir), None)
    return Chain(reference, stopped, killed, finished, pids)


def test_events_arrive_in_order_and_are_persisted(chain):
    leg = chain.stopped
    types = [e["type"] for e in leg.events]
    assert types.index("started") < types.index("log") < types.index("checkpoint") < types.index("finished")
    assert types[-1] == "finished" and leg.returncode == 0
    logged = [e["step"] for e in leg.events if e["type"] == "log"]
    assert logged == list(range(1, len(logged) + 1))
    assert all(e["time"] for e in leg.events)
    assert read_events(leg.run_dir / "events.jsonl") == leg.events
    assert (leg.run_dir / "worker.log").exists() and not (leg.run_dir / "worker.pid").exists()
    assert not worker_alive(leg.run_dir)
    logged = [e["step"] for e in chain.finished.events if e["type"] == "log"]
    assert logged == list(range(logged[0], 25))  # the rest of the run: every step once, in order, to the end
    assert chain.finished.events[-1]["status"] == "completed"
    assert (chain.finished.run_dir / "adapter" / "adapter_model.safetensors").is_file()


def test_stop_saves_a_checkpoint_and_the_adapter(chain):
    final = chain.stopped.events[-1]
    assert final["type"] == "finished" and final["status"] == "stopped"
    run_dir = chain.stopped.run_dir
    assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
    stopped_at = final["summary"]["steps"]
    assert 5 <= stopped_at < 24
    assert last_checkpoint(run_dir).name == f"checkpoint-{stopped_at}"
    assert summarize_run(run_dir).status == "stopped"


def test_sigkill_mid_run_leaves_no_half_written_adapter(chain):
    leg = chain.killed
    assert leg.events[-1]["type"] == "failed" and leg.events[-1]["kind"] == "crashed"
    assert "killed (signal" in leg.events[-1]["message"] or "exit code" in leg.events[-1]["message"]
    assert leg.returncode != 0
    assert not (leg.run_dir / "adapter").exists()
    assert summarize_run(leg.run_dir).status == "failed"
    assert read_events(leg.run_dir / "events.jsonl")[-1]["type"] == "failed"
    points = complete_checkpoints(leg.run_dir)
    assert points, "the kill came after this leg's first checkpoint"
    for checkpoint in points:
        assert (checkpoint / "adapter_model.safetensors").is_file() and (checkpoint / "optimizer.pt").is_file()


def test_each_resume_continues_the_same_loss_curve(chain):
    stopped_at = chain.stopped.events[-1]["summary"]["steps"]
    for earlier, leg in ((chain.stopped, chain.killed), (chain.killed, chain.finished)):
        started = next(e for e in leg.events if e["type"] == "started")
        resumed_from = int(last_checkpoint(earlier.run_dir).name.split("-")[1])
        assert started["resumed_at"] == resumed_from
        assert min(losses(leg.events)) == resumed_from + 1
    assert max(losses(chain.killed.events)) < 24  # the kill came before the end
    assert int(last_checkpoint(chain.stopped.run_dir).name.split("-")[1]) == stopped_at
    whole = {}
    for leg in (chain.stopped, chain.killed, chain.finished):
        whole.update(losses(leg.events))  # a later leg re-does the steps after the checkpoint it resumed
    assert sorted(whole) == list(range(1, 25))
    assert whole == pytest.approx(chain.reference, abs=1e-5)


def test_a_bad_dataset_fails_the_worker_with_a_classified_event(qa_dataset, tmp_path, monkeypatch):
    """What the worker does with a recipe's error: a `failed` event (kind, message naming the line, hint) on
    its stream and in the run folder, exit code 1. (The fake worker reads the data with the engine's reader and
    trains nothing; the real recipe's own report of the same file is tested in-process below.)"""
    monkeypatch.setattr("studio.engine.supervisor.WORKER_ARGS", [str(FAKE_WORKER)])
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "a", "output": "b"}\n{oops\n')
    run_dir, worker = start(sft_config("some/model", bad, max_steps=3), tmp_path / "ws", checked=False)
    streamed = list(worker.events())
    final = streamed[-1]
    assert final["type"] == "failed" and final["kind"] == "bad_dataset"
    assert "line 2" in final["message"] and final["hint"]
    assert worker.outcome().returncode == 1 and worker.outcome().status == "failed"
    assert read_events(run_dir / "events.jsonl") == streamed
    assert "Traceback" in (run_dir / "worker.log").read_text()  # the details stay in the log


def test_the_recipe_names_a_bad_dataset_and_a_folder_without_config(tiny_llama, qa_dataset, tmp_path):
    from studio.engine.errors import BadDataset, BadModel
    from studio.engine.worker import classify

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "a", "output": "b"}\n{oops\n')
    with pytest.raises(BadDataset) as info:
        run_in_process(sft_config(tiny_llama, bad), tmp_path / "bad-data")
    event = classify(info.value)
    assert event["kind"] == "bad_dataset" and "line 2" in event["message"] and event["hint"]

    empty = tmp_path / "not-a-model"
    empty.mkdir()
    (empty / "weights.txt").write_text("x")
    with pytest.raises(BadModel) as info:
        run_in_process(sft_config(empty, qa_dataset), tmp_path / "bad-model")
    event = classify(info.value)
    assert event["kind"] == "bad_model" and "config.json" in event["message"] and "weights.txt" in event["message"]


def test_a_worker_that_fails_at_import_is_reported_with_the_cause(qa_dataset, tmp_path, monkeypatch):
    """A broken install fails before the worker can redirect its output or report an event: its stderr is in
    worker.log from the first byte, and the run's `failed` event quotes the cause."""
    broken = tmp_path / "broken-install"
    broken.mkdir()
    (broken / "yaml.py").write_text('raise ImportError("the yaml package of this install is broken")\n')
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(broken), str(ROOT)]))
    run_dir, worker = start(sft_config("some/model", qa_dataset), tmp_path / "ws", checked=False)
    final = list(worker.events())[-1]
    assert final["type"] == "failed" and final["kind"] == "crashed"
    assert "exit code 1" in final["message"]
    assert "ImportError: the yaml package of this install is broken" in final["message"]
    assert "worker.log" in final["hint"]
    assert read_events(run_dir / "events.jsonl")[-1] == final
    assert summarize_run(run_dir).status == "failed"


def test_a_reused_pid_is_not_taken_for_the_worker(tmp_path):
    """worker.pid names a process that is alive but is not the worker: another program (its command line does
    not name the run), or one started after the pid file was written."""
    run_dir = tmp_path / "runs" / "20260101-000000-old"
    run_dir.mkdir(parents=True)
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (run_dir / "worker.pid").write_text(str(other.pid))
        assert not worker_alive(run_dir)  # alive, but not started on this run folder
        named = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", run_dir.name])
        try:
            (run_dir / "worker.pid").write_text(str(named.pid))
            assert worker_alive(run_dir)
            old = psutil.Process(named.pid).create_time() - 3600
            os.utime(run_dir / "worker.pid", (old, old))  # the pid file is older than the process
            assert not worker_alive(run_dir)
        finally:
            named.kill()
            named.wait()
        os.utime(run_dir / "worker.pid")
        assert not worker_alive(run_dir)  # gone
    finally:
        other.kill()
        other.wait()
