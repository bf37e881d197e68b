import json
import os
import stat
import subprocess
import sys
from functools import partialmethod
from pathlib import Path

import pytest
import shiboken6
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QApplication, QDialogButtonBox

from studio.engine.config import FineTuneConfig, save_config
from studio.engine.events import EventWriter
from studio.ui import settings
from tests.ui.conftest import open_window

ROOT = Path(__file__).resolve().parents[2]
TITLES = ["Pre-train", "Fine-tune", "Prompt playground", "Evaluate", "Runs"]


def finished_run(workspace: Path, name: str) -> Path:
    from studio.engine.runs import create_run_dir

    run = create_run_dir(workspace, name)
    save_config(FineTuneConfig(name=name, model="/models/m", dataset="/data/d.json"), run / "config.yaml")
    events = EventWriter(run / "events.jsonl")
    events.emit("started", total_steps=2)
    events.emit("finished", status="completed", output=str(run / "adapter"))
    events.close()
    return run


def hugging_face_cache(folder: Path, repo_id: str) -> Path:
    """A Hugging Face cache as huggingface_hub lays it out, holding one causal language model's config."""
    repo = folder / f"models--{repo_id.replace('/', '--')}"
    (repo / "blobs").mkdir(parents=True)
    (repo / "refs").mkdir()
    (repo / "snapshots" / "abc123").mkdir(parents=True)
    (repo / "blobs" / "b1").write_text(json.dumps({"architectures": ["LlamaForCausalLM"]}))
    (repo / "snapshots" / "abc123" / "config.json").symlink_to(Path("../../blobs/b1"))
    (repo / "refs" / "main").write_text("abc123")
    return folder


def test_window_opens_with_every_tab_without_torch(tmp_path):
    """In a fresh process (other tests import torch): building and showing the window imports neither torch nor
    transformers (what the tabs check later, in their own threads, may)."""
    code = (
        "import sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from studio.ui.main_window import MainWindow\n"
        "w = MainWindow(); w.show()\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)\n"
        "app.processEvents()\n"
        "print([w.tabs.tabText(i) for i in range(w.tabs.count())])\n"
        "w.close()\n"
    )
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen",
               ADAPT_STUDIO_SETTINGS=str(tmp_path / "s.ini"), ADAPT_STUDIO_WORKSPACE=str(tmp_path / "ws"))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "False False", "torch/transformers imported while opening the window"
    assert lines[1] == str(TITLES)


