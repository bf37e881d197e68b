"""LossPlot: readable axes, lone points, a debiased smoothed line, fresh views after clear, overlaid runs."""

import itertools
import math

import pytest
from PySide6.QtGui import QImage, QPainter

from studio.ui.widgets.loss_plot import (MIN_LABEL_GAP_PX, SMOOTHED, LossPlot, curves_from_events, debiased_ema,
                                         format_ticks)


@pytest.fixture
def make_plot(qtbot):
    def make(width=500, height=300, log_y=False, **kwargs):
        plot = LossPlot(redraw_ms=10_000, **kwargs)  # the tests redraw when they choose
        qtbot.addWidget(plot)
        if log_y:
            plot.plot.setLogMode(False, True)  # as the Pre-train tab's perplexity plot
        plot.resize(width, height)
        plot.show()
        qtbot.waitExposed(plot)
        return plot

    return make


def curve_named(plot: LossPlot, name: str):
    return next(c for c in plot.plot.listDataItems() + plot.right_view.addedItems if c.name() == name)


def drawn_labels(axis):
    """The tick labels the axis would paint now: (rectangle, text)."""
    image = QImage(10, 10, QImage.Format.Format_ARGB32)
    painter = QPainter(image)
    try:
        _, _, texts = axis.generateDrawSpecs(painter)
    finally:
        painter.end()
    return [(rect, text) for rect, _, text in texts if text]


def test_axes_show_plain_values_without_si_scaling(make_plot, qtbot):
    plot = make_plot()
    for step, (loss, lr) in enumerate([(0.0021, 2e-6), (0.0015, 1.5e-6), (0.0011, 1e-6)], start=1):
        plot.add_point("train", step, loss)
        plot.add_point("learning_rate", step, lr)
    plot.redraw()
    left, right = plot.plot.getAxis("left"), plot.plot.getAxis("right")
    qtbot.waitUntil(lambda: 0.0021 <= left.range[1] < 0.01 and 2e-6 <= right.range[1] < 1e-5)

    assert "(x" not in left.labelString() and "loss" in left.labelString()
    assert "(x" not in right.labelString() and "learning rate" in right.labelString()
    assert right.tickStrings([1e-4, 2e-4], 1.0, 1e-4) == ["1e-04", "2e-04"]
    assert right.tickStrings([1.5e-6, 2e-6], 1.0, 5e-7) == ["1.5e-06", "2.0e-06"]
    assert left.tickStrings([0.001, 0.0015, 0.002], 1.0, 0.0005) == ["0.0010", "0.0015", "0.0020"]
    assert format_ticks([0.0, 0.5, 1.0], 0.5) == ["0", "0.5", "1.0"]
    spacing, values = right.tickValues(*right.range, 200)[0]
    assert all("e-06" in s for s in right.tickStrings(values, 1.0, spacing))


def test_step_axis_has_whole_number_ticks_only(make_plot):
    axis = make_plot().plot.getAxis("bottom")
    for low, high, pixels in [(0, 3, 400), (0.5, 2.5, 600), (10, 12, 300), (0, 40, 500)]:
        levels = axis.tickValues(low, high, pixels)
        values = [v for _, vs in levels for v in vs]
        assert values and all(float(v).is_integer() for v in values), (low, high, values)
        assert all("." not in s for _, vs in levels for s in axis.tickStrings(vs, 1.0, 1.0))


def test_a_single_point_gets_a_marker_and_a_narrow_step_range(make_plot, qtbot):
    plot = make_plot(log_y=True)
    plot.add_point("perplexity", 100, 50.0)
    plot.redraw()
    qtbot.waitUntil(lambda: plot.plot.vb.viewRange()[0] == pytest.approx([99, 101]))
    curve = curve_named(plot, "perplexity")
    assert curve.opts["symbol"] == "o"
    low, high = plot.plot.vb.viewRange()[1]
    assert low < math.log10(50) < high  # log view: the point is inside the y range too

    plot.add_point("perplexity", 200, 30.0)
    plot.redraw()
    assert curve.opts["symbol"] is None  # a line again
    qtbot.waitUntil(lambda: plot.plot.vb.viewRange()[0][0] <= 100 and plot.plot.vb.viewRange()[0][1] >= 200)


