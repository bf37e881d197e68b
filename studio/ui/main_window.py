"""The main window: the Pre-train, Fine-tune, Prompt playground and Evaluate tabs, the Runs list, the menu and
the status bar.

It opens fast: nothing here imports torch or transformers; the device shown in the status bar comes
from `nvidia-smi` (run asynchronously) when there is one; the workspace (the runs an earlier window left
going, the Runs list) and the Hugging Face cache (the model pickers) are read in threads.
"""

from __future__ import annotations

import shutil

from PySide6.QtCore import QByteArray, QProcess, QTimer, QUrl, Signal
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence
from PySide6.QtWidgets import (QDialog, QDialogButtonBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit,
                               QApplication, QMainWindow, QMessageBox, QPushButton, QTabWidget)

from studio.ui import settings
from studio.ui.evaluate.tab import EvaluateTab
from studio.ui.finetune.tab import FineTuneTab
from studio.ui.playground.tab import PlaygroundTab
from studio.ui.pretrain.tab import PretrainTab
from studio.ui.runs import RunsView

CPU_ONLY = "CPU only — training is slow; small models and LoRA work"
TAB_TITLES = ("Pre-train", "Fine-tune", "Prompt playground", "Evaluate", "Runs")
STOP_AND_CLOSE, KEEP_IN_BACKGROUND = "Stop and close", "Keep it running in the background"


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


def _unfinished_runs(workspace) -> tuple[list, list]:
    """(run folder, task) of each run whose worker is still alive, and the runs just marked failed (their
    worker died without a final event). Runs in a thread at start-up."""
    from studio.engine.reattach import find_unfinished
    from studio.engine.runs import read_run_config

    live, closed = find_unfinished(workspace)
    return [(run, str(read_run_config(run).get("task", "sft"))) for run in live], closed


