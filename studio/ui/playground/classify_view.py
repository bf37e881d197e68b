"""The playground for a classifier: type a text (and a second one for pair models), press Classify, and see the
probability of each label as a bar, the top label named in words. It takes the place of the chat whenever the
chosen model or the adapter / fine-tuned field is a classifier (a ...ForSequenceClassification folder, or a
classification run folder).

The classifier is loaded and applied in a thread of its own, which keeps it loaded between texts; the GUI
thread only asks (once per folder) whether the folder may run its own code or unpickle its weights.
"""

from __future__ import annotations

import queue
import types
from pathlib import Path

import pyqtgraph as pg
from PySide6.QtCore import QThread, Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QPlainTextEdit, QPushButton, QSizePolicy, QStackedWidget,
                               QVBoxLayout, QWidget)

from studio.engine.errors import StudioError
from studio.ui.widgets.error_panel import ErrorPanel

BARS_SHOWN = 20  # the most probable labels drawn; the rest are listed as a count
BAR_COLOR, TOP_COLOR = (154, 184, 224), (30, 90, 200)
PROBLEM_WORDS = {"single_label": "one label per text", "multi_label": "several labels per text",
                 "regression": "a number per text"}


def classifier_path(tab) -> str | None:
    """The classifier the playground tab has chosen: its adapter / fine-tuned field first, then its model."""
    from studio.engine.classify.predict import is_classifier

    for path in (tab.tuned_edit.text().strip(), tab.model_picker.model()):
        if path and Path(path).expanduser().is_dir() and is_classifier(path):
            return path
    return None


class ClassifierThread(QThread):
    """Works through a queue of jobs; keeps the last classifier loaded. No garbage collection here (see
    studio/ui/gc_guard.py)."""

    loaded = Signal(dict)  # {"folder", "labels", "problem", "device"}
    predicted = Signal(dict)  # {"scores": {label: probability} or {"value": x}, "chosen": [labels], "problem"}
    failed = Signal(str, str, str)  # kind, message, hint
    job_done = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._jobs: queue.Queue = queue.Queue()
        self.classifier = None
        self._key = None

    def submit(self, folder: str, permissions: dict, text: str | None = None, pair: str | None = None) -> None:
        """Load `folder` (unless loaded) and, given a text, classify it."""
        self._jobs.put((folder, permissions, text, pair))
        if not self.isRunning():
            self.start()

    def shutdown(self, wait_ms: int = 30_000) -> None:
        if self.isRunning():
            self._jobs.put(None)
            self.wait(wait_ms)

    def run(self) -> None:
        while (job := self._jobs.get()) is not None:
            try:
                self._work(*job)
            except StudioError as exc:
                self.failed.emit(exc.kind, exc.message, exc.hint)
            except MemoryError:
                self.failed.emit("out_of_memory", "The computer ran out of memory.", "Choose a smaller model.")
            except Exception as exc:  # noqa: BLE001 - shown to the person, never a crash of the window
                self.failed.emit("internal", f"{type(exc).__name__}: {exc}", "")
            finally:
                self.job_done.emit()

    def _work(self, folder: str, permissions: dict, text: str | None, pair: str | None) -> None:
        from studio.engine.classify.predict import load_classifier
        from studio.engine.models import choose_device

        key = (folder, tuple(sorted(permissions.items())))
        if self.classifier is None or key != self._key:
            self.classifier = self._key = None  # the old model goes before the new one loads
            device = choose_device("auto")
            self.classifier = load_classifier(folder, device.device, **permissions)
            self._key = key
            self.loaded.emit({"folder": folder, "labels": list(self.classifier.labels),
                              "problem": self.classifier.problem, "device": device.name})
        if text is not None:
            scores = self.classifier.predict([text], [pair] if pair is not None else None)[0]
            self.predicted.emit({"scores": scores, "chosen": self.classifier.decide(scores),
                                 "problem": self.classifier.problem})


