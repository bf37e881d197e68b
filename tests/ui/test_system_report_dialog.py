"""Help › About / System report: the menu opens the dialog, the report is the real `studio doctor` output for the
app's workspace, and "Copy report" puts it on the clipboard."""

from __future__ import annotations

import re
from importlib.metadata import version

from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication

from studio.ui.system_report_dialog import COLLECTING


def _help_action(window, text):
    help_menu = next(a.menu() for a in window.menuBar().actions() if a.text() == "&Help")
    return next(a for a in help_menu.actions() if a.text() == text)


def test_menu_opens_the_report_and_copy_puts_it_on_the_clipboard(main_window, workspace, qtbot):
    _help_action(main_window, "About / System report").trigger()
    dialog = main_window.system_report_dialog
    assert dialog is not None and dialog.isVisible()
    qtbot.waitUntil(lambda: bool(dialog.report), timeout=300_000)

    report = dialog.text.toPlainText()
    assert report == dialog.report and report != COLLECTING
    assert report.startswith("Adapt Studio ")
    assert re.search(rf"^torch +{re.escape(version('torch'))} ", report, re.M)
    assert str(workspace) in report  # the app's workspace (here the test's), with its free disk
    assert "GiB free" in report

    QGuiApplication.clipboard().clear()
    qtbot.mouseClick(dialog.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == report

    # Opening it again collects afresh in the same dialog; closing it leaves no process behind.
    _help_action(main_window, "About / System report").trigger()
    assert main_window.system_report_dialog is dialog
    qtbot.waitUntil(lambda: bool(dialog.report), timeout=300_000)
    dialog.close()
    assert dialog._process is None


def test_closing_while_collecting_ends_the_child_process(main_window, qtbot):
    main_window.show_system_report()
    dialog = main_window.system_report_dialog
    process = dialog._process
    assert process is not None and dialog.text.toPlainText() == COLLECTING
    assert not dialog.copy_button.isEnabled()
    dialog.reject()
    assert dialog._process is None
    assert process.state() == process.ProcessState.NotRunning