def test_smoke_test_flag(tmp_path):
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen",
               ADAPT_STUDIO_SETTINGS=str(tmp_path / "s.ini"), ADAPT_STUDIO_WORKSPACE=str(tmp_path / "ws"))
    out = subprocess.run([sys.executable, "-m", "studio.ui.app", "--smoke-test"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("OK")


def test_tabs_menu_and_status(main_window, workspace):
    w = main_window
    assert [w.tabs.tabText(i) for i in range(w.tabs.count())] == TITLES
    assert w.tabs.currentWidget() is w.finetune_tab  # the default tab
    menus = [a.text() for a in w.menuBar().actions()]
    assert menus == ["&File", "&Help"]
    assert w.open_dataset_action.shortcut().toString() == "Ctrl+O"
    assert w.quit_action.shortcut().toString() == "Ctrl+Q"
    assert w.workspace_label.text() == f"Workspace: {workspace}"


@pytest.mark.skipif(os.name == "nt", reason="the stand-in nvidia-smi is a shell script")
def test_the_status_bar_names_the_gpu_or_says_cpu_only(qtbot, tmp_path, monkeypatch):
    from studio.ui.main_window import CPU_ONLY

    empty = tmp_path / "no-gpu"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # no nvidia-smi: a computer without an NVIDIA driver
    w = open_window(qtbot)
    assert w.device_label.text() == CPU_ONLY

    gpu = tmp_path / "gpu"
    gpu.mkdir()
    smi = gpu / "nvidia-smi"  # answers as nvidia-smi does for one GPU (the machine running the tests has none)
    smi.write_text("#!/bin/sh\necho 'NVIDIA Test GPU, 8000, 16384'\n")
    smi.chmod(smi.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("PATH", str(gpu))
    w2 = open_window(qtbot)
    qtbot.waitUntil(lambda: w2.device_label.text() != "Checking the device…", timeout=30000)
    assert w2.device_label.text() == "GPU: NVIDIA Test GPU — 7.8 of 16 GiB free"


def test_the_window_opens_before_the_workspace_and_the_model_cache_are_read(qtbot, workspace, tmp_path, monkeypatch):
    """The runs and the Hugging Face cache are read in threads: the widgets say they are reading, then show
    what was found (one cache scan serves every model picker)."""
    import huggingface_hub.constants

    from studio.ui.main_window import MainWindow
    from studio.ui.widgets import model_picker

    runs = [finished_run(workspace, "first"), finished_run(workspace, "second")]
    cache = hugging_face_cache(tmp_path / "hf-cache", "acme/tiny-chat")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(model_picker, "_cache_scan", None)  # this window's scan is the first

    w = MainWindow()
    qtbot.addWidget(w)
    pickers = [w.finetune_tab.model_picker, w.playground_tab.model_picker, w.evaluate_tab.model_picker]

    def entries(picker):
        return [picker.combo.itemText(i) for i in range(picker.combo.count())]

    # Built, and nothing read in the GUI thread yet: each widget says it is reading.
    assert w.runs_view.runs == [] and w.runs_view.empty_label.text().startswith("Reading the runs in")
    assert w.reattaching
    for picker in pickers:
        assert picker.scanning and entries(picker)[-1] == model_picker.SCANNING_LABEL
        assert picker.model() != model_picker.SCANNING
    qtbot.waitUntil(lambda: len(w.runs_view.runs) == 2, timeout=30000)
    assert {r.path for r in w.runs_view.runs} == set(runs)
    qtbot.waitUntil(lambda: not any(p.scanning for p in pickers), timeout=30000)
    for picker in pickers:
        assert "acme/tiny-chat (cached)" in entries(picker) and model_picker.SCANNING_LABEL not in entries(picker)
    picker = pickers[0]
    picker.combo.setCurrentIndex(entries(picker).index("acme/tiny-chat (cached)"))
    assert picker.model() == "acme/tiny-chat"
    qtbot.waitUntil(lambda: not w.reattaching, timeout=30000)


def test_changing_the_workspace_in_settings_shows_its_runs(qtbot, tmp_path, monkeypatch):
    from studio.ui.main_window import SettingsDialog

    monkeypatch.delenv("ADAPT_STUDIO_WORKSPACE")  # the variable would win over the setting
    first, second = tmp_path / "first", tmp_path / "second"
    settings.set_workspace(first)
    run = finished_run(second, "elsewhere")
    w = open_window(qtbot)
    assert w.workspace_label.text() == f"Workspace: {first}"
    qtbot.waitUntil(lambda: not w.runs_view.catalog.scanning, timeout=30000)
    assert w.runs_view.runs == []
    answered = []

    def answer():  # the real dialog, filled in and accepted as a person would
        dialog = QApplication.activeModalWidget()
        if not isinstance(dialog, SettingsDialog):
            return QTimer.singleShot(20, answer)
        assert dialog.workspace_edit.text() == str(first)
        dialog.workspace_edit.setText(str(second))
        dialog.findChild(QDialogButtonBox).button(QDialogButtonBox.StandardButton.Ok).click()
        answered.append(True)

    QTimer.singleShot(20, answer)
    w.settings_action.trigger()
    assert answered
    assert settings.workspace() == second and w.workspace_label.text() == f"Workspace: {second}"
    qtbot.waitUntil(lambda: [r.path for r in w.runs_view.runs] == [run], timeout=30000)


def test_closing_while_the_playground_loads_a_model_lets_the_load_finish(qtbot, tiny_llama, monkeypatch):
    """A load longer than the close waits for (forced here: no wait at all): the window and its tabs go, the
    loading thread is not destroyed while it runs; it finishes, then deletes itself."""
    from studio.ui.generation_thread import GenerationThread
    from studio.ui.main_window import MainWindow

    monkeypatch.setattr(GenerationThread, "shutdown", partialmethod(GenerationThread.shutdown, wait_ms=0))
    w = MainWindow()
    w.show()
    qtbot.waitUntil(lambda: not w.reattaching, timeout=30000)
    tab = w.playground_tab
    tab.load_pair(str(tiny_llama))
    tab.load_models()
    thread = tab.generation
    tab.shutdown()  # what closing the window does to the tab, while the model loads
    assert thread.isRunning() and thread.parent() is QApplication.instance()  # handed to the application
    assert w.close()
    shiboken6.delete(w)  # the window and the tab are gone now, while the model may still load
    assert not shiboken6.isValid(tab)
    qtbot.waitUntil(lambda: not shiboken6.isValid(thread), timeout=60000)  # it finished and deleted itself


def test_last_tab_and_geometry_remembered(qtbot):
    w = open_window(qtbot)
    w.tabs.setCurrentIndex(2)
    w.resize(780, 560)  # the offscreen screen is 800x600
    w.close()
    w2 = open_window(qtbot)
    assert w2.tabs.currentIndex() == 2
    assert abs(w2.size().width() - 780) < 30 and abs(w2.size().height() - 560) < 60  # frames differ by platform


def test_workspace_env_wins(workspace):
    settings.set_workspace("/somewhere/else")
    assert settings.workspace() == workspace
