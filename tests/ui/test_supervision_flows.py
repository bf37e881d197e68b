"""Supervising a run's worker from the tabs, with the fast fake worker (tests/fake_worker.py: the real worker
process, its event stream and stop handling, a recipe that trains nothing): stop, kill after the grace period,
a worker killed from outside, a worker that fails at import, and runs an earlier window left going (re-attached:
stop, kill, kill after the grace period), for fine-tuning and pre-training.

The real worker is proven elsewhere: one fine-tune (test_finetune_tab), one pre-train (test_pretrain_tab), a
re-attach (test_reliability_ui), and stop/SIGKILL/resume in tests/engine/test_worker.py.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from studio.engine.config import FineTuneConfig
from studio.engine.events import read_events
from studio.engine.pretrain_config import PretrainConfig
from studio.engine.runs import kill_worker, last_checkpoint, summarize_run, worker_alive
from tests.conftest import FIXTURES, ROOT
from tests.ui.conftest import FAKE_WORKER, open_window

WAIT = 60_000
pytestmark = pytest.mark.usefixtures("fake_worker")


def finetune_config(tiny_llama, qa_dataset, **fields) -> FineTuneConfig:
    return FineTuneConfig(**{**dict(model=str(tiny_llama), dataset=str(qa_dataset), name="supervised",
                                    max_steps=2000, save_every=5, max_length=64), **fields})


def pretrain_config(**fields) -> PretrainConfig:
    return PretrainConfig(**{**dict(corpus=str(FIXTURES / "corpus.txt"), name="pt", mode="scratch", max_steps=2000,
                                    save_every=5, block_size=16), **fields})


def launched(panel, cfg, qtbot, steps: int = 2) -> Path:
    """Start a run from the panel (no model question: the fake worker loads nothing); wait for its steps."""
    run_dir = panel.launch(cfg, check_model=False)
    assert run_dir is not None, panel.error_panel.text()
    qtbot.waitUntil(lambda: panel.state.step >= steps, timeout=WAIT)
    return run_dir


def detached_worker(cfg, workspace) -> tuple[Path, subprocess.Popen]:
    """A worker as an earlier window leaves it running in the background: its own session, nobody reading it."""
    from studio.engine.supervisor import prepare_run

    run_dir = prepare_run(cfg, workspace)
    proc = subprocess.Popen([sys.executable, str(FAKE_WORKER), str(run_dir)], stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return run_dir, proc


@pytest.fixture
def background(workspace):
    """Start workers as an earlier window left them; none outlives the test."""
    started = []

    def start(cfg, steps: int = 2) -> Path:
        run_dir, proc = detached_worker(cfg, workspace)
        started.append(proc)
        wait_for(lambda: sum(e["type"] == "log" for e in read_events(run_dir / "events.jsonl")) >= steps)
        return run_dir

    yield start
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def wait_for(condition, timeout_s: float = 60.0) -> None:
    from PySide6.QtCore import QDeadlineTimer, QThread

    deadline = QDeadlineTimer(int(timeout_s * 1000))
    while not condition():
        assert not deadline.hasExpired(), "the condition did not come true"
        QThread.msleep(20)


# -- runs this window started -------------------------------------------------------------------------

def test_stop_saves_the_adapter_and_offers_resume(finetune_tab, tiny_llama, qa_dataset, qtbot):
    tab = finetune_tab
    run_dir = launched(tab.panel, finetune_config(tiny_llama, qa_dataset), qtbot)
    assert not tab.start_button.isEnabled() and tab.stop_button.isEnabled()
    with qtbot.waitSignal(tab.run_ended, timeout=WAIT) as ended:
        qtbot.mouseClick(tab.stop_button, Qt.MouseButton.LeftButton)
    final = ended.args[0]
    assert final["type"] == "finished" and final["status"] == "stopped", final
    assert (Path(final["output"]) / "adapter_config.json").is_file()
    assert "Stopped" in tab.result_label.text() and tab.status_label.text() == "Stopped."
    qtbot.waitUntil(lambda: not tab.is_running(), timeout=WAIT)
    assert not tab.stop_button.isEnabled()
    assert summarize_run(run_dir).status == "stopped" and last_checkpoint(run_dir) is not None
    assert tab.result_panel.resume_button.isVisible()  # stopped with a checkpoint: it can be continued


def test_a_worker_killed_from_outside_fails_and_start_comes_back(finetune_tab, tiny_llama, qa_dataset, qtbot):
    tab = finetune_tab
    run_dir = launched(tab.panel, finetune_config(tiny_llama, qa_dataset), qtbot)
    with qtbot.waitSignal(tab.run_ended, timeout=WAIT) as ended:
        assert kill_worker(run_dir)  # e.g. the out-of-memory killer, or a person with a task manager
    final = ended.args[0]
    assert final["type"] == "failed" and final["kind"] == "crashed"
    shown = tab.error_panel.text()
    assert tab.error_panel.isVisible() and "worker process was killed (signal" in shown
    assert "fake recipe: sft run" in shown  # the end of worker.log says what it was doing
    qtbot.waitUntil(lambda: not tab.is_running(), timeout=WAIT)
    assert not tab.stop_button.isEnabled() and tab.status_label.text() == "The run failed."
    assert summarize_run(run_dir).status == "failed" and not worker_alive(run_dir)


def test_a_worker_that_does_not_stop_is_killed_after_the_grace_period(tiny_llama, qa_dataset, qtbot, monkeypatch):
    from studio.ui.widgets.run_panel import RunPanel

    monkeypatch.setenv("FAKE_WORKER_SECONDS_PER_STEP", "60")  # a step longer than the grace period
    panel = RunPanel(grace_s=0.3)
    qtbot.addWidget(panel)
    run_dir = panel.launch(finetune_config(tiny_llama, qa_dataset), check_model=False)
    qtbot.waitUntil(lambda: panel.state.status == "running", timeout=WAIT)
    states = []
    panel.engine.state_changed.connect(states.append)
    with qtbot.waitSignal(panel.run_ended, timeout=WAIT) as ended:
        panel.stop()
        assert panel.engine.state == "stopping"
    final = ended.args[0]
    assert final["type"] == "failed" and final["kind"] == "killed", final
    assert "did not stop within 0.3 s" in final["message"]
    assert "killing" in states and "Killing the worker process." in panel.log_view.toPlainText()
    assert summarize_run(run_dir).status == "failed" and not worker_alive(run_dir)


def test_kill_ends_the_run_at_once(finetune_tab, tiny_llama, qa_dataset, qtbot):
    tab = finetune_tab
    run_dir = launched(tab.panel, finetune_config(tiny_llama, qa_dataset), qtbot)
    with qtbot.waitSignal(tab.run_ended, timeout=WAIT) as ended:
        tab.kill()
    final = ended.args[0]
    assert final["type"] == "failed" and final["kind"] == "killed"
    assert not (run_dir / "adapter").exists() and not worker_alive(run_dir)


def test_a_worker_that_fails_at_import_shows_the_cause(finetune_tab, tiny_llama, qa_dataset, qtbot, monkeypatch,
                                                       tmp_path):
    """A broken install: the worker dies before it can report anything; the panel quotes its worker.log."""
    monkeypatch.setattr("studio.engine.supervisor.WORKER_ARGS", ["-m", "studio.engine.worker"])
    broken = tmp_path / "broken-install"
    broken.mkdir()
    (broken / "yaml.py").write_text('raise ImportError("the yaml package of this install is broken")\n')
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(broken), str(ROOT)]))
    tab = finetune_tab
    with qtbot.waitSignal(tab.run_ended, timeout=WAIT) as ended:
        tab.panel.launch(finetune_config(tiny_llama, qa_dataset), check_model=False)
    assert ended.args[0]["type"] == "failed"
    shown = tab.error_panel.text()
    assert "exit code 1" in shown and "ImportError: the yaml package of this install is broken" in shown


def test_pretraining_stop_saves_the_model_and_kill_fails_the_run(qtbot):
    from studio.ui.pretrain.tab import PretrainTab

    tab = PretrainTab(grace_s=60)
    qtbot.addWidget(tab)
    used = []
    tab.use_for_finetune.connect(used.append)
    run_dir = launched(tab.panel, pretrain_config(), qtbot)
    assert tab.ppl_plot is not None and tab.loss_plot.point_count("train") >= 1
    with qtbot.waitSignal(tab.run_ended, timeout=WAIT) as ended:
        tab.stop()
    final = ended.args[0]
    assert final["type"] == "finished" and final["status"] == "stopped"
    model = Path(final["output"])
    assert model == run_dir / "model" and (model / "config.json").is_file()
    assert "so far was saved" in tab.result_label.text()
    qtbot.waitUntil(lambda: not tab.is_running(), timeout=WAIT)
    tab.finetune_button.click()
    assert used == [str(model)]

    run_dir = launched(tab.panel, pretrain_config(name="pt-killed"), qtbot)
    with qtbot.waitSignal(tab.run_ended, timeout=WAIT) as ended:
        tab.kill()
    assert ended.args[0]["kind"] == "killed" and not (run_dir / "model").exists()
    qtbot.waitUntil(lambda: not tab.is_running(), timeout=WAIT)
    assert tab.status_label.text() == "The run failed." and summarize_run(run_dir).status == "failed"


# -- runs an earlier window left going ----------------------------------------------------------------

def test_a_pretraining_left_going_is_shown_again_and_stops(background, qtbot):
    run_dir = background(pretrain_config(name="pt-background"))
    w = open_window(qtbot)
    assert w.reattached == [run_dir] and w.tabs.currentWidget() is w.pretrain_tab
    tab = w.pretrain_tab
    assert tab.is_running() and tab.stop_button.isEnabled() and not tab.form.isEnabled()
    qtbot.waitUntil(lambda: tab.loss_plot.point_count("train") >= 3, timeout=WAIT)  # the curve so far, and on
    assert [tab.corpus_list.item(i).text() for i in range(tab.corpus_list.count())] == [str(FIXTURES / "corpus.txt")]
    with qtbot.waitSignal(tab.run_ended, timeout=WAIT) as ended:
        tab.stop()  # writes the stop file the worker polls
    assert ended.args[0]["type"] == "finished" and ended.args[0]["status"] == "stopped"
    assert (run_dir / "model" / "config.json").is_file()
    qtbot.waitUntil(lambda: not tab.is_running(), timeout=WAIT)


def test_a_re_attached_run_can_be_killed(background, tiny_llama, qa_dataset, qtbot):
    run_dir = background(finetune_config(tiny_llama, qa_dataset, name="ft-background"))
    w = open_window(qtbot)
    tab = w.finetune_tab
    assert w.reattached == [run_dir] and tab.is_running()
    assert type(tab.engine).__name__ == "RunFollower"  # this window did not start the worker
    with qtbot.waitSignal(tab.run_ended, timeout=WAIT) as ended:
        tab.kill()  # RunFollower.kill
    final = ended.args[0]
    assert final["type"] == "failed" and final["kind"] == "killed"
    assert final["message"] == "The worker process was stopped by force before the run finished."
    assert not worker_alive(run_dir) and summarize_run(run_dir).status == "failed"
    assert tab.error_panel.isVisible() and tab.result_panel.resume_button.isVisible()  # it saved a checkpoint


def test_a_re_attached_run_that_does_not_stop_is_killed_after_the_grace_period(background, tiny_llama, qa_dataset,
                                                                               qtbot, monkeypatch):
    from studio.ui.run_follower import RunFollower

    monkeypatch.setenv("FAKE_WORKER_SECONDS_PER_STEP", "60")  # a step longer than the grace period
    stubborn = background(finetune_config(tiny_llama, qa_dataset, name="stubborn"), steps=0)
    follower = RunFollower(stubborn, grace_s=0.3)
    states = []
    follower.state_changed.connect(states.append)
    with qtbot.waitSignal(follower.finished_run, timeout=WAIT) as ended:
        follower.start()
        qtbot.waitUntil(lambda: any(e["type"] == "started" for e in read_events(stubborn / "events.jsonl")),
                        timeout=WAIT)
        follower.request_stop()
        assert (stubborn / "stop").is_file() and follower.state == "stopping"
    final = ended.args[0]
    assert final["type"] == "failed" and final["kind"] == "killed" and follower.killed_after_grace
    assert "did not stop within 0.3 s" in final["message"]
    assert states[-2:] == ["killing", "done"] and not worker_alive(stubborn)
    assert read_events(stubborn / "events.jsonl")[-1] == final  # recorded in the run folder too


@pytest.mark.parametrize("action, outcome", [("request_stop", "stopped"), ("kill", "killed")])
def test_a_stop_or_kill_asked_for_while_the_worker_starts_is_carried_out(action, outcome, tiny_llama, qa_dataset,
                                                                         workspace, qtbot):
    """Stop and kill come from the GUI thread while the engine thread may still be starting the process; the
    wish is kept (under the engine thread's lock) and carried out once the worker exists."""
    from studio.engine.supervisor import prepare_run
    from studio.ui.engine_thread import EngineThread

    run_dir = prepare_run(finetune_config(tiny_llama, qa_dataset), workspace)
    thread = EngineThread(run_dir, grace_s=60)
    states = []
    thread.state_changed.connect(states.append)
    with qtbot.waitSignal(thread.finished_run, timeout=WAIT) as ended:
        thread.start()
        getattr(thread, action)()  # at once: the worker process may not exist yet
    assert thread.wait(30000)
    final = ended.args[0]
    if outcome == "stopped":
        assert final["type"] == "finished" and final["status"] == "stopped", final
        assert "stopping" in states
    else:
        assert final["type"] == "failed" and final["kind"] == "killed", final
        assert "killing" in states
    assert states[-1] == "done" and thread.state == "done" and not worker_alive(run_dir)
