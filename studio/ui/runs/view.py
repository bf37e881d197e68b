"""The Runs list: every run of the workspace in a table; the selected runs' curves (overlaid when several)
and config below it; actions on the selected runs as buttons and as a context menu."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QItemSelection, QItemSelectionModel, QUrl, Qt, Signal
from PySide6.QtGui import QAction, QColor, QDesktopServices
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QInputDialog, QLabel, QLineEdit, QMenu,
                               QMessageBox, QPlainTextEdit, QSplitter, QStackedWidget, QTableWidget,
                               QTableWidgetItem, QTabWidget, QToolButton, QVBoxLayout, QWidget)

from studio.engine import runs as engine_runs
from studio.engine.runs import CONFIG_FILE, RunSummary
from studio.ui.runs import curves, rows, run_files
from studio.ui.widgets.classify_metrics import ClassifyMetrics
from studio.ui.runs.catalog import RunCatalog
from studio.ui.widgets.loss_plot import LossPlot

EVALUATE_TIP = ("Compare this run's adapter or model with prompting the base model, on a held-out file, in the "
                "Evaluate tab")
RESULTS_TIP = "Show this evaluation's results in the Evaluate tab"
EXPORT_TIP = "Merge the adapter, write GGUF files and an Ollama Modelfile, to run the model elsewhere"
COLUMNS = ["Name", "Kind", "Model", "Dataset", "Method", "Status", "Steps", "Best eval loss", "Date"]
STATUS_COLORS = {"failed": QColor(190, 40, 40), "completed": QColor(30, 120, 50), "stopped": QColor(160, 110, 0),
                 "running": QColor(30, 90, 200), "unknown": QColor(110, 110, 110)}


class RunsView(QWidget):
    """`tasks` limits the list to runs of these tasks (e.g. {"sft"}); None lists every run."""

    load_config_requested = Signal(object)  # the run's config object, resume_from cleared
    run_selected = Signal(object)  # Path of the run folder, when one run becomes the selection
    open_in_playground = Signal(str, str)  # (base model, adapter folder), or (model folder, "")
    resume_requested = Signal(object)  # Path of a stopped or failed run folder with a complete checkpoint
    evaluate_requested = Signal(str, str)  # (a finished run's adapter or model folder, the model it was trained from)
    show_results_requested = Signal(object)  # Path of an evaluation's run folder, to show in the Evaluate tab
    export_requested = Signal(object)  # Path of a run folder whose adapter or model to export
    refreshed = Signal()  # the table now shows the workspace as it was read

    def __init__(self, workspace: Path | None = None, parent=None, *, tasks: set[str] | None = None):
        if isinstance(workspace, QWidget):  # RunsView(parent), as a window that sets the workspace later builds it
            workspace, parent = None, workspace
        super().__init__(parent)
        self.tasks = tasks
        self.runs: list[RunSummary] = []  # in table order
        self.entries: list[rows.RunEntry] = []  # the same runs, with their configs
        self._pending_selection: list[Path] = []  # asked for before the list had them
        self._shown: list[RunSummary] | None = None  # what the details show, to skip identical redraws
        self.catalog = RunCatalog(self)
        self.catalog.listed.connect(self._show_entries)
        self.catalog.failed.connect(self._scan_failed)

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(self.column("Name"), QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._selection_changed)
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu_requested)

        self.empty_label = QLabel()
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.empty_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.list_area = QStackedWidget()
        self.list_area.addWidget(self.table)
        self.list_area.addWidget(self.empty_label)

        self.refresh_action = self._action("Refresh", "Read the workspace's runs again", self.refresh)
        self.open_action = self._action("Open in playground", "Try the run's adapter or model in the playground",
                                        self.open_selected_in_playground)
        self.evaluate_action = self._action("Evaluate", EVALUATE_TIP, self.evaluate_selected)
        self.export_action = self._action("Export…", EXPORT_TIP, lambda: self._emit_selected(self.export_requested))
        self.resume_action = self._action("Resume", "Continue this run from its last complete checkpoint",
                                          self.resume_selected)
        self.load_action = self._action("Load config", "Put this run's settings in the form, to run it again or "
                                        "change it", self.load_selected_config)
        self.rename_action = self._action("Rename…", "Change the name the run is listed under (its folder keeps "
                                          "its name)", self.rename_selected)
        self.delete_action = self._action("Delete…", "Move the selected runs' folders to the trash",
                                          self.delete_selected)
        self.folder_action = self._action("Show folder", "Open the run's folder in the file manager",
                                          self.show_selected_folder)
        self.menu = QMenu(self)
        buttons = QHBoxLayout()
        for action in (self.refresh_action, self.open_action, self.evaluate_action, self.export_action,
                       self.resume_action, self.load_action, self.rename_action, self.delete_action,
                       self.folder_action):
            button = QToolButton()
            button.setDefaultAction(action)
            buttons.addWidget(button)
            if action is not self.refresh_action:
                self.menu.addAction(action)
        buttons.addStretch(1)
        (self.refresh_button, self.playground_button, self.evaluate_button, self.export_button, self.resume_button,
         self.load_button, self.rename_button, self.delete_button, self.folder_button) = \
            [buttons.itemAt(i).widget() for i in range(9)]

        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #a02020;")
        self.plot = LossPlot()
        self.config_text = QPlainTextEdit()
        self.config_text.setReadOnly(True)
        self.details = QTabWidget()
        self.details.addTab(self.plot, "Curves")
        self.details.addTab(self.config_text, "Config")
        self.metrics = ClassifyMetrics()  # a classification run's scores and confusion matrix
        self.details.addTab(self.metrics, "Metrics")
        self.details.setTabVisible(2, False)

        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addLayout(buttons)
        top_layout.addWidget(self.list_area)
        top_layout.addWidget(self.error_label)
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(top)
        splitter.addWidget(self.details)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self._update_actions()
        self.set_workspace(workspace)

    def _action(self, text: str, tip: str, slot) -> QAction:
        action = QAction(text, self)
        action.setToolTip(tip)
        action.triggered.connect(lambda _checked=False: slot())
        return action

    @staticmethod
    def column(title: str) -> int:
        """The table column of a column title (so callers need not count columns)."""
        return COLUMNS.index(title)

    # -- listing ------------------------------------------------------------------------------------
    @property
    def workspace(self) -> Path | None:
        return self.catalog.workspace

    def set_workspace(self, workspace: Path | None, background: bool = False) -> None:
        """`background`: read the runs in a thread however few they are (the window is opening)."""
        self.catalog.set_workspace(workspace)
        self.refresh(background=background)

    def refresh(self, wait: bool = False, background: bool = False) -> None:
        """Read the runs again. Little to read is read at once; much (a big workspace seen for the first
        time), or anything with `background`, is read in a thread and `refreshed` says when the table shows it.
        `wait` always reads now."""
        self.catalog.refresh(wait=wait, background=background)
        self._update_empty_state()

    def refresh_now(self) -> None:
        self.refresh(wait=True)

    def _show_entries(self, entries: list[rows.RunEntry]) -> None:
        if self.tasks is not None:
            entries = [e for e in entries if e.summary.task in self.tasks]
        keep = self._pending_selection or [e.path for e in self.selected_entries()]
        self._pending_selection = []
        self.entries, self.runs = entries, [e.summary for e in entries]
        self.table.blockSignals(True)
        self.table.clearSelection()
        self.table.setRowCount(len(entries))
        for r, entry in enumerate(entries):
            for title, (text, tip) in rows.cells(entry).items():
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, str(entry.path))
                if tip:
                    item.setToolTip(tip)
                if title == "Status" and entry.summary.status in STATUS_COLORS:
                    item.setForeground(STATUS_COLORS[entry.summary.status])
                self.table.setItem(r, self.column(title), item)
        self._select_rows([self.row_of(p) for p in keep])
        self.table.blockSignals(False)
        self._selection_changed()
        self._update_empty_state()
        self.refreshed.emit()

    def _scan_failed(self, message: str) -> None:
        self.error_label.setText(message)
        self._update_empty_state()

    def _update_empty_state(self) -> None:
        if self.runs:
            self.list_area.setCurrentWidget(self.table)
            return
        if self.workspace is None:
            text = "No workspace chosen: choose one in the settings to see its runs."
        elif self.catalog.scanning:
            text = f"Reading the runs in {self.workspace / 'runs'}…"
        else:
            text = (f"No runs yet — start one in the Fine-tune or Pre-train tab; each run is saved under "
                    f"{self.workspace / 'runs'}")
        self.empty_label.setText(text)
        self.list_area.setCurrentWidget(self.empty_label)

    # -- selection ----------------------------------------------------------------------------------
    def row_of(self, path: Path) -> int:
        for i, run in enumerate(self.runs):
            if Path(run.path) == Path(path):
                return i
        return -1

    def select_run(self, path: Path) -> None:
        """Select one run; a run the list does not show yet is selected when a refresh in flight lists it."""
        self.select_runs([path])

    def select_runs(self, paths: list[Path]) -> None:
        found = [self.row_of(p) for p in paths]
        if any(r < 0 for r in found) and self.catalog.scanning:
            self._pending_selection = [Path(p) for p in paths]
        self._select_rows(found)

    def _select_rows(self, found: list[int]) -> None:
        cells, selection = self.table.model(), QItemSelection()
        for row in sorted(r for r in found if r >= 0):
            selection.select(cells.index(row, 0), cells.index(row, len(COLUMNS) - 1))
        flags = QItemSelectionModel.SelectionFlag
        self.table.selectionModel().select(selection, flags.ClearAndSelect)
        if not selection.isEmpty():
            self.table.selectionModel().setCurrentIndex(selection.indexes()[0], flags.NoUpdate)

    def selected_entries(self) -> list[rows.RunEntry]:
        """The selected runs, in table order (newest first)."""
        selected = sorted({i.row() for i in self.table.selectionModel().selectedRows()})
        return [self.entries[r] for r in selected if r < len(self.entries)]

    def selected_runs(self) -> list[RunSummary]:
        return [e.summary for e in self.selected_entries()]

    def selected_run(self) -> RunSummary | None:
        """The selected run when exactly one is selected."""
        selected = self.selected_runs()
        return selected[0] if len(selected) == 1 else None

    def _selected_entry(self) -> rows.RunEntry | None:
        selected = self.selected_entries()
        return selected[0] if len(selected) == 1 else None

    def _selection_changed(self) -> None:
        entries = self.selected_entries()
        self._update_actions()
        summaries = [e.summary for e in entries]
        if summaries == self._shown:
            return
        was_single = self._shown[0].path if self._shown and len(self._shown) == 1 else None
        self._shown = summaries
        failed = [s for s in summaries if s.status == "failed" and s.error]
        self.error_label.setText("\n".join(f"{s.name} failed: {s.error}" for s in failed))
        if not entries:
            self.plot.clear()
            self.config_text.clear()
            return
        if len(entries) == 1:
            curves.show_run(self.plot, entries[0])
        else:
            curves.show_overlay(self.plot, entries)
        classifier = len(entries) == 1 and entries[0].summary.task == "classify"
        self.details.setTabVisible(2, classifier)
        if classifier:
            self.metrics.show_state(curves.run_state(entries[0]))
        self.config_text.setPlainText(curves.config_text(entries))
        if len(entries) == 1 and entries[0].path != was_single:
            self.run_selected.emit(entries[0].path)

    def _update_actions(self) -> None:
        entries = self.selected_entries()
        one = entries[0] if len(entries) == 1 else None
        self.open_action.setEnabled(one is not None and run_files.playground_target(one) is not None)
        results = one is not None and one.summary.task == "eval"
        self.evaluate_action.setText("Show results" if results else "Evaluate")
        self.evaluate_action.setToolTip(RESULTS_TIP if results else EVALUATE_TIP)
        self.evaluate_action.setEnabled(one is not None and (run_files.has_results(one) if results
                                                             else run_files.evaluation_target(one) is not None))
        self.export_action.setEnabled(one is not None and run_files.exportable(one))
        self.resume_action.setEnabled(one is not None and one.summary.status in ("stopped", "failed")
                                      and one.summary.resumable)
        self.load_action.setEnabled(one is not None and (one.path / CONFIG_FILE).is_file())
        self.rename_action.setEnabled(one is not None and (one.path / CONFIG_FILE).is_file())
        self.delete_action.setEnabled(bool(entries) and not any(e.summary.status == "running" for e in entries))
        self.folder_action.setEnabled(one is not None)

    def _context_menu_requested(self, pos) -> None:
        row = self.table.rowAt(pos.y())
        if row >= 0 and row not in {i.row() for i in self.table.selectionModel().selectedRows()}:
            self._select_rows([row])
        self.menu.popup(self.table.viewport().mapToGlobal(pos))

    # -- actions ------------------------------------------------------------------------------------
    def _emit_selected(self, signal) -> None:
        one = self._selected_entry()
        if one is not None:
            signal.emit(one.path)

    def open_selected_in_playground(self) -> None:
        entry = self._selected_entry()
        target = run_files.playground_target(entry) if entry else None
        if target is not None:
            self.open_in_playground.emit(*target)

    def evaluate_selected(self) -> None:
        """An evaluation: show its results; a finished training run: evaluate its output."""
        entry = self._selected_entry()
        if entry is None:
            return
        if entry.summary.task == "eval":
            if run_files.has_results(entry):
                self.show_results_requested.emit(entry.path)
            return
        target = run_files.evaluation_target(entry)
        if target is not None:
            self.evaluate_requested.emit(*target)

    def resume_selected(self) -> None:
        entry = self._selected_entry()
        if entry is not None and entry.summary.resumable and entry.summary.status in ("stopped", "failed"):
            self.resume_requested.emit(entry.path)

    def load_selected_config(self) -> None:
        entry = self._selected_entry()
        if entry is None:
            return
        from studio.engine.config import load_config
        from studio.engine.errors import StudioError

        try:
            cfg = load_config(entry.path / CONFIG_FILE)
        except StudioError as err:
            self.error_label.setText(err.message)
            return
        if hasattr(cfg, "resume_from"):
            cfg.resume_from = ""  # a re-run starts fresh
        self.load_config_requested.emit(cfg)

    def rename_selected(self) -> None:
        entry = self._selected_entry()
        if entry is None:
            return
        name, ok = QInputDialog.getText(self, "Rename run", "Name shown in the list (the folder keeps its name):",
                                        QLineEdit.EchoMode.Normal, entry.summary.name)
        name = name.strip()
        if not ok or not name or name == entry.summary.name:
            return
        try:
            run_files.rename_run(entry.path, name)
        except OSError as exc:
            self.error_label.setText(f"The run {entry.path.name} could not be renamed: {exc}")
            return
        self.refresh()

    def delete_selected(self) -> None:
        entries = self.selected_entries()
        if not entries:
            return
        running = [e for e in entries if e.summary.status == "running" or engine_runs.worker_alive(e.path)]
        if running:
            self.error_label.setText("Not deleted: " + ", ".join(e.summary.name for e in running)
                                     + (" is" if len(running) == 1 else " are") + " still running; stop it first.")
            return
        named = "\n".join(f"• {e.summary.name} ({rows.date_text(e.summary)}, {e.path.name})" for e in entries)
        what = "this run" if len(entries) == 1 else f"these {len(entries)} runs"
        if not self._confirm("Delete runs", f"Delete {what}?\n\n{named}\n\nThe folder, with its checkpoints and its "
                             "saved adapter or model, is moved to the system trash."):
            return
        left = [e for e in entries if not self._trash(e.path)]
        errors = []
        if left and self._confirm("Delete permanently", "The system trash cannot take "
                                  + ", ".join(e.path.name for e in left) + ".\n\nDelete permanently instead? "
                                  "This cannot be undone."):
            for e in left:
                try:
                    run_files.delete_permanently(e.path)
                except OSError as exc:
                    errors.append(f"{e.path.name}: {exc}")
        self.refresh()
        if errors:  # after the refresh, whose new selection would replace the message
            self.error_label.setText("Could not delete " + "; ".join(errors))

    def _trash(self, path: Path) -> bool:
        return run_files.move_to_trash(path) or not path.exists()

    def _confirm(self, title: str, text: str) -> bool:
        yes, no = QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No
        return QMessageBox.question(self, title, text, yes | no, no) == yes

    def show_selected_folder(self) -> None:
        entry = self._selected_entry()
        if entry is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(entry.path)))
