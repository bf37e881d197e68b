"""The dataset part of the Fine-tune tab: open a file, pick or detect its format, map its columns, and see
whether it is fit to train on. The analysis itself is `engine.data.analysis` run in a QThread; this module
only schedules it and shows what it found.

Re-analysis is debounced and serial: a change waits `DEBOUNCE_MS` for the next one, at most one analysis
thread runs, a superseded one is cancelled and its results are dropped (each carries its generation), and
the newest settings are analysed once it ends. Every finished analysis replaces the previous verdict.

The form part keeps one height whatever the analysis says (a one-line summary, the error in a fixed-height
scrolling box), so fields never move under the pointer; the full summary goes to the preview.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QComboBox, QFileDialog, QFormLayout, QFrame, QHBoxLayout, QLabel, QPushButton,
                               QScrollArea, QVBoxLayout, QWidget)

from studio.engine.config import FORMATS
from studio.engine.data.analysis import SUMMARY_ROW_LIMIT, context_problem, mapping_targets, one_line_summary
from studio.engine.data.formats import describe_drops
from studio.ui import settings
from studio.ui.finetune.analysis_thread import DatasetAnalysisThread
from studio.ui.finetune.column_mapping import ColumnMappingEditor
from studio.ui.finetune.dataset_preview import DatasetPreview, plain_html, render_html
from studio.ui.finetune.elided_label import ElidedLabel
from studio.ui.finetune.placeholder_table import PlaceholderTable
from studio.ui.widgets.error_panel import ErrorPanel

FILE_FILTER = "Datasets (*.json *.jsonl *.ndjson *.csv *.tsv *.parquet);;All files (*)"
DEBOUNCE_MS = 300  # a burst of edits (typing, scrolling a combo) becomes one analysis
MAPPING_TABLE_HEIGHT = 130
VERDICT_LINES = 7  # the error box's height in text lines; longer messages scroll
NO_DATASET = "Open a dataset first."
PLACEHOLDER_TABLE_HEIGHT = 100


class DatasetPanel(QWidget):
    """Controls (open, format, mapping, summary, errors); `preview_widget` is placed elsewhere by the tab."""

    dataset_changed = Signal(str)
    analysis_started = Signal()
    analysis_finished = Signal()
    validity_changed = Signal(bool)  # whether problem() is None

    def __init__(self, parent=None):
        super().__init__(parent)
        self._path = ""
        self._model = ""
        self._max_length = 512
        self._context_length: int | None = None  # of the model, as the last analysis read it
        self._generation = 0  # of the newest settings
        self._launched_generation = 0
        self._done_generation = 0
        self._thread: DatasetAnalysisThread | None = None
        self._shut_down = False
        self._valid = False
        self._detected: str | None = None
        self.columns: list[str] = []
        self.summary = None
        self.last_error: BaseException | None = None
        self.warnings: list[str] = []  # of the last parse: cleaned or suspicious data, never blocking

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self._launch)

        self.open_button = QPushButton("Open…")
        self.open_button.setToolTip("Open a dataset: JSON, JSONL, CSV or Parquet (Ctrl+O)")
        self.open_button.clicked.connect(self.open_dialog)
        self.path_label = ElidedLabel("No dataset yet.", elide=Qt.TextElideMode.ElideMiddle)
        self.format_combo = QComboBox()
        for name in FORMATS:
            self.format_combo.addItem(name, name)
        self.format_combo.setToolTip("The data format; auto detects it from the columns.")
        self.format_combo.currentIndexChanged.connect(self._on_format_changed)
        self.detected_label = QLabel("")
        self.mapping_table = ColumnMappingEditor()
        self.mapping_table.setFixedHeight(MAPPING_TABLE_HEIGHT)
        self.mapping_table.set_targets(mapping_targets(self.format()))
        self.mapping_table.mapping_changed.connect(self._request_analysis)
        # Shown only for files with {{name}} placeholders: its height is then spent once, on opening the file.
        self.placeholder_table = PlaceholderTable()
        self.placeholder_table.setFixedHeight(PLACEHOLDER_TABLE_HEIGHT)
        self.placeholder_table.hide()
        self.placeholder_table.values_changed.connect(self._request_analysis)
        self.summary_label = ElidedLabel("")
        self.summary_label.hide()
        self.error_panel = ErrorPanel()

        verdict = QWidget()
        verdict_layout = QVBoxLayout(verdict)
        verdict_layout.setContentsMargins(0, 0, 0, 0)
        verdict_layout.addWidget(self.summary_label)
        verdict_layout.addWidget(self.error_panel)
        verdict_layout.addStretch(1)
        self.verdict_area = QScrollArea()
        self.verdict_area.setWidget(verdict)
        self.verdict_area.setWidgetResizable(True)
        self.verdict_area.setFrameShape(QFrame.Shape.NoFrame)
        self.verdict_area.setFixedHeight(VERDICT_LINES * self.fontMetrics().lineSpacing() + 24)

        top = QHBoxLayout()
        top.addWidget(self.open_button)
        top.addWidget(self.path_label, 1)
        fmt_row = QHBoxLayout()
        fmt_row.addWidget(self.format_combo)
        fmt_row.addWidget(self.detected_label, 1)
        form = QFormLayout()
        form.addRow("Format", fmt_row)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addLayout(form)
        layout.addWidget(self.mapping_table)
        layout.addWidget(self.placeholder_table)
        layout.addWidget(self.verdict_area)
        layout.addStretch(1)  # spare height goes below the fields, not between them

        self.preview_widget = DatasetPreview()
        self.preview_table = self.preview_widget.table
        self.histogram = self.preview_widget.histogram

    # -- public API -----------------------------------------------------------------------------
    def path(self) -> str:
        return self._path

    def format(self) -> str:
        return self.format_combo.currentData()

    def mapping(self) -> dict:
        return self.mapping_table.mapping()

    def placeholders(self) -> dict:
        """Placeholder values ({name: value}) for the config's `placeholders` field."""
        return self.placeholder_table.values()

    def busy(self) -> bool:
        """Whether the analysis of the current settings has yet to finish."""
        return bool(self._path) and not self._shut_down and self._done_generation != self._generation

    def problem(self) -> str | None:
        """Why training cannot start with this dataset yet, in one sentence; None when it can."""
        if not self._path:
            return NO_DATASET
        if self.busy():
            return "The dataset is still being checked."
        if self.last_error is not None:
            return getattr(self.last_error, "message", None) or str(self.last_error) or type(self.last_error).__name__
        return context_problem(self._max_length, self._context_length)

    def preview_text(self, row: int) -> str:
        return self.preview_widget.row_html(row)

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a dataset", settings.last_dir("dataset"), FILE_FILTER)
        if path:
            self.load(path)

    def load(self, path: str, fmt: str | None = None, mapping: dict | None = None,
             placeholders: dict | None = None) -> None:
        """Analyse `path` now; what was shown about the previous file goes at once."""
        self._path = str(path)
        self._shut_down = False
        settings.set_last_dir("dataset", path)
        settings.add_recent("datasets", str(path))
        self.path_label.setText(str(path))
        self.format_combo.blockSignals(True)
        self.format_combo.setCurrentIndex(max(0, self.format_combo.findData(fmt or "auto")))
        self.format_combo.blockSignals(False)
        self.mapping_table.load_mapping(mapping or {})
        if placeholders is not None:
            self.placeholder_table.set_values(placeholders)
        self._clear_results()
        self._set_summary(f"Reading {self._path}…")
        self.dataset_changed.emit(self._path)
        self._request_analysis(immediate=True)

    def set_model(self, model: str) -> None:
        if model != self._model:
            self._model = model
            self._context_length = None
            self._request_analysis()

    def set_max_length(self, max_length: int) -> None:
        if max_length != self._max_length:
            self._max_length = max_length
            self._request_analysis()

    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Stop analysing (the window is closing): cancel the running analysis and wait for its thread."""
        self._shut_down = True
        self._debounce.stop()
        self._generation += 1
        if self._thread is not None:
            self._thread.cancel()
            self._thread.wait(timeout_ms)

    # -- scheduling ----------------------------------------------------------------------------
    def _request_analysis(self, *_, immediate: bool = False) -> None:
        """New settings: supersede the analysis under way and analyse them (after a pause in the edits)."""
        if not self._path or self._shut_down:
            return
        self._generation += 1
        if self._thread is not None:
            self._thread.cancel()
        if immediate:
            self._debounce.stop()
            self._launch()
        else:
            self._debounce.start()
        self._update_validity()

    def _launch(self) -> None:
        """Start analysing the newest settings, unless an analysis still runs (its end calls this again)."""
        if self._thread is not None or self._shut_down or self._launched_generation == self._generation:
            return
        self._launched_generation = generation = self._generation
        # Placeholder values travel in the mapping as "{{name}}" keys, which the loader reads as values.
        mapping = {**self.mapping(), **{f"{{{{{k}}}}}": v for k, v in self.placeholders().items()}}
        thread = DatasetAnalysisThread(generation, self._path, self.format(), mapping, self._model,
                                       self._max_length)
        # bound methods of this widget, so the slots run in the GUI thread (queued)
        thread.parsed.connect(self._on_parsed)
        thread.rendered.connect(self._on_rendered)
        thread.failed.connect(self._on_failed)
        thread.finished.connect(self._on_thread_finished)
        self._thread = thread
        thread.start()
        self.analysis_started.emit()

    def _on_thread_finished(self) -> None:
        if self._thread is not None and self._thread.isFinished():
            self._thread.deleteLater()
            self._thread = None
        if not self._debounce.isActive():
            self._launch()

    # -- results -------------------------------------------------------------------------------
    def _clear_results(self) -> None:
        self.columns = []
        self.summary = None
        self.last_error = None
        self.warnings = []
        self._detected = None
        self.placeholder_table.set_names({})
        self.placeholder_table.hide()
        self.detected_label.setText("")
        self._set_summary("")
        self.error_panel.clear()
        self.preview_widget.clear()

    def _on_format_changed(self, *_) -> None:
        self.mapping_table.set_targets(mapping_targets(self.format(), self._detected))
        self._request_analysis()

    def _on_parsed(self, generation: int, parsed) -> None:
        if generation != self._generation:
            return
        self.columns = list(parsed.columns)
        self._detected = parsed.detected
        if parsed.columns:
            self.mapping_table.set_columns(parsed.columns, mapping_targets(self.format(), parsed.detected))
            self.detected_label.setText(f"detected: {parsed.detected}" if parsed.detected
                                        else "format not recognised")
        else:  # the file could not be read: nothing about it is known
            self.mapping_table.load_mapping(self.mapping())
            self.detected_label.setText("")
        self.preview_widget.set_rows([(where, plain_html(messages)) for where, messages in parsed.preview])
        self.preview_widget.histogram.clear()
        self.preview_widget.set_details("")
        self.summary = None
        self.warnings = list(parsed.warnings)
        self.placeholder_table.set_names(parsed.placeholders)
        self.placeholder_table.setVisible(bool(parsed.placeholders))
        if parsed.error is not None:
            self._finish(parsed.error)
            return
        dropped = parsed.conversations.dropped_count
        counts = f"{parsed.rows} rows, {parsed.format} format" + (f", {dropped} dropped" if dropped else "")
        self.preview_widget.set_details("\n".join(([f"Dropped: {describe_drops(parsed.dropped)}."] if dropped else [])
                                                  + [f"Warning: {w}" for w in self.warnings]))
        if self._model:
            self._set_summary(f"{counts}. Tokenizing…")
            return
        self._set_summary(f"{counts}. Choose a model to see the rows rendered with its chat template "
                                   f"and the token lengths.")
        self._finish(None)

    def _on_rendered(self, generation: int, rendered) -> None:
        if generation != self._generation:
            return
        self._context_length = rendered.context_length
        if rendered.previews:
            self.preview_widget.set_rows([(where, render_html(text, spans))
                                          for where, text, spans in rendered.previews])
        if rendered.error is not None:
            self._finish(rendered.error)
            return
        if rendered.model_error is not None:  # the model picker reports the model; the rows are fine
            self._set_summary(f"Rows read; could not render them with the model: "
                                       f"{rendered.model_error.message}")
            self._finish(None)
            return
        self.summary = summary = rendered.summary
        self._set_summary(one_line_summary(summary))
        details = [summary.describe()]
        if rendered.sampled:
            details.append(f"Token lengths estimated from the first {SUMMARY_ROW_LIMIT} rows.")
        if rendered.fallback_template:
            details.append("This model has no chat template: the studio's simple fallback template is used.")
        details += [f"Warning: {w}" for w in self.warnings]
        self.preview_widget.set_details("\n".join(details))
        self.preview_widget.plot_lengths(summary.lengths, self._max_length)
        self._finish(None)

    def _on_failed(self, generation: int, error) -> None:
        if generation == self._generation:
            self._finish(error)

    def _finish(self, error) -> None:
        """The verdict of the current settings' analysis: it replaces whatever the previous one said."""
        self.last_error = error
        if error is not None:
            self.summary = None
            self._set_summary("")
            self.preview_widget.histogram.clear()
            self.error_panel.show_exception(error)
        elif (too_long := context_problem(self._max_length, self._context_length)) is not None:
            self.error_panel.show_error("bad_config", too_long, "Lower the max length in the training settings.")
        else:
            self.error_panel.clear()
        self._done_generation = self._generation
        self._update_validity()
        self.analysis_finished.emit()

    def _set_summary(self, text: str) -> None:
        self.summary_label.setText(text)
        self.summary_label.setVisible(bool(text))  # inside the fixed-height box: gives the error its line

    def _update_validity(self) -> None:
        valid = self.problem() is None
        if valid != self._valid:
            self._valid = valid
            self.validity_changed.emit(valid)
