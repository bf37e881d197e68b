"""A readable panel for a failure: what went wrong (kind), the message a person can act on, and a hint."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QFrame, QHBoxLayout, QLabel, QToolButton, QVBoxLayout

KIND_TITLES = {
    "out_of_memory": "Out of memory", "bad_dataset": "Problem with the dataset", "bad_model": "Problem with the model",
    "bad_config": "Problem with a setting", "nan_loss": "The training diverged", "unsafe_model": "Unsafe model",
    "killed": "The run was killed", "crashed": "The worker crashed", "interrupted": "The run was interrupted",
    "internal": "Internal error", "disk_full": "The disk is full",
    "warning": "Training on the CPU although this computer has an NVIDIA GPU",
}


class ErrorPanel(QFrame):
    dismissed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setObjectName("ErrorPanel")
        self.setStyleSheet("#ErrorPanel { background: #fdecea; border: 1px solid #e0a29b; border-radius: 4px; }"
                           "#ErrorPanel QLabel { color: #5f2120; }")
        self.title = QLabel()
        self.title.setStyleSheet("font-weight: bold;")
        self.message = QLabel()
        self.hint = QLabel()
        self.message.setTextFormat(Qt.TextFormat.PlainText)
        for label in (self.message, self.hint):
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        close = QToolButton()
        close.setText("✕")
        close.setAutoRaise(True)
        close.setToolTip("Hide this message")
        close.clicked.connect(self.clear)
        top = QHBoxLayout()
        top.addWidget(self.title, 1)
        top.addWidget(close)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 8)
        layout.addLayout(top)
        layout.addWidget(self.message)
        layout.addWidget(self.hint)
        self.kind = ""
        self.hide()

    def show_error(self, kind: str, message: str, hint: str = "") -> None:
        self.kind = kind or "internal"
        self.title.setText(KIND_TITLES.get(self.kind, self.kind.replace("_", " ").capitalize()))
        self.message.setText(message or "")
        self.hint.setText(f"<i>{html.escape(hint)}</i>" if hint else "")
        self.hint.setVisible(bool(hint))
        self.show()

    def show_event(self, event: dict) -> None:
        """Show a `failed` event."""
        self.show_error(event.get("kind", "internal"), event.get("message", ""), event.get("hint", ""))

    def show_exception(self, exc: BaseException) -> None:
        kind = getattr(exc, "kind", "internal")
        message = getattr(exc, "message", None) or str(exc) or type(exc).__name__
        self.show_error(kind, message, getattr(exc, "hint", ""))

    def text(self) -> str:
        return "\n".join(x for x in (self.title.text(), self.message.text(), self.hint.text()) if x)

    def clear(self) -> None:
        self.kind = ""
        self.title.clear()
        self.message.clear()
        self.hint.clear()
        self.hide()
        self.dismissed.emit()
