"""The QThread that runs `engine.data.analysis.analyse_dataset` off the GUI thread.

Rendering needs the model's tokenizer (transformers), so none of it runs in the GUI thread. Each signal
carries the analysis' generation number; the panel drops results of a superseded generation, and
`cancel()` makes a superseded analysis stop at its next check instead of tokenizing to the end.
"""

from __future__ import annotations

from PySide6.QtCore import QThread, Signal

from studio.engine.data.analysis import AnalysisCancelled, analyse_dataset
from studio.engine.errors import BadDataset


class DatasetAnalysisThread(QThread):
    parsed = Signal(int, object)  # generation, analysis.ParsedDataset
    rendered = Signal(int, object)  # generation, analysis.RenderedDataset (only with a model and usable rows)
    failed = Signal(int, object)  # generation, a StudioError naming the file: a fault the analysis did not expect

    def __init__(self, generation: int, path: str, fmt: str, mapping: dict, model: str, max_length: int,
                 train_on_prompt: bool = False, parent=None):
        super().__init__(parent)
        self.generation = generation
        self.path, self.fmt, self.mapping, self.model = path, fmt, dict(mapping), model
        self.max_length, self.train_on_prompt = max_length, train_on_prompt
        self._cancelled = False  # set from the GUI thread; a bool write is atomic in CPython

    def cancel(self) -> None:
        self._cancelled = True

    def is_cancelled(self) -> bool:
        return self._cancelled

    def run(self) -> None:
        try:
            result = analyse_dataset(self.path, self.fmt, self.mapping, self.model, self.max_length,
                                     self.train_on_prompt, on_parsed=lambda p: self.parsed.emit(self.generation, p),
                                     cancelled=self.is_cancelled)
        except AnalysisCancelled:
            return
        except Exception as exc:  # noqa: BLE001 - a fault here must end the analysis, never the panel
            self.failed.emit(self.generation, BadDataset(f"{self.path}: the analysis failed unexpectedly: "
                                                         f"{type(exc).__name__}: {exc}"))
            return
        if result.rendered is not None:
            self.rendered.emit(self.generation, result.rendered)
