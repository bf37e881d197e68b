"""What a finished run left: its output and best held-out loss, and what to do next with it."""

from __future__ import annotations

import html
import math

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QPushButton

from studio.engine.run_state import RunState


class ResultPanel(QFrame):
    """Buttons the tab adds (add_button) show for a run with an output; Resume for a stopped or failed run
    with a complete checkpoint; Show folder always."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("ResultPanel")
        self.setStyleSheet("#ResultPanel { background: #eaf6ea; border: 1px solid #9ccc9c; border-radius: 4px; }")
        self.label = QLabel()
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.resume_button = QPushButton("Resume")
        self.resume_button.setToolTip("Continue this run from its last complete checkpoint, with its own settings")
        self.folder_button = QPushButton("Show in folder")
        self._layout = QHBoxLayout(self)
        self._layout.addWidget(self.label, 1)
        self._layout.addWidget(self.resume_button)
        self._layout.addWidget(self.folder_button)
        self.output_buttons: list[QPushButton] = []
        self.hide()

    def add_button(self, text: str, slot) -> QPushButton:
        button = QPushButton(text)
        button.clicked.connect(slot)
        self._layout.insertWidget(self._layout.count() - 2, button)
        self.output_buttons.append(button)
        return button

    def show_result(self, state: RunState, output_noun: str, *, resumable: bool) -> None:
        best = state.best_eval_loss
        best_text = (f"<br>Best held-out loss {best:.4f} (perplexity {math.exp(min(best, 50)):.2f})"
                     if best is not None else "")
        if state.started.get("task") == "classify":
            best_text = _best_classifier_text(state)
        elif state.started.get("task") == "preference":
            best_text = _best_preference_text(state)
        where = html.escape(state.output or "")
        if state.status == "completed":
            text = f"<b>Done.</b> Output: {where}{best_text}"
        elif state.status == "stopped":
            text = f"<b>Stopped at step {state.step:,}; {output_noun} so far was saved.</b> Output: {where}{best_text}"
        else:
            text = (f"<b>Failed at step {state.step:,}.</b> The last complete checkpoint can be resumed."
                    if resumable else "")
        has_output = bool(state.output) and state.status in ("completed", "stopped")
        for button in self.output_buttons:
            button.setVisible(has_output)
        self.resume_button.setVisible(resumable)
        self.label.setText(text)
        self.setVisible(bool(text))


def _best_classifier_text(state: RunState) -> str:
    """A classifier's best validation figures: what a person judges a classifier by, not a perplexity."""
    for metric, words in (("macro_f1", "macro-F1"), ("accuracy", "accuracy"), ("pearson", "Pearson correlation")):
        scored = [e for e in state.evals if metric in e.metrics]
        if scored:
            best = max(scored, key=lambda e: e.metrics[metric])
            others = ", ".join(f"{w} {best.metrics[m]:.3f}" for m, w in (("accuracy", "accuracy"),
                                                                          ("spearman", "Spearman"))
                               if m != metric and m in best.metrics)
            return (f"<br>Best held-out {words} {best.metrics[metric]:.3f} at step {best.step:,}"
                    + (f" ({others})" if others else ""))
    best = state.best_eval_loss
    return f"<br>Best held-out loss {best:.4f}" if best is not None else ""


def _best_preference_text(state: RunState) -> str:
    """A preference run's last validation figures (its loss is no language-model loss: no perplexity)."""
    latest = next((e for e in reversed(state.evals) if "preference_accuracy" in e.metrics), None)
    if latest is None:
        return ""
    margin = latest.metrics.get("reward_margin")
    return (f"<br>Validation at step {latest.step:,}: preference accuracy {latest.metrics['preference_accuracy']:.1%}"
            + (f", reward margin {margin:+.3f}" if margin is not None else ""))
