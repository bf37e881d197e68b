"""The sampling panel: greedy or sampled, temperature, top-p, top-k, repetition penalty, max and min new
tokens, stop strings and seed."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QFormLayout, QLineEdit, QSpinBox, QWidget

from studio.engine.prompting import SamplingSettings


def _double(lo, hi, step, decimals=2):
    box = QDoubleSpinBox()
    box.setRange(lo, hi)
    box.setSingleStep(step)
    box.setDecimals(decimals)
    return box


class SamplingPanel(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.greedy = QCheckBox("Greedy (no sampling)")
        self.temperature = _double(0.01, 5.0, 0.05)
        self.top_p = _double(0.01, 1.0, 0.05)
        self.top_k = QSpinBox()
        self.top_k.setRange(0, 100_000)
        self.repetition_penalty = _double(0.5, 3.0, 0.05)
        self.max_new_tokens = QSpinBox()
        self.max_new_tokens.setRange(1, 1_000_000)
        self.min_new_tokens = QSpinBox()
        self.min_new_tokens.setRange(0, 1_000_000)
        self.min_new_tokens.setSpecialValueText("off")
        self.stop_strings = QLineEdit()
        self.stop_strings.setPlaceholderText("e.g. \\n\\n|Input:")
        self.seed = QSpinBox()
        self.seed.setRange(-1, 2**31 - 1)
        self.seed.setSpecialValueText("random")
        tips = {self.greedy: "Pick the most likely token each time: the same prompt always gives the same reply.",
                self.temperature: "Higher is more varied, lower more focused (sampling only).",
                self.top_p: "Sample only from the smallest set of tokens whose probabilities add up to this.",
                self.top_k: "Sample only from the k most likely tokens (0 = off).",
                self.repetition_penalty: "Above 1 makes repeating earlier tokens less likely (1 = off).",
                self.max_new_tokens: "The longest reply, in tokens (also limited by the context window).",
                self.min_new_tokens: "The shortest reply, in tokens: the model cannot end its reply before "
                                     "(0 = off).",
                self.stop_strings: "Stop the reply at any of these texts, separated by |; \\n is a new line.",
                self.seed: "The random seed for sampling; both sides of a comparison use the same one."}
        for widget, tip in tips.items():
            widget.setToolTip(tip)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow(self.greedy)
        for label, widget in (("Temperature", self.temperature), ("Top-p", self.top_p), ("Top-k", self.top_k),
                              ("Repetition penalty", self.repetition_penalty),
                              ("Max new tokens", self.max_new_tokens), ("Min new tokens", self.min_new_tokens),
                              ("Stop strings", self.stop_strings),
                              ("Seed", self.seed)):
            form.addRow(label, widget)
        self.greedy.toggled.connect(self._update_enabled)
        self.set_settings(SamplingSettings())

    def _update_enabled(self) -> None:
        for w in (self.temperature, self.top_p, self.top_k, self.seed):
            w.setEnabled(not self.greedy.isChecked())

    def settings(self) -> SamplingSettings:
        stops = [s.replace("\\n", "\n").replace("\\t", "\t") for s in self.stop_strings.text().split("|")]
        return SamplingSettings(greedy=self.greedy.isChecked(), temperature=self.temperature.value(),
                                top_p=self.top_p.value(), top_k=self.top_k.value(),
                                repetition_penalty=self.repetition_penalty.value(),
                                max_new_tokens=self.max_new_tokens.value(),
                                min_new_tokens=self.min_new_tokens.value(),
                                stop_strings=[s for s in stops if s],
                                seed=None if self.seed.value() < 0 else self.seed.value())

    def set_settings(self, s: SamplingSettings) -> None:
        self.greedy.setChecked(s.greedy)
        self.temperature.setValue(s.temperature)
        self.top_p.setValue(s.top_p)
        self.top_k.setValue(s.top_k)
        self.repetition_penalty.setValue(s.repetition_penalty)
        self.max_new_tokens.setValue(s.max_new_tokens)
        self.min_new_tokens.setValue(s.min_new_tokens)
        self.stop_strings.setText("|".join(x.replace("\n", "\\n").replace("\t", "\\t") for x in s.stop_strings))
        self.seed.setValue(-1 if s.seed is None else s.seed)
        self._update_enabled()
