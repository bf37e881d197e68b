"""The Batch page of the playground: a prompts file run through both sides, the results in a table."""

from __future__ import annotations

from PySide6.QtWidgets import (QHBoxLayout, QLabel, QPushButton, QSizePolicy, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from studio.engine.prompting.batch_files import batch_columns


class BatchView(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.table = QTableWidget(0, 0)
        self.file_label = QLabel("No prompts file.")
        self.file_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.open_button = QPushButton("Open prompts file…")
        self.open_button.setToolTip("A .txt file with one prompt a line, or JSON Lines with a \"prompt\" field.")
        self.run_button = QPushButton("Run batch")
        self.save_button = QPushButton("Save results…")
        self.rows: list[dict] = []
        self.prompts: list[str] = []
        buttons = QHBoxLayout()
        for w in (self.open_button, self.run_button, self.save_button):
            buttons.addWidget(w)
        buttons.addStretch(1)
        layout = QVBoxLayout(self)
        layout.addLayout(buttons)
        layout.addWidget(self.file_label)
        layout.addWidget(self.table)

    def clear_rows(self) -> None:
        self.rows = []
        self.table.setRowCount(0)

    def add_row(self, row: dict) -> None:
        self.rows.append(row)
        columns = batch_columns(self.rows)
        self.table.setColumnCount(len(columns))
        self.table.setHorizontalHeaderLabels(columns)
        self.table.setRowCount(len(self.rows))
        for i, r in enumerate(self.rows):
            for j, c in enumerate(columns):
                self.table.setItem(i, j, QTableWidgetItem(str(r.get(c, ""))))
