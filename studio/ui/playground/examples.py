"""The few-shot example editor: input → output pairs to add, edit, remove and reorder."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QAbstractItemView, QHBoxLayout, QHeaderView, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from studio.engine.prompting.presets import Example


class ExampleEditor(QWidget):
    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Input", "Output"])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setWordWrap(True)
        self.table.setMinimumHeight(70)
        self.table.setToolTip("Few-shot examples: each row is an input and the output you want. In chat mode they "
                              "become earlier user/assistant turns; in completion mode a text block.")
        self.table.itemChanged.connect(lambda *_: self.changed.emit())
        self.add_button = QPushButton("Add")
        self.remove_button = QPushButton("Remove")
        # Arrows keep the row of buttons narrow enough for the left panel of a small window.
        self.up_button = QPushButton("↑")
        self.down_button = QPushButton("↓")
        self.up_button.setToolTip("Move the selected example up")
        self.down_button.setToolTip("Move the selected example down")
        for b in (self.up_button, self.down_button):
            b.setMaximumWidth(36)
        self.add_button.clicked.connect(lambda: self.add_example("", ""))
        self.remove_button.clicked.connect(self.remove_selected)
        self.up_button.clicked.connect(lambda: self.move_selected(-1))
        self.down_button.clicked.connect(lambda: self.move_selected(1))
        buttons = QHBoxLayout()
        for b in (self.add_button, self.remove_button, self.up_button, self.down_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table)
        layout.addLayout(buttons)

    def add_example(self, input: str, output: str) -> int:
        row = self.table.rowCount()
        self.table.blockSignals(True)
        self.table.insertRow(row)
        self.table.setItem(row, 0, QTableWidgetItem(input))
        self.table.setItem(row, 1, QTableWidgetItem(output))
        self.table.blockSignals(False)
        self.table.selectRow(row)
        self.changed.emit()
        return row

    def set_example(self, row: int, input: str, output: str) -> None:
        self.table.item(row, 0).setText(input)
        self.table.item(row, 1).setText(output)

    def remove_selected(self) -> None:
        row = self.table.currentRow()
        if row >= 0:
            self.table.removeRow(row)
            self.changed.emit()

    def move_selected(self, delta: int) -> None:
        row = self.table.currentRow()
        target = row + delta
        if row < 0 or not 0 <= target < self.table.rowCount():
            return
        examples = self.examples(include_empty=True)
        examples[row], examples[target] = examples[target], examples[row]
        self.set_examples(examples)
        self.table.selectRow(target)

    def examples(self, include_empty: bool = False) -> list[Example]:
        out = []
        for row in range(self.table.rowCount()):
            cells = [self.table.item(row, c) for c in (0, 1)]
            ex = Example(*(c.text() if c is not None else "" for c in cells))
            if include_empty or ex.input.strip() or ex.output.strip():
                out.append(ex)
        return out

    def set_examples(self, examples: list[Example]) -> None:
        self.table.blockSignals(True)
        self.table.setRowCount(0)
        for ex in examples:
            row = self.table.rowCount()
            self.table.insertRow(row)
            self.table.setItem(row, 0, QTableWidgetItem(ex.input))
            self.table.setItem(row, 1, QTableWidgetItem(ex.output))
        self.table.blockSignals(False)
        self.changed.emit()
