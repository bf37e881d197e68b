"""Export a run's model to where people run models: the formats as checkboxes with what the pre-flight check says
about each (size, supported architecture, free disk), then the export as a worker run (task "export") with progress,
and at the end the output folder and the `ollama create` command.

The export is a run like training: its folder is in the workspace (the Runs list shows it), it can be stopped, and
closing the dialog leaves it going (the dialog only hides; quitting the app leaves the worker to finish alone).
"""

from __future__ import annotations

import html
from pathlib import Path

from PySide6.QtCore import QCoreApplication, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import (QCheckBox, QDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPlainTextEdit,
                               QProgressBar, QPushButton, QVBoxLayout)

from studio.engine.errors import StudioError
from studio.ui import settings
from studio.ui.runs.background import call_in_background
from studio.ui.widgets.checks_view import ChecksView

FORMATS = {"merged": "Merged model (a transformers folder: vLLM, transformers, further training)",
           "gguf-f16": "GGUF F16 (llama.cpp, LM Studio: exact)",
           "gguf-bf16": "GGUF BF16",
           "gguf-q8_0": "GGUF Q8_0 (about half the size of F16, nearly the same replies)",
           "ollama": "Ollama Modelfile (with a GGUF of this export)"}
DEFAULT_FORMATS = "merged,gguf-q8_0,ollama"
FORMATS_KEY = "export/formats"


