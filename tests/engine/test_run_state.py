"""The one reading of the event stream (RunState) and the resume checks that run before any worker."""

import shutil

import pytest

from studio.engine.config import FineTuneConfig, save_config
from studio.engine.errors import BadConfig
from studio.engine.events import EventWriter
from studio.engine.resume import check_resume, resume_checkpoint, resume_config
from studio.engine.run_state import RunState, describe_event, fold, load_run_state
from studio.engine.runs import create_run_dir, mark_complete, summarize_run
from studio.engine.supervisor import prepare_run


def ev(type, t=0.0, **fields):
    return {"type": type, "time": t, **fields}


def test_fold_follows_phases_losses_evals_and_the_end():
    s = RunState()
    assert s.phase_text() == "Starting the worker…"
    s.apply(ev("progress", 1, phase="tokenizing", fraction=0.5))
    assert s.phase_text() == "Tokenizing… 50%"
    s.apply(ev("started", 2, total_steps=10, resumed_at=0, device="cpu"))
    s.apply(ev("log", 3, step=1, total_steps=10, loss=2.5, learning_rate=1e-4, eta_s=90.0, tokens_per_s=100.0))
    s.apply(ev("log", 4, step=2, total_steps=10, loss="nan"))  # a diverged loss is not a point
    s.apply(ev("progress", 5, phase="evaluating", fraction=None))
    assert s.phase_text() == "Evaluating on the held-out data…"
    s.apply(ev("eval", 6, step=2, eval_loss=2.0, perplexity=7.39, masked_accuracy=0.5))
    assert s.phase == "training" and s.step == 2 and s.train == [(1, 2.5)]
    assert s.evals[0].metrics == {"masked_accuracy": 0.5} and s.best_eval_loss == 2.0
    assert s.eta_at(3.0) == 90.0 and s.eta_at(13.0) == 80.0 and s.eta_at(1000.0) == 0.0
    s.apply(ev("finished", 7, status="stopped", output="/x/adapter", summary={"best_eval_loss": 1.9}))
    assert s.done and s.status == "stopped" and s.eta_at(8.0) is None and s.best_eval_loss == 1.9
    assert s.first_time == 1 and s.started_time == 2


def test_failed_event_and_descriptions():
    s = fold([ev("started", 1, total_steps=4), ev("failed", 2, kind="out_of_memory", message="m", hint="h")])
    assert (s.status, s.error_kind, s.error_message, s.error_hint) == ("failed", "out_of_memory", "m", "h")
    assert describe_event(ev("log", step=1, loss=1.0)) is None  # each step is not a log line
    assert "resumed at step 5" in describe_event(ev("started", total_steps=9, resumed_at=5, device="cpu"))
    assert describe_event(ev("eval", step=3, eval_loss=1.5, perplexity=4.48)) == \
        "held-out at step 3: loss 1.5000, perplexity 4.48"


def _write_run(workspace, name, model, events, checkpoint_step=None, **cfg_fields):
    run = create_run_dir(workspace, name)
    save_config(FineTuneConfig(model=str(model), dataset="d.json", name=name, **cfg_fields), run / "config.yaml")
    w = EventWriter(run / "events.jsonl")
    for e in events:
        w.emit(e.pop("type"), **e)
    w.close()
    if checkpoint_step is not None:
        point = run / "checkpoints" / f"checkpoint-{checkpoint_step}"
        point.mkdir(parents=True)
        (point / "trainer_state.json").write_text("{}")
        mark_complete(point)
    return run


def test_a_resumed_run_continues_the_curve_of_the_run_it_resumed(tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    first = _write_run(tmp_path, "first", model, [
        dict(type="started", total_steps=10), *[dict(type="log", step=i, loss=10.0 - i) for i in range(1, 7)],
        dict(type="eval", step=5, eval_loss=4.0), dict(type="finished", status="stopped", output="o")],
        checkpoint_step=4)
    cfg = resume_config(first)
    assert cfg.resume_from.endswith("checkpoint-4") and cfg.model == str(model)
    second = create_run_dir(tmp_path, "second")  # what prepare_run makes, without checking a real model
    save_config(cfg, second / "config.yaml")
    w = EventWriter(second / "events.jsonl")
    w.emit("started", total_steps=10, resumed_at=4)
    w.emit("log", step=5, loss=5.5)
    w.close()
    state = load_run_state(second)
    # One curve: the first run's steps up to its checkpoint, then the resumed run's own.
    assert state.train == [(1, 9.0), (2, 8.0), (3, 7.0), (4, 6.0), (5, 5.5)]
    assert state.evals == [] and state.status == "running" and state.output is None
    assert load_run_state(second, with_history=False).train == [(5, 5.5)]


def test_resume_refuses_a_checkpoint_of_another_model_before_creating_a_run(tmp_path, tiny_llama, qa_dataset):
    a, b = tmp_path / "model-a", tmp_path / "model-b"
    shutil.copytree(tiny_llama, a), shutil.copytree(tiny_llama, b)
    run = _write_run(tmp_path / "ws", "a", a, [dict(type="started", total_steps=4),
                                               dict(type="finished", status="stopped")], checkpoint_step=2)
    before = sorted((tmp_path / "ws" / "runs").iterdir())
    other = FineTuneConfig(model=str(b), dataset=str(qa_dataset), max_length=64, resume_from=str(run))
    with pytest.raises(BadConfig, match="trained on .*model-a.*this run's model is .*model-b"):
        prepare_run(other, tmp_path / "ws")
    full = FineTuneConfig(model=str(a), dataset="d.json", resume_from=str(run), method="full")
    with pytest.raises(BadConfig, match="method 'lora'"):
        check_resume(full)
    assert sorted((tmp_path / "ws" / "runs").iterdir()) == before  # nothing left behind
    same = FineTuneConfig(model=str(a), dataset="d.json", resume_from=str(run))  # a run folder is accepted
    check_resume(same)
    assert same.resume_from == str(run / "checkpoints" / "checkpoint-2")


def test_resume_point_errors_name_what_is_wrong(tmp_path):
    with pytest.raises(BadConfig, match="does not exist"):
        resume_checkpoint(tmp_path / "nope")
    run = _write_run(tmp_path, "r", tmp_path, [dict(type="started", total_steps=4)])
    with pytest.raises(BadConfig, match="no complete checkpoint"):
        resume_checkpoint(run)
    (tmp_path / "plain").mkdir()
    with pytest.raises(BadConfig, match="neither a run folder nor a complete checkpoint"):
        resume_checkpoint(tmp_path / "plain")


def test_summary_of_a_failed_run_without_events_has_a_date_and_resumability(tmp_path):
    run = _write_run(tmp_path, "crashed", tmp_path, [dict(type="started", total_steps=4),
                                                     dict(type="log", step=2, loss=1.0),
                                                     dict(type="failed", kind="crashed", message="gone")],
                     checkpoint_step=2)
    s = summarize_run(run)
    assert (s.status, s.steps, s.error, s.resumable, s.dataset) == ("failed", 2, "gone", True, "d.json")
    empty = create_run_dir(tmp_path, "empty")
    s = summarize_run(empty)
    assert s.started is not None and abs(s.started - (empty.stat().st_mtime)) < 5  # the time in its name
