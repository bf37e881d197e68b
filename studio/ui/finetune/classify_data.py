"""The labelled-data box of the Fine-tune tab's classification mode: open a file, choose its text, pair and label
columns (preset to the detected ones), see the labels with their counts, and a warning with a one-click remedy
when the classes are imbalanced. Reading runs in a thread (classify_analysis); this module shows what it found.

Re-reading is serial: at most one thread runs; settings changed meanwhile are read once it ends, and results
of superseded settings are dropped (each carries its generation).
"""

from __future__ import annotations

from PySide6.QtCore import Qt, QTimer, Signal
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QFileDialog, QFormLayout, QFrame, QHBoxLayout,
                               QHeaderView, QLabel, QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout,
                               QWidget)

from studio.ui import settings
from studio.ui.finetune.classify_analysis import LabelledAnalysis, LabelledAnalysisThread
from studio.ui.finetune.dataset_panel import FILE_FILTER
from studio.ui.finetune.elided_label import ElidedLabel
from studio.ui.finetune.label_table import LabelTable
from studio.ui.widgets.error_panel import ErrorPanel

DEBOUNCE_MS = 300
IMBALANCE_WARNING = 3.0  # the largest class this many times the smallest: worth weighing the classes
NO_DATA = "Open a labelled data file first."
DETECT, NO_PAIR = "detect", "none (single texts)"
PROBLEM_WORDS = {"single_label": "one label per text", "multi_label": "several labels per text",
                 "regression": "a number per text"}
COLUMN_FIELDS = ("text_column", "text_pair_column", "label_column")


class ClassifyPreview(QTableWidget):
    """The first rows as read: where each came from, its text (and pair) and its label."""

    def __init__(self, parent=None):
        super().__init__(0, 4, parent)
        self.setHorizontalHeaderLabels(["Row", "Text", "Pair", "Label"])
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(3, QHeaderView.ResizeMode.ResizeToContents)
        self.verticalHeader().hide()
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setWordWrap(False)

    def set_rows(self, rows: list[tuple[str, str, str, str]], with_pair: bool) -> None:
        self.setRowCount(0)
        for values in rows:
            r = self.rowCount()
            self.insertRow(r)
            for c, value in enumerate(values):
                item = QTableWidgetItem(value)
                item.setToolTip(value if c in (1, 2) and len(value) > 60 else "")
                self.setItem(r, c, item)
        self.setColumnHidden(2, not with_pair)


