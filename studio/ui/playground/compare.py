"""One side of the compare view: the streamed reply, its live length and speed, and its numbers."""

from __future__ import annotations

from PySide6.QtGui import QTextCursor
from PySide6.QtWidgets import QLabel, QPlainTextEdit, QSizePolicy, QVBoxLayout, QWidget

SIDE_TITLES = {"base": "Base model", "tuned": "Fine-tuned"}
# Two replies of one model to compare: shown in the two panes, the first on the left.
SAMPLES = ("sample 1", "sample 2")
PANE_OF = {"sample 1": "base", "sample 2": "tuned"}


def describe_result(r: dict) -> str:
    parts = [f"{r['prompt_tokens']} prompt tokens / {r['context_window']} context"]
    if r.get("time_to_first_token_s") is not None:
        parts.append(f"first token {r['time_to_first_token_s'] * 1000:.0f} ms")
    if r.get("tokens_per_s"):
        parts.append(f"{r['tokens_per_s']:.1f} tokens/s")
    parts.append(f"{r['new_tokens']} tokens ({r['stop_reason'].replace('_', ' ')})")
    return " · ".join(parts)


def describe_progress(tokens: int, seconds: float) -> str:
    """The live line while a reply streams, e.g. "34 tokens · 12.5 tokens/s". The speed counts the tokens
    after the first, as the final numbers do (the first one waits for the whole prompt)."""
    text = f"{tokens} token{'' if tokens == 1 else 's'}"
    if tokens > 1 and seconds > 0:
        text += f" · {(tokens - 1) / seconds:.1f} tokens/s"
    return text


class SidePane(QWidget):
    def __init__(self, title: str, parent=None):
        super().__init__(parent)
        self.title = QLabel()
        # A long title (a sample's settings) is cut, never widening the window.
        self.title.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.set_title(title)
        self.output = QPlainTextEdit()
        self.output.setReadOnly(True)
        self.stats = QLabel("")
        self.stats.setWordWrap(True)
        self.output.setMinimumSize(80, 40)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        for w in (self.title, self.output, self.stats):
            layout.addWidget(w)

    def set_title(self, title: str, tip: str = "") -> None:
        self.title.setText(f"<b>{title}</b>")
        self.title.setToolTip(tip)

    def set_editable(self, editable: bool) -> None:
        self.output.setReadOnly(not editable)

    def clear(self) -> None:
        self.output.clear()
        self.stats.clear()

    def show_progress(self, tokens: int, seconds: float) -> None:
        self.stats.setText(describe_progress(tokens, seconds))

    def append(self, text: str) -> None:
        self.output.moveCursor(QTextCursor.MoveOperation.End)
        self.output.insertPlainText(text)

    def text(self) -> str:
        return self.output.toPlainText()
