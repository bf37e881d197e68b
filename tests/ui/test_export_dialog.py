"""The Export dialog: the formats with what the check says about them, an export run with its progress, and the
output shown at the end; opened from a finished run's result and from the Runs list."""

from pathlib import Path

from PySide6.QtCore import Qt


def _dialog(memorised_run, qtbot):
    from studio.ui.export_dialog import ExportDialog

    dialog = ExportDialog(memorised_run[0])
    qtbot.addWidget(dialog)
    dialog.show()
    return dialog


def _choose(dialog, qtbot, *formats):
    for key, box in dialog.boxes.items():
        box.setChecked(key in formats)
    qtbot.waitUntil(lambda: dialog.notes.text() != "Checking…", timeout=60000)


def test_the_check_sizes_each_format_and_refuses_ollama_alone(memorised_run, workspace, qtbot):
    dialog = _dialog(memorised_run, qtbot)
    _choose(dialog, qtbot, "merged", "gguf-q8_0")
    assert dialog.start_button.isEnabled(), dialog.checks.text()
    assert "merged" in dialog.notes.text() and "iB" in dialog.notes.text()
    _choose(dialog, qtbot, "ollama")
    assert not dialog.start_button.isEnabled()
    assert "gguf" in dialog.checks.text().lower() and dialog.checks.isVisible()


def test_an_export_runs_and_shows_what_it_wrote(memorised_run, workspace, qtbot):
    dialog = _dialog(memorised_run, qtbot)
    _choose(dialog, qtbot, "merged", "gguf-f16", "ollama")
    dialog.system.setText("Answer briefly.")
    qtbot.waitUntil(dialog.start_button.isEnabled, timeout=60000)
    qtbot.mouseClick(dialog.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: dialog.engine is None and dialog.folder_button.isVisible(), timeout=240000)
    run_dir = dialog.run_dir
    assert run_dir.parent == workspace / "runs"
    assert (run_dir / "merged" / "config.json").is_file() and list(run_dir.glob("*.gguf"))
    modelfile = (run_dir / "Modelfile").read_text(encoding="utf-8")
    assert "FROM ./" in modelfile and "Answer briefly." in modelfile
    assert "Done (completed)" in dialog.status.text() and "ollama create" in dialog.status.text()


def test_export_is_offered_on_a_finished_run_in_the_runs_list(main_window, memorised_run, tiny_llama, qa_dataset,
                                                             workspace, qtbot):
    import shutil

    from studio.engine.config import FineTuneConfig, save_config

    run = workspace / "runs" / memorised_run[0].name
    shutil.copytree(memorised_run[0], run)
    save_config(FineTuneConfig(model=str(tiny_llama), dataset=str(qa_dataset), name="test"), run / "config.yaml")
    view = main_window.runs_view
    view.refresh_now()
    view.select_run(run)
    assert view.export_action.isEnabled()
    view.export_action.trigger()
    dialog = main_window.export_dialogs[str(run)]
    assert dialog.isVisible() and Path(dialog.source) == run
