"""A live training plot: append points to buffers, redraw on a timer only when something changed.

Series on the left axis: "train" (raw, faint), "train (smoothed)" (a debiased EMA computed here), "eval"
(markers) and any extra series a tab adds (e.g. "perplexity"); "learning_rate" is drawn against a
second axis on the right, which appears once that series has a point. Past runs can be overlaid,
each in its own colour (`add_run_curves`).
"""

from __future__ import annotations

import math
from typing import Iterable

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QTimer
from PySide6.QtWidgets import QVBoxLayout, QWidget

RIGHT_AXIS_SERIES = {"learning_rate"}
SMOOTHED = "train (smoothed)"
STYLES = {
    "train": dict(pen=pg.mkPen((70, 130, 220, 90), width=1)),
    SMOOTHED: dict(pen=pg.mkPen((30, 90, 200), width=2)),
    "eval": dict(pen=pg.mkPen((230, 120, 20), width=1, style=Qt.PenStyle.DashLine), symbol="o",
                 symbolSize=7, symbolBrush=(230, 120, 20), symbolPen=None),
    "learning_rate": dict(pen=pg.mkPen((60, 160, 80), width=1, style=Qt.PenStyle.DotLine)),
}
EXTRA_COLORS = [(150, 60, 180), (200, 50, 60), (20, 150, 150), (120, 120, 120)]
RUN_COLORS = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
              (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
LABELS = {"learning_rate": "learning rate"}
MIN_LABEL_GAP_PX = 24  # tick labels closer than this on a log axis overlap (a label is ~15 px tall)
SINGLE_POINT_SYMBOL = dict(symbol="o", symbolSize=7, symbolPen=None)

Points = Iterable[tuple[float, float]]


# -- numbers -----------------------------------------------------------------------------------
def debiased_ema(values: Iterable[float], smoothing: float) -> list[float]:
    """TensorBoard's smoothing: an EMA that starts from 0, divided by (1 - smoothing**t) so that it starts on
    the data and an early run is not pulled towards its first value."""
    out, ema = [], 0.0
    for t, value in enumerate(values, start=1):
        ema = smoothing * ema + (1 - smoothing) * value
        out.append(ema / (1 - smoothing ** t))
    return out


def format_number(value: float) -> str:
    """A value on its own: plain in the usual range, else compact scientific (2e-04, 1e+05)."""
    if value == 0:
        return "0"
    if 1e-3 <= abs(value) < 1e5:
        return f"{value:.6g}"
    return f"{value:.3g}"


def format_ticks(values: list[float], spacing: float) -> list[str]:
    """Labels for one level of ticks, with as many digits as the spacing needs (0.25, 2e-04, 2.5e-04, 1e+06);
    scientific for the whole level when its largest value is tiny or huge, so one axis reads one way."""
    if not values:
        return []
    if spacing <= 0 or not math.isfinite(spacing):
        return [format_number(v) for v in values]
    largest = max(abs(v) for v in values)
    if largest < 1e-3 or largest >= 1e5:
        digits = min(max(math.floor(math.log10(largest)) - math.floor(math.log10(spacing)), 0), 6)
        return ["0" if abs(v) < spacing * 1e-6 else f"{v:.{digits}e}" for v in values]
    places = max(0, math.ceil(-math.log10(spacing)))
    return ["0" if abs(v) < spacing * 1e-6 else f"{v:.{places}f}" for v in values]  # "0": float noise at zero


def _nice_step(rough: float) -> float:
    unit = 10.0 ** math.floor(math.log10(rough))
    return next(m * unit for m in (1, 2, 5, 10) if m * unit >= rough)


def log_tick_levels(lo: float, hi: float, size: float) -> list[tuple[float | None, list[float]]]:
    """Ticks for a log10 axis showing lo..hi (in decades) over `size` pixels: a labelled level, then an
    unlabelled one (spacing None). Labels go to decades first, then 2 and 5, then other round values,
    each taken only if it stays MIN_LABEL_GAP_PX from every label already taken, so none overlap."""
    if not hi > lo or size <= 0:
        return []
    px_per_decade = size / (hi - lo)
    labelled: list[float] = []

    def take(candidates):
        for v in candidates:
            if lo <= v <= hi and all(abs(v - u) * px_per_decade >= MIN_LABEL_GAP_PX for u in labelled):
                labelled.append(v)

    decades = range(math.floor(lo), math.ceil(hi) + 1)
    take(float(d) for d in decades)
    for mantissas in ((2, 5), (3,), (1.5, 4, 6, 8)):
        take(d + math.log10(m) for d in decades for m in mantissas)
    if len(labelled) < 3:  # less than a decade in view: round values in between
        first, last = 10.0 ** lo, 10.0 ** hi
        step = _nice_step((last - first) / 4)
        take(math.log10(v) for v in np.arange(math.ceil(first / step) * step, last, step) if v > 0)
    minor = []
    if px_per_decade * math.log10(10 / 9) >= 4:  # the 8-to-9 gap is the narrowest
        minor = [d + math.log10(m) for d in decades for m in range(1, 10)]
    elif px_per_decade >= 4:
        minor = [float(d) for d in decades]
    taken = {round(v, 9) for v in labelled}
    minor = [v for v in minor if lo <= v <= hi and round(v, 9) not in taken]
    return [(min(np.diff(sorted(labelled)), default=1.0), sorted(labelled)), (None, minor)]


class StepAxis(pg.AxisItem):
    """Optimizer steps are whole numbers: ticks only at whole-number spacing, labels without decimals."""

    def __init__(self, orientation: str = "bottom", **kwargs):
        super().__init__(orientation, **kwargs)
        self.enableAutoSIPrefix(False)

    def tickSpacing(self, minVal: float, maxVal: float, size: float):
        levels = [(spacing, offset) for spacing, offset in super().tickSpacing(minVal, maxVal, size) if spacing >= 1]
        return levels or [(1.0, 0)]

    def tickStrings(self, values, scale, spacing):
        return [str(round(v * scale)) for v in values]


class ValueAxis(pg.AxisItem):
    """A value axis that never rescales to "(x0.001)"; small values read as 2e-04, log axes label sparsely."""

    def __init__(self, orientation: str = "left", **kwargs):
        super().__init__(orientation, **kwargs)
        self.enableAutoSIPrefix(False)

    def tickStrings(self, values, scale, spacing):
        if self.logMode:
            return self.logTickStrings(values, scale, spacing)
        return format_ticks([v * scale for v in values], spacing * scale)

    def logTickValues(self, minVal, maxVal, size, stdTicks):
        return log_tick_levels(minVal, maxVal, size)

    def logTickStrings(self, values, scale, spacing):
        if spacing is None:  # the minor level of log_tick_levels
            return [""] * len(values)
        return [format_number(10.0 ** v * scale) for v in values]


class LossPlot(QWidget):
    def __init__(self, parent=None, *, smoothing: float = 0.9, redraw_ms: int = 150, title: str | None = None):
        super().__init__(parent)
        if not 0 <= smoothing < 1:
            raise ValueError(f"smoothing must be from 0 to below 1, not {smoothing}")
        self.smoothing = smoothing
        self._data: dict[str, tuple[list[float], list[float]]] = {}
        self._curves: dict[str, pg.PlotDataItem] = {}
        self._dirty: set[str] = set()
        self._ema_sum = 0.0  # the EMA before debiasing
        self._ema_n = 0
        self._runs: dict[str, dict] = {}
        self._run_colors: dict[str, tuple[int, int, int]] = {}
        self._single_step_view = False

        pg.setConfigOptions(antialias=True)
        self.widget = pg.PlotWidget(background="w", title=title, axisItems={
            "bottom": StepAxis("bottom"), "left": ValueAxis("left"), "right": ValueAxis("right")})
        self.plot = self.widget.getPlotItem()
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        # A long run has tens of thousands of points: draw only what is in view, at most a few per pixel,
        # so a redraw stays short and the event loop stays responsive.
        self.plot.setClipToView(True)
        self.plot.setDownsampling(auto=True, mode="peak")
        self.plot.setLabel("bottom", "step")
        self.plot.setLabel("left", "loss")
        self.legend = self.plot.addLegend(offset=(-10, 10))
        self.plot.setLabel("right", "learning rate")
        self.plot.hideAxis("right")  # shown with the first learning-rate point
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
            self._ema_sum = self.smoothing * self._ema_sum + (1 - self.smoothing) * value
            self._append(SMOOTHED, step, self._ema_sum / (1 - self.smoothing ** self._ema_n))

    def _append(self, series: str, step: float, value: float) -> None:
        xs, ys = self._data.setdefault(series, ([], []))
        xs.append(step)
        ys.append(value)
        self._dirty.add(series)

    def series_data(self, series: str) -> tuple[list[float], list[float]]:
        xs, ys = self._data.get(series, ([], []))
        return list(xs), list(ys)

    def point_count(self, series: str) -> int:
        return len(self._data.get(series, ([], []))[0])

    def clear(self) -> None:
        """Forget every series and overlaid run; the next points choose the view again."""
        for name, curve in self._curves.items():
            (self.right_view if name in RIGHT_AXIS_SERIES else self.plot).removeItem(curve)
            self.legend.removeItem(curve)
        for label in list(self._runs):
            self.remove_run(label)
        self._run_colors.clear()
        self._curves.clear()
        self._data.clear()
        self._dirty.clear()
        self._ema_sum, self._ema_n = 0.0, 0
        self._single_step_view = False
        # a zoom or pan of the last run (which turns auto-range off) must not hide the next one
        self.plot.vb.enableAutoRange(x=True, y=True)
        self.right_view.enableAutoRange(x=True, y=True)
        self.plot.hideAxis("right")

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

    # -- overlaid runs -----------------------------------------------------------------------
    def add_run_curves(self, label: str, train: Points, eval: Points = ()) -> None:
        """Overlay one run in its own colour with one legend entry: its train loss (faint raw and a smoothed
        line) and its eval loss (dashed, with markers). A run already shown under `label` is replaced."""
        if label in self._runs:
            self.remove_run(label)
        color = self._run_colors.setdefault(label, RUN_COLORS[len(self._run_colors) % len(RUN_COLORS)])
        train_xs, train_ys = _finite_points(train)
        eval_xs, eval_ys = _finite_points(eval)
        curves = {}
        if train_xs:
            curves["train"] = pg.PlotDataItem(train_xs, train_ys, pen=pg.mkPen((*color, 70), width=1))
            curves["smoothed"] = pg.PlotDataItem(train_xs, debiased_ema(train_ys, self.smoothing), name=label,
                                                 pen=pg.mkPen(color, width=2))
        if eval_xs:
            curves["eval"] = pg.PlotDataItem(eval_xs, eval_ys, name=None if train_xs else label, symbol="o",
                                             symbolSize=6, symbolBrush=color, symbolPen=None,
                                             pen=pg.mkPen(color, width=1, style=Qt.PenStyle.DashLine))
        for key, curve in curves.items():
            if key != "eval":  # eval has markers anyway
                _mark_single_point(curve, color)
            self.plot.addItem(curve)
        self._runs[label] = {"train": list(zip(train_xs, train_ys)), "eval": list(zip(eval_xs, eval_ys)),
                             "curves": curves}
        self._fit_single_step()

    def remove_run(self, label: str) -> None:
        run = self._runs.pop(label, None)
        for curve in (run or {}).get("curves", {}).values():
            self.plot.removeItem(curve)
            self.legend.removeItem(curve)

    def run_labels(self) -> list[str]:
        return list(self._runs)

    def run_data(self, label: str) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        """The (step, loss) points of an overlaid run: (train, eval)."""
        run = self._runs[label]
        return list(run["train"]), list(run["eval"])

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
            self._curves[series] = curve
        return curve

    def redraw(self) -> None:
        if not self._dirty:
            return
        for series in list(self._dirty):
            xs, ys = self._data.get(series, ([], []))
            curve = self._curve(series)
            curve.setData(np.asarray(xs, dtype=float), np.asarray(ys, dtype=float),
                          skipFiniteCheck=True)  # add_point only stores finite values
            if "symbol" not in STYLES.get(series, {}):
                _mark_single_point(curve, curve.opts["pen"].color())
        self._dirty.clear()
        if any(self.point_count(s) for s in RIGHT_AXIS_SERIES):
            self.plot.showAxis("right")
        self._fit_single_step()
        self._sync_views()

    def _fit_single_step(self) -> None:
        """Everything at one step: auto-range would show a window a unit wide (or far wider) around it, so
        show [step - 1, step + 1]; give the view back to auto-range once there is a second step."""
        step = self._only_step()
        if step is not None:
            self.plot.vb.setXRange(step - 1, step + 1, padding=0)
            self._single_step_view = True
        elif self._single_step_view:
            self._single_step_view = False
            self.plot.vb.enableAutoRange(x=True)

    def _only_step(self) -> float | None:
        """The step all points are at; None when there are none or several (found at the second point of a
        long run, so a redraw does not walk every point)."""
        step_lists = [xs for xs, _ in self._data.values()]
        step_lists += [[x for x, _ in run[key]] for run in self._runs.values() for key in ("train", "eval")]
        only = None
        for steps in step_lists:
            for step in steps:
                if only is None:
                    only = step
                elif step != only:
                    return None
        return only

    def _sync_views(self) -> None:
        self.right_view.setGeometry(self.plot.vb.sceneBoundingRect())
        self.right_view.linkedViewChanged(self.plot.vb, self.right_view.XAxis)


def _finite_points(points: Points) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for step, value in points:
        try:
            step, value = float(step), float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(step) and math.isfinite(value):
            xs.append(step)
            ys.append(value)
    return xs, ys


def _mark_single_point(curve: pg.PlotDataItem, color) -> None:
    """A line through one point draws nothing: give a lone point a marker, and take it away at the second
    point. Only for curves whose style has no markers of its own."""
    xs = curve.getOriginalDataset()[0]
    if xs is not None and len(xs) == 1:
        curve.setSymbol(SINGLE_POINT_SYMBOL["symbol"])
        curve.setSymbolSize(SINGLE_POINT_SYMBOL["symbolSize"])
        curve.setSymbolPen(SINGLE_POINT_SYMBOL["symbolPen"])
        curve.setSymbolBrush(color)
    elif curve.opts.get("symbol") is not None:
        curve.setSymbol(None)


def curves_from_events(events: Iterable[dict]) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    """(train, eval) loss points of a run's event stream, for `LossPlot.add_run_curves`."""
    train, evals = [], []
    for ev in events:
        if ev.get("type") == "log" and ev.get("loss") is not None:
            train.append((ev.get("step", 0), ev["loss"]))
        elif ev.get("type") == "eval" and ev.get("eval_loss") is not None:
            evals.append((ev.get("step", 0), ev["eval_loss"]))
    return train, evals