class MainWindow(QMainWindow):
    reattach_finished = Signal(list)  # the run folders shown again, once the start-up look at the workspace is done

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Adapt Studio")
        self._closing = False  # the user chose "stop and close": close once every run has stopped
        from studio.ui.widgets.wheel_guard import install_wheel_guard

        install_wheel_guard(QApplication.instance())  # spin boxes and combos take the wheel only when focused
        self.tabs = QTabWidget()
        self.pretrain_tab = PretrainTab(self)
        self.finetune_tab = FineTuneTab(self)
        self.playground_tab = PlaygroundTab(self)
        self.evaluate_tab = EvaluateTab(self)
        self.runs_view = RunsView(self)
        for tab, title in zip((self.pretrain_tab, self.finetune_tab, self.playground_tab, self.evaluate_tab,
                               self.runs_view), TAB_TITLES):
            self.tabs.addTab(tab, title)
        self.setCentralWidget(self.tabs)
        self.training_tabs = (self.pretrain_tab, self.finetune_tab)
        self.run_tabs = (*self.training_tabs, self.evaluate_tab)  # every tab that runs a worker

        for tab in self.training_tabs:
            tab.open_in_playground.connect(self.open_in_playground)
            tab.panel.result_panel.add_button("Evaluate", lambda _=False, t=tab: self.evaluate_result_of(t))
            tab.panel.result_panel.add_button("Export…", lambda _=False, t=tab: self.open_export(t.run_dir))
            tab.run_ended.connect(lambda *_: self.evaluate_tab.candidates.refresh_if_changed())
        for tab in self.run_tabs:
            tab.run_started.connect(lambda *_: self.runs_view.refresh())
            tab.run_ended.connect(lambda *_: self.runs_view.refresh())
            tab.panel.running_changed.connect(self._close_when_all_stopped)
        self.pretrain_tab.use_for_finetune.connect(self.use_for_finetune)
        self.playground_tab.use_dataset_in_finetune.connect(self.use_dataset_for_finetune)
        self.playground_tab.evaluate_requested.connect(self.evaluate_from_playground)
        self.playground_tab.train_on_feedback.connect(self.train_on_feedback)
        self.runs_view.open_in_playground.connect(self.open_in_playground)
        self.runs_view.resume_requested.connect(self.resume_run)
        self.runs_view.load_config_requested.connect(self.load_run_config)
        self.runs_view.evaluate_requested.connect(self.evaluate_output)
        self.runs_view.show_results_requested.connect(self.show_evaluation)
        self.runs_view.export_requested.connect(self.open_export)
        self.export_dialogs: dict = {}  # run folder -> its export dialog (kept while an export runs in it)

        self._build_menu()
        self.device_label = QLabel("Checking the device…")
        self.statusBar().addPermanentWidget(self.device_label)
        self.workspace_label = QLabel()
        self.statusBar().addWidget(self.workspace_label)
        self._update_workspace_label()
        self._device_process: QProcess | None = None
        self.detect_device()
        self._restore()
        # The workspace is read in threads (the Runs list says it is reading): the window opens at once.
        self.reattached: list = []  # filled when the runs left going by an earlier window are found
        self.runs_view.set_workspace(settings.workspace(), background=True)
        self.reattach_runs()

    def tab_for_task(self, task: str):
        return {"pretrain": self.pretrain_tab, "eval": self.evaluate_tab}.get(task, self.finetune_tab)

    def reattach_runs(self) -> None:
        """Show again the runs whose worker outlived the last window, and mark failed those whose worker died;
        the workspace is read in a thread and `reattach_finished` says when this is done."""
        from studio.ui.runs.background import call_in_background

        workspace = settings.workspace()
        self.reattaching = True
        self._reattach_call = call_in_background(lambda: _unfinished_runs(workspace), self._unfinished_found)

    def _unfinished_found(self, result) -> None:
        self.reattaching = False
        if isinstance(result, Exception):
            self.statusBar().showMessage(f"The runs in the workspace could not be read: {result}")
            self.reattach_finished.emit([])
            return
        live, closed = result
        for run_dir, task in live:
            tab = self.tab_for_task(task)
            if not tab.is_running():
                tab.attach(run_dir)
                self.tabs.setCurrentWidget(tab)
                self.reattached.append(run_dir)
        if closed:
            self.runs_view.refresh()  # their status changed to failed
        self.reattach_finished.emit(list(self.reattached))

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
        self.system_report_action = QAction("About / System report", self)
        self.system_report_action.triggered.connect(self.show_system_report)
        help_menu.addAction(self.system_report_action)
        self.system_report_dialog = None  # made on first use

    def open_dataset(self) -> None:
        if self.tabs.currentWidget() is self.evaluate_tab:  # Ctrl+O there opens the held-out file
            self.evaluate_tab.open_heldout_dialog()
            return
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
            self.runs_view.set_workspace(settings.workspace(), background=True)
            self.reattach_runs()  # a run still going in that workspace is shown as at start-up
            self.evaluate_tab.candidates.refresh_if_changed()

    def show_about(self) -> None:
        QMessageBox.about(self, "About Adapt Studio",
                          "<b>Adapt Studio</b><br>Pre-train, fine-tune (LoRA, QLoRA, full) and try prompts with "
                          "language models on your own computer.<br><br>Training runs in a separate worker process; "
                          "every run is a folder in the workspace with its config, events, checkpoints and output."
                          "<br>Licensed under Apache-2.0.")

    def show_system_report(self) -> None:
        from studio.ui.system_report_dialog import SystemReportDialog

        if self.system_report_dialog is None:
            self.system_report_dialog = SystemReportDialog(parent=self)
        self.system_report_dialog.workspace = str(settings.workspace())
        self.system_report_dialog.collect()
        self.system_report_dialog.show()
        self.system_report_dialog.activateWindow()

    def _update_workspace_label(self) -> None:
        self.workspace_label.setText(f"Workspace: {settings.workspace()}")

    # -- cross-tab ---------------------------------------------------------------------------
    def open_in_playground(self, model: str, adapter: str) -> None:
        self.playground_tab.load_pair(model, adapter)
        self.tabs.setCurrentWidget(self.playground_tab)

    def use_for_finetune(self, path: str) -> None:
        self.finetune_tab.set_model(path)
        self.tabs.setCurrentWidget(self.finetune_tab)

    def use_dataset_for_finetune(self, path: str) -> None:
        self.finetune_tab.load_dataset(path)
        self.tabs.setCurrentWidget(self.finetune_tab)

    def train_on_feedback(self, fields: dict) -> None:
        """The playground's "Train on my feedback": preference tuning on the feedback file, in the Fine-tune tab."""
        self.tabs.setCurrentWidget(self.finetune_tab)
        self.finetune_tab.open_preference(fields)

    def evaluate_output(self, output: str, model: str = "") -> None:
        """A finished run's adapter or model, ticked as a candidate in the Evaluate tab (with its base model)."""
        self.evaluate_tab.add_candidate(output, model)
        self.tabs.setCurrentWidget(self.evaluate_tab)

    def evaluate_result_of(self, tab) -> None:
        """The Evaluate button of a training tab's result: its output, on the model it was trained from."""
        from studio.engine.runs import read_run_config

        if tab.panel.output:
            model = str(read_run_config(tab.run_dir).get("model") or "") if tab.run_dir else ""
            self.evaluate_output(tab.panel.output, model)

    def open_export(self, run_dir) -> None:
        """The export dialog of a run (the one already open for it, if an export is still going there)."""
        from studio.ui.export_dialog import ExportDialog

        if run_dir is None:
            return
        dialog = self.export_dialogs.get(str(run_dir))
        if dialog is None:
            dialog = self.export_dialogs[str(run_dir)] = ExportDialog(run_dir, self)
            dialog.run_started.connect(lambda *_: self.runs_view.refresh())
            dialog.run_ended.connect(lambda *_: self.runs_view.refresh())
        dialog.show()
        dialog.raise_()

    def evaluate_from_playground(self, fields: dict) -> None:
        self.evaluate_tab.apply(**fields)
        self.tabs.setCurrentWidget(self.evaluate_tab)

    def show_evaluation(self, run_dir) -> None:
        self.evaluate_tab.open_run(run_dir)
        self.tabs.setCurrentWidget(self.evaluate_tab)

    def resume_run(self, run_dir) -> None:
        from studio.engine.runs import summarize_run

        tab = self.tab_for_task(summarize_run(run_dir).task)
        self.tabs.setCurrentWidget(tab)
        tab.resume(run_dir)

    def load_run_config(self, cfg) -> None:
        tab = self.tab_for_task(getattr(cfg, "task", "sft"))
        tab.set_config(cfg)
        self.tabs.setCurrentWidget(tab)

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

    def running_tabs(self) -> list:
        return [tab for tab in self.run_tabs if tab.panel.run_in_progress()]

    def ask_about_running_runs(self, tabs) -> str:
        """Stop and close, keep it running in the background, or cancel (the default)."""
        nouns = " and ".join(tab.panel.run_noun.lower() for tab in tabs)
        box = QMessageBox(QMessageBox.Icon.Question, "A run is in progress",
                          f"{nouns.capitalize()} is still running.", parent=self)
        box.setInformativeText("Stop it: the worker finishes its step and saves what it has (a checkpoint and the "
                               "output, or an evaluation's scores so far), then the window closes.\nKeep it in the "
                               "background: the window closes now and the run goes on; the next start of Adapt "
                               "Studio shows it again.")
        stop = box.addButton(STOP_AND_CLOSE, QMessageBox.ButtonRole.DestructiveRole)
        keep = box.addButton(KEEP_IN_BACKGROUND, QMessageBox.ButtonRole.AcceptRole)
        cancel = box.addButton(QMessageBox.StandardButton.Cancel)
        box.setDefaultButton(cancel)
        box.setEscapeButton(cancel)
        box.exec()
        return {stop: STOP_AND_CLOSE, keep: KEEP_IN_BACKGROUND}.get(box.clickedButton(), "cancel")

    def _close_when_all_stopped(self, running: bool) -> None:
        if self._closing and not running and not self.running_tabs():
            QTimer.singleShot(0, self.close)

    def closeEvent(self, event) -> None:
        running = self.running_tabs()
        if running and self._closing:
            event.ignore()  # still saving; the window closes when the last run has stopped
            return
        if running:
            choice = self.ask_about_running_runs(running)
            if choice == STOP_AND_CLOSE:
                self._closing = True
                for tab in running:
                    tab.stop()
                self.statusBar().showMessage("Stopping: the window closes once the run has saved its checkpoint.")
                event.ignore()
                return
            if choice != KEEP_IN_BACKGROUND:
                event.ignore()
                return
            for tab in running:
                tab.panel.detach()
        self._save_state()
        for tab in (*self.run_tabs, self.playground_tab):
            tab.shutdown()
        if self._device_process is not None and self._device_process.state() != QProcess.ProcessState.NotRunning:
            self._device_process.kill()
            self._device_process.waitForFinished(1000)
        event.accept()
