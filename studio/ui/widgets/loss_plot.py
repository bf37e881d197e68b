"""A live training plot: append points to buffers, redraw on a timer only when something changed.

Series on the left axis: "train" (raw, faint), "train (smoothed)" (an EMA computed here), "eval"
(markers) and any extra series a tab adds (e.g. "perplexity"); "learning_rate" is drawn against a
second axis on the right.
"""

from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QTimer
from PySide6.QtWidgets import QVBoxLayout, QWidget

RIGHT_AXIS_SERIES = {"learning_rate"}
SMOOTHED = "train (smoothed)"
STYLES = {
    "train": dict(pen=pg.mkPen((70, 130, 220, 90), width=1)),
    SMOOTHED: dict(pen=pg.mkPen((30, 90, 200), width=2)),
    "eval": dict(pen=pg.mkPen((230, 120, 20), width=1, style=pg.QtCore.Qt.PenStyle.DashLine), symbol="o",
                 symbolSize=7, symbolBrush=(230, 120, 20), symbolPen=None),
    "learning_rate": dict(pen=pg.mkPen((60, 160, 80), width=1, style=pg.QtCore.Qt.PenStyle.DotLine)),
}
EXTRA_COLORS = [(150, 60, 180), (200, 50, 60), (20, 150, 150), (120, 120, 120)]
LABELS = {"learning_rate": "learning rate"}


class LossPlot(QWidget):
    def __init__(self, parent=None, *, smoothing: float = 0.9, redraw_ms: int = 150, title: str | None = None):
        super().__init__(parent)
        self.smoothing = smoothing
        self._data: dict[str, tuple[list[float], list[float]]] = {}
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._visible: dict[str, bool] = {}
        self._dirty: set[str] = set()
        self._ema: float | None = None
        self._ema_n = 0

        pg.setConfigOptions(antialias=True)
        self.widget = pg.PlotWidget(background="w", title=title)
        self.plot = self.widget.getPlotItem()
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        # A long run has tens of thousands of points: draw only what is in view, at most a few per pixel,
        # so a redraw stays short and the event loop stays responsive.
        self.plot.setClipToView(True)
        self.plot.setDownsampling(auto=True, mode="peak")
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "loss")
        self.legend = self.plot.addLegend(offset=(-10, 10))
        self.plot.showAxis("right")
        self.plot.setLabel("right", "learning rate")
        self.right_view = pg.ViewBox()
        self.plot.scene().addItem(self.right_view)
        self.plot.getAxis("right").linkToView(self.right_view)
        self.right_view.setXLink(self.plot)
        self.plot.vb.sigResized.connect(self._sync_views)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.widget)

        self.timer = QTimer(self)
        self.timer.setInterval(redraw_ms)
        self.timer.timeout.connect(self.redraw)
        self.timer.start()

    # -- data --------------------------------------------------------------------------------
    def add_point(self, series: str, step: float, value: float) -> None:
        """Append a point; the plot catches up at the next timer tick. Non-finite values are skipped."""
        try:
            step, value = float(step), float(value)
        except (TypeError, ValueError):
            return
        if not (math.isfinite(step) and math.isfinite(value)):
            return
        self._append(series, step, value)
        if series == "train":
            self._ema_n += 1
            self._ema = value if self._ema is None else self.smoothing * self._ema + (1 - self.smoothing) * value
            # the average starts at the first value, so the first points are not pulled towards zero
            self._append(SMOOTHED, step, self._ema)

    def _append(self, series: str, step: float, value: float) -> None:
        xs, ys = self._data.setdefault(series, ([], []))
        xs.append(step)
        ys.append(value)
        self._dirty.add(series)

    def series_names(self) -> list[str]:
        return list(self._data)

    def series_data(self, series: str) -> tuple[list[float], list[float]]:
        xs, ys = self._data.get(series, ([], []))
        return list(xs), list(ys)

    def point_count(self, series: str) -> int:
        return len(self._data.get(series, ([], []))[0])

    def clear(self) -> None:
        for name, curve in self._curves.items():
            (self.right_view if name in RIGHT_AXIS_SERIES else self.plot).removeItem(curve)
            self.legend.removeItem(curve)
        self._curves.clear()
        self._data.clear()
        self._dirty.clear()
        self._ema, self._ema_n = None, 0

    def set_series_visible(self, series: str, visible: bool) -> None:
        self._visible[series] = visible
        if series in self._curves:
            self._curves[series].setVisible(visible)

    def load_events(self, events: list[dict]) -> None:
        """Show a past run: `log` events give train and learning rate, `eval` events give eval."""
        self.clear()
        for ev in events:
            t = ev.get("type")
            if t == "log":
                if ev.get("loss") is not None:
                    self.add_point("train", ev.get("step", 0), ev["loss"])
                if ev.get("learning_rate") is not None:
                    self.add_point("learning_rate", ev.get("step", 0), ev["learning_rate"])
            elif t == "eval" and ev.get("eval_loss") is not None:
                self.add_point("eval", ev.get("step", 0), ev["eval_loss"])
        self.redraw()

    # -- drawing -----------------------------------------------------------------------------
    def _curve(self, series: str) -> pg.PlotDataItem:
        curve = self._curves.get(series)
        if curve is None:
            style = STYLES.get(series)
            if style is None:
                color = EXTRA_COLORS[(len(self._curves)) % len(EXTRA_COLORS)]
                style = dict(pen=pg.mkPen(color, width=2))
            curve = pg.PlotDataItem(name=LABELS.get(series, series), **style)
            if series in RIGHT_AXIS_SERIES:
                self.right_view.addItem(curve)
                self.legend.addItem(curve, LABELS.get(series, series))
            else:
                self.plot.addItem(curve)
            curve.setVisible(self._visible.get(series, True))
            self._curves[series] = curve
        return curve

    def redraw(self) -> None:
        if not self._dirty:
            return
        for series in list(self._dirty):
            xs, ys = self._data.get(series, ([], []))
            self._curve(series).setData(np.asarray(xs, dtype=float), np.asarray(ys, dtype=float),
                                        skipFiniteCheck=True)  # add_point only stores finite values
        self._dirty.clear()
        self._sync_views()

    def _sync_views(self) -> None:
        self.right_view.setGeometry(self.plot.vb.sceneBoundingRect())
        self.right_view.linkedViewChanged(self.plot.vb, self.right_view.XAxis)
