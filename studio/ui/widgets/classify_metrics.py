"""The metrics of a classification run, drawn from its RunState: the validation scores at each evaluation
(accuracy and macro-F1; micro-F1 for several labels per text), the latest confusion matrix (true labels down,
predicted across, counts in the cells, coloured by the share of each true label's examples) and each class's
precision, recall and F1. A regression shows its MSE and its Pearson and Spearman correlations instead.

Everything is rebuilt from the state, so a run followed live and a finished run whose events are folded again
look the same.
"""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QLabel, QSplitter, QStackedWidget, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from studio.engine.run_state import EvalPoint, RunState
from studio.ui.evaluate.plots import draw_confusion
from studio.ui.widgets.loss_plot import LossPlot

# metric key in the eval event -> series name on the plot
SCORE_SERIES = {"accuracy": "accuracy", "macro_f1": "macro-F1", "micro_f1": "micro-F1"}
CORRELATION_SERIES = {"pearson": "Pearson", "spearman": "Spearman"}
ERROR_SERIES = {"mse": "MSE"}
WAITING = "The validation scores appear here after the first evaluation."


def _is_regression(state: RunState) -> bool:
    if state.started.get("problem"):
        return state.started["problem"] == "regression"
    return any("mse" in e.metrics for e in state.evals)


class ConfusionHeatmap(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.plot = pg.PlotWidget(background="w", title="Confusion matrix")
        self.plot.setMinimumSize(160, 140)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        self.plot.invertY(True)
        self.plot.setLabel("left", "true label")
        self.plot.setLabel("bottom", "predicted label")
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.note.setStyleSheet("color: #666;")
        self.stack = QStackedWidget()
        self.stack.addWidget(self.plot)
        self.stack.addWidget(self.note)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)
        self.labels: list[str] = []
        self.counts: list[list[int]] = []
        self.count_items: list[list[pg.TextItem]] = []
        self.show_note(WAITING)

    def show_note(self, text: str) -> None:
        self.note.setText(text)
        self.stack.setCurrentWidget(self.note)
        self.labels, self.counts, self.count_items = [], [], []

    def show_matrix(self, labels: list[str], matrix, title: str = "Confusion matrix") -> None:
        counts = np.array(matrix, dtype=float)
        if not labels or counts.shape != (len(labels), len(labels)):
            self.show_note(f"The confusion matrix is malformed ({counts.shape} for {len(labels)} labels).")
            return
        self.plot.setTitle(title)
        self.count_items = draw_confusion(self.plot, list(labels), counts)
        self.labels = list(labels)
        self.counts = counts.astype(int).tolist()
        self.stack.setCurrentWidget(self.plot)

    def shown_text(self) -> list[list[str]]:
        """The counts as written in the cells."""
        return [[item.toPlainText() for item in row] for row in self.count_items]


class PerClassTable(QTableWidget):
    COLUMNS = ("Label", "Precision", "Recall", "F1", "Support")

    def __init__(self, parent=None):
        super().__init__(0, len(self.COLUMNS), parent)
        self.setHorizontalHeaderLabels(list(self.COLUMNS))
        self.verticalHeader().hide()
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setToolTip("Precision: of the texts predicted as the label, the share that has it. Recall: of the "
                        "texts that have it, the share predicted. F1: their harmonic mean. Support: the texts of "
                        "the label in the validation data.")

    def show_scores(self, per_class: dict, order: list[str]) -> None:
        self.setRowCount(0)
        for label in order + [k for k in per_class if k not in order]:
            scores = per_class.get(label)
            if not isinstance(scores, dict):
                continue
            r = self.rowCount()
            self.insertRow(r)
            self.setItem(r, 0, QTableWidgetItem(str(label)))
            for c, key in enumerate(("precision", "recall", "f1", "support"), start=1):
                value = scores.get(key)
                text = "—" if not isinstance(value, (int, float)) else \
                    f"{int(value):,}" if key == "support" else f"{value:.3f}"
                item = QTableWidgetItem(text)
                item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
                if key == "f1" and isinstance(value, (int, float)) and value < 0.5:
                    item.setBackground(QColor(253, 236, 234))  # a class the model mostly gets wrong
                self.setItem(r, c, item)
        self._fit_width()

    def _fit_width(self) -> None:
        """As wide as its columns (labels up to a limit), so no figure is cut off beside the matrix."""
        self.resizeColumnsToContents()
        self.setColumnWidth(0, min(self.columnWidth(0), 160))
        width = self.horizontalHeader().length() + 2 * self.frameWidth()
        self.setMinimumWidth(width + self.verticalScrollBar().sizeHint().width())

    def row_values(self, label: str) -> dict[str, str]:
        for r in range(self.rowCount()):
            if self.item(r, 0).text() == label:
                return {key: self.item(r, c).text() for c, key in enumerate(self.COLUMNS)}
        raise KeyError(label)


