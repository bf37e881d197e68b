"""The results of an evaluation (results.json): the recommendation in plain words, the candidates × metrics
table, and below it the plots (primary metric vs k, vs cost) and the confusion matrix of the candidate
selected in the table."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QColor
from PySide6.QtWidgets import (QAbstractItemView, QFrame, QHeaderView, QLabel, QScrollArea, QSplitter, QTableWidget,
                               QTableWidgetItem, QTabWidget, QVBoxLayout, QWidget)

from studio.engine.evaluate.results import METRIC_WORDS, format_metric, table_rows
from studio.ui.evaluate.plots import ConfusionView, CostPlot, ShotsPlot, metric_value, primary_metric
from studio.ui.finetune.elided_label import ElidedLabel

EMPTY = ("<b>No results yet.</b> Press Start: each candidate is scored on every held-out example, and its row "
         "appears here as soon as it is done. A finished evaluation opened from the Runs list shows here too.")
BEST = QColor(216, 240, 210)
TOP_LINES = 7
RECOMMENDATION_STYLE = ("background: #eef4fb; border: 1px solid #b8cde6; border-radius: 4px; padding: 6px; "
                        "color: #1a2a40;")


def best_candidate(results: dict) -> str | None:
    """The id of the candidate with the best primary metric (None when nothing is scored)."""
    metric, higher = primary_metric(results)
    scored = [(metric_value(c, metric), str(c.get("id"))) for c in results.get("candidates", [])
              if metric_value(c, metric) is not None]
    if not scored:
        return None
    return (max if higher else min)(scored, key=lambda pair: pair[0])[1]


class ResultsView(QWidget):
    candidate_selected = Signal(str)  # candidate id

    def __init__(self, parent=None):
        super().__init__(parent)
        self.results: dict = {}
        self.selected_id: str | None = None  # the candidate whose confusion matrix is shown
        self.source_label = ElidedLabel(elide=Qt.TextElideMode.ElideMiddle)
        self.source_label.setStyleSheet("color: #555;")
        self.recommendation = QLabel(EMPTY)
        self.recommendation.setWordWrap(True)
        self.recommendation.setTextFormat(Qt.TextFormat.RichText)
        self.recommendation.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.recommendation.setStyleSheet(RECOMMENDATION_STYLE)
        self.warnings_label = QLabel()
        self.warnings_label.setWordWrap(True)
        self.warnings_label.setStyleSheet("color: #8a5300;")
        self.warnings_label.setTextFormat(Qt.TextFormat.PlainText)
        self.warnings_label.hide()

        self.table = QTableWidget(0, 0)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.table.verticalHeader().hide()
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.ResizeToContents)
        self.table.setMinimumHeight(60)
        self.table.setToolTip("One row per candidate; the best value of the primary metric is green. Select a row "
                              "to see its confusion matrix.")
        self.table.itemSelectionChanged.connect(self._row_selected)

        self.shots_plot = ShotsPlot()
        self.cost_plot = CostPlot()
        self.confusion = ConfusionView()
        self.views = QTabWidget()
        self.views.addTab(self.shots_plot, "vs k")
        self.views.addTab(self.cost_plot, "vs cost")
        self.views.addTab(self.confusion, "Confusion matrix")
        self.views.setTabToolTip(0, "The primary metric against the examples in the prompt; fine-tuned models are "
                                    "dashed level lines")
        self.views.setTabToolTip(1, "The primary metric against the prompt tokens each request costs")

        # The recommendation and warnings keep their height; the table and the plots share the rest.
        splitter = QSplitter(Qt.Orientation.Vertical)
        splitter.addWidget(self.table)
        splitter.addWidget(self.views)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        splitter.setChildrenCollapsible(False)
        splitter.setSizes([200, 300])
        self.splitter = splitter
        # The recommendation and warnings get the height they need, up to TOP_LINES lines; longer ones scroll,
        # so a long text never makes the window taller than a small screen.
        top = QWidget()
        top_layout = QVBoxLayout(top)
        top_layout.setContentsMargins(0, 0, 0, 0)
        top_layout.addWidget(self.recommendation)
        top_layout.addWidget(self.warnings_label)
        self.top_area = QScrollArea()
        self.top_area.setWidget(top)
        self.top_area.setWidgetResizable(True)
        self.top_area.setFrameShape(QFrame.Shape.NoFrame)
        self.top_area.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.source_label)
        layout.addWidget(self.top_area)
        layout.addWidget(splitter, 1)
        self.clear()

    # -- showing ---------------------------------------------------------------------------------
    def _fit_top(self) -> None:
        """The recommendation's height for the width it has, at most TOP_LINES lines."""
        content = self.top_area.widget()
        width = max(50, self.top_area.viewport().width())
        need = content.layout().totalHeightForWidth(width) if content.layout().hasHeightForWidth() else \
            content.sizeHint().height()
        cap = TOP_LINES * self.fontMetrics().lineSpacing() + 16
        height = max(1, min(need, cap))
        if self.top_area.height() != height or self.top_area.minimumHeight() != height:
            self.top_area.setFixedHeight(height)

    def resizeEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().resizeEvent(event)
        self._fit_top()

    def recommendation_fits(self) -> bool:
        """Whether the whole recommendation is in view (no scrolling needed)."""
        return self.top_area.verticalScrollBar().maximum() == 0

    def clear(self, text: str = EMPTY) -> None:
        self.results = {}
        self.selected_id = None
        self.source_label.setText("")
        self.source_label.hide()
        self.recommendation.setText(text)
        self.warnings_label.hide()
        self._fit_top()
        self.table.setRowCount(0)
        self.table.setColumnCount(0)
        for view in (self.shots_plot, self.cost_plot, self.confusion):
            view.show_results({})

    def show_results(self, results: dict, source: str = "") -> None:
        """Show a results.json (complete or partial)."""
        self.results = results
        self.source_label.setText(source)
        self.source_label.setVisible(bool(source))
        self.recommendation.setText(self._recommendation_html(results))
        warnings = [str(w) for w in results.get("warnings") or []]
        self.warnings_label.setText("\n".join(f"⚠ {w}" for w in warnings))
        self.warnings_label.setVisible(bool(warnings))
        self._fit_top()
        self._fill_table(results)
        for view in (self.shots_plot, self.cost_plot, self.confusion):
            view.show_results(results)
        chosen = self.selected_id if self.selected_id in self.candidate_ids() else best_candidate(results)
        self.select_candidate(chosen or "")

    def _recommendation_html(self, results: dict) -> str:
        cands = results.get("candidates", [])
        metric, higher = primary_metric(results)
        scored = sum(1 for c in cands if metric_value(c, metric) is not None)
        text = str(results.get("recommendation") or "").strip()
        if text:
            body = html.escape(text).replace("\n", "<br>")
        elif results.get("complete"):
            body = "The evaluation finished without a recommendation."
        else:
            body = "The recommendation comes when every candidate has been scored."
        examples = results.get("examples")
        scope = f" on {examples:,} held-out examples" if isinstance(examples, int) else ""
        state = "" if results.get("complete") else \
            f"<br><i>In progress or stopped: {scored} candidate{'s' * (scored != 1)} scored so far.</i>"
        words = METRIC_WORDS.get(metric, metric)
        return (f"<b>Recommendation</b><br>{body}<br><span style='color:#555'>Ranked by {html.escape(words)} "
                f"({'higher' if higher else 'lower'} is better){scope}.</span>{state}")

    def _fill_table(self, results: dict) -> None:
        headers, rows = table_rows(results)
        cands = results.get("candidates", [])
        metric, _ = primary_metric(results)
        column = headers.index(METRIC_WORDS.get(metric, metric)) if METRIC_WORDS.get(metric, metric) in headers \
            else None
        best = best_candidate(results)
        self.table.blockSignals(True)
        self.table.clear()
        self.table.setColumnCount(len(headers))
        self.table.setHorizontalHeaderLabels(headers)
        self.table.setRowCount(len(rows))
        for r, (row, cand) in enumerate(zip(rows, cands)):
            for c, text in enumerate(row):
                item = QTableWidgetItem(text)
                item.setData(Qt.ItemDataRole.UserRole, str(cand.get("id")))
                if c == 0:
                    item.setToolTip(self._candidate_tip(cand))
                if c == column and str(cand.get("id")) == best:
                    item.setBackground(BEST)
                    item.setToolTip("The best value of the primary metric")
                self.table.setItem(r, c, item)
        self.table.blockSignals(False)

    @staticmethod
    def _candidate_tip(cand: dict) -> str:
        lines = [str(cand.get("label") or cand.get("id"))]
        if cand.get("adapter"):
            lines.append(f"adapter: {cand['adapter']}")
        if cand.get("model"):
            lines.append(f"model: {cand['model']}")
        if cand.get("run"):
            lines.append(f"run: {cand['run']}")
        if isinstance(cand.get("scored"), int):
            lines.append(f"{cand['scored']:,} examples scored")
        cost = cand.get("cost") or {}
        if isinstance(cost.get("train_seconds"), (int, float)):
            lines.append(f"trained for {cost['train_seconds'] / 60:.1f} min")
        fit = cand.get("fit") or {}
        if fit.get("shots_dropped") or fit.get("skipped"):
            lines.append(f"{fit.get('shots_dropped') or 0} prompts lost shots to fit, {fit.get('skipped') or 0} "
                         f"examples skipped")
        unseen = cand.get("unseen_labels") or []
        if unseen:
            lines.append("labels it never saw: " + ", ".join(map(str, unseen)))
        per_class = cand.get("per_class") or {}
        for label, figures in list(per_class.items())[:12]:
            if isinstance(figures, dict):
                lines.append(f"{label}: F1 {format_metric('macro_f1', figures.get('f1'))}, "
                             f"{figures.get('support', '?')} examples")
        return "\n".join(lines)

    # -- selection -------------------------------------------------------------------------------
    def candidate_ids(self) -> list[str]:
        return [str(c.get("id")) for c in self.results.get("candidates", [])]

    def select_candidate(self, candidate_id: str) -> None:
        ids = self.candidate_ids()
        if candidate_id in ids:
            self.table.selectRow(ids.index(candidate_id))

    def _row_selected(self) -> None:
        rows = self.table.selectionModel().selectedRows()
        if not rows:
            return
        cid = self.table.item(rows[0].row(), 0).data(Qt.ItemDataRole.UserRole)
        self.selected_id = cid
        self.confusion.select(cid)
        self.candidate_selected.emit(cid)

    def row_count(self) -> int:
        return self.table.rowCount()
