"""What the pre-flight check found, under the Start button: errors (which keep Start disabled) and warnings,
one line each with its hint as the tooltip. Hidden when there is nothing to say."""

from __future__ import annotations

import html

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QLabel

COLOURS = {"error": "#b00020", "warning": "#8a5a00"}
MAX_LINES = 4


class ChecksView(QLabel):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setWordWrap(True)
        self.setTextFormat(Qt.TextFormat.RichText)
        self.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.setStyleSheet("background: #fbfaf4; border: 1px solid #e4dfc8; border-radius: 4px; padding: 4px;")
        self.findings: list = []
        self.hide()

    def show_report(self, report, skip_checks: tuple[str, ...] = ()) -> None:
        """Show the errors and warnings of a Preflight, leaving out checks the tab shows elsewhere."""
        self.findings = [] if report is None else [
            f for f in report.findings if f.level in COLOURS and f.check not in skip_checks]
        lines = [f'<span style="color:{COLOURS[f.level]}">{html.escape(f.line())}</span>'
                 for f in self.findings[:MAX_LINES]]
        if len(self.findings) > MAX_LINES:
            lines.append(f"… and {len(self.findings) - MAX_LINES} more (hover for all)")
        self.setText("<br>".join(lines))
        self.setToolTip("\n\n".join(f.line() + (f"\n{f.hint}" if f.hint else "") for f in self.findings))
        self.setVisible(bool(self.findings))
