"""The pre-flight check as the training tabs show it live: what would fail is said before Start, Start stays
disabled on an error, and a refused start leaves no run folder."""

import json
import shutil

from tests.ui.conftest import configure_small_run
from PySide6.QtCore import Qt

LONG = 60000


def runs_in(workspace):
    runs = workspace / "runs"
    return sorted(runs.iterdir()) if runs.is_dir() else []


def test_a_model_of_an_unknown_architecture_disables_start_with_the_reason(finetune_tab, tiny_llama, qa_dataset,
                                                                         tmp_path, qtbot):
    tab = finetune_tab
    configure_small_run(tab, tiny_llama, qa_dataset, qtbot)
    future = tmp_path / "future-model"
    shutil.copytree(tiny_llama, future)
    config = json.loads((future / "config.json").read_text())
    config["model_type"] = "zorbiaformer"
    (future / "config.json").write_text(json.dumps(config))
    tab.set_model(str(future))
    qtbot.waitUntil(lambda: "zorbiaformer" in tab.panel.checks_view.text() and not tab.dataset_panel.busy(),
                    timeout=LONG)
    assert tab.panel.checks_view.isVisible() and not tab.start_button.isEnabled()
    assert "zorbiaformer" in tab.start_button.toolTip()
    tab.set_model(str(tiny_llama))  # fixed: the finding goes and Start comes back
    qtbot.waitUntil(lambda: tab.start_button.isEnabled() and not tab.panel.checks_view.isVisible(), timeout=LONG)


def test_a_rounded_save_interval_is_a_warning_that_does_not_block(finetune_tab, tiny_llama, qa_dataset, qtbot):
    tab = finetune_tab
    configure_small_run(tab, tiny_llama, qa_dataset, qtbot, save_every=5, eval_every=4, max_steps=20)
    qtbot.waitUntil(lambda: "every 8 steps, not 5" in tab.panel.checks_view.text(), timeout=LONG)
    assert tab.start_button.isEnabled()
    tab.form.set_value("save_every", 8)
    tab.form.changed.emit()
    qtbot.waitUntil(lambda: not tab.panel.checks_view.isVisible(), timeout=LONG)


def test_start_refused_by_the_check_leaves_no_run_folder(finetune_tab, tiny_llama, qa_dataset, workspace, qtbot,
                                                         monkeypatch):
    from studio.engine import preflight as preflight_module

    tab = finetune_tab
    configure_small_run(tab, tiny_llama, qa_dataset, qtbot)
    tab.method_combo.setCurrentIndex(tab.method_combo.findData("full"))
    monkeypatch.setattr(preflight_module.shutil, "disk_usage", lambda _p: shutil._ntuple_diskusage(100, 99, 1))
    qtbot.mouseClick(tab.start_button, Qt.MouseButton.LeftButton)  # its report predates the full disk
    assert tab.error_panel.isVisible() and "GB free" in tab.error_panel.message.text()
    assert tab.engine is None and runs_in(workspace) == []


def test_a_model_with_a_short_context_lowers_the_max_length_and_says_so(finetune_tab, tiny_llama, tmp_path):
    short = tmp_path / "short-context"
    shutil.copytree(tiny_llama, short)
    config = json.loads((short / "config.json").read_text())
    config["max_position_embeddings"] = 128
    (short / "config.json").write_text(json.dumps(config))
    tab = finetune_tab
    tab.form.set_value("max_length", 512)
    tab.set_model(str(short))
    assert tab.form.value("max_length") == 128
    assert "lowered from 512 to 128" in tab.status_label.text()
    tab.form.set_value("max_length", 64)
    tab.set_model(str(tiny_llama))  # a longer context leaves the user's choice alone
    assert tab.form.value("max_length") == 64


def test_pretrain_waits_for_text_then_checks_the_model_it_continues(qtbot, tiny_llama, tmp_path):
    from studio.ui.pretrain.tab import PretrainTab

    tab = PretrainTab()
    qtbot.addWidget(tab)
    tab.show()
    try:
        assert not tab.start_button.isEnabled() and tab.panel.hint_label.isVisible()  # a fresh tab: no text yet
        text = tmp_path / "text.txt"
        text.write_text("A sentence to learn from.\n\nAnother one.\n", encoding="utf-8")
        tab.set_corpus([str(text)])
        qtbot.waitUntil(tab.start_button.isEnabled, timeout=LONG)
        tab.form.set_value("mode", "continue")
        tab.form.set_value("model", str(tiny_llama))
        tab.form.set_value("block_size", 4096)  # above the tiny model's 512-token context
        tab.form.changed.emit()
        qtbot.waitUntil(lambda: "Block size 4096 is above" in tab.panel.checks_view.text(), timeout=LONG)
        assert not tab.start_button.isEnabled()
    finally:
        tab.shutdown()