class ClassifyMetrics(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.headline = QLabel(WAITING)
        self.headline.setWordWrap(True)
        self.scores = LossPlot(title="Validation scores")
        self.scores.plot.setLabel("left", "score")
        self.errors = LossPlot(title="Validation error")
        self.errors.plot.setLabel("left", "mean squared error")
        self.confusion = ConfusionHeatmap()
        self.per_class = PerClassTable()
        self.details = QSplitter(Qt.Orientation.Horizontal)
        self.details.addWidget(self.confusion)
        self.details.addWidget(self.per_class)
        self.details.setStretchFactor(0, 1)
        self.details.setStretchFactor(1, 0)
        self.details.setChildrenCollapsible(False)
        split = QSplitter(Qt.Orientation.Vertical)
        for w in (self.scores, self.errors, self.details):
            split.addWidget(w)
            w.setMinimumHeight(120)
        split.setChildrenCollapsible(False)
        split.setStretchFactor(0, 2)
        split.setStretchFactor(1, 2)
        split.setStretchFactor(2, 3)  # the matrix needs the height more than the curves
        split.setSizes([400, 400, 600])
        self.scores.legend.setOffset((-10, -10))  # bottom right: scores rise, so the legend stays clear of them
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 0)
        layout.addWidget(self.headline)
        layout.addWidget(split, 1)
        self._shown: tuple | None = None
        self.regression = False
        self.errors.hide()

    def show_state(self, state: RunState) -> None:
        if state.started.get("task") not in (None, "classify"):
            return  # another kind of run (the Fine-tune tab's chat runs): nothing of this view to show
        evals = state.evals
        key = (id(state), len(evals), evals[-1].step if evals else None, state.started.get("problem"))
        if key == self._shown:
            return  # a routine event (a logged step): nothing here changed
        self._shown = key
        self.regression = _is_regression(state)
        self.errors.setVisible(self.regression)
        self.details.setVisible(not self.regression)
        series = {**CORRELATION_SERIES} if self.regression else {**SCORE_SERIES}
        self.scores.plot.setTitle("Validation correlation" if self.regression else "Validation scores")
        self.scores.plot.setLabel("left", "correlation" if self.regression else "score")
        for plot, wanted in ((self.scores, series), (self.errors, ERROR_SERIES)):
            plot.clear()
            for metric, name in wanted.items():  # one series at a time: each keeps its colour from run to run
                for e in evals:
                    if metric in e.metrics:
                        plot.add_point(name, e.step, e.metrics[metric])
                plot.redraw()
        self.headline.setText(self._headline(evals[-1]) if evals else WAITING)
        if not self.regression:
            self._show_details(evals)

    def _headline(self, e: EvalPoint) -> str:
        shown = [(name, e.metrics[key]) for key, name in
                 ({**ERROR_SERIES, **CORRELATION_SERIES} if self.regression else SCORE_SERIES).items()
                 if key in e.metrics]
        parts = [f"{name} {value:.1%}" if name == "accuracy" else f"{name} {value:.3f}" for name, value in shown]
        return f"Latest evaluation, step {e.step:,}: " + (", ".join(parts) or f"loss {e.loss:.4f}")

    def _show_details(self, evals: list[EvalPoint]) -> None:
        latest = next((e for e in reversed(evals) if e.details.get("per_class") or e.details.get("confusion")),
                      None)
        if latest is None:
            self.confusion.show_note(WAITING)
            self.per_class.setRowCount(0)
            return
        labels = [str(x) for x in latest.details.get("labels") or []]
        confusion = latest.details.get("confusion")
        if confusion:
            self.confusion.show_matrix(labels, confusion, f"Confusion matrix at step {latest.step:,}")
        else:
            self.confusion.show_note("No confusion matrix when a text can have several labels: each label is a "
                                     "yes-or-no decision of its own (see its scores in the table).")
        per_class = latest.details.get("per_class")
        self.per_class.show_scores(per_class if isinstance(per_class, dict) else {}, labels)
