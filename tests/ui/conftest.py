import gc
import os
from pathlib import Path

import pytest

IGNORED_QT_MESSAGES = (
    "propagateSizeHints",  # the offscreen platform plugin says it cannot do this; harmless
    "does not support raise()",  # nor this (a dialog brought to the front); harmless
)


@pytest.fixture(autouse=True)
def _collect_garbage_in_the_gui_thread():
    """As the app does (studio/ui/gc_guard.py): no automatic collection, which could run in a generation
    thread and destroy Qt objects of the GUI thread; collect here, in the GUI thread, after each test."""
    gc.disable()
    yield
    gc.collect()
    # Whatever is still alive now lives on (imported libraries, session fixtures): frozen, it is skipped by
    # every later collection, so the next test's garbage is collected in milliseconds instead of the quarter
    # of a second a walk over every object of torch and transformers takes.
    gc.freeze()


@pytest.fixture(autouse=True)
def _isolated_settings(tmp_path, monkeypatch):
    """Temporary QSettings (an INI file) and a temporary workspace for every UI test."""
    monkeypatch.setenv("ADAPT_STUDIO_SETTINGS", str(tmp_path / "settings.ini"))
    monkeypatch.setenv("ADAPT_STUDIO_WORKSPACE", str(tmp_path / "workspace"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    yield


@pytest.fixture(autouse=True)
def _fail_on_qt_warnings(request, qtlog):
    yield
    from PySide6.QtCore import QtMsgType

    bad = [r.message for r in qtlog.records
           if r.type in (QtMsgType.QtWarningMsg, QtMsgType.QtCriticalMsg, QtMsgType.QtFatalMsg)
           and not any(s in r.message for s in IGNORED_QT_MESSAGES)]
    if bad:
        pytest.fail("Qt warnings:\n" + "\n".join(bad))


@pytest.fixture
def workspace(tmp_path):
    return tmp_path / "workspace"


FAKE_WORKER = Path(__file__).resolve().parents[1] / "fake_worker.py"


@pytest.fixture
def fake_worker(monkeypatch, workspace):
    """Runs started in the test use tests/fake_worker.py: the real worker process and supervision, a recipe that
    trains nothing (a step takes FAKE_WORKER_SECONDS_PER_STEP seconds, 0.05 here)."""
    from studio.engine.runs import kill_worker

    monkeypatch.setattr("studio.engine.supervisor.WORKER_ARGS", [str(FAKE_WORKER)])
    monkeypatch.setenv("FAKE_WORKER_SECONDS_PER_STEP", "0.05")
    yield
    # A run left in the background (or by a failing test) must not outlive the test.
    for run in (workspace / "runs").glob("*") if (workspace / "runs").is_dir() else ():
        kill_worker(run)


def open_window(qtbot, *, end_runs: bool = True):
    """The main window, shown, once its start-up look at the workspace (re-attaching runs) is done. With
    `end_runs` its runs are killed at teardown, before it closes: nothing is left to ask about."""
    from studio.ui.main_window import MainWindow

    def kill_runs(window):
        for tab in window.training_tabs:
            tab.kill()
            qtbot.waitUntil(lambda: not tab.is_running(), timeout=60000)

    window = MainWindow()
    qtbot.addWidget(window, before_close_func=kill_runs if end_runs else None)
    window.show()
    qtbot.waitUntil(lambda: not window.reattaching, timeout=60000)
    return window


def _stop_everything(tab, qtbot):
    engine = getattr(tab, "engine", None)
    if engine is not None:
        engine.kill()
        qtbot.waitUntil(lambda: tab.engine is None, timeout=60000)
    tab.shutdown()


@pytest.fixture
def finetune_tab(qtbot):
    from studio.ui.finetune.tab import FineTuneTab

    tab = FineTuneTab(grace_s=60)
    qtbot.addWidget(tab)
    tab.resize(1300, 850)
    tab.show()
    yield tab
    _stop_everything(tab, qtbot)


@pytest.fixture
def main_window(qtbot):
    from studio.ui.main_window import MainWindow

    window = MainWindow()
    qtbot.addWidget(window)
    window.show()
    qtbot.waitUntil(lambda: not window.reattaching, timeout=60000)
    yield window
    for tab in (window.finetune_tab, window.pretrain_tab):
        _stop_everything(tab, qtbot)


def configure_small_run(tab, model, dataset, qtbot, **overrides):
    """A tiny LoRA run: the tiny model, a small dataset, few short steps."""
    tab.set_model(str(model))
    with qtbot.waitSignal(tab.dataset_panel.analysis_finished, timeout=60000):
        tab.load_dataset(str(dataset))
    values = dict(max_steps=6, batch_size=2, eval_every=3, save_every=3, max_length=64, log_every=1,
                  lora_r=4, lora_alpha=8, validation_fraction=0.25, name="ui-test")
    values.update(overrides)
    for name, value in values.items():
        tab.form.set_value(name, value)
    tab.form.changed.emit()
    # A changed max length re-checks the dataset; Start is allowed once that check has passed.
    qtbot.waitUntil(lambda: not tab.dataset_panel.busy() and tab.start_button.isEnabled(), timeout=60000)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def random_adapter(tiny_llama, tmp_path_factory):
    """A real PEFT adapter with random (non-zero) weights on the tiny model: base and fine-tuned differ."""
    from tests.engine.generation_helpers import make_random_adapter

    return make_random_adapter(tiny_llama, tmp_path_factory.mktemp("ui-adapter"))


@pytest.fixture
def playground_tab(qtbot):
    from studio.ui.playground.tab import PlaygroundTab

    tab = PlaygroundTab()
    qtbot.addWidget(tab)
    tab.resize(1300, 850)
    tab.show()
    yield tab
    tab.stop()
    tab.shutdown()


class DialogAnswerer:
    """Answers every modal message box that opens by clicking the button with `text` (the real dialog, as a
    person would); keeps the title and text of each one it answered."""

    def __init__(self, text: str):
        from PySide6.QtCore import QTimer

        self.text, self.asked = text, []
        self.timer = QTimer()
        self.timer.setInterval(20)
        self.timer.timeout.connect(self._poll)
        self.timer.start()

    @property
    def answered(self) -> int:
        return len(self.asked)

    def _poll(self):
        from PySide6.QtWidgets import QApplication, QMessageBox, QPushButton

        box = QApplication.activeModalWidget()
        if isinstance(box, QMessageBox):
            for button in box.findChildren(QPushButton):
                if button.text().replace("&", "") == self.text:
                    self.asked.append((box.windowTitle(), box.text()))
                    button.click()
                    return

    def stop(self):
        self.timer.stop()
