"""Everyday run flows in the real window, with a fast fake worker (tests/fake_worker.py: the real worker
process and supervision, a recipe that trains nothing): closing mid-run, keeping a run in the background,
Resume, the stop shortcut, stale state, and the run panel's log times."""

import datetime as dt
import json
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from studio.engine.config import FineTuneConfig, save_config
from studio.engine.events import EventWriter
from studio.engine.runs import create_run_dir, last_checkpoint, read_run_config, worker_alive
from tests.ui.conftest import DialogAnswerer, open_window

WAIT = 60_000
pytestmark = pytest.mark.usefixtures("fake_worker")


@dataclass
class Flow:
    model: Path
    dataset: Path


@pytest.fixture
def flow(tiny_llama, qa_dataset) -> Flow:
    # The fake worker trains nothing, but the pre-flight check before it reads a real model and dataset.
    return Flow(tiny_llama, qa_dataset)


def run_config(flow: Flow, **fields):
    return FineTuneConfig(**{**dict(model=str(flow.model), dataset=str(flow.dataset), name="flow", max_steps=2000,
                                    save_every=5, eval_every=5, max_length=64), **fields})


def window(qtbot):
    return open_window(qtbot)


def start_fake_run(w, qtbot, flow, **fields):
    tab = w.finetune_tab
    run_dir = tab.panel.launch(run_config(flow, **fields), check_model=False)
    qtbot.waitUntil(lambda: tab.panel.state.step >= 2, timeout=WAIT)
    return tab, run_dir


def test_stop_and_close_asks_once_and_closes_after_the_run_saved(qtbot, flow):
    w = window(qtbot)
    tab, run_dir = start_fake_run(w, qtbot, flow)
    answers = DialogAnswerer("Stop and close")
    w.close()
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=WAIT)
    answers.stop()
    assert answers.answered == 1  # one question, and the window closed by itself after the stop
    assert tab.panel.state.status == "stopped" and (run_dir / "adapter").is_dir()


def test_closing_right_after_a_run_finished_does_not_ask(qtbot, flow):
    w = window(qtbot)
    tab = w.finetune_tab
    with qtbot.waitSignal(tab.run_ended, timeout=WAIT):
        tab.panel.launch(run_config(flow, max_steps=3), check_model=False)
    # The worker process may still be exiting: the run is over, so closing asks nothing and waits for it.
    assert w.running_tabs() == []
    answers = DialogAnswerer("Cancel")
    w.close()
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=WAIT)
    answers.stop()
    assert answers.answered == 0


def test_cancel_keeps_the_window_and_the_run(qtbot, flow):
    w = window(qtbot)
    tab, run_dir = start_fake_run(w, qtbot, flow)
    answers = DialogAnswerer("Cancel")
    w.close()
    qtbot.waitUntil(lambda: answers.answered == 1, timeout=WAIT)
    answers.stop()
    assert w.isVisible() and tab.is_running()
    tab.kill()
    qtbot.waitUntil(lambda: not tab.is_running(), timeout=WAIT)


def test_keep_training_in_the_background_then_the_next_window_reattaches(qtbot, flow):
    w = window(qtbot)
    tab, run_dir = start_fake_run(w, qtbot, flow)
    answers = DialogAnswerer("Keep it running in the background")
    w.close()
    qtbot.waitUntil(lambda: not w.isVisible(), timeout=WAIT)
    answers.stop()
    assert worker_alive(run_dir)  # the run goes on without a window
    w2 = window(qtbot)
    assert w2.reattached == [run_dir] and w2.finetune_tab.is_running()
    step = w2.finetune_tab.panel.state.step
    qtbot.waitUntil(lambda: w2.finetune_tab.panel.state.step > step + 2, timeout=WAIT)  # still training
    w2.finetune_tab.stop()
    qtbot.waitUntil(lambda: not w2.finetune_tab.is_running(), timeout=WAIT)
    assert w2.finetune_tab.panel.state.status == "stopped"


def test_resume_continues_the_same_curve_and_is_not_sticky(qtbot, flow, monkeypatch):
    w = window(qtbot)
    monkeypatch.setenv("FAKE_WORKER_SECONDS_PER_STEP", "0.25")  # slow enough to be stopped on a busy machine
    tab, run_dir = start_fake_run(w, qtbot, flow, max_steps=30)
    qtbot.waitUntil(lambda: tab.panel.state.step >= 7, timeout=WAIT)
    with qtbot.waitSignal(tab.run_ended, timeout=WAIT):
        tab.stop()
    monkeypatch.setenv("FAKE_WORKER_SECONDS_PER_STEP", "0.05")  # the resumed run goes at full speed
    stopped_at = tab.panel.state.step
    point = last_checkpoint(run_dir)
    assert tab.result_panel.resume_button.isVisible()
    with qtbot.waitSignal(tab.run_ended, timeout=WAIT) as ended:
        qtbot.mouseClick(tab.result_panel.resume_button, Qt.MouseButton.LeftButton)
    assert ended.args[0]["status"] == "completed"
    resumed = tab.run_dir
    assert resumed != run_dir and read_run_config(resumed)["resume_from"] == str(point)
    steps = [x for x, _ in tab.panel.state.train]
    assert steps == list(range(1, 31))  # one curve: the first run up to its checkpoint, then the resumed steps
    assert tab.loss_plot.point_count("train") == 30
    assert stopped_at >= 7
    assert tab.config().resume_from == ""  # the next Start begins afresh


