import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_window_opens_with_three_tabs_without_torch(tmp_path):
    """In a fresh process (other tests import torch): the window opens and torch is not imported."""
    code = (
        "import sys\n"
        "from PySide6.QtWidgets import QApplication\n"
        "app = QApplication([])\n"
        "from studio.ui.main_window import MainWindow\n"
        "w = MainWindow(); w.show(); app.processEvents()\n"
        "print([w.tabs.tabText(i) for i in range(w.tabs.count())])\n"
        "print('torch' in sys.modules, 'transformers' in sys.modules)\n"
        "w.close()\n"
    )
    env = dict(__import__("os").environ, QT_QPA_PLATFORM="offscreen",
               ADAPT_STUDIO_SETTINGS=str(tmp_path / "s.ini"), ADAPT_STUDIO_WORKSPACE=str(tmp_path / "ws"))
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.strip().splitlines()
    assert lines[0] == "['Pre-train', 'Fine-tune', 'Prompt playground', 'Evaluate', 'Runs']"
    assert lines[1] == "False False", "torch/transformers imported while opening the window"


def test_smoke_test_flag(tmp_path):
    env = dict(__import__("os").environ, QT_QPA_PLATFORM="offscreen",
               ADAPT_STUDIO_SETTINGS=str(tmp_path / "s.ini"), ADAPT_STUDIO_WORKSPACE=str(tmp_path / "ws"))
    out = subprocess.run([sys.executable, "-m", "studio.ui.app", "--smoke-test"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("OK")


def test_tabs_menu_and_status(main_window):
    w = main_window
    assert [w.tabs.tabText(i) for i in range(w.tabs.count())] == ["Pre-train", "Fine-tune", "Prompt playground",
                                                                   "Evaluate", "Runs"]
    assert w.tabs.currentWidget() is w.finetune_tab  # the default tab
    menus = [a.text() for a in w.menuBar().actions()]
    assert menus == ["&File", "&Help"]
    assert w.open_dataset_action.shortcut().toString() == "Ctrl+O"
    assert w.quit_action.shortcut().toString() == "Ctrl+Q"
    assert w.device_label.text()


def test_open_in_playground_switches_tab(main_window, monkeypatch):
    w = main_window
    calls = []
    monkeypatch.setattr(w.playground_tab, "load_pair", lambda m, a=None: calls.append((m, a)))
    w.finetune_tab.open_in_playground.emit("/base", "/run/adapter")
    assert calls == [("/base", "/run/adapter")]
    assert w.tabs.currentWidget() is w.playground_tab


def test_last_tab_and_geometry_remembered(qtbot):
    from studio.ui.main_window import MainWindow

    w = MainWindow()
    qtbot.addWidget(w)
    w.show()
    w.tabs.setCurrentIndex(2)
    w.resize(780, 560)  # the offscreen screen is 800x600
    w.close()
    w2 = MainWindow()
    qtbot.addWidget(w2)
    assert w2.tabs.currentIndex() == 2
    assert abs(w2.size().width() - 780) < 30 and abs(w2.size().height() - 560) < 60  # frames differ by platform


def test_workspace_env_wins(workspace):
    from studio.ui import settings

    settings.set_workspace("/somewhere/else")
    assert settings.workspace() == workspace
