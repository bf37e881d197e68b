import gc
import os

import pytest

IGNORED_QT_MESSAGES = (
    "propagateSizeHints",  # the offscreen platform plugin says it cannot do this; harmless
)


@pytest.fixture(autouse=True)
def _collect_garbage_in_the_gui_thread():
    """As the app does (studio/ui/gc_guard.py): no automatic collection, which could run in a generation
    thread and destroy Qt objects of the GUI thread; collect here, in the GUI thread, after each test."""
    gc.disable()
    yield
    gc.collect()


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


def _stop_everything(tab, qtbot):
    engine = getattr(tab, "engine", None)
    if engine is not None:
        engine.kill()
        qtbot.waitUntil(lambda: tab.engine is None, timeout=60000)
    tab.shutdown()


@pytest.fixture
def finetune_tab(qtbot):
    from studio.ui.finetune_tab import FineTuneTab

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
    from studio.ui.playground_tab import PlaygroundTab

    tab = PlaygroundTab()
    qtbot.addWidget(tab)
    tab.resize(1300, 850)
    tab.show()
    yield tab
    tab.stop()
    tab.shutdown()