def test_the_learning_rate_axis_appears_only_with_learning_rate_data(make_plot):
    plot = make_plot(title="Loss (train and held-out)")
    right = plot.plot.getAxis("right")
    assert not right.isVisible()
    plot.add_point("train", 1, 2.0)
    plot.add_point("eval", 1, 2.1)
    plot.redraw()
    assert not right.isVisible()
    plot.add_point("learning_rate", 1, 2e-4)
    plot.redraw()
    assert right.isVisible()
    plot.clear()
    assert not right.isVisible()


@pytest.mark.parametrize("height", [120, 180, 300])
@pytest.mark.parametrize("values", [[10, 100, 1000, 10000], [20, 30, 45, 60], [5.5, 9, 14], [100, 130, 200, 400]])
def test_log_axis_labels_do_not_overlap(make_plot, qtbot, height, values):
    plot = make_plot(height=height, log_y=True)
    for step, value in enumerate(values):
        plot.add_point("perplexity", step, value)
    plot.redraw()
    axis = plot.plot.getAxis("left")
    qtbot.waitUntil(lambda: axis.range[0] <= math.log10(min(values)) and axis.range[1] >= math.log10(max(values)))

    labels = drawn_labels(axis)
    assert labels
    assert [(a, b) for (ra, a), (rb, b) in itertools.combinations(labels, 2) if ra.intersects(rb)] == []


@pytest.mark.parametrize("low, high, pixels", [(1, 4, 200), (1, 4, 80), (0, 12, 150), (1.3, 1.8, 200),
                                               (1.65, 1.74, 200), (-3, -1, 120)])
def test_log_tick_labels_keep_their_distance(make_plot, low, high, pixels):
    axis = make_plot(log_y=True).plot.getAxis("left")
    labelled = []
    for spacing, values in axis.tickValues(low, high, pixels):
        labelled += [v for v, s in zip(values, axis.tickStrings(values, 1.0, spacing)) if s]
    assert len(labelled) >= 2
    pixel_positions = sorted((v - low) / (high - low) * pixels for v in labelled)
    assert min(b - a for a, b in zip(pixel_positions, pixel_positions[1:])) >= MIN_LABEL_GAP_PX - 1e-9
    decade_labels = axis.tickStrings([1.0, 2.0, 3.0, 4.0], 1.0, 1.0)
    assert decade_labels == ["10", "100", "1000", "10000"]


def test_smoothed_line_is_a_bias_corrected_ema(make_plot):
    plot = make_plot(smoothing=0.6)
    for step, loss in enumerate([1.0, 2.0, 3.0], start=1):
        plot.add_point("train", step, loss)
    # by hand: ema_t = 0.6 ema_{t-1} + 0.4 x_t from 0, divided by (1 - 0.6^t)
    raw1 = 0.4 * 1.0
    raw2 = 0.6 * raw1 + 0.4 * 2.0
    raw3 = 0.6 * raw2 + 0.4 * 3.0
    expected = [raw1 / 0.4, raw2 / (1 - 0.36), raw3 / (1 - 0.216)]
    assert expected == pytest.approx([1.0, 1.625, 2.3265306])
    assert plot.series_data(SMOOTHED) == ([1.0, 2.0, 3.0], pytest.approx(expected))
    assert debiased_ema([1.0, 2.0, 3.0], 0.6) == pytest.approx(expected)
    assert debiased_ema([5.0] * 4, 0.9) == pytest.approx([5.0] * 4)  # a flat loss is smoothed to itself


