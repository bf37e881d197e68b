"""The data preview the Fine-tune tab shows beside the form: the dataset's full summary, the first rows as
the model sees them (the trained part marked) and a histogram of tokens per example.

The long summary lives here rather than in the form, where a text that grows by lines would push the
fields under the pointer.
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QHeaderView, QLabel, QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget

TRAINED_STYLE = "background-color:#d8f0d2; color:#1b5e20; font-weight:bold;"
MAX_ROW_HEIGHT = 240  # long rows scroll; no row fills the whole view


def render_html(text: str, spans: list[tuple[int, int]]) -> str:
    """The rendered conversation as HTML with the trained (assistant) spans marked."""
    out, pos = [], 0
    for start, end in spans:
        out.append(html.escape(text[pos:start]))
        out.append(f'<span style="{TRAINED_STYLE}">{html.escape(text[start:end])}</span>')
        pos = end
    out.append(html.escape(text[pos:]))
    return "".join(out).replace("\n", "<br>")


def plain_html(messages: list[dict]) -> str:
    """Messages before any model renders them: role names, the assistant's part marked."""
    parts = []
    for m in messages:
        body = html.escape(m["content"]).replace("\n", "<br>")
        if m["role"] == "assistant":
            body = f'<span style="{TRAINED_STYLE}">{body}</span>'
        parts.append(f"<b>{html.escape(m['role'])}:</b> {body}")
    return "<br>".join(parts)


class DatasetPreview(QSplitter):
    def __init__(self, parent=None):
        super().__init__(Qt.Orientation.Vertical, parent)
        self.details_label = QLabel("")
        self.details_label.setWordWrap(True)
        self.details_label.setTextFormat(Qt.TextFormat.PlainText)
        self.details_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Row", "As the model sees it (trained part in green)"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().hide()
        self.table.setWordWrap(True)
        rows = QWidget()
        rows_layout = QVBoxLayout(rows)
        rows_layout.setContentsMargins(0, 0, 0, 0)
        rows_layout.addWidget(self.details_label)
        rows_layout.addWidget(self.table, 1)
        self.histogram = pg.PlotWidget(background="w", title="Tokens per example")
        self.histogram.setLabel("bottom", "tokens")
        self.histogram.setLabel("left", "examples")
        self.histogram.setMaximumHeight(220)
        self.addWidget(rows)
        self.addWidget(self.histogram)
        self.setStretchFactor(0, 3)
        self.setStretchFactor(1, 1)

    def clear(self) -> None:
        self.details_label.setText("")
        self.table.setRowCount(0)
        self.histogram.clear()

    def set_details(self, text: str) -> None:
        self.details_label.setText(text)

    def set_rows(self, rows: list[tuple[str, str]]) -> None:
        """Rows as (where, HTML body)."""
        self.table.setRowCount(0)
        for where, body in rows:
            r = self.table.rowCount()
            self.table.insertRow(r)
            self.table.setItem(r, 0, QTableWidgetItem(where))
            label = QLabel(f'<span style="font-family:monospace">{body}</span>')
            label.setTextFormat(Qt.TextFormat.RichText)
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setContentsMargins(4, 4, 4, 4)
            label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
            self.table.setCellWidget(r, 1, label)
        self.table.resizeRowsToContents()
        for r in range(self.table.rowCount()):
            self.table.setRowHeight(r, min(self.table.rowHeight(r), MAX_ROW_HEIGHT))

    def row_html(self, row: int) -> str:
        label = self.table.cellWidget(row, 1)
        return label.text() if label else ""

    def plot_lengths(self, lengths: list[int], max_length: int) -> None:
        self.histogram.clear()
        if not lengths:
            return
        counts, edges = np.histogram(np.asarray(lengths), bins=min(40, max(5, len(set(lengths)))))
        self.histogram.plot(edges, counts, stepMode="center", fillLevel=0, brush=(70, 130, 220, 120),
                            pen=pg.mkPen((30, 90, 200)))
        self.histogram.addItem(pg.InfiniteLine(max_length, pen=pg.mkPen((200, 50, 50), style=Qt.PenStyle.DashLine),
                                               label="max length", labelOpts={"position": 0.9, "color": (200, 50, 50)}))
