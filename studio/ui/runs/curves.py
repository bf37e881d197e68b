"""The details of the selected runs: their curves on one plot, and their config (or how the configs differ)."""

from __future__ import annotations

from pathlib import Path

import yaml

from studio.engine.run_state import RunState, load_run_state
from studio.engine.runs import CONFIG_FILE
from studio.ui.runs.rows import RunEntry, date_text
from studio.ui.widgets.loss_plot import LossPlot


def run_state(entry: RunEntry) -> RunState:
    try:
        return load_run_state(entry.path)  # a resumed run: one curve from the start of the run it resumed
    except Exception:  # noqa: BLE001 - a run whose events cannot be read shows no curve, not an error dialog
        return RunState()


def series_labels(entries: list[RunEntry]) -> dict[Path, str]:
    """A legend label per run: its name, with its date (else its folder) where selected runs share a name."""
    names = [e.summary.name for e in entries]
    labels = {}
    for entry in entries:
        label = entry.summary.name
        if names.count(label) > 1:
            label = f"{label} ({date_text(entry.summary)})"
        labels[entry.path] = label
    if len(set(labels.values())) < len(labels):
        labels = {e.path: e.path.name for e in entries}
    return labels


def show_run(plot: LossPlot, entry: RunEntry) -> None:
    """One run as its tab showed it while training: train loss (raw and smoothed), learning rate, eval."""
    state = run_state(entry)
    plot.clear()
    for step, loss in state.train:
        plot.add_point("train", step, loss)
    for step, rate in state.learning_rate:
        plot.add_point("learning_rate", step, rate)
    for point in state.evals:
        plot.add_point("eval", point.step, point.loss)
    plot.redraw()


def show_overlay(plot: LossPlot, entries: list[RunEntry]) -> None:
    """Several runs on one plot: per run a train series and an eval series, each with its legend entry."""
    plot.clear()
    labels = series_labels(entries)
    for entry in entries:
        state = run_state(entry)
        for series, points in ((f"{labels[entry.path]} · train", state.train),
                               (f"{labels[entry.path]} · eval", [(e.step, e.loss) for e in state.evals])):
            for step, value in points:
                plot.add_point(series, step, value)
            # The plot picks a new series' colour when it first draws it: drawing each series in turn gives
            # the colours in the table's order (one redraw for all would follow a set's arbitrary order).
            plot.redraw()


def config_text(entries: list[RunEntry]) -> str:
    if len(entries) == 1:
        try:
            return (entries[0].path / CONFIG_FILE).read_text(encoding="utf-8")
        except OSError as exc:
            return f"(no config: {exc})"
    return config_differences(entries)


def config_differences(entries: list[RunEntry]) -> str:
    labels = series_labels(entries)
    keys = []
    for entry in entries:
        keys += [k for k in entry.config if k not in keys and k != "name"]
    lines = []
    for key in keys:
        values = [entry.config.get(key) for entry in entries]
        if any(v != values[0] for v in values[1:]):
            lines.append(f"{key}:")
            lines += [f"  {labels[e.path]}: {_inline(v)}" for e, v in zip(entries, values)]
    if not lines:
        return f"The {len(entries)} selected runs have the same settings."
    return f"Settings that differ between the {len(entries)} selected runs:\n\n" + "\n".join(lines)


def _inline(value) -> str:
    if value is None:
        return "(not set)"
    return yaml.safe_dump(value, default_flow_style=True, width=1_000_000).strip().removesuffix("\n...")
