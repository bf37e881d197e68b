"""Placeholder: replaced by the Prompt playground (issue 5)."""
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class PlaygroundTab(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        QVBoxLayout(self).addWidget(QLabel("The prompt playground comes here."))

    def load_pair(self, model: str, adapter: str | None = None) -> None:
        """Select a base model and (optionally) an adapter or fine-tuned model folder."""
