"""A form built from a config dataclass: one editor per field, with the bounds, choices (shown in words,
kept as keys), labels, groups and help texts (as tooltips) taken from each field's metadata (see
studio.engine.config.knob). Its spin boxes and combo boxes take the mouse wheel only when focused."""

from __future__ import annotations

import copy
import dataclasses
import typing

import yaml
from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QValidator
from PySide6.QtWidgets import (QCheckBox, QComboBox, QDoubleSpinBox, QFormLayout, QGroupBox, QLabel, QLineEdit,
                               QSpinBox, QToolButton, QVBoxLayout, QWidget)

from studio.engine.config import validate
from studio.engine.errors import BadConfig
from studio.ui.widgets.wheel_guard import WheelGuard

INT_LIMIT = 2**31 - 1
ERROR_STYLE = "background: #fdecea; border: 1px solid #d9534f;"


class FloatSpinBox(QDoubleSpinBox):
    """A double spin box that shows numbers compactly (2e-04, 0.05, 3) and accepts scientific notation."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setDecimals(12)
        self.setKeyboardTracking(False)

    def textFromValue(self, value: float) -> str:
        return f"{value:.6g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        t = text.strip()
        if not t:
            return QValidator.State.Intermediate, text, pos
        try:
            v = float(t)
        except ValueError:
            ok_partial = all(c in "0123456789.eE+-" for c in t)
            return (QValidator.State.Intermediate if ok_partial else QValidator.State.Invalid), text, pos
        if self.minimum() <= v <= self.maximum():
            return QValidator.State.Acceptable, text, pos
        return QValidator.State.Intermediate, text, pos

    def stepBy(self, steps: int) -> None:
        v = self.value()
        # Positive ranges over several orders of magnitude (learning rate 1e-8..1, epochs): double or halve,
        # since a fixed step of 0.01 would jump from 2e-4 to 0.0102 in one notch.
        if self.minimum() > 0 and self.maximum() / self.minimum() >= 1e3 and v != 0:
            self.setValue(v * (2.0 ** steps))
        else:
            super().stepBy(steps)


def field_label(f: dataclasses.Field) -> str:
    return f.metadata.get("label") or f.name.replace("_", " ").capitalize()


class ConfigForm(QWidget):
    """Editors for the fields of `config_cls` (minus `exclude`), grouped, with an Advanced section."""

    changed = Signal()

    def __init__(self, config_cls: type, parent=None, *, exclude: typing.Iterable[str] = (),
                 advanced_title: str = "Advanced"):
        super().__init__(parent)
        self.config_cls = config_cls
        self._hints = typing.get_type_hints(config_cls)
        self.fields = [f for f in dataclasses.fields(config_cls) if f.name not in set(exclude)]
        self._by_name = {f.name: f for f in self.fields}
        self.editors: dict[str, QWidget] = {}
        self.labels: dict[str, QLabel] = {}
        self._group_boxes: dict[tuple[str, bool], QGroupBox] = {}
        self._group_fields: dict[tuple[str, bool], list[str]] = {}
        self._hidden: set[str] = set()
        self._extra_rows: set[tuple[str, bool]] = set()
        self._base = config_cls()
        self._loading = False
        self._wheel_guard = WheelGuard(self)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.advanced_button = QToolButton()
        self.advanced_button.setText(f"▸ {advanced_title}")
        self.advanced_button.setCheckable(True)
        self.advanced_button.setAutoRaise(True)
        self.advanced_button.setStyleSheet("font-weight: bold;")
        self.advanced_area = QWidget()
        adv_layout = QVBoxLayout(self.advanced_area)
        adv_layout.setContentsMargins(0, 0, 0, 0)
        self.advanced_area.setVisible(False)
        self.advanced_button.toggled.connect(self._toggle_advanced)
        self._advanced_title = advanced_title

        for f in self.fields:
            advanced = bool(f.metadata.get("advanced"))
            key = (f.metadata.get("group") or "Settings", advanced)
            box = self._group_boxes.get(key)
            if box is None:
                box = QGroupBox(key[0])
                box.setLayout(QFormLayout())
                self._group_boxes[key] = box
                self._group_fields[key] = []
                (adv_layout if advanced else layout).addWidget(box)
            editor = self._make_editor(f)
            label = QLabel(field_label(f))
            tip = f.metadata.get("help") or ""
            lo, hi = f.metadata.get("min"), f.metadata.get("max")
            if lo is not None or hi is not None:
                tip += f"\n(from {lo:g} to {hi:g})" if lo is not None and hi is not None else ""
            label.setToolTip(tip)
            editor.setToolTip(tip)
            editor.setObjectName(f"field_{f.name}")
            box.layout().addRow(label, editor)
            self._wheel_guard.guard(editor)
            self.editors[f.name] = editor
            self.labels[f.name] = label
            self._group_fields[key].append(f.name)
        if any(adv for (_, adv) in self._group_boxes):
            layout.addWidget(self.advanced_button)
            layout.addWidget(self.advanced_area)
        else:
            self.advanced_button.hide()
        layout.addStretch(1)
        self.set_config(self._base)

    # -- editors -----------------------------------------------------------------------------
    def _make_editor(self, f: dataclasses.Field) -> QWidget:
        typ = self._hints[f.name]
        meta = f.metadata
        lo, hi = meta.get("min"), meta.get("max")
        if meta.get("choices"):
            w = QComboBox()
            words = meta.get("choice_labels") or {}
            for choice in meta["choices"]:
                w.addItem(words.get(choice, str(choice)), choice)  # words shown, the key kept as data
                if choice in words:
                    w.setItemData(w.count() - 1, f"In a config file: {choice}", Qt.ItemDataRole.ToolTipRole)
            w.currentIndexChanged.connect(self._emit_changed)
        elif typ is bool:
            w = QCheckBox()
            w.toggled.connect(self._emit_changed)
        elif typ is int:
            w = QSpinBox()
            w.setRange(int(max(lo if lo is not None else -INT_LIMIT, -INT_LIMIT)),
                       int(min(hi if hi is not None else INT_LIMIT, INT_LIMIT)))
            w.setKeyboardTracking(False)
            w.valueChanged.connect(self._emit_changed)
        elif typ is float:
            w = FloatSpinBox()
            w.setRange(lo if lo is not None else -1e12, hi if hi is not None else 1e12)
            span = (hi if hi is not None else 1e12) - (lo if lo is not None else -1e12)
            w.setSingleStep(0.01 if span <= 1 else 0.1 if span <= 10 else 1.0)
            w.valueChanged.connect(self._emit_changed)
        else:
            w = QLineEdit()
            if typ is dict:
                w.setPlaceholderText("{column: name, …}")
            w.editingFinished.connect(self._emit_changed)
        return w

    def _emit_changed(self, *_):
        if not self._loading:
            self.changed.emit()

    def editor(self, name: str) -> QWidget:
        return self.editors[name]

    def _set_editor_value(self, name: str, value) -> None:
        w = self.editors[name]
        typ = self._hints[name]
        if isinstance(w, QComboBox):
            i = w.findData(value)
            if i < 0:
                w.addItem(str(value), value)
                i = w.count() - 1
            w.setCurrentIndex(i)
        elif isinstance(w, QCheckBox):
            w.setChecked(bool(value))
        elif isinstance(w, QSpinBox):
            w.setValue(int(value))
        elif isinstance(w, QDoubleSpinBox):
            w.setValue(float(value))
        elif typ is dict:
            w.setText(yaml.safe_dump(value, default_flow_style=True).strip() if value else "")
        else:
            w.setText("" if value is None else str(value))

    def _editor_value(self, name: str):
        w = self.editors[name]
        typ = self._hints[name]
        if isinstance(w, QComboBox):
            return w.currentData()
        if isinstance(w, QCheckBox):
            return w.isChecked()
        if isinstance(w, (QSpinBox, QDoubleSpinBox)):
            w.interpretText()
            return w.value()
        text = w.text().strip()
        if typ is dict:
            if not text:
                return {}
            try:
                return yaml.safe_load(text)
            except yaml.YAMLError:
                raise BadConfig(f"Field '{name}' has the value {text!r}; expected a mapping such as "
                                f"{{question: instruction}}.", field=name) from None
        return text

    # -- config in and out -------------------------------------------------------------------
    def set_config(self, cfg) -> None:
        """Fill the editors from `cfg`; fields not shown here are kept from it for `config()`."""
        self._base = copy.deepcopy(cfg)
        self._loading = True
        try:
            for name in self.editors:
                self._set_editor_value(name, getattr(cfg, name))
        finally:
            self._loading = False
        self.clear_error()
        self.changed.emit()

    def value(self, name: str):
        return self._editor_value(name)

    def set_value(self, name: str, value) -> None:
        self._set_editor_value(name, value)

    def values(self) -> dict:
        return {name: self._editor_value(name) for name in self.editors}

    def config(self, **overrides):
        """A validated config from the editors (fields not shown come from the last `set_config`,
        then `overrides`). Raises BadConfig naming the field, which is also marked in the form."""
        self.clear_error()
        cfg = copy.deepcopy(self._base)
        try:
            for name, val in self.values().items():
                setattr(cfg, name, val)
            for name, val in overrides.items():
                setattr(cfg, name, val)
            validate(cfg)
        except BadConfig as err:
            if err.field:
                self.mark_error(err.field)
            raise
        return cfg

    # -- visibility and errors ---------------------------------------------------------------
    def insert_row(self, group: str, label: str, widget: QWidget, position: int = 0) -> None:
        """Put an editor that is not a config field (e.g. the method combo) into a group box of the form."""
        box = self._group_boxes.get((group, False))
        if box is None:
            raise KeyError(f"no group '{group}' in this form")
        box.layout().insertRow(position, label, widget)
        self._wheel_guard.guard(widget)
        self._extra_rows.add((group, False))

    def set_visible_fields(self, names: typing.Iterable[str] | None) -> None:
        """Show only these fields (None shows every field)."""
        keep = set(self.editors) if names is None else set(names)
        self._hidden = set(self.editors) - keep
        self._apply_visibility()

    def set_field_visible(self, name: str, visible: bool) -> None:
        (self._hidden.discard if visible else self._hidden.add)(name)
        self._apply_visibility()

    def is_field_visible(self, name: str) -> bool:
        return name in self.editors and name not in self._hidden

    def _apply_visibility(self) -> None:
        for key, names in self._group_fields.items():
            box = self._group_boxes[key]
            form: QFormLayout = box.layout()
            for name in names:
                form.setRowVisible(self.editors[name], name not in self._hidden)
            box.setVisible(key in self._extra_rows or any(n not in self._hidden for n in names))

    def _toggle_advanced(self, on: bool) -> None:
        self.advanced_area.setVisible(on)
        self.advanced_button.setText(f"{'▾' if on else '▸'} {self._advanced_title}")

    def mark_error(self, name: str) -> None:
        if name in self.editors:
            self.editors[name].setStyleSheet(ERROR_STYLE)
            if self._by_name[name].metadata.get("advanced"):
                self.advanced_button.setChecked(True)

    def clear_error(self) -> None:
        for w in self.editors.values():
            if w.styleSheet():
                w.setStyleSheet("")
