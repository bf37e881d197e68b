from pathlib import Path

import pytest
from PySide6.QtWidgets import QFileDialog

from studio.engine.runs import summarize_run
from tests.conftest import shared_dataset
from tests.ui.conftest import configure_small_run

LONG = 180_000  # ms: a worker start imports torch and transformers; the test machine is shared


def test_config_form_round_trip_and_method_visibility(finetune_tab):
    tab = finetune_tab
    form = tab.form
    assert form.editor("learning_rate").toolTip().startswith("Peak learning rate")
    form.set_value("learning_rate", 1e-5)
    tab.method_combo.setCurrentIndex(tab.method_combo.findData("full"))
    assert not form.is_field_visible("lora_r")
    tab.method_combo.setCurrentIndex(tab.method_combo.findData("qlora-4bit"))
    assert form.is_field_visible("lora_r")
    cfg = form.config()
    assert cfg.learning_rate == pytest.approx(1e-5)
    form.set_value("name", "")
    form.set_value("max_length", 16)
    cfg = tab.config()
    assert cfg.method == "qlora-4bit" and cfg.max_length == 16


def test_save_and_load_config(finetune_tab, tmp_path, monkeypatch, qa_dataset, qtbot):
    tab = finetune_tab
    tab.form.set_value("max_steps", 17)
    tab.method_combo.setCurrentIndex(tab.method_combo.findData("full"))
    target = tmp_path / "run.yaml"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    tab.save_config_dialog()
    from studio.engine.config import load_config

    cfg = load_config(target)
    assert cfg.max_steps == 17 and cfg.method == "full"
    tab.form.set_value("max_steps", 3)
    tab.method_combo.setCurrentIndex(0)
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(target), ""))
    tab.load_config_dialog()
    assert tab.form.value("max_steps") == 17
    assert tab.method_combo.currentData() == "full"


def test_open_dataset_fills_preview_format_and_summary(finetune_tab, tiny_llama, monkeypatch, qtbot):
    path = shared_dataset("alpaca_en_demo.json")
    tab = finetune_tab
    tab.set_model(str(tiny_llama))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(path), ""))
    panel = tab.dataset_panel
    with qtbot.waitSignal(panel.analysis_finished, timeout=LONG):
        tab.open_dataset_dialog()
    assert panel.path() == str(path)
    assert panel.detected_label.text() == "detected: alpaca"
    assert panel.columns[:3] == ["instruction", "input", "output"]
    assert panel.preview_table.rowCount() > 0
    first = panel.preview_text(0)
    assert "background-color:#d8f0d2" in first  # the trained (assistant) part is marked
    assert "Making crepes" in first.replace("&#x27;", "'")
    assert panel.summary is not None and panel.summary.rows > 100 and panel.summary.format == "alpaca"
    assert "rows" in panel.summary_label.text() and "median" in panel.summary_label.text()
    assert not panel.error_panel.isVisible()
    assert tab.panel.tabs.currentIndex() == 1  # the preview is shown


def test_broken_dataset_names_the_line(finetune_tab, tiny_llama, tmp_path, qtbot):
    bad = tmp_path / "broken.jsonl"
    bad.write_text('{"prompt": "a", "completion": "b"}\n{"prompt": "c", "completion": \n'
                   '{"prompt": "e", "completion": "f"}\n')
    tab = finetune_tab
    tab.set_model(str(tiny_llama))
    with qtbot.waitSignal(tab.dataset_panel.analysis_finished, timeout=LONG):
        tab.load_dataset(str(bad))
    panel = tab.dataset_panel
    assert panel.error_panel.isVisible()
    assert "line 2" in panel.error_panel.message.text()
    assert panel.error_panel.kind == "bad_dataset"
    # Start refuses with a readable error instead of launching a doomed run
    tab.start()
    assert tab.engine is None
    assert tab.error_panel.isVisible() and "line 2" in tab.error_panel.message.text()
    assert not tab.start_button.isEnabled() and "line 2" in tab.start_button.toolTip()  # says why not


def test_column_mapping_fixes_unknown_columns(finetune_tab, tmp_path, qtbot):
    data = tmp_path / "qa.csv"
    data.write_text("question,answer\nWhat is 2+2?,Four.\nWhat is red?,A colour.\n")
    tab = finetune_tab
    tab.set_model("")
    panel = tab.dataset_panel
    with qtbot.waitSignal(panel.analysis_finished, timeout=LONG):
        tab.load_dataset(str(data))
    assert panel.error_panel.isVisible()
    assert panel.mapping_table.rowCount() == 2
    with qtbot.waitSignal(panel.analysis_finished, timeout=LONG):
        panel.mapping_table.cellWidget(0, 1).setCurrentText("instruction")
    with qtbot.waitSignal(panel.analysis_finished, timeout=LONG):
        panel.mapping_table.cellWidget(1, 1).setCurrentText("output")
    assert not panel.error_panel.isVisible()
    assert panel.mapping() == {"question": "instruction", "answer": "output"}
    assert tab.config().column_mapping == {"question": "instruction", "answer": "output"}


def test_start_trains_and_finishes(finetune_tab, tiny_llama, qa_dataset, workspace, qtbot):
    tab = finetune_tab
    configure_small_run(tab, tiny_llama, qa_dataset, qtbot)
    progress_values = []
    tab.progress.valueChanged.connect(progress_values.append)
    with qtbot.waitSignal(tab.run_ended, timeout=LONG) as blocker:
        qtbot.mouseClick(tab.start_button, __import__("PySide6.QtCore", fromlist=["Qt"]).Qt.MouseButton.LeftButton)
        assert not tab.start_button.isEnabled() and tab.stop_button.isEnabled()
        assert tab.panel.tabs.currentIndex() == 0  # the curves, not the data preview the dataset opened
    final = blocker.args[0]
    assert final["type"] == "finished", final
    assert final["status"] == "completed"
    qtbot.waitUntil(lambda: tab.start_button.isEnabled(), timeout=30000)
    assert not tab.stop_button.isEnabled()
    assert tab.loss_plot.point_count("train") >= 3
    assert tab.loss_plot.point_count("train (smoothed)") == tab.loss_plot.point_count("train")
    assert tab.loss_plot.point_count("eval") >= 1
    assert tab.loss_plot.point_count("learning_rate") >= 3
    assert max(progress_values) == 6 and tab.progress.maximum() == 6
    adapter = Path(final["output"])
    assert adapter.name == "adapter" and (adapter / "adapter_config.json").is_file()
    assert adapter.parent.parent == workspace / "runs"
    assert tab.result_panel.isVisible() and str(adapter) in tab.result_label.text()
    assert summarize_run(adapter.parent).status == "completed"
    # open in playground sends the base model and the adapter
    with qtbot.waitSignal(tab.open_in_playground) as sent:
        tab.playground_button.click()
    assert sent.args == [str(tiny_llama), str(adapter)]


def test_method_combo_stays_visible_for_full(finetune_tab):
    tab = finetune_tab
    tab.method_combo.setCurrentIndex(tab.method_combo.findData("full"))
    assert tab.method_combo.isVisibleTo(tab)
    assert not tab.form.editor("lora_r").isVisibleTo(tab)
