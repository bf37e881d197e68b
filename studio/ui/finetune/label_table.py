"""The label set of a classification file: each label with its number of examples and a bar of its share,
most frequent first, so a class with few examples stands out at a glance."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractItemView, QHeaderView, QProgressBar, QTableWidget, QTableWidgetItem

BAR_STYLE = ("QProgressBar { border: none; background: transparent; text-align: right; color: #333; }"
             "QProgressBar::chunk { background: %s; }")
ROWS_SHOWN = 6
COMMON, RARE = "#9ab8e0", "#e8b07a"  # the rarest classes of an imbalanced set in orange


class LabelTable(QTableWidget):
    def __init__(self, parent=None):
        super().__init__(0, 3, parent)
        self.setHorizontalHeaderLabels(["Label", "Examples", "Share"])
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().hide()
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setSelectionMode(QAbstractItemView.SelectionMode.NoSelection)
        self.setFocusPolicy(Qt.FocusPolicy.NoFocus)
        self.setToolTip("The labels of the training file and how many examples each has, most frequent first")

    def set_counts(self, counts: dict[str, int], *, rare_at_most: float = -1) -> None:
        """`counts` in the order to show; a label with at most `rare_at_most` examples gets an orange bar."""
        self.setRowCount(0)
        total = sum(counts.values()) or 1
        largest = max(counts.values(), default=0) or 1
        for label, count in counts.items():
            r = self.rowCount()
            self.insertRow(r)
            self.setItem(r, 0, QTableWidgetItem(str(label)))
            number = QTableWidgetItem(f"{count:,}")
            number.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if count <= rare_at_most:
                number.setForeground(QColor(160, 80, 0))
            self.setItem(r, 1, number)
            bar = QProgressBar()
            bar.setRange(0, largest)
            bar.setValue(count)
            bar.setFormat(f"{count / total:.0%}")
            bar.setStyleSheet(BAR_STYLE % (RARE if count <= rare_at_most else COMMON))
            self.setCellWidget(r, 2, bar)
        self._fit_height()

    def _fit_height(self) -> None:
        """Tall enough for the labels, up to ROWS_SHOWN of them (more scroll), so three labels leave no gap."""
        rows = min(max(self.rowCount(), 1), ROWS_SHOWN)
        row_height = self.rowHeight(0) if self.rowCount() else self.verticalHeader().defaultSectionSize()
        self.setFixedHeight(self.horizontalHeader().sizeHint().height() + rows * row_height + 2 * self.frameWidth())

    def counts(self) -> dict[str, int]:
        return {self.item(r, 0).text(): int(self.item(r, 1).text().replace(",", "")) for r in range(self.rowCount())}
