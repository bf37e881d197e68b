"""A config saved from the Fine-tune tab (Save config…) is the run the CLI runs: `studio train` on that file
saves the same config in its run folder, and the tab loads it back unchanged. The CLI runs the fast fake
worker (tests/fake_worker.py): what is compared here is the config, not the training."""

import signal

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from studio.cli import main
from studio.engine.config import load_config
from tests.ui.conftest import configure_small_run

pytestmark = pytest.mark.usefixtures("fake_worker")


@pytest.fixture
def own_sigint_handler():
    handler = signal.getsignal(signal.SIGINT)  # `studio train` answers Ctrl-C itself
    yield
    signal.signal(signal.SIGINT, handler)


def test_a_config_saved_in_the_tab_runs_the_same_from_the_cli(finetune_tab, tiny_llama, qa_dataset, workspace,
                                                              tmp_path, monkeypatch, qtbot, capsys,
                                                              own_sigint_handler):
    tab = finetune_tab
    configure_small_run(tab, tiny_llama, qa_dataset, qtbot, max_steps=5, learning_rate=3e-4, lora_r=8,
                        lora_alpha=16, name="saved-in-the-tab")
    tab.method_combo.setCurrentIndex(tab.method_combo.findData("full"))
    shown = tab.config()
    target = tmp_path / "from-the-tab.yaml"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    qtbot.mouseClick(tab.save_button, Qt.MouseButton.LeftButton)
    assert tab.status_label.text() == f"Saved {target} — run it with: studio train {target}"
    assert load_config(target) == shown

    assert main(["train", str(target), "--workspace", str(workspace), "--quiet"]) == 0
    run_line = next(line for line in capsys.readouterr().err.splitlines() if line.startswith("run folder: "))
    run_dir = workspace / "runs" / run_line.rsplit("/", 1)[-1]
    assert load_config(run_dir / "config.yaml") == shown  # the same run, as the CLI resolved and saved it

    tab.method_combo.setCurrentIndex(tab.method_combo.findData("lora"))
    tab.form.set_value("max_steps", 99)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(run_dir / "config.yaml"), ""))
    tab.load_config_dialog()  # the run's config back in the tab: the form shows what ran
    assert tab.config() == shown
