"""The plots of an evaluation's results: the primary metric against k (the examples in the prompt) with each
fine-tuned candidate as a horizontal line, the primary metric against the prompt tokens each request costs,
and a classification candidate's confusion matrix (true labels down, predicted labels across, counts in the
cells, coloured by the share of each true label's examples)."""

from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QStackedWidget, QVBoxLayout, QWidget

from studio.engine.evaluate.results import FRACTION_METRICS, METRIC_WORDS, PRIMARY

PROMPT_PEN = pg.mkPen((30, 90, 200), width=2)
PROMPT_SYMBOL = dict(symbol="o", symbolSize=8, symbolBrush=(30, 90, 200), symbolPen=None)
TUNED_COLORS = [(230, 120, 20), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75), (227, 119, 194)]


def primary_metric(results: dict) -> tuple[str, bool]:
    """(metric name, higher is better) of the results."""
    primary = results.get("primary") if isinstance(results.get("primary"), dict) else {}
    if primary.get("metric"):
        return str(primary["metric"]), bool(primary.get("higher_is_better", True))
    return PRIMARY.get(results.get("kind"), ("accuracy", True))


def metric_value(cand: dict, metric: str) -> float | None:
    """The candidate's value of the metric as plotted (fractions as percentages); None when missing."""
    value = (cand.get("metrics") or {}).get(metric)
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return 100 * float(value) if metric in FRACTION_METRICS else float(value)


def axis_title(metric: str) -> str:
    return METRIC_WORDS.get(metric, metric) + (" (%)" if metric in FRACTION_METRICS else "")


def _note(plot: pg.PlotWidget, text: str) -> None:
    item = pg.TextItem(text, color=(110, 110, 110), anchor=(0.5, 0.5))
    plot.addItem(item)
    item.setPos(0.5, 0.5)
    plot.setXRange(0, 1)
    plot.setYRange(0, 1)


class ShotsPlot(pg.PlotWidget):
    """The primary metric against k for the prompting candidates; a fine-tuned candidate is a level line."""

    def __init__(self, parent=None):
        # No legend (it would cover the curve in a small window): the title says what is what, and each
        # fine-tuned line carries its name.
        super().__init__(parent, background="w", title="Primary metric vs examples in the prompt (k); dashed: "
                                                        "fine-tuned")
        self.showGrid(x=True, y=True, alpha=0.2)
        self.setMinimumHeight(100)
        self.setLabel("bottom", "examples in the prompt (k)")
        self.points: list[tuple[int, float]] = []  # (k, value) of the prompting candidates
        self.levels: dict[str, float] = {}  # fine-tuned candidate label -> value

    def show_results(self, results: dict) -> None:
        self.clear()
        metric, _ = primary_metric(results)
        self.setLabel("left", axis_title(metric))
        cands = [c for c in results.get("candidates", []) if metric_value(c, metric) is not None]
        prompts = sorted((int(c.get("shots") or 0), metric_value(c, metric)) for c in cands
                         if c.get("kind") == "prompt")
        self.points = prompts
        self.levels = {str(c.get("label") or c.get("id")): metric_value(c, metric) for c in cands
                       if c.get("kind") == "tuned"}
        self.getAxis("bottom").setTicks(None)
        if not prompts and not self.levels:
            _note(self, "Nothing scored yet.")
            return
        ks = sorted({k for k, _ in prompts} | {0})
        self.getAxis("bottom").setTicks([[(k, str(k)) for k in ks]])
        if prompts:
            ks, values = zip(*prompts)
            self.plot(list(ks), list(values), pen=PROMPT_PEN, **PROMPT_SYMBOL)
        for i, (label, value) in enumerate(self.levels.items()):
            pen = pg.mkPen(TUNED_COLORS[i % len(TUNED_COLORS)], width=2, style=Qt.PenStyle.DashLine)
            line = pg.InfiniteLine(value, angle=0, pen=pen, label=label,  # the label hangs below the line's end
                                   labelOpts={"position": 0.97, "color": pen.color(), "anchors": [(1, 0), (1, 0)]})
            self.addItem(line)
        highest_k = max([k for k, _ in prompts] + [1])
        self.setXRange(0, highest_k, padding=0.08)
        values = [v for _, v in prompts] + list(self.levels.values())
        lo, hi = min(values), max(values)
        pad = (hi - lo) * 0.15 or max(abs(hi) * 0.05, 1.0)
        self.setYRange(lo - pad, hi + pad, padding=0)


