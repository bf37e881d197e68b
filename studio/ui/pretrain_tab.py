"""Placeholder: replaced by the Pre-train tab (issue 4)."""
from PySide6.QtWidgets import QLabel, QVBoxLayout, QWidget


class PretrainTab(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        QVBoxLayout(self).addWidget(QLabel("Pre-training comes here."))
