"""The Pre-train tab: corpus via the file dialog, estimates, a real run in a worker process, results."""

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from tests.conftest import FIXTURES
from studio.ui.pretrain.tab import PretrainTab


@pytest.fixture
def tab(qtbot):
    widget = PretrainTab()
    qtbot.addWidget(widget)
    yield widget
    if widget.engine is not None:
        widget.engine.kill()
        qtbot.waitUntil(lambda: widget.engine is None, timeout=60000)


def _choose_files(monkeypatch, tab, paths):
    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(lambda *a, **k: ([str(p) for p in paths], "")))
    tab.add_files_button.click()


def test_mode_and_objective_show_the_right_fields(tab):
    form = tab.form
    assert form.is_field_visible("architecture") and not form.is_field_visible("model")
    assert not form.is_field_visible("hidden_size") and not form.is_field_visible("mlm_probability")
    form.set_value("architecture", "custom-llama")
    form.changed.emit()
    assert form.is_field_visible("hidden_size")
    form.set_value("mode", "continue")
    form.set_value("objective", "mlm")
    form.changed.emit()
    assert form.is_field_visible("model") and not form.is_field_visible("architecture")
    assert form.is_field_visible("mlm_probability") and not form.is_field_visible("probe_prompts")
    assert "task" not in form.editors and "corpus" not in form.editors


def test_estimate_and_summary_before_start(tab, monkeypatch, tmp_path):
    assert "parameters" in tab.estimate_label.text() and "memory" in tab.estimate_label.text()
    text = tmp_path / "book.txt"
    text.write_text("word " * 5000, encoding="utf-8")
    _choose_files(monkeypatch, tab, [text])
    assert tab.corpus() == [str(text)]
    assert "1 documents" in tab.corpus_label.text() and "blocks" in tab.corpus_label.text()
    assert "steps" in tab.estimate_label.text() and "time on a CPU" in tab.estimate_label.text()
    binary = tmp_path / "blob.txt"
    binary.write_bytes(b"\x00\x01\x02" * 100)
    _choose_files(monkeypatch, tab, [binary])
    assert "blob.txt looks like a binary file" in tab.corpus_label.text()
    assert not tab.start_button.isEnabled() and "blob.txt" in tab.start_button.toolTip()  # says why not
    tab.start()  # e.g. Ctrl+Enter: refused with the file named, nothing started
    assert tab.engine is None and "blob.txt" in tab.error_panel.text()


def test_document_split_choice_recounts_the_documents(tab, monkeypatch, tmp_path):
    text = tmp_path / "articles.txt"
    text.write_text("First article,\ntwo lines.\n\nSecond article.\n\nThird article.\n", encoding="utf-8")
    _choose_files(monkeypatch, tab, [text])
    assert tab.corpus_label.text().startswith("3 documents (text split at blank lines)")
    for how, count in (("file", 1), ("line", 4)):
        tab.form.set_value("document_split", how)
        tab.form.changed.emit()
        assert tab.corpus_label.text().startswith(f"{count} documents"), tab.corpus_label.text()
        assert tab.corpus_summary.documents == count and tab.config().document_split == how


def test_vocab_size_out_of_range_is_refused(tab, monkeypatch, tmp_path):
    from studio.engine.errors import BadConfig

    text = tmp_path / "t.txt"
    text.write_text("some words " * 100, encoding="utf-8")
    _choose_files(monkeypatch, tab, [text])
    editor = tab.form.editor("vocab_size")
    assert (editor.minimum(), editor.maximum()) == (300, 262144)  # the editor cannot leave the range
    with pytest.raises(BadConfig, match="Field 'vocab_size' has the value 100; expected a value from 300"):
        tab.form.config(vocab_size=100, corpus=str(text))  # e.g. a config file from elsewhere
    assert editor.styleSheet()  # the field is marked in the form


def test_text_file_start_plot_finish_model_folder(tab, monkeypatch, qtbot, workspace):
    corpus = FIXTURES / "corpus.txt"
    _choose_files(monkeypatch, tab, [corpus])
    for name, value in dict(architecture="custom-llama", hidden_size=32, num_layers=1, num_heads=2, vocab_size=320,
                            block_size=16, batch_size=4, max_steps=12, eval_every=6, save_every=0,
                            validation_fraction=0.1, probe_prompts="A model", probe_tokens=4).items():
        tab.form.set_value(name, value)
    tab.form.changed.emit()
    got = []
    tab.use_for_finetune.connect(got.append)
    opened = []
    tab.open_in_playground.connect(lambda m, a: opened.append((m, a)))
    with qtbot.waitSignal(tab.run_ended, timeout=240000) as blocker:
        tab.start_button.click()
        assert tab.engine is not None and not tab.start_button.isEnabled()
        qtbot.waitUntil(lambda: tab.loss_plot.point_count("train") >= 2, timeout=240000)
    final = blocker.args[0]
    assert final["type"] == "finished" and final["status"] == "completed", final
    qtbot.waitUntil(lambda: tab.engine is None, timeout=30000)
    assert tab.start_button.isEnabled()
    assert tab.loss_plot.point_count("eval") == 3  # steps 0, 6 and 12
    assert tab.ppl_plot.point_count("perplexity") == 3
    assert "step 12" in tab.probe_view.toPlainText() and "A model" in tab.probe_view.toPlainText()
    assert "blocks of 16" in tab.corpus_label.text()
    model = Path(final["output"])
    assert model.parent.parent == workspace / "runs" and (model / "config.json").is_file()
    assert (model / "tokenizer.json").is_file() and list(model.glob("*.safetensors"))
    assert not tab.result_panel.isHidden()
    qtbot.mouseClick(tab.finetune_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(tab.playground_button, Qt.MouseButton.LeftButton)
    assert got == [str(model)] and opened == [(str(model), "")]
    _estimate_is_calibrated_on_the_run(tab, model.parent)


def _estimate_is_calibrated_on_the_run(tab, run):
    """After a run, the estimate uses its measurements: for that run's settings the time is within 1.5x of
    what the run took (first event to last), and the steps for one epoch within 15% of the exact count."""
    import math

    from studio.engine.estimates import calibration_from_run, pretrain_estimate
    from studio.engine.run_state import load_run_state

    assert "measured on your run" in tab.estimate_label.text()
    state = load_run_state(run)
    took = state.last_time - state.first_time
    summary = tab.corpus_summary
    calibration = calibration_from_run(run)
    values = tab.form.values()
    estimate = pretrain_estimate(values, characters=summary.characters, documents=summary.documents,
                                 calibration=calibration)
    assert took / 1.5 <= estimate.seconds <= took * 1.5, (estimate.seconds, took)
    one_epoch = pretrain_estimate(dict(values, max_steps=0, epochs=1.0), characters=summary.characters,
                                  documents=summary.documents, calibration=calibration)
    exact = math.ceil(state.started["corpus"]["train_blocks"] / values["batch_size"])
    assert abs(one_epoch.steps - exact) <= max(1, 0.15 * exact), (one_epoch.steps, exact)


def test_a_stopped_pretraining_says_once_that_the_model_so_far_was_saved(qtbot):
    from studio.engine.run_state import RunState
    from studio.ui.pretrain.tab import PretrainTab

    tab = PretrainTab()
    qtbot.addWidget(tab)
    state = RunState()
    state.status, state.step, state.output = "stopped", 17, "/runs/x/model"
    tab.panel.result_panel.show_result(state, tab.panel.output_noun, resumable=True)
    text = tab.result_label.text()
    assert "Stopped at step 17; the model so far was saved." in text and text.count("so far") == 1
    tab.shutdown()