class CostPlot(pg.PlotWidget):
    """The primary metric against the prompt tokens per request: what each candidate costs to run."""

    def __init__(self, parent=None):
        super().__init__(parent, background="w", title="Primary metric vs prompt tokens per request (cost)")
        self.showGrid(x=True, y=True, alpha=0.2)
        self.setMinimumHeight(100)
        self.setLabel("bottom", "prompt tokens per request")
        self.points: dict[str, tuple[float, float]] = {}  # candidate label -> (tokens, value)

    def show_results(self, results: dict) -> None:
        self.clear()
        metric, _ = primary_metric(results)
        self.setLabel("left", axis_title(metric))
        self.points = {}
        prompt_line = []
        tuned = 0
        for cand in results.get("candidates", []):
            value = metric_value(cand, metric)
            tokens = (cand.get("cost") or {}).get("prompt_tokens")
            if value is None or not isinstance(tokens, (int, float)):
                continue
            label = str(cand.get("label") or cand.get("id"))
            self.points[label] = (float(tokens), value)
            if cand.get("kind") == "prompt":
                prompt_line.append((float(tokens), value))
                color = (30, 90, 200)
            else:
                color = TUNED_COLORS[tuned % len(TUNED_COLORS)]
                tuned += 1
            self.plot([float(tokens)], [value], pen=None, symbol="o" if cand.get("kind") == "prompt" else "s",
                      symbolSize=9, symbolBrush=color, symbolPen=None)
            text = pg.TextItem(label, color=color, anchor=(-0.05, 0.5))  # to the right of its point
            text.setPos(float(tokens), value)
            self.addItem(text)
        if not self.points:
            _note(self, "No cost measured yet.")
            return
        if len(prompt_line) > 1:
            xs, ys = zip(*sorted(prompt_line))
            self.plot(list(xs), list(ys), pen=pg.mkPen((30, 90, 200, 120), width=1))
        xs = [x for x, _ in self.points.values()]
        ys = [y for _, y in self.points.values()]
        self.setXRange(min(0.0, min(xs)), max(xs) * 1.5 or 1.0, padding=0.05)  # room for the labels
        pad = (max(ys) - min(ys)) * 0.2 or max(abs(max(ys)) * 0.05, 1.0)
        self.setYRange(min(ys) - pad, max(ys) + pad, padding=0)


def heat_lut() -> np.ndarray:
    """256 colours from white (share 0) to a deep blue (share 1)."""
    low, high = np.array([255.0, 255.0, 255.0]), np.array([30.0, 80.0, 170.0])
    steps = np.linspace(0, 1, 256)[:, None]
    return (low + (high - low) * steps).round().astype(np.ubyte)


COUNTS_UP_TO = 20  # labels; with more, the cells are too small to write a count in


def draw_confusion(plot, labels: list[str], counts: np.ndarray) -> list[list]:
    """Draw a confusion matrix (rows: true, columns: predicted) on a pyqtgraph plot, each cell shaded by its share
    of the row and labelled with its count; returns the count items, row by row."""
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros_like(counts), where=totals > 0)
    plot.clear()
    image = pg.ImageItem(shares, axisOrder="row-major", levels=(0.0, 1.0), lut=heat_lut())
    image.setRect(0, 0, len(labels), len(labels))
    plot.addItem(image)
    count_items = []
    if len(labels) <= COUNTS_UP_TO:
        for i in range(len(labels)):
            row = []
            for j in range(len(labels)):
                color = "w" if shares[i, j] > 0.55 else (40, 40, 40)
                item = pg.TextItem(f"{int(counts[i, j])}", color=color, anchor=(0.5, 0.5))
                item.setPos(j + 0.5, i + 0.5)
                plot.addItem(item)
                row.append(item)
            count_items.append(row)
    ticks = [[(k + 0.5, label if len(label) <= 18 else label[:17] + "…") for k, label in enumerate(labels)]]
    plot.getAxis("bottom").setTicks(ticks)
    plot.getAxis("left").setTicks(ticks)
    plot.setXRange(0, len(labels), padding=0)
    plot.setYRange(0, len(labels), padding=0)
    return count_items


