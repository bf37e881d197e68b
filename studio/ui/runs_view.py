"""Past runs in the workspace: a table (name, date, method, status, best eval loss); selecting a run
shows its curves (from events.jsonl) and its config, and its config can be loaded to run it again."""

from __future__ import annotations

import datetime as _dt
from pathlib import Path

from PySide6.QtCore import QUrl, Qt, Signal
from PySide6.QtGui import QColor, QDesktopServices
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QLabel, QPlainTextEdit, QPushButton,
                               QSplitter, QTableWidget, QTableWidgetItem, QTabWidget, QVBoxLayout, QWidget)

from studio.engine.events import read_events
from studio.engine.runs import CONFIG_FILE, EVENTS_FILE, RunSummary, list_runs
from studio.ui.widgets.loss_plot import LossPlot

COLUMNS = ["Name", "Date", "Method", "Status", "Steps", "Best eval loss"]
STATUS_COLORS = {"failed": QColor(190, 40, 40), "completed": QColor(30, 120, 50), "stopped": QColor(160, 110, 0),
                 "running": QColor(30, 90, 200)}


class RunsView(QWidget):
    """`tasks` limits the list to runs of these tasks (e.g. {"sft"}); None lists every run."""

    load_config_requested = Signal(object)  # the run's config object
    run_selected = Signal(object)  # Path of the selected run folder

    def __init__(self, workspace: Path | None = None, parent=None, *, tasks: set[str] | None = None):
        super().__init__(parent)
        self.workspace = Path(workspace) if workspace else None
        self.tasks = tasks
        self.runs: list[RunSummary] = []

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.itemSelectionChanged.connect(self._selection_changed)

        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.clicked.connect(self.refresh)
        self.load_button = QPushButton("Load config")
        self.load_button.setToolTip("Put this run's settings in the form, to run it again or change it")
        self.load_button.clicked.connect(self._load_config)
        self.folder_button = QPushButton("Show folder")
        self.folder_button.clicked.connect(self._show_folder)
        self.error_label = QLabel()
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #a02020;")
        buttons = QHBoxLayout()
        for b in (self.refresh_button, self.load_button, self.folder_button):
            buttons.addWidget(b)
        buttons.addStretch(1)

        self.plot = LossPlot()
        self.config_text = QPlainTextEdit()
        self.config_text.setReadOnly(True)
        details = QTabWidget()
        details.addTab(self.plot, "Curves")
        details.addTab(self.config_text, "Config")
        self.details = details

        splitter = QSplitter(Qt.Orientation.Vertical)
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addLayout(buttons)
        top_layout.addWidget(self.table)
        top_layout.addWidget(self.error_label)
        splitter.addWidget(top)
        splitter.addWidget(details)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self._update_buttons()
        if self.workspace:
            self.refresh()

    def set_workspace(self, workspace: Path) -> None:
        self.workspace = Path(workspace)
        self.refresh()

    def refresh(self) -> None:
        selected = self.selected_run()
        runs = list_runs(self.workspace) if self.workspace else []
        if self.tasks is not None:
            runs = [r for r in runs if r.task in self.tasks]
        self.runs = runs
        self.table.blockSignals(True)
        self.table.setRowCount(0)
        for run in runs:
            r = self.table.rowCount()
            self.table.insertRow(r)
            date = _dt.datetime.fromtimestamp(run.started).strftime("%Y-%m-%d %H:%M") if run.started else \
                run.path.name[:15]
            steps = f"{run.steps}/{run.total_steps}" if run.total_steps else str(run.steps or "")
            best = f"{run.best_eval_loss:.4f}" if run.best_eval_loss is not None else "—"
            for c, text in enumerate((run.name, date, run.method, run.status, steps, best)):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, str(run.path))
                if c == 3 and run.status in STATUS_COLORS:
                    item.setForeground(STATUS_COLORS[run.status])
                if c == 3 and run.error:
                    item.setToolTip(run.error)
                self.table.setItem(r, c, item)
        self.table.blockSignals(False)
        if selected:
            self.select_run(selected.path)
        self._update_buttons()

    def row_of(self, path: Path) -> int:
        for i, run in enumerate(self.runs):
            if Path(run.path) == Path(path):
                return i
        return -1

    def select_run(self, path: Path) -> None:
        row = self.row_of(path)
        if row >= 0:
            self.table.selectRow(row)

    def selected_run(self) -> RunSummary | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows or rows[0].row() >= len(self.runs):
            return None
        return self.runs[rows[0].row()]

    def _update_buttons(self) -> None:
        run = self.selected_run()
        self.load_button.setEnabled(bool(run and (run.path / CONFIG_FILE).exists()))
        self.folder_button.setEnabled(run is not None)

    def _selection_changed(self) -> None:
        run = self.selected_run()
        self._update_buttons()
        if run is None:
            return
        self.plot.load_events(read_events(run.path / EVENTS_FILE))
        try:
            self.config_text.setPlainText((run.path / CONFIG_FILE).read_text(encoding="utf-8"))
        except OSError as exc:
            self.config_text.setPlainText(f"(no config: {exc})")
        self.error_label.setText(f"Failed: {run.error}" if run.status == "failed" and run.error else "")
        self.run_selected.emit(run.path)

    def _load_config(self) -> None:
        run = self.selected_run()
        if run is None:
            return
        from studio.engine.config import load_config
        from studio.engine.errors import StudioError

        try:
            cfg = load_config(run.path / CONFIG_FILE)
        except StudioError as err:
            self.error_label.setText(err.message)
            return
        if hasattr(cfg, "resume_from"):
            cfg.resume_from = ""  # a re-run starts fresh
        self.load_config_requested.emit(cfg)

    def _show_folder(self) -> None:
        run = self.selected_run()
        if run is not None:
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(run.path)))
