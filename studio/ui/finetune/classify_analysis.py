"""The QThread that reads a labelled file (`engine.classify.data`) off the GUI thread: its columns, the label
summary and the first rows for the preview. A large CSV takes seconds to parse; the form must not freeze.

Each result carries the generation of the settings it read; the data box drops superseded ones.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PySide6.QtCore import QThread, Signal

from studio.engine.errors import BadDataset, StudioError

PREVIEW_ROWS = 200


@dataclass
class LabelledAnalysis:
    columns: list[str] = field(default_factory=list)  # of the file; empty when it could not be read at all
    summary: dict | None = None  # engine.classify.data.label_summary, None on an error
    preview: list[tuple[str, str, str, str]] = field(default_factory=list)  # (where, text, pair, label)
    error: StudioError | None = None


def label_text(label) -> str:
    if isinstance(label, list):
        return ", ".join(map(str, label))
    if isinstance(label, float):
        return f"{label:g}"
    return str(label)


def analyse_labelled(path: str, reading: dict) -> LabelledAnalysis:
    """`reading`: the ClassifyConfig fields that decide how the file is read (columns, problem, separator)."""
    from studio.engine.classify.config import ClassifyConfig
    from studio.engine.classify.data import label_summary, read_labelled
    from studio.engine.data.files import read_records

    try:
        columns = list(read_records(path).columns)
    except StudioError as err:
        return LabelledAnalysis(error=err)
    try:
        data = read_labelled(path, ClassifyConfig(**reading))
    except StudioError as err:
        return LabelledAnalysis(columns=columns, error=err)
    pairs = data.pairs or [""] * len(data.texts)
    preview = [(where, text, pair, label_text(label)) for where, text, pair, label, _ in
               zip(data.where or [""] * len(data.texts), data.texts, pairs, data.labels, range(PREVIEW_ROWS))]
    return LabelledAnalysis(columns=columns, summary=label_summary(data), preview=preview)


class LabelledAnalysisThread(QThread):
    done = Signal(int, object)  # generation, LabelledAnalysis

    def __init__(self, generation: int, path: str, reading: dict, parent=None):
        super().__init__(parent)
        self.generation, self.path, self.reading = generation, path, dict(reading)

    def run(self) -> None:
        try:
            result = analyse_labelled(self.path, self.reading)
        except Exception as exc:  # noqa: BLE001 - a fault here must end the analysis, never the form
            result = LabelledAnalysis(error=BadDataset(f"{self.path}: reading it failed unexpectedly: "
                                                       f"{type(exc).__name__}: {exc}"))
        self.done.emit(self.generation, result)
