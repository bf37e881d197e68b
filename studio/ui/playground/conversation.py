"""The Conversation page of the playground: base beside fine-tuned (or two replies of one model), which side's
reply the conversation continues with (or the buttons that pick the better one), the conversation so far, what
was left out to fit the context, the prompt and its buttons, and the feedback line."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QCheckBox, QComboBox, QGridLayout, QHBoxLayout, QHeaderView, QLabel,
                               QPlainTextEdit, QPushButton, QSizePolicy, QSplitter, QTableWidget, QTableWidgetItem,
                               QVBoxLayout, QWidget)

from studio.ui.playground.compare import PANE_OF, SIDE_TITLES, SidePane
from studio.ui.playground.feedback_bar import FeedbackLine, PickBar, thumb_buttons

COMPARE_TIP = "Run the base model and the fine-tuned one on the same prompt, side by side."
NO_TUNED_TIP = "Compare needs a fine-tuned side: choose an adapter or a fine-tuned model first (a finished run, " \
               "or Browse…)."
TWO_REPLIES_TIP = "Each Send or Regenerate gives two replies to the same prompt, side by side: base and fine-tuned " \
                  "when Compare is on, else two samples of the model. Pick the better one (or both bad) to save " \
                  "your preference in the feedback file."


class ConversationView(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.compare = QCheckBox("Compare base and fine-tuned")
        self.continue_label = QLabel("Continue with:")
        self.continue_with = QComboBox()
        self.continue_with.addItem(SIDE_TITLES["tuned"], "tuned")
        self.continue_with.addItem(SIDE_TITLES["base"], "base")
        self.continue_with.setToolTip("In a comparison, whose reply joins the conversation (and is answered next).")
        self.panes = {"base": SidePane(SIDE_TITLES["base"]), "tuned": SidePane(SIDE_TITLES["tuned"])}
        sides = QSplitter(Qt.Orientation.Horizontal)
        sides.setChildrenCollapsible(False)
        sides.addWidget(self.panes["base"])
        sides.addWidget(self.panes["tuned"])
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Role", "Text"])
        self.table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.table.setToolTip("The conversation so far; double-click a text to edit it.")
        self.table.setMinimumHeight(60)
        # Says which turns a long chat left out; a long note wraps instead of widening the window.
        self.context_note = QLabel()
        self.context_note.setWordWrap(True)
        self.context_note.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.context_note.hide()
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText("Your message (chat) or the text to continue (completion)")
        self.prompt.setMinimumHeight(44)
        self.prompt.setMaximumHeight(90)
        self.send_button = QPushButton("Send")
        self.stop_button = QPushButton("Stop")
        self.regen_button = QPushButton("Regenerate")
        self.clear_button = QPushButton("Clear conversation")
        self.good_button, self.bad_button = thumb_buttons()
        self.pick_bar = PickBar()
        self.feedback = FeedbackLine()
        self.two_replies = self.feedback.two_replies
        self.two_replies.setToolTip(TWO_REPLIES_TIP)
        self._compare_available = False
        self._busy = False
        # Hidden until a comparison or two replies show them; hidden before the layouts first measure them, so
        # that the window's first size does not make room for them.
        for w in (self.continue_label, self.continue_with, self.pick_bar):
            w.hide()

        top = QHBoxLayout()
        top.addWidget(self.compare)
        top.addStretch(1)
        top.addWidget(self.continue_label)
        top.addWidget(self.continue_with)
        # The replies and the conversation share the height; either can be made small.
        middle = QSplitter(Qt.Orientation.Vertical)
        middle.setChildrenCollapsible(False)
        replies = QWidget()  # the two replies and, under them, the buttons that pick the better one
        replies_layout = QVBoxLayout(replies)
        replies_layout.setContentsMargins(0, 0, 0, 0)
        replies_layout.addWidget(sides, 1)
        replies_layout.addWidget(self.pick_bar)
        middle.addWidget(replies)
        middle.addWidget(self.table)
        middle.setStretchFactor(0, 3)
        middle.setStretchFactor(1, 2)
        send = QVBoxLayout()
        send.addWidget(self.send_button)
        send.addWidget(self.stop_button)
        send.addStretch(1)
        prompt_row = QHBoxLayout()
        prompt_row.addWidget(self.prompt, 1)
        prompt_row.addLayout(send)
        more = QGridLayout()
        for column, button in enumerate((self.regen_button, self.clear_button, self.good_button, self.bad_button)):
            more.addWidget(button, 0, column)
        more.setColumnStretch(4, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(middle, 1)
        layout.addWidget(self.context_note)
        layout.addLayout(prompt_row)
        layout.addLayout(more)
        layout.addWidget(self.feedback)

    # ---- the conversation so far ---------------------------------------------------------------------

    def turns(self) -> list[dict]:
        return [{"role": self.table.item(row, 0).text(), "content": self.table.item(row, 1).text()}
                for row in range(self.table.rowCount())]

    def add_turn(self, role: str, content: str) -> None:
        row = self.table.rowCount()
        self.table.insertRow(row)
        role_item = QTableWidgetItem(role)
        role_item.setFlags(role_item.flags() & ~Qt.ItemFlag.ItemIsEditable)
        self.table.setItem(row, 0, role_item)
        self.table.setItem(row, 1, QTableWidgetItem(content))

    def pop_turn(self) -> dict:
        turn = self.turns()[-1]
        self.table.removeRow(self.table.rowCount() - 1)
        return turn

    def pop_replies(self) -> list[dict]:
        """Remove the assistant turns at the end (to answer the last message again); they come back in order."""
        removed = []
        while self.table.rowCount() and self.turns()[-1]["role"] == "assistant":
            removed.insert(0, self.pop_turn())
        return removed

    def clear(self) -> None:
        self.table.setRowCount(0)
        self.set_note("")
        for pane in self.panes.values():
            pane.clear()

    def set_note(self, note: str) -> None:
        self.context_note.setText(f"<i>{note[:1].upper() + note[1:]}.</i>" if note else "")
        self.context_note.setVisible(bool(note))

    # ---- compare -------------------------------------------------------------------------------------

    def set_compare_available(self, available: bool) -> None:
        """Compare is off and disabled without a fine-tuned side; it turns on when one becomes available."""
        if available != self._compare_available:
            self.compare.setChecked(available)
        self._compare_available = available
        self.compare.setToolTip(COMPARE_TIP if available else NO_TUNED_TIP)
        self.set_busy(self._busy)

    def set_busy(self, busy: bool) -> None:
        """While a job runs, what it compares and continues with stays as it started."""
        self._busy = busy
        self.compare.setEnabled(self._compare_available and not busy)
        self.continue_with.setEnabled(not busy)
        self.two_replies.setEnabled(not busy)

    def pane(self, side: str) -> SidePane:
        return self.panes[PANE_OF.get(side, side)]

    def show_sides(self, sides: list[str], chat: bool, picking: bool = False) -> None:
        """`picking`: the person picks the better of the two replies (which then joins a chat)."""
        shown = {PANE_OF.get(side, side) for side in sides}
        for side, pane in self.panes.items():
            pane.setVisible(side in shown)
            if side in sides or not picking:
                pane.set_title(SIDE_TITLES[side])
        self.pick_bar.setVisible(picking)
        comparing = len(sides) > 1 and chat and not picking
        self.continue_label.setVisible(comparing)
        self.continue_with.setVisible(comparing)