class ExportDialog(QDialog):
    run_started = Signal(object)  # the export's run folder
    run_ended = Signal(object)

    def __init__(self, source: Path, parent=None):
        super().__init__(parent)
        self.source = Path(source)
        self.engine = None
        self.run_dir: Path | None = None
        self._check_generation = 0
        self.setWindowTitle(f"Export — {self.source.name}")
        remembered = str(settings.value(FORMATS_KEY, DEFAULT_FORMATS, str)).split(",")
        self.boxes: dict[str, QCheckBox] = {}
        form = QFormLayout()
        for key, words in FORMATS.items():
            box = QCheckBox(words)
            box.setChecked(key in remembered)
            box.toggled.connect(self.check)
            self.boxes[key] = box
        self.name = QLineEdit(self.source.name.split("-", 2)[-1] if "-" in self.source.name else self.source.name)
        self.name.setToolTip("The file names and the Ollama model name")
        self.system = QLineEdit()
        self.system.setPlaceholderText("optional: a system prompt for the Ollama model")
        form.addRow("Name", self.name)
        form.addRow("System prompt", self.system)
        self.checks = ChecksView()
        self.notes = QLabel()
        self.notes.setWordWrap(True)
        self.notes.setStyleSheet("color: #555;")
        self.progress = QProgressBar()
        self.progress.hide()
        self.status = QLabel("")
        self.status.setWordWrap(True)
        self.status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.log = QPlainTextEdit()
        self.log.setReadOnly(True)
        self.log.setMaximumHeight(120)
        self.log.hide()
        self.start_button = QPushButton("Export")
        self.start_button.setDefault(True)
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.folder_button = QPushButton("Show folder")
        self.folder_button.hide()
        self.folder_button.clicked.connect(self._show_folder)
        buttons = QHBoxLayout()
        buttons.addWidget(self.folder_button)
        buttons.addStretch(1)
        buttons.addWidget(self.stop_button)
        buttons.addWidget(self.start_button)
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"<b>Export</b> {html.escape(str(self.source))}"))
        for box in self.boxes.values():
            layout.addWidget(box)
        layout.addLayout(form)
        for w in (self.checks, self.notes, self.progress, self.status, self.log):
            layout.addWidget(w)
        layout.addLayout(buttons)
        self.resize(620, 420)
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self._leave_running)
        self.check()

    # -- the config and its check ------------------------------------------------------------------
    def formats(self) -> list[str]:
        return [key for key, box in self.boxes.items() if box.isChecked()]

    def config(self):
        from studio.engine.export.config import ExportConfig

        return ExportConfig(source=str(self.source), formats=",".join(self.formats()), name=self.name.text().strip()
                            or "export", system_prompt=self.system.text())

    def check(self, *_) -> None:
        """The pre-flight check of the chosen formats, off the GUI thread (it reads the model's files)."""
        from studio.engine.preflight import preflight

        self._check_generation += 1
        generation = self._check_generation
        try:
            cfg = self.config()
        except StudioError as err:
            self._show_report(None, err)
            return
        workspace = settings.workspace()
        self.start_button.setEnabled(False)
        self.notes.setText("Checking…")
        call_in_background(lambda: preflight(cfg, workspace),
                           lambda result: self._checked(generation, result))

    def _checked(self, generation: int, result) -> None:
        if generation != self._check_generation:
            return  # the formats changed meanwhile
        if isinstance(result, Exception):
            self._show_report(None, result)
        else:
            self._show_report(result, None)

    def _show_report(self, report, error) -> None:
        if error is not None:
            self.checks.hide()
            self.notes.setText(f'<span style="color:#b00020">{html.escape(str(getattr(error, "message", error)))}'
                               "</span>")
            self.start_button.setEnabled(False)
            return
        self.checks.show_report(report)
        self.notes.setText("<br>".join(html.escape(f.message) for f in report.notes))
        self.start_button.setEnabled(report.ok and bool(self.formats()) and self.engine is None)

    # -- running ----------------------------------------------------------------------------------
    def start(self) -> None:
        from studio.engine.supervisor import prepare_run
        from studio.ui.engine_thread import EngineThread

        if self.engine is not None:
            return
        try:
            cfg = self.config()
            self.run_dir = prepare_run(cfg, settings.workspace())
        except (StudioError, OSError) as err:
            self._show_report(None, err)
            return
        settings.set_value(FORMATS_KEY, ",".join(self.formats()))
        self.engine = EngineThread(self.run_dir, parent=self)
        self.engine.event.connect(self._on_event)
        self.engine.finished.connect(self._on_done)
        for w in (*self.boxes.values(), self.name, self.system, self.start_button):
            w.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.progress.setRange(0, 0)
        self.progress.show()
        self.log.show()
        self.status.setText(f"Exporting into {self.run_dir}…")
        self.engine.start()
        self.run_started.emit(self.run_dir)

    def stop(self) -> None:
        if self.engine is not None:
            self.engine.request_stop()
            self.status.setText("Stopping after the current file; what is written is kept.")

    def _on_event(self, ev: dict) -> None:
        from studio.engine.run_state import PHASE_WORDS, describe_event

        if ev.get("type") == "progress":
            fraction = ev.get("fraction")
            if isinstance(fraction, (int, float)):
                self.progress.setRange(0, 1000)
                self.progress.setValue(int(fraction * 1000))
            else:
                self.progress.setRange(0, 0)
            phase = str(ev.get("phase") or "")
            self.status.setText(PHASE_WORDS.get(phase, phase[:1].upper() + phase[1:]) + "…")
        line = describe_event(ev)
        if line:
            self.log.appendPlainText(line)
        if ev.get("type") == "finished":
            self._show_finished(ev)
        elif ev.get("type") == "failed":
            self.status.setText(f'<span style="color:#b00020">{html.escape(str(ev.get("message")))}</span><br>'
                                f'{html.escape(str(ev.get("hint") or ""))}')

    def _show_finished(self, ev: dict) -> None:
        summary = ev.get("summary") or {}
        from studio.engine.presets import human_bytes

        files = [f for f in summary.get("files") or [] if isinstance(f, dict)]
        listed = "<br>".join(f"{html.escape(str(f.get('name')))} ({f.get('format')}): "
                             f"{human_bytes(f.get('bytes') or 0)}" for f in files)
        failed = summary.get("failed") or {}
        command = summary.get("ollama_command")
        text = f"<b>Done ({ev.get('status')}).</b> In {html.escape(str(ev.get('output') or self.run_dir))}"
        text += (f"<br>{listed}" if listed else "")
        text += "".join(f'<br><span style="color:#b00020">{html.escape(str(k))} failed: {html.escape(str(v))}</span>'
                        for k, v in (failed.items() if isinstance(failed, dict) else []))
        text += (f"<br>Ollama: <code>{html.escape(command)}</code>" if command else "")
        self.status.setText(text)
        self.progress.setRange(0, 1000)
        self.progress.setValue(1000)
        self.folder_button.show()
        self.adjustSize()  # the list of files and the command must not be cut off

    def _on_done(self) -> None:
        """The export is over: another one (other formats) can start from here."""
        self.engine = None
        self.stop_button.setEnabled(False)
        for w in (*self.boxes.values(), self.name, self.system):
            w.setEnabled(True)
        self.run_ended.emit(self.run_dir)
        self.check()

    def _show_folder(self) -> None:
        if self.run_dir is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.run_dir)))

    def closeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        # A running export goes on: the dialog hides (its window can be opened again from the same place).
        if self.engine is not None:
            event.ignore()
            self.hide()
            return
        super().closeEvent(event)

    def _leave_running(self) -> None:
        """The app quits during an export: the worker finishes alone (its run folder is complete at the end)."""
        if self.engine is not None:
            self.engine.detach()
            self.engine.wait(10000)
