"""The column-mapping editor: one row per column of the file, and a fixed choice of what to use it as.

The choices are the column names the format reads (free text let "input → 10" silently drop a column),
plus "keep name" (no entry in the mapping) and "(not used)" (leave a column out even where its name is one
a format reads). The mapping keeps "role:TAG" entries it was given (custom ShareGPT tags), which have no
row of their own.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QHeaderView, QTableWidget, QTableWidgetItem

from studio.engine.data.analysis import NOT_USED

KEEP_NAME = "keep name"


class ColumnMappingEditor(QTableWidget):
    mapping_changed = Signal()

    def __init__(self, parent=None):
        super().__init__(0, 2, parent)
        self.setHorizontalHeaderLabels(["Column in the file", "Use as"])
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().hide()
        self.setToolTip("What each column is for, e.g. question → instruction; the choices are the columns "
                        "the format reads.")
        self._wanted: dict = {}  # the mapping asked for before the file's columns are known
        self._targets: list[str] = []

    def columns(self) -> list[str]:
        return [self.item(r, 0).text() for r in range(self.rowCount())]

    def mapping(self) -> dict:
        if not self.rowCount():
            return dict(self._wanted)
        out = {k: v for k, v in self._wanted.items() if k.startswith("role:")}
        for r, column in enumerate(self.columns()):
            target = self.cellWidget(r, 1).currentData()
            if target is not None and target != column:
                out[column] = target
        return out

    def load_mapping(self, mapping: dict) -> None:
        """Forget the rows; `mapping` applies once `set_columns` tells the file's columns."""
        self._wanted = dict(mapping or {})
        self.setRowCount(0)

    def set_columns(self, columns: list[str], targets: list[str]) -> None:
        """One row per column, keeping the choices made so far (or those asked for by `load_mapping`)."""
        if columns == self.columns():
            self.set_targets(targets)
            return
        current = self.mapping()
        self._targets = list(targets)
        self.setRowCount(0)
        for column in columns:
            r = self.rowCount()
            self.insertRow(r)
            item = QTableWidgetItem(column)
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
            self.setItem(r, 0, item)
            combo = QComboBox()
            combo.setEditable(False)
            self._fill(combo, current.get(column))
            combo.currentIndexChanged.connect(self._on_choice)
            self.setCellWidget(r, 1, combo)
        self._wanted = current

    def set_targets(self, targets: list[str]) -> None:
        """Offer `targets` in every row, keeping each row's choice."""
        if list(targets) == self._targets:
            return
        self._targets = list(targets)
        for r in range(self.rowCount()):
            combo = self.cellWidget(r, 1)
            choice = combo.currentData()
            combo.blockSignals(True)
            combo.clear()
            self._fill(combo, choice)
            combo.blockSignals(False)

    def _fill(self, combo: QComboBox, choice: str | None) -> None:
        combo.addItem(KEEP_NAME, None)
        combo.addItem(NOT_USED, NOT_USED)
        # A choice from a saved config that this format does not read stays visible rather than vanishing.
        for target in self._targets + ([choice] if choice and choice not in self._targets + [NOT_USED] else []):
            combo.addItem(target, target)
        combo.setCurrentIndex(max(0, combo.findData(choice)) if choice is not None else 0)

    def _on_choice(self, _index: int) -> None:
        self._wanted = self.mapping()
        self.mapping_changed.emit()
