"""The sampling panel: one editor per SamplingSettings field, with the label, bounds and help (as a tooltip)
that the field's knob declares. Settings that only matter for sampled replies are off while Greedy is on."""

from __future__ import annotations

import dataclasses
import typing

from PySide6.QtWidgets import QCheckBox, QDoubleSpinBox, QFormLayout, QLineEdit, QSpinBox, QWidget

from studio.engine.prompting.sampling import (SamplingSettings, sampled_only, stop_strings_from_text,
                                              stop_strings_to_text)
from studio.ui.widgets.config_form import field_label

# What a spin box at its lowest value shows, where that value means "not set".
OFF_TEXT = {"min_new_tokens": "off", "seed": "random"}
UNSET = -1  # a spin box's value for a setting that may be None (the seed's "random")


class SamplingPanel(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        hints = typing.get_type_hints(SamplingSettings)
        form = QFormLayout(self)
        form.setContentsMargins(0, 0, 0, 0)
        self._names = []
        self._optional = {name for name, typ in hints.items() if type(None) in typing.get_args(typ)}
        for f in dataclasses.fields(SamplingSettings):
            editor = self._editor(f, hints[f.name])
            editor.setToolTip(f.metadata["help"])
            setattr(self, f.name, editor)
            self._names.append(f.name)
            if isinstance(editor, QCheckBox):
                form.addRow(editor)
            else:
                form.addRow(field_label(f), editor)
        self._sampled_only = [getattr(self, name) for name in sampled_only()]
        self.greedy.toggled.connect(self._update_enabled)
        self.set_settings(SamplingSettings())

    @staticmethod
    def _editor(f: dataclasses.Field, typ) -> QWidget:
        lo, hi = f.metadata.get("min"), f.metadata.get("max")
        optional = type(None) in typing.get_args(typ)
        if typ is bool:
            return QCheckBox(field_label(f))
        if typ is float:
            box = QDoubleSpinBox()
            box.setRange(lo, hi)
            box.setSingleStep(0.05)
            box.setDecimals(2)
            return box
        if typ is int or optional:
            box = QSpinBox()
            box.setRange(UNSET if optional else lo, hi)
            if f.name in OFF_TEXT:
                box.setSpecialValueText(OFF_TEXT[f.name])
            return box
        line = QLineEdit()  # the stop strings, in their one-line form
        line.setPlaceholderText("e.g. \\n\\n|Input:")
        return line

    def _update_enabled(self) -> None:
        for w in self._sampled_only:
            w.setEnabled(not self.greedy.isChecked())

    def settings(self) -> SamplingSettings:
        values = {}
        for name in self._names:
            w = getattr(self, name)
            if isinstance(w, QCheckBox):
                values[name] = w.isChecked()
            elif isinstance(w, QLineEdit):
                values[name] = stop_strings_from_text(w.text())
            elif name in self._optional and w.value() == UNSET:
                values[name] = None
            else:
                values[name] = w.value()
        return SamplingSettings(**values)

    def set_settings(self, s: SamplingSettings) -> None:
        for name in self._names:
            w, value = getattr(self, name), getattr(s, name)
            if isinstance(w, QCheckBox):
                w.setChecked(value)
            elif isinstance(w, QLineEdit):
                w.setText(stop_strings_to_text(value))
            else:
                w.setValue(UNSET if value is None else value)
        self._update_enabled()
