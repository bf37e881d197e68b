"""The figures of a preference-tuning run, drawn from its RunState: the reward margin (how much more the model
now prefers the chosen reply than the reference did, chosen − rejected), the preference accuracy (the share of
pairs whose chosen reply scores higher), and the log-probabilities of the chosen and rejected replies. Training
figures are per logged batch (faint, with a smoothed line); validation figures are markers at each evaluation.

Everything is rebuilt from the state, so a run followed live and a finished run folded again look the same.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel, QSplitter, QVBoxLayout, QWidget

from studio.engine.run_state import RunState
from studio.ui.widgets.loss_plot import LossPlot

WAITING = "Reward margin and preference accuracy appear here with the first logged steps."
PLOTS = (("reward_margin", "Reward margin (chosen − rejected)", "margin"),
         ("preference_accuracy", "Preference accuracy", "share of pairs"),
         ("logp_chosen", "Log-probability of the replies", "log-probability"))
KTO_ACCURACY = ("KTO learns from single replies: its accuracy is the share of validation replies moved the right "
                "way (good ones more likely, bad ones less).")


class PreferenceMetrics(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.headline = QLabel(WAITING)
        self.headline.setWordWrap(True)
        self.plots: dict[str, LossPlot] = {}
        split = QSplitter(Qt.Orientation.Vertical)
        split.setChildrenCollapsible(False)
        for key, title, axis in PLOTS:
            plot = LossPlot(title=title)
            plot.plot.setLabel("left", axis)
            plot.setMinimumHeight(80)
            self.plots[key] = plot
            split.addWidget(plot)
        self.plots["preference_accuracy"].legend.setOffset((-10, -10))  # accuracy rises: legend bottom right
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 0)
        layout.addWidget(self.headline)
        layout.addWidget(split, 1)
        self._shown: tuple | None = None

    def show_state(self, state: RunState) -> None:
        if state.started.get("task") not in (None, "preference"):
            return
        key = (id(state), len(state.train), len(state.evals))
        if key == self._shown:
            return
        self._shown = key
        train, evals = state.train_metrics, state.evals
        for name, plot in self.plots.items():
            plot.clear()
            if name == "logp_chosen":
                for metric, series in (("logp_chosen", "chosen"), ("logp_rejected", "rejected")):
                    for step, value in train.get(metric, []):
                        plot.add_point(series, step, value)
                    for e in evals:
                        if metric in e.metrics:
                            plot.add_point(f"{series} (validation)", e.step, e.metrics[metric])
            else:
                for step, value in train.get(name, []):
                    plot.add_point("train", step, value)
                for e in evals:
                    if name in e.metrics:
                        plot.add_point("eval", e.step, e.metrics[name])
            plot.redraw()
        self.headline.setText(self._headline(state))

    def _headline(self, state: RunState) -> str:
        latest = next((e for e in reversed(state.evals) if "preference_accuracy" in e.metrics), None)
        kto = state.started.get("objective") == "kto"
        if latest is not None:
            text = (f"Validation, step {latest.step:,}: preference accuracy "
                    f"{latest.metrics['preference_accuracy']:.1%}")
            if "reward_margin" in latest.metrics:
                text += f", reward margin {latest.metrics['reward_margin']:+.3f}"
            return text + (f". {KTO_ACCURACY}" if kto else ".")
        margins = state.train_metrics.get("reward_margin")
        if margins:
            step, value = margins[-1]
            return f"Training, step {step:,}: reward margin {value:+.3f}."
        return WAITING