class ProbabilityChart(pg.PlotWidget):
    """Horizontal bars, one per label, the most probable on top."""

    def __init__(self, parent=None):
        super().__init__(parent, background="w")
        self.setMouseEnabled(False, False)
        self.hideButtons()
        self.setMenuEnabled(False)
        self.invertY(True)
        self.setLabel("bottom", "probability")
        self.setMinimumHeight(140)
        self.showGrid(x=True, y=False, alpha=0.2)
        self.getAxis("left").setStyle(tickLength=0)
        self.shown: list[tuple[str, float]] = []

    def show_scores(self, scores: dict[str, float], chosen: list[str]) -> None:
        self.clear()
        ranked = sorted(scores.items(), key=lambda kv: -kv[1])[:BARS_SHOWN]
        self.shown = ranked
        if not ranked:
            return
        ys = list(range(len(ranked)))
        brushes = [pg.mkBrush(TOP_COLOR if label in chosen else BAR_COLOR) for label, _ in ranked]
        self.addItem(pg.BarGraphItem(x0=0, y=ys, height=0.7, width=[p for _, p in ranked], brushes=brushes,
                                     pens=[pg.mkPen(None)] * len(ranked)))
        for y, (_, p) in zip(ys, ranked):
            text = pg.TextItem(f"{p:.1%}", color=(40, 40, 40), anchor=(0, 0.5))
            text.setPos(p, y)
            self.addItem(text)
        self.getAxis("left").setTicks([[(y, label if len(label) <= 24 else label[:23] + "…")
                                        for y, (label, _) in zip(ys, ranked)]])
        self.getAxis("bottom").setTicks([[(x / 4, f"{x * 25}%") for x in range(5)]])
        self.setXRange(0, 1.15, padding=0)  # room for the percentage after a full bar
        self.setYRange(-0.6, len(ranked) - 0.4, padding=0)


