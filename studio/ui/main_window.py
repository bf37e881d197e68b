"""The main window: the Pre-train, Fine-tune and Prompt playground tabs, the menu and the status bar.

It opens fast: nothing here imports torch or transformers; the device shown in the status bar comes
from `nvidia-smi` (run asynchronously) when there is one.
"""

from __future__ import annotations

import shutil

from PySide6.QtCore import QByteArray, QProcess, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QMainWindow, QMessageBox, QPushButton, QTabWidget)

from studio.ui import settings
from studio.ui.finetune_tab import FineTuneTab
from studio.ui.playground_tab import PlaygroundTab
from studio.ui.pretrain_tab import PretrainTab

CPU_ONLY = "CPU only — training is slow; small models and LoRA work"
TAB_TITLES = ("Pre-train", "Fine-tune", "Prompt playground")


class SettingsDialog(QDialog):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Settings")
        self.workspace_edit = QLineEdit(str(settings.workspace()))
        self.workspace_edit.setMinimumWidth(420)
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.workspace_edit, 1)
        row.addWidget(browse)
        form = QFormLayout(self)
        form.addRow("Workspace folder", row)
        note = QLabel("Runs (configs, checkpoints, adapters) are saved under this folder. The environment "
                      "variable ADAPT_STUDIO_WORKSPACE, when set, takes precedence.")
        note.setWordWrap(True)
        form.addRow(note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose the workspace folder", self.workspace_edit.text())
        if folder:
            self.workspace_edit.setText(folder)

    def workspace(self) -> str:
        return self.workspace_edit.text().strip()


class MainWindow(QMainWindow):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Adapt Studio")
        self._closing = False
        self.tabs = QTabWidget()
        self.pretrain_tab = PretrainTab(self)
        self.finetune_tab = FineTuneTab(self)
        self.playground_tab = PlaygroundTab(self)
        for tab, title in zip((self.pretrain_tab, self.finetune_tab, self.playground_tab), TAB_TITLES):
            self.tabs.addTab(tab, title)
        self.setCentralWidget(self.tabs)

        self.finetune_tab.open_in_playground.connect(self.open_in_playground)
        if hasattr(self.pretrain_tab, "use_for_finetune"):
            self.pretrain_tab.use_for_finetune.connect(self.use_for_finetune)
        if hasattr(self.pretrain_tab, "open_in_playground"):
            self.pretrain_tab.open_in_playground.connect(self.open_in_playground)
        self.finetune_tab.run_ended.connect(self._maybe_close_after_run)

        self._build_menu()
        self.device_label = QLabel("Checking the device…")
        self.statusBar().addPermanentWidget(self.device_label)
        self.workspace_label = QLabel()
        self.statusBar().addWidget(self.workspace_label)
        self._update_workspace_label()
        self._device_process: QProcess | None = None
        self.detect_device()
        self._restore()
        self.reattached = self.reattach_runs()

    def reattach_runs(self) -> list:
        """Show again the runs whose worker outlived the last window; mark dead ones failed."""
        from studio.engine.reattach import close_orphans, live_runs
        from studio.engine.runs import summarize_run

        workspace = settings.workspace()
        close_orphans(workspace)
        attached = []
        for run_dir in live_runs(workspace):
            tab = self.pretrain_tab if summarize_run(run_dir).task == "pretrain" else self.finetune_tab
            if hasattr(tab, "attach") and not (hasattr(tab, "is_running") and tab.is_running()):
                tab.attach(run_dir)
                self.tabs.setCurrentWidget(tab)
                attached.append(run_dir)
        return attached

    # -- menu --------------------------------------------------------------------------------
    def _build_menu(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        self.open_dataset_action = QAction("Open dataset…", self, shortcut=QKeySequence("Ctrl+O"))
        self.open_dataset_action.triggered.connect(self.open_dataset)
        self.open_run_action = QAction("Open run folder…", self)
        self.open_run_action.triggered.connect(self.open_run_folder)
        self.settings_action = QAction("Settings…", self)
        self.settings_action.triggered.connect(self.show_settings)
        self.quit_action = QAction("Quit", self, shortcut=QKeySequence("Ctrl+Q"))
        self.quit_action.triggered.connect(self.close)
        for action in (self.open_dataset_action, self.open_run_action, None, self.settings_action, None,
                       self.quit_action):
            file_menu.addSeparator() if action is None else file_menu.addAction(action)
        help_menu = self.menuBar().addMenu("&Help")
        self.about_action = QAction("About Adapt Studio", self)
        self.about_action.triggered.connect(self.show_about)
        help_menu.addAction(self.about_action)

    def open_dataset(self) -> None:
        self.tabs.setCurrentWidget(self.finetune_tab)
        self.finetune_tab.open_dataset_dialog()

    def open_run_folder(self) -> None:
        start = str(settings.workspace() / "runs")
        folder = QFileDialog.getExistingDirectory(self, "Open a run folder", start)
        if folder:
            QDesktopServices.openUrl(QUrl.fromLocalFile(folder))

    def show_settings(self) -> None:
        dialog = SettingsDialog(self)
        if dialog.exec() == QDialog.DialogCode.Accepted and dialog.workspace():
            settings.set_workspace(dialog.workspace())
            self._update_workspace_label()
            self.finetune_tab.runs_view.set_workspace(settings.workspace())

    def show_about(self) -> None:
        QMessageBox.about(self, "About Adapt Studio",
                          "<b>Adapt Studio</b><br>Pre-train, fine-tune (LoRA, QLoRA, full) and try prompts with "
                          "language models on your own computer.<br><br>Training runs in a separate worker process; "
                          "every run is a folder in the workspace with its config, events, checkpoints and output."
                          "<br>Licensed under Apache-2.0.")

    def _update_workspace_label(self) -> None:
        self.workspace_label.setText(f"Workspace: {settings.workspace()}")

    # -- cross-tab ---------------------------------------------------------------------------
    def open_in_playground(self, model: str, adapter: str) -> None:
        self.playground_tab.load_pair(model, adapter)
        self.tabs.setCurrentWidget(self.playground_tab)

    def use_for_finetune(self, path: str) -> None:
        self.finetune_tab.set_model(path)
        self.tabs.setCurrentWidget(self.finetune_tab)

    # -- device ------------------------------------------------------------------------------
    def detect_device(self) -> None:
        smi = shutil.which("nvidia-smi")
        if not smi:
            self.device_label.setText(CPU_ONLY)
            return
        proc = QProcess(self)
        proc.finished.connect(lambda *_: self._device_found(proc))
        proc.errorOccurred.connect(lambda *_: self.device_label.setText(CPU_ONLY))
        proc.start(smi, ["--query-gpu=name,memory.free,memory.total", "--format=csv,noheader,nounits"])
        self._device_process = proc

    def _device_found(self, proc: QProcess) -> None:
        out = bytes(proc.readAllStandardOutput()).decode(errors="replace").strip()
        gpus = []
        for line in out.splitlines():
            parts = [p.strip() for p in line.split(",")]
            if len(parts) == 3:
                try:
                    gpus.append(f"{parts[0]} — {float(parts[1]) / 1024:.1f} of {float(parts[2]) / 1024:.0f} GiB free")
                except ValueError:
                    continue
        self.device_label.setText("GPU: " + "; ".join(gpus) if gpus else CPU_ONLY)

    # -- state -------------------------------------------------------------------------------
    def _restore(self) -> None:
        geometry = settings.value("window/geometry")
        if isinstance(geometry, QByteArray) and not geometry.isEmpty():
            self.restoreGeometry(geometry)
        else:
            self.resize(1400, 900)
        index = settings.value("window/tab", 1, int)
        self.tabs.setCurrentIndex(index if 0 <= index < self.tabs.count() else 1)

    def _save_state(self) -> None:
        settings.set_value("window/geometry", self.saveGeometry())
        settings.set_value("window/tab", self.tabs.currentIndex())

    def _maybe_close_after_run(self, _final: dict) -> None:
        if self._closing:
            self.close()

    def closeEvent(self, event) -> None:
        if not self.finetune_tab.confirm_close():
            self._closing = self.finetune_tab.is_running() and self.finetune_tab.engine.state == "stopping"
            event.ignore()
            return
        for tab in (self.pretrain_tab, self.playground_tab):
            ok = getattr(tab, "confirm_close", None)
            if ok is not None and not ok():
                event.ignore()
                return
        self._save_state()
        for tab in (self.finetune_tab, self.pretrain_tab, self.playground_tab):
            shutdown = getattr(tab, "shutdown", None)
            if shutdown is not None:
                shutdown()
        if self._device_process is not None and self._device_process.state() != QProcess.ProcessState.NotRunning:
            self._device_process.kill()
            self._device_process.waitForFinished(1000)
        event.accept()