class ClassifyDataBox(QWidget):
    dataset_changed = Signal(str)
    analysis_finished = Signal()
    validity_changed = Signal(bool)  # whether problem() is None
    weigh_classes_requested = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._path = ""
        self._reading = {"problem": "auto", "label_separator": ";"}  # the form's fields that change the reading
        self._generation = self._launched = self._done = 0
        self._thread: LabelledAnalysisThread | None = None
        self._shut_down = False
        self._valid = False
        self._weighed = False
        self.summary: dict | None = None
        self.last_error = None
        self.columns: list[str] = []

        self._debounce = QTimer(self)
        self._debounce.setSingleShot(True)
        self._debounce.setInterval(DEBOUNCE_MS)
        self._debounce.timeout.connect(self._launch)

        self.open_button = QPushButton("Open…")
        self.open_button.setToolTip("Open labelled data: CSV, TSV, JSON, JSONL or Parquet with a text column and "
                                    "a label column (Ctrl+O)")
        self.open_button.clicked.connect(self.open_dialog)
        self.path_label = ElidedLabel("No data yet.", elide=Qt.TextElideMode.ElideMiddle)
        self.text_combo, self.pair_combo, self.label_combo = QComboBox(), QComboBox(), QComboBox()
        tips = ("The column holding the text to classify.",
                "Optional second text for pair tasks such as entailment or paraphrase.",
                "The column holding each text's label (or a number, for regression).")
        for combo, tip in zip(self.combos(), tips):
            combo.setToolTip(tip)
            combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            combo.setMinimumContentsLength(10)
            combo.currentIndexChanged.connect(self._on_column_chosen)
        self._fill_combos([])
        self.summary_label = QLabel("")
        self.summary_label.setWordWrap(True)
        self.label_table = LabelTable()
        self.label_table.hide()
        self.imbalance_label = QLabel()
        self.imbalance_label.setWordWrap(True)
        self.weigh_button = QPushButton("Weigh classes")
        self.weigh_button.setToolTip("Turn on 'Class weights': each class's loss is weighed by the inverse of its "
                                     "frequency, so the rare classes count as much as the common ones")
        self.weigh_button.clicked.connect(self.weigh_classes_requested)
        self.imbalance_box = QFrame()
        self.imbalance_box.setObjectName("Imbalance")
        self.imbalance_box.setStyleSheet("#Imbalance { background: #fff4e0; border: 1px solid #e8c27a; "
                                         "border-radius: 4px; } #Imbalance QLabel { color: #6b4500; }")
        column = QVBoxLayout(self.imbalance_box)
        column.setContentsMargins(8, 6, 8, 6)
        column.addWidget(self.imbalance_label)
        column.addWidget(self.weigh_button, 0, Qt.AlignmentFlag.AlignRight)
        self.imbalance_box.hide()
        self.warnings_label = QLabel("")
        self.warnings_label.setWordWrap(True)
        self.warnings_label.setStyleSheet("color: #8a5a00;")
        self.warnings_label.hide()
        self.error_panel = ErrorPanel()

        top = QHBoxLayout()
        top.addWidget(self.open_button)
        top.addWidget(self.path_label, 1)
        form = QFormLayout()
        form.addRow("Text column", self.text_combo)
        form.addRow("Pair column", self.pair_combo)
        form.addRow("Label column", self.label_combo)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addLayout(form)
        for w in (self.summary_label, self.label_table, self.imbalance_box, self.warnings_label, self.error_panel):
            layout.addWidget(w)

        self.preview_widget = ClassifyPreview()

    # -- public API ---------------------------------------------------------------------------------
    def combos(self) -> tuple[QComboBox, QComboBox, QComboBox]:
        return self.text_combo, self.pair_combo, self.label_combo

    def path(self) -> str:
        return self._path

    def column_fields(self) -> dict[str, str]:
        """text_column, text_pair_column and label_column as chosen ("" = detect, or no pair)."""
        return {name: combo.currentData() or "" for name, combo in zip(COLUMN_FIELDS, self.combos())}

    def busy(self) -> bool:
        return bool(self._path) and not self._shut_down and self._done != self._generation

    def problem(self) -> str | None:
        """Why training cannot start with this data yet, in one sentence; None when it can."""
        if not self._path:
            return NO_DATA
        if self.busy():
            return "The data is still being read."
        if self.last_error is not None:
            return getattr(self.last_error, "message", None) or str(self.last_error)
        return None

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open labelled data", settings.last_dir("dataset"),
                                              FILE_FILTER)
        if path:
            self.load(path)

    def load(self, path: str, columns: dict | None = None) -> None:
        """Read `path` now, with the given column fields (else detected); what was shown before goes at once."""
        self._path = str(path)
        self._shut_down = False
        settings.set_last_dir("dataset", path)
        settings.add_recent("datasets", str(path))
        self.path_label.setText(self._path)
        self._fill_combos([], columns or {})
        self._show(LabelledAnalysis())
        self.summary_label.setText(f"Reading {self._path}…")
        self.dataset_changed.emit(self._path)
        self._request(immediate=True)

    def set_reading(self, problem: str, label_separator: str) -> None:
        """The form's problem kind and label separator, which change how the labels are read."""
        reading = {"problem": problem, "label_separator": label_separator}
        if reading != self._reading:
            self._reading = reading
            self._request()

    def set_class_weights(self, on: bool) -> None:
        self._weighed = on
        self._show_imbalance()

    def shutdown(self, timeout_ms: int = 30000) -> None:
        self._shut_down = True
        self._debounce.stop()
        self._generation += 1
        if self._thread is not None:
            self._thread.wait(timeout_ms)

    # -- columns ------------------------------------------------------------------------------------
    def _fill_combos(self, columns: list[str], chosen: dict | None = None) -> None:
        """Offer `columns`, choosing `chosen` (else keeping the current choice where the column exists)."""
        chosen = dict(self.column_fields() if chosen is None else chosen)
        extra = [c for c in chosen.values() if c and c not in columns]  # a saved config's column: kept in view
        for name, combo in zip(COLUMN_FIELDS, self.combos()):
            combo.blockSignals(True)
            combo.clear()
            combo.addItem(NO_PAIR if name == "text_pair_column" else DETECT, "")
            for column in columns + extra:
                combo.addItem(column, column)
            combo.setCurrentIndex(max(0, combo.findData(chosen.get(name) or "")))
            combo.blockSignals(False)

    def _on_column_chosen(self, *_) -> None:
        self._request()

    # -- reading ------------------------------------------------------------------------------------
    def _request(self, *_, immediate: bool = False) -> None:
        if not self._path or self._shut_down:
            return
        self._generation += 1
        if immediate:
            self._debounce.stop()
            self._launch()
        else:
            self._debounce.start()
        self._update_validity()

    def _launch(self) -> None:
        if self._thread is not None or self._shut_down or self._launched == self._generation:
            return
        self._launched = self._generation
        thread = LabelledAnalysisThread(self._generation, self._path, {**self._reading, **self.column_fields()})
        thread.done.connect(self._on_done)
        thread.finished.connect(self._on_thread_finished)
        self._thread = thread
        thread.start()

    def _on_thread_finished(self) -> None:
        if self._thread is not None and self._thread.isFinished():
            self._thread.deleteLater()
            self._thread = None
        if not self._debounce.isActive():
            self._launch()

    def _on_done(self, generation: int, result: LabelledAnalysis) -> None:
        if generation != self._generation:
            return
        if result.columns:
            chosen = self.column_fields()
            if result.summary is not None:  # preset to what was detected
                chosen = {"text_column": result.summary["text_column"],
                          "text_pair_column": result.summary["pair_column"] or "",
                          "label_column": result.summary["label_column"]}
            self._fill_combos(result.columns, chosen)
        self._show(result)
        self._done = self._generation
        self._update_validity()
        self.analysis_finished.emit()

    def _show(self, result: LabelledAnalysis) -> None:
        self.columns = list(result.columns)
        self.summary, self.last_error = result.summary, result.error
        s = result.summary
        self.preview_widget.set_rows(result.preview, bool(s and s.get("pair_column")))
        if result.error is not None:
            self.error_panel.show_exception(result.error)
        else:
            self.error_panel.clear()
        self.summary_label.setText(self._summary_text(s) if s else "")
        regression = bool(s) and s.get("problem") == "regression"
        self.label_table.setVisible(bool(s) and not regression)
        if s and not regression:
            largest = max(s["labels"].values(), default=0)
            rare = largest / IMBALANCE_WARNING if (s.get("imbalance") or 1.0) >= IMBALANCE_WARNING else -1
            self.label_table.set_counts(s["labels"], rare_at_most=rare)
        warnings = (s or {}).get("warnings") or []
        self.warnings_label.setText("\n".join(f"⚠ {w}" for w in warnings[:3])
                                    + (f"\n… and {len(warnings) - 3} more" if len(warnings) > 3 else ""))
        self.warnings_label.setVisible(bool(warnings))
        self._show_imbalance()

    @staticmethod
    def _summary_text(s: dict) -> str:
        text = f"{s['rows']:,} examples, {PROBLEM_WORDS.get(s['problem'], s['problem'])}"
        if s["problem"] == "regression" and s.get("range"):
            low, high = s["range"]
            text += f", from {low:g} to {high:g}"
        else:
            text += f", {len(s['labels'])} labels"
        if s.get("skipped"):
            text += f"; {s['skipped']:,} rows skipped (empty text or label)"
        return text + "."

    def imbalance(self) -> float | None:
        """The largest class over the smallest, when the classes are imbalanced enough to warn about it."""
        ratio = (self.summary or {}).get("imbalance")
        return ratio if ratio is not None and ratio >= IMBALANCE_WARNING else None

    def _show_imbalance(self) -> None:
        ratio = self.imbalance()
        self.imbalance_box.setVisible(ratio is not None)
        if ratio is None:
            return
        labels = self.summary["labels"]
        (big, n_big), (small, n_small) = next(iter(labels.items())), list(labels.items())[-1]
        text = f"Imbalanced classes: {big!r} has {n_big:,} examples, {small!r} only {n_small:,} ({ratio:.1f}×). "
        text += ("✔ Class weights are on: every class counts the same in the loss." if self._weighed else
                 "A classifier may then seldom predict the rare classes.")
        self.imbalance_label.setText(text)
        self.weigh_button.setVisible(not self._weighed)

    def _update_validity(self) -> None:
        valid = self.problem() is None
        if valid != self._valid:
            self._valid = valid
            self.validity_changed.emit(valid)