def test_esc_does_not_stop_a_run_but_ctrl_period_does(qtbot, flow):
    w = window(qtbot)
    tab, _ = start_fake_run(w, qtbot, flow)
    from PySide6.QtGui import QShortcut

    tab.form.setFocus()
    qtbot.keyClick(tab.form, Qt.Key.Key_Escape)
    assert tab.engine.state == "running"
    keys = {sc.key().toString(): sc for sc in tab.findChildren(QShortcut)}
    assert "Esc" not in keys and "Ctrl+." in keys
    with qtbot.waitSignal(tab.run_ended, timeout=WAIT) as ended:
        keys["Ctrl+."].activated.emit()
    assert ended.args[0]["status"] == "stopped"


def test_no_stale_eta_failure_or_curve(qtbot, flow):
    w = window(qtbot)
    tab, _ = start_fake_run(w, qtbot, flow)
    assert "ETA" in tab.panel.stats_label.text()
    with qtbot.waitSignal(tab.run_ended, timeout=WAIT):
        tab.stop()
    qtbot.waitUntil(lambda: not tab.is_running(), timeout=WAIT)
    assert tab.panel.stats_label.text() == ""  # no ETA once the run has ended
    tab.panel.launch(run_config(flow, max_steps=3), check_model=False)
    assert tab.loss_plot.point_count("train") == 0  # a new run starts on an empty plot
    qtbot.waitUntil(lambda: not tab.is_running(), timeout=WAIT)
    tab.kill()
    # A failure shown, then dismissed: the status line no longer says the run failed.
    os.environ["FAKE_WORKER_SECONDS_PER_STEP"] = "0.5"  # the fake_worker fixture puts it back
    tab.panel.launch(run_config(flow), check_model=False)
    qtbot.waitUntil(lambda: tab.panel.state.status == "running", timeout=WAIT)
    with qtbot.waitSignal(tab.run_ended, timeout=WAIT):
        tab.kill()
    qtbot.waitUntil(lambda: not tab.is_running(), timeout=WAIT)
    assert tab.status_label.text() == "The run failed." and tab.error_panel.isVisible()
    tab.error_panel.clear()
    assert tab.status_label.text() == "Ready."


def test_replayed_log_lines_carry_the_time_of_the_event(qtbot, flow, workspace):
    from studio.ui.widgets.run_panel import RunPanel

    run_dir = create_run_dir(workspace, "old")
    save_config(run_config(flow), run_dir / "config.yaml")
    when = dt.datetime(2026, 1, 2, 10, 11, 12).timestamp()
    events = [dict(type="started", total_steps=4, device="cpu"), dict(type="log", step=1, loss=2.0),
              dict(type="finished", status="completed", output="x")]
    (run_dir / "events.jsonl").write_text("".join(json.dumps({**e, "time": when}) + "\n" for e in events))
    panel = RunPanel()
    qtbot.addWidget(panel)
    with qtbot.waitSignal(panel.run_ended, timeout=WAIT):
        panel.attach(run_dir)
    log = panel.log_view.toPlainText()
    assert "10:11:12  started on" in log and "10:11:12  finished (completed)" in log


def test_runs_of_the_workspace_are_listed_when_the_window_opens(qtbot, workspace, flow):
    from studio.engine.pretrain_config import PretrainConfig

    for cfg in (run_config(flow, name="ft"), PretrainConfig(corpus="a.txt", name="pt")):
        run = create_run_dir(workspace, cfg.name)
        save_config(cfg, run / "config.yaml")
        w_ = EventWriter(run / "events.jsonl")
        w_.emit("started", total_steps=2)
        w_.emit("finished", status="completed", output=str(run / "adapter"))
        w_.close()
    w = window(qtbot)
    qtbot.waitUntil(lambda: len(w.runs_view.runs) == 2, timeout=WAIT)
    assert {r.task for r in w.runs_view.runs} == {"sft", "pretrain"}


def test_every_tab_is_usable_at_800_by_600(qtbot):
    w = window(qtbot)
    w.resize(800, 600)
    hint = w.minimumSizeHint()
    assert hint.width() <= 800 and hint.height() <= 600, hint
    for tab in (w.pretrain_tab, w.finetune_tab):
        w.tabs.setCurrentWidget(tab)
        qtbot.waitUntil(lambda: tab.start_button.isVisible())
        assert not tab.start_button.visibleRegion().isEmpty()