class ClassifyView(QWidget):
    busy_changed = Signal(bool)
    status = Signal(str)  # what it is doing, for the playground's status line

    def __init__(self, parent=None):
        super().__init__(parent)
        self.path = ""  # the classifier chosen in the tab
        self.active = False  # shown in place of the chat
        self.busy = False
        self.labels: list[str] = []
        self.problem = ""
        self.last: dict | None = None  # the last prediction
        self._allowed: dict[str, dict] = {}  # folder -> the permissions the person gave for it
        self.worker = ClassifierThread(self)
        self.worker.loaded.connect(self._on_loaded)
        self.worker.predicted.connect(self._on_predicted)
        self.worker.failed.connect(self._on_failed)
        self.worker.job_done.connect(lambda: self._set_busy(False))

        self.about = QLabel("Choose a classifier.")
        self.about.setWordWrap(True)
        self.text = QPlainTextEdit()
        self.text.setPlaceholderText("Type or paste a text to classify…")
        self.pair = QPlainTextEdit()
        self.pair.setPlaceholderText("Optional: the second text, for pair models (entailment, paraphrase, "
                                     "question and passage)")
        self.pair.setMaximumHeight(70)
        self.classify_button = QPushButton("Classify")
        self.classify_button.setToolTip("Classify the text (Ctrl+Enter)")
        self.classify_button.setStyleSheet("font-weight: bold; padding: 4px 18px;")
        self.classify_button.clicked.connect(self.classify)
        self.answer = QLabel("")
        self.answer.setTextFormat(Qt.TextFormat.RichText)
        self.answer.setWordWrap(True)
        self.answer.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.chart = ProbabilityChart()
        self.value_label = QLabel()  # a regression's number, where the chart would be
        self.value_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.value_label.setStyleSheet("font-size: 28px; color: #1e5ac8;")
        self.result = QStackedWidget()
        self.result.addWidget(self.chart)
        self.result.addWidget(self.value_label)
        self.waiting = QLabel("The probability of each label appears here.")
        self.waiting.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.waiting.setStyleSheet("color: #777;")
        self.result.addWidget(self.waiting)
        self.result.setCurrentWidget(self.waiting)
        self.error_panel = ErrorPanel()

        buttons = QHBoxLayout()
        buttons.addWidget(self.classify_button)
        buttons.addWidget(self.answer, 1)
        layout = QVBoxLayout(self)
        layout.addWidget(self.about)
        layout.addWidget(self.text, 1)
        layout.addWidget(self.pair)
        layout.addLayout(buttons)
        layout.addWidget(self.error_panel)
        layout.addWidget(self.result, 2)
        for key in ("Ctrl+Return", "Ctrl+Enter"):
            shortcut = QShortcut(QKeySequence(key), self)
            shortcut.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
            shortcut.activated.connect(self.classify)

    # -- choosing and loading -------------------------------------------------------------------
    def set_classifier(self, path: str) -> None:
        if path == self.path:
            return
        self.path = path
        self.labels, self.problem, self.last = [], "", None
        self.about.setText(f"Classifier: {path}. It loads with the first text (or press Load).")
        self.answer.setText("")
        self.chart.clear()
        self.result.setCurrentWidget(self.waiting)
        self.error_panel.clear()

    def _permissions(self) -> dict | None:
        """What loading the chosen folder may do; None when the person refused (asked once per folder)."""
        from studio.engine.classify.predict import classifier_folder
        from studio.ui.safety import confirm_model_safety

        folder = str(classifier_folder(self.path))
        if folder not in self._allowed:
            asked = types.SimpleNamespace(trust_remote_code=False, allow_pickle=False, allow_download=False)
            if not confirm_model_safety(self, folder, asked):
                return None
            self._allowed[folder] = {"trust_remote_code": asked.trust_remote_code, "allow_pickle": asked.allow_pickle}
        return self._allowed[folder]

    def _submit(self, text: str | None = None, pair: str | None = None) -> None:
        if self.busy or not self.path:
            return
        self.error_panel.clear()
        try:
            permissions = self._permissions()
        except StudioError as exc:
            self._on_failed(exc.kind, exc.message, exc.hint)
            return
        if permissions is None:
            self._on_failed("unsafe_model", "Not loaded: the classifier needs permissions you did not give.",
                            "Choose another model, or try again and allow it.")
            return
        self._set_busy(True)
        self.status.emit("Loading the classifier…" if not self.labels and not self.problem else "Classifying…")
        self.worker.submit(self.path, permissions, text, pair)

    def load(self) -> None:
        self._submit()

    def classify(self) -> None:
        text = self.text.toPlainText()
        if not text.strip():
            self.error_panel.show_error("bad_config", "The text is empty.", "Type the text to classify first.")
            return
        pair = self.pair.toPlainText()
        self._submit(text, pair if pair.strip() else None)

    # -- results --------------------------------------------------------------------------------
    def _on_loaded(self, info: dict) -> None:
        self.labels, self.problem = info["labels"], info["problem"]
        what = PROBLEM_WORDS.get(self.problem, self.problem)
        labels = f"{len(self.labels)} labels ({', '.join(self.labels[:6])}{', …' if len(self.labels) > 6 else ''})" \
            if self.labels else "no labels"
        self.about.setText(f"Classifier: {info['folder']} — {what}, {labels}.")
        self.status.emit(f"Loaded on {info['device']}.")

    def _on_predicted(self, result: dict) -> None:
        self.last = result
        scores, chosen = result["scores"], result["chosen"]
        if result["problem"] == "regression":
            value = scores.get("value", float("nan"))
            self.answer.setText(f"Predicted value: <b>{value:.4g}</b>")
            self.value_label.setText(f"{value:.4g}")
            self.result.setCurrentWidget(self.value_label)
        else:
            self.chart.show_scores(scores, chosen)
            self.result.setCurrentWidget(self.chart)
            if not chosen:
                self.answer.setText("No label passes its threshold.")
            elif result["problem"] == "multi_label":
                self.answer.setText("Labels: " + ", ".join(f"<b>{c}</b> ({scores[c]:.0%})" for c in chosen))
            else:
                self.answer.setText(f"Label: <b>{chosen[0]}</b> ({scores[chosen[0]]:.0%} probability)")
        self.status.emit("Ready.")

    def top_label(self) -> str | None:
        chosen = (self.last or {}).get("chosen") or []
        return chosen[0] if chosen else None

    def _on_failed(self, kind: str, message: str, hint: str) -> None:
        self.error_panel.show_error(kind, message, hint)
        self.status.emit("Failed; see the message above.")

    def _set_busy(self, busy: bool) -> None:
        self.busy = busy
        self.classify_button.setEnabled(not busy)
        self.busy_changed.emit(busy)

    def shutdown(self) -> None:
        self.worker.shutdown()


def attach_classify_view(tab, chat_area: QWidget) -> QStackedWidget:
    """A stack of the playground's chat area and a ClassifyView (as `tab.classify_view`); the view comes forward
    while the tab's model or adapter / fine-tuned field names a classifier."""
    view = ClassifyView()
    stack = QStackedWidget()
    stack.addWidget(chat_area)
    stack.addWidget(view)
    tab.classify_view = view

    def follow_choice(*_) -> None:
        path = classifier_path(tab)
        if path is not None:
            view.set_classifier(path)
        view.active = path is not None
        stack.setCurrentWidget(view if view.active else chat_area)

    tab.model_picker.model_changed.connect(follow_choice)
    tab.tuned_edit.textChanged.connect(follow_choice)
    view.status.connect(tab.status.setText)
    follow_choice()
    return stack
