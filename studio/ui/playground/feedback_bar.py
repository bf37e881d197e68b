"""The feedback controls of the Conversation page: the buttons that pick the better of two replies, and the line
that counts the marks in the feedback file and offers to train on them."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEvent, QUrl, Signal
from PySide6.QtGui import QDesktopServices, QKeySequence
from PySide6.QtWidgets import QCheckBox, QHBoxLayout, QLabel, QPushButton, QSizePolicy, QWidget

from studio.engine.preference.feedback import FEEDBACK_FILE

PICK_TIPS = {
    "left": "The left reply is better: saved as a preference pair (chosen = left, rejected = right).",
    "right": "The right reply is better: saved as a preference pair (chosen = right, rejected = left).",
    "both_bad": "Neither reply is good: both are saved as replies marked bad. In a chat, neither joins the "
                "conversation; Regenerate asks for two new ones.",
}
EDIT_TIP = "Make the replies editable: correct the better one before you pick it. The corrected text is saved as " \
           "the chosen reply (marked as edited)."


def _button(text: str, shortcut: str, tip: str) -> QPushButton:
    button = QPushButton(text)
    button.setShortcut(QKeySequence(shortcut))
    button.setToolTip(f"{tip} ({QKeySequence(shortcut).toString(QKeySequence.SequenceFormat.NativeText)})")
    return button


def thumb_buttons() -> tuple[QPushButton, QPushButton]:
    good = _button("✓ Good", "Ctrl+Shift+G", "Mark the last reply good: saved in the feedback file, and kept for "
                                              "the dataset the examples are saved as")
    bad = _button("✗ Bad", "Ctrl+Shift+B", "Mark the last reply bad: saved in the feedback file")
    return good, bad


class PickBar(QWidget):
    """Under the two replies: which one is better, or both bad; and the toggle that makes them editable."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.left = _button("Left is better", "Ctrl+1", PICK_TIPS["left"])
        self.right = _button("Right is better", "Ctrl+2", PICK_TIPS["right"])
        self.both_bad = _button("Both bad", "Ctrl+3", PICK_TIPS["both_bad"])
        self.edit = QCheckBox("Edit before saving")
        self.edit.setToolTip(EDIT_TIP)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for w in (self.left, self.right, self.both_bad, self.edit):
            layout.addWidget(w)
        layout.addStretch(1)

    def set_ready(self, ready: bool) -> None:
        for button in (self.left, self.right, self.both_bad):
            button.setEnabled(ready)


class FeedbackLine(QWidget):
    """The "Two replies" switch, "Feedback: 7 pairs, 3 good, 2 bad · feedback.jsonl" (the name opens its folder)
    and "Train on my feedback". It asks for a fresh count whenever it is shown or its window becomes active
    again (after the workspace was moved in Settings, or the file was changed elsewhere): counting a file that
    did not change costs one stat."""

    refresh_wanted = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.two_replies = QCheckBox("Two replies")
        self.label = QLabel()
        self.label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.label.linkActivated.connect(self._open_folder)
        self.train_button = QPushButton("Train on my feedback")
        self.path: Path | None = None
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.two_replies)
        layout.addWidget(self.label, 1)
        layout.addWidget(self.train_button)

    def show_counts(self, path: Path, counts: str, trainable: bool, why: str) -> None:
        self.path = Path(path)
        self.label.setText(f"Feedback: {counts} · <a href=\"folder\">{FEEDBACK_FILE}</a>")
        self.label.setToolTip(f"{path}\nClick the file name to open its folder.")
        self.train_button.setEnabled(trainable)
        self.train_button.setToolTip(why if trainable else f"Not yet: {why}")

    def text(self) -> str:
        """The line as a person reads it."""
        return self.label.text().replace(f"<a href=\"folder\">{FEEDBACK_FILE}</a>", FEEDBACK_FILE)

    def _open_folder(self, _link: str = "") -> None:
        if self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            QDesktopServices.openUrl(QUrl.fromLocalFile(str(self.path.parent)))

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh_wanted.emit()

    def changeEvent(self, event) -> None:
        super().changeEvent(event)
        if event.type() == QEvent.Type.ActivationChange and self.isActiveWindow():
            self.refresh_wanted.emit()
