"""Help › About / System report: what Adapt Studio is, and the facts a bug report needs (versions, the torch
build, the GPUs and their memory, the workspace and its free disk, the OS) with a "Copy report" button.

The report is the output of `studio doctor`, run in a child process (`python -m studio.cli doctor`; in a
frozen build the app binary, which runs `-m studio.cli` the same way): the window never imports torch for
it, starts no CUDA context of its own, and shows exactly what the command line prints.
"""

from __future__ import annotations

import sys

from PySide6.QtCore import QCoreApplication, QProcess
from PySide6.QtGui import QFontDatabase, QGuiApplication
from PySide6.QtWidgets import QDialog, QDialogButtonBox, QLabel, QPlainTextEdit, QPushButton, QVBoxLayout

ABOUT = ("<b>Adapt Studio</b> — pre-train, fine-tune (LoRA, QLoRA, full) and try prompts with language models on "
         "your own computer. Licensed under Apache-2.0.<br>When something goes wrong, copy this report into the "
         "bug report.")
COLLECTING = "Collecting the report…"


class SystemReportDialog(QDialog):
    def __init__(self, workspace: str = "", parent=None):
        super().__init__(parent)
        self.setWindowTitle("About Adapt Studio / System report")
        self.workspace = str(workspace)
        self.report = ""  # the collected report; empty until it is ready
        about = QLabel(ABOUT)
        about.setWordWrap(True)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        self.text.setFont(QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont))
        self.text.setMinimumSize(640, 320)
        self.copy_button = QPushButton("Copy report")
        self.copy_button.setToolTip("Copy the report to the clipboard, to paste into a bug report")
        self.copy_button.clicked.connect(self.copy_report)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        layout = QVBoxLayout(self)
        layout.addWidget(about)
        layout.addWidget(self.text, 1)
        layout.addWidget(buttons)
        self._process: QProcess | None = None
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.stop)  # no child process outlives the app

    def collect(self) -> None:
        """(Re)collect the report: free memory and disk change, so each opening asks again."""
        if self._process is not None:
            return  # one is under way
        self.report = ""
        self.text.setPlainText(COLLECTING)
        self.copy_button.setEnabled(False)
        proc = QProcess(self)
        args = ["-m", "studio.cli", "doctor"] + (["--workspace", self.workspace] if self.workspace else [])
        proc.finished.connect(lambda code, _status: self._finished(proc, code))
        proc.errorOccurred.connect(lambda error: self._failed_to_start(proc, error))
        self._process = proc
        proc.start(sys.executable, args)

    def _finished(self, proc: QProcess, code: int) -> None:
        if proc is not self._process:
            return
        out = bytes(proc.readAllStandardOutput()).decode(errors="replace").strip()
        err = bytes(proc.readAllStandardError()).decode(errors="replace").strip()
        self._process = None
        proc.deleteLater()
        if code == 0 and out:
            self._show(out)
        else:
            self._show(f"The system report could not be collected (`studio doctor` exited with {code}).\n\n"
                       f"{err or out}".strip())

    def _failed_to_start(self, proc: QProcess, error) -> None:
        if proc is not self._process or error != QProcess.ProcessError.FailedToStart:
            return  # a crash is reported by finished()
        self._process = None
        proc.deleteLater()
        self._show(f"The system report could not be collected: {sys.executable} did not start "
                   f"({proc.errorString()}).")

    def _show(self, text: str) -> None:
        self.report = text
        self.text.setPlainText(text)
        self.copy_button.setEnabled(True)

    def copy_report(self) -> None:
        QGuiApplication.clipboard().setText(self.report or self.text.toPlainText())

    def stop(self) -> None:
        """End a collection still under way (the dialog closes or the window goes)."""
        proc, self._process = self._process, None
        if proc is not None and proc.state() != QProcess.ProcessState.NotRunning:
            proc.kill()
            proc.waitForFinished(5000)

    def done(self, result: int) -> None:
        self.stop()
        super().done(result)
