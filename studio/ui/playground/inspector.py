"""The Inspector page of the playground: the exact text the model receives, and its length in tokens."""

from __future__ import annotations

from PySide6.QtWidgets import QLabel, QPlainTextEdit, QPushButton, QSizePolicy, QVBoxLayout, QWidget


class InspectorView(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.button = QPushButton("Inspect the prompt")
        self.label = QLabel("The exact text the model receives, after the template and examples.")
        self.label.setWordWrap(True)
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.text = QPlainTextEdit()
        self.text.setReadOnly(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.button)
        layout.addWidget(self.label)
        layout.addWidget(self.text)

    def show_info(self, info: dict, note: str = "") -> None:
        """`info` from the generation thread's `inspected`; `note` says what was left out to fit the context."""
        over = " — longer than the context window!" if info["tokens"] >= info["context_window"] else ""
        self.label.setText(f"{info['tokens']} tokens / {info['context_window']} context{over}"
                           + (f" ({note})" if note else ""))
        self.text.setPlainText(info["text"])
