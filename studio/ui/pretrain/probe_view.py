"""The probe completions a decoder writes at each evaluation (`sample` events), one block per evaluation."""

from __future__ import annotations

from PySide6.QtWidgets import QPlainTextEdit


def describe_samples(event: dict) -> str:
    lines = [f"— step {event.get('step')} —"]
    for s in event.get("samples") or []:
        lines.append(f"{s.get('prompt')!s} ⟶ {s.get('completion')!s}")
    return "\n".join(lines) + "\n"


class ProbeView(QPlainTextEdit):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.setReadOnly(True)
        self.setPlaceholderText("Decoders: the probe prompts and the model's completions at each evaluation "
                                "appear here.")

    def show_samples(self, event: dict) -> None:
        self.appendPlainText(describe_samples(event))
