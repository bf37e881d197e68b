"""The placeholder table of the dataset panel: one row per `{{name}}` found in the data, and its value.

Values are what the fine-tuning config's `placeholders` knob holds: each `{{name}}` in the text is replaced
by its value when the data is read. A value left empty means "no value" (the placeholder is trained on as
written, and the dataset check warns about it). Values for names the current file does not use are kept,
so a config's values survive opening another file.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QHeaderView, QTableWidget, QTableWidgetItem

from studio.engine.data.hygiene import locations


class PlaceholderTable(QTableWidget):
    values_changed = Signal()

    def __init__(self, parent=None):
        super().__init__(0, 2, parent)
        self.setHorizontalHeaderLabels(["Placeholder in the data", "Replace with"])
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().hide()
        self.setToolTip("Template placeholders ({{name}}) found in the data: give each a value to put in its "
                        "place, or leave it empty to train on it as written.")
        self._values: dict[str, str] = {}
        self._names: list[str] = []
        self._locations: dict[str, list[str]] = {}
        self.itemChanged.connect(self._on_item_changed)

    def names(self) -> list[str]:
        return list(self._names)

    def values(self) -> dict[str, str]:
        """{name: value} for every placeholder given a value (those of other files included)."""
        return {name: value for name, value in self._values.items() if value}

    def set_values(self, values: dict) -> None:
        """Values from a config; shown for the names found, kept for the others. No signal."""
        self._values = {str(k): str(v) for k, v in (values or {}).items()}
        self._fill()

    def set_names(self, found: dict[str, list[str]]) -> None:
        """The placeholders found in the data (name -> rows), each with its value if it has one. No signal."""
        self._names = list(found)
        self._locations = dict(found)
        self._fill()

    def _fill(self) -> None:
        self.blockSignals(True)
        try:
            self.setRowCount(0)
            for name in self._names:
                r = self.rowCount()
                self.insertRow(r)
                label = QTableWidgetItem(f"{{{{{name}}}}}")
                label.setFlags(label.flags() & ~Qt.ItemFlag.ItemIsEditable)
                where = self._locations.get(name) or []
                label.setToolTip(f"In {locations(where)}" if where else "")
                self.setItem(r, 0, label)
                value = QTableWidgetItem(self._values.get(name, ""))
                value.setData(Qt.ItemDataRole.UserRole, name)
                self.setItem(r, 1, value)
        finally:
            self.blockSignals(False)

    def _on_item_changed(self, item: QTableWidgetItem) -> None:
        name = item.data(Qt.ItemDataRole.UserRole)
        if item.column() != 1 or name is None:
            return
        text = item.text()
        if self._values.get(name, "") != text:
            self._values[name] = text
            self.values_changed.emit()