def test_clear_gives_the_next_run_a_fresh_view(make_plot, qtbot):
    plot = make_plot()
    for step in range(0, 1001, 50):
        plot.add_point("train", step, 5.0 - step / 500)
    plot.redraw()
    plot.plot.vb.setXRange(200, 300)  # the user zooms in, which turns auto-range off
    plot.plot.vb.setYRange(3.5, 4.5)

    plot.clear()
    for step in range(11):
        plot.add_point("train", step, 0.5 - step / 100)
    plot.redraw()
    qtbot.waitUntil(lambda: plot.plot.vb.viewRange()[0][0] <= 0 and 10 <= plot.plot.vb.viewRange()[0][1] < 50)
    qtbot.waitUntil(lambda: plot.plot.vb.viewRange()[1][0] <= 0.4 and 0.5 <= plot.plot.vb.viewRange()[1][1] < 1)


def test_runs_are_overlaid_each_in_its_own_colour(make_plot, qtbot):
    plot = make_plot()
    plot.add_run_curves("run-a", [(1, 3.0), (2, 2.5), (3, 2.0)], [(2, 2.7), (3, 2.4)])
    plot.add_run_curves("run-b", [(1, 2.0), (2, 1.5), (3, float("nan")), (4, 1.0)], [])
    legend = [label.text for _, label in plot.legend.items]
    assert legend == ["run-a", "run-b"]
    colours = {label.text: sample.item.opts["pen"].color().name() for sample, label in plot.legend.items}
    assert colours["run-a"] != colours["run-b"]
    assert plot.run_data("run-b") == ([(1, 2.0), (2, 1.5), (4, 1.0)], [])  # non-finite points skipped
    smoothed_a = curve_named(plot, "run-a")
    assert list(smoothed_a.getData()[1]) == pytest.approx(debiased_ema([3.0, 2.5, 2.0], plot.smoothing))
    qtbot.waitUntil(lambda: plot.plot.vb.viewRange()[0][0] <= 1 and plot.plot.vb.viewRange()[0][1] >= 4)

    plot.add_run_curves("run-a", [(1, 1.0), (2, 0.9)])  # shown again: replaced, same colour
    assert [label.text for _, label in plot.legend.items] == ["run-b", "run-a"]
    assert curve_named(plot, "run-a").opts["pen"].color().name() == colours["run-a"]
    plot.remove_run("run-b")
    assert plot.run_labels() == ["run-a"]
    plot.clear()
    assert plot.run_labels() == [] and plot.legend.items == [] and plot.plot.listDataItems() == []


def test_a_run_with_one_eval_point_and_no_train_points_is_still_visible(make_plot, qtbot):
    plot = make_plot()
    plot.add_run_curves("eval-only", [], [(40, 1.5)])
    assert [label.text for _, label in plot.legend.items] == ["eval-only"]
    qtbot.waitUntil(lambda: plot.plot.vb.viewRange()[0] == pytest.approx([39, 41]))


def test_past_runs_load_from_events(make_plot):
    events = [{"type": "started"},
              {"type": "log", "step": 1, "loss": 2.0, "learning_rate": 1e-4},
              {"type": "log", "step": 2, "loss": 1.8, "learning_rate": 2e-4},
              {"type": "eval", "step": 2, "eval_loss": 1.9},
              {"type": "finished"}]
    plot = make_plot()
    plot.load_events(events)
    assert plot.point_count("train") == plot.point_count(SMOOTHED) == 2
    assert plot.series_data("learning_rate") == ([1.0, 2.0], [1e-4, 2e-4])
    assert plot.point_count("eval") == 1
    assert plot.plot.getAxis("right").isVisible()

    train, evals = curves_from_events(events)
    assert (train, evals) == ([(1, 2.0), (2, 1.8)], [(2, 1.9)])
    plot.add_run_curves("past", train, evals)
    assert plot.run_labels() == ["past"]