class ConfusionView(QWidget):
    """The confusion matrix of one classification candidate, chosen in the combo box (or the results table)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.combo = QComboBox()
        self.combo.setToolTip("The candidate whose confusion matrix is shown (or select its row in the table)")
        self.combo.currentIndexChanged.connect(self._draw)
        self.plot = pg.PlotWidget(background="w")
        self.plot.setMinimumHeight(100)
        self.plot.setMouseEnabled(False, False)
        self.plot.hideButtons()
        self.plot.setMenuEnabled(False)
        self.plot.invertY(True)
        self.plot.setAspectLocked(False)
        self.plot.setLabel("left", "true label")
        self.plot.setLabel("bottom", "predicted label")
        self.note = QLabel()
        self.note.setWordWrap(True)
        self.note.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.plot)
        self.stack.addWidget(self.note)
        top = QHBoxLayout()
        top.addWidget(QLabel("Candidate"))
        top.addWidget(self.combo, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.stack, 1)
        self.matrices: dict[str, dict] = {}  # candidate id -> {"labels", "matrix"}
        self.shown_labels: list[str] = []
        self.shown_counts: list[list[int]] = []
        self.count_items: list[list[pg.TextItem]] = []
        self.show_note("The confusion matrix appears here for a classification evaluation (labelled text).")

    def show_note(self, text: str) -> None:
        self.note.setText(text)
        self.stack.setCurrentWidget(self.note)
        self.shown_labels, self.shown_counts, self.count_items = [], [], []

    def show_results(self, results: dict) -> None:
        chosen = self.current()
        self.matrices = {}
        self.combo.blockSignals(True)
        self.combo.clear()
        for cand in results.get("candidates", []):
            confusion = cand.get("confusion")
            if isinstance(confusion, dict) and confusion.get("labels") and confusion.get("matrix"):
                self.matrices[str(cand.get("id"))] = confusion
                self.combo.addItem(str(cand.get("label") or cand.get("id")), str(cand.get("id")))
        self.combo.setCurrentIndex(max(0, self.combo.findData(chosen)) if chosen else 0)
        self.combo.blockSignals(False)
        self.combo.setEnabled(self.combo.count() > 1)
        if not self.matrices:
            scores = {"generation": "answers", "perplexity": "perplexity",
                      "preference": "preference pairs"}.get(results.get("kind"))
            self.show_note("The confusion matrix is for classification (labelled text); this evaluation scores "
                           f"{scores}." if scores else "No confusion matrix yet.")
            return
        self._draw()

    def current(self) -> str | None:
        return self.combo.currentData()

    def select(self, candidate_id: str) -> None:
        i = self.combo.findData(candidate_id)
        if i >= 0:
            self.combo.setCurrentIndex(i)

    def _draw(self, *_) -> None:
        confusion = self.matrices.get(self.current() or "")
        if confusion is None:
            return
        labels = [str(x) for x in confusion["labels"]]
        counts = np.array(confusion["matrix"], dtype=float)
        if counts.shape != (len(labels), len(labels)):
            self.show_note(f"The confusion matrix of this candidate is malformed ({counts.shape} for "
                           f"{len(labels)} labels).")
            return
        self.count_items = draw_confusion(self.plot, labels, counts)
        self.shown_labels = labels
        self.shown_counts = counts.astype(int).tolist()
        self.stack.setCurrentWidget(self.plot)

    def shown_text(self) -> list[list[str]]:
        """The counts as written in the cells."""
        return [[item.toPlainText() for item in row] for row in self.count_items]
