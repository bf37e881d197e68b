"""The held-out file of the Evaluate tab: open it, read it (off the GUI thread) as the format, column mapping and
kind chosen in the form say, and show what it holds: one line of description beside the form, and the first
rows (input and reference) in a preview the tab places on the right. A file that cannot be scored is said in
words naming the file, row and field, never as a traceback."""

from __future__ import annotations

from PySide6.QtCore import QThread, Qt, Signal
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QHeaderView, QLabel, QPushButton, QTableWidget,
                               QTableWidgetItem, QVBoxLayout, QWidget)

from studio.engine.errors import BadDataset, StudioError
from studio.engine.evaluate.heldout import HeldOut, read_heldout
from studio.ui import settings
from studio.ui.finetune.elided_label import ElidedLabel
from studio.ui.widgets.error_panel import ErrorPanel

FILE_FILTER = ("Held-out data (*.json *.jsonl *.ndjson *.csv *.tsv *.parquet *.txt *.md);;All files (*)")
PREVIEW_ROWS = 50
NO_FILE = "Open a held-out file first (Ctrl+O)."
KIND_WORDS = {"classification": "classification", "generation": "answers", "perplexity": "perplexity",
              "preference": "preference accuracy"}
REFERENCE_HEADERS = {"preference": "Chosen and rejected replies"}
REFERENCE_HEADER = "Reference (the expected answer)"


class HeldOutReader(QThread):
    read = Signal(int, object)  # generation, HeldOut
    failed = Signal(int, object)  # generation, StudioError

    def __init__(self, generation: int, path: str, fmt: str, mapping: dict, kind: str, parent=None):
        super().__init__(parent)
        self.generation, self.path, self.fmt, self.mapping, self.kind = generation, path, fmt, dict(mapping), kind

    def run(self) -> None:
        try:
            result = read_heldout(self.path, self.fmt, self.mapping, self.kind)
        except StudioError as err:
            self.failed.emit(self.generation, err)
        except Exception as exc:  # noqa: BLE001 - a fault of the reader must end as a message, never a crash
            self.failed.emit(self.generation, BadDataset(f"{self.path} could not be read: {type(exc).__name__}: "
                                                         f"{exc}"))
        else:
            self.read.emit(self.generation, result)


class HeldOutPreview(QWidget):
    """What the file holds: its description, warnings and drops, and its first rows."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.details = QLabel("The first rows of the held-out file appear here once it is open.")
        self.details.setWordWrap(True)
        self.details.setTextFormat(Qt.TextFormat.PlainText)
        self.details.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.table = QTableWidget(0, 3)
        self.table.setHorizontalHeaderLabels(["Row", "Input", REFERENCE_HEADER])
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        header.setSectionResizeMode(2, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.details)
        layout.addWidget(self.table, 1)

    def clear(self, text: str = "") -> None:
        self.details.setText(text)
        self.table.setRowCount(0)

    def show_heldout(self, heldout: HeldOut) -> None:
        from studio.engine.data.formats import describe_drops
        from studio.engine.evaluate.heldout import reply_text

        lines = [heldout.describe()]
        if heldout.kind == "classification" and heldout.columns:
            columns = heldout.columns
            lines.append(f"Text from column '{columns.get('text')}', label from '{columns.get('label')}'.")
        if heldout.dropped:
            lines.append(f"Dropped: {describe_drops(heldout.dropped)}.")
        lines += [f"Warning: {w}" for w in heldout.warnings]
        if len(heldout.examples) > PREVIEW_ROWS:
            lines.append(f"The first {PREVIEW_ROWS} examples:")
        self.details.setText("\n".join(lines))
        shown = heldout.examples[:PREVIEW_ROWS]
        self.table.setHorizontalHeaderLabels(["Row", "Input", REFERENCE_HEADERS.get(heldout.kind, REFERENCE_HEADER)])
        self.table.setRowCount(len(shown))
        for r, example in enumerate(shown):
            reference = example.reference if heldout.kind != "perplexity" else "(the text itself: perplexity)"
            if example.pair is not None:
                reference = f"Chosen: {example.reference}\nRejected: {reply_text(example.pair['rejected'])}"
            for c, text in enumerate((example.where, example.input, reference)):
                item = QTableWidgetItem(text if len(text) <= 600 else text[:600] + "…")
                item.setToolTip(text[:4000])
                self.table.setItem(r, c, item)
        self.table.resizeRowsToContents()
        for r in range(self.table.rowCount()):
            self.table.setRowHeight(r, min(self.table.rowHeight(r), 120))

    def row(self, r: int) -> tuple[str, str, str]:
        return tuple(self.table.item(r, c).text() for c in range(3))


class HeldOutBox(QWidget):
    """Open… and the file's one-line verdict; `preview` goes elsewhere (the tab puts it on the right)."""

    file_opened = Signal(str)  # a new file was chosen
    read_finished = Signal()  # the current settings were read (or failed)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._path = ""
        self._options = ("auto", {}, "auto")  # format, column mapping, kind
        self._generation = self._launched = self._done = 0
        self._thread: HeldOutReader | None = None
        self._shut_down = False
        self.heldout: HeldOut | None = None
        self.error: StudioError | None = None

        self.open_button = QPushButton("Open…")
        self.open_button.setToolTip("Open the held-out file (Ctrl+O): examples no candidate was trained on — "
                                    "labelled text, instruction/output pairs or raw text; JSON, JSONL, CSV, "
                                    "Parquet or .txt")
        self.open_button.clicked.connect(self.open_dialog)
        self.path_label = ElidedLabel("No held-out file yet.", elide=Qt.TextElideMode.ElideMiddle)
        self.summary = QLabel()
        self.summary.setWordWrap(True)
        self.summary.setTextFormat(Qt.TextFormat.PlainText)
        self.summary.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.summary.hide()
        self.error_panel = ErrorPanel()
        top = QHBoxLayout()
        top.addWidget(self.open_button)
        top.addWidget(self.path_label, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.summary)
        layout.addWidget(self.error_panel)
        self.preview = HeldOutPreview()

    # -- state -----------------------------------------------------------------------------------
    def path(self) -> str:
        return self._path

    def busy(self) -> bool:
        return bool(self._path) and not self._shut_down and self._done != self._generation

    def problem(self) -> str | None:
        """Why an evaluation cannot start with this file yet, in one sentence; None when it can."""
        if not self._path:
            return NO_FILE
        if self.busy():
            return "The held-out file is still being read."
        if self.error is not None:
            return self.error.message
        return None

    def shown_messages(self) -> set[str]:
        """The error and warnings this box (and its preview) show about the file."""
        shown = set(self.heldout.warnings) if self.heldout is not None else set()
        return shown | ({self.error.message} if self.error is not None else set())

    # -- opening and reading ---------------------------------------------------------------------
    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open the held-out file", settings.last_dir("heldout",
                                              settings.last_dir("dataset")), FILE_FILTER)
        if path:
            self.load(path)

    def load(self, path: str, fmt: str | None = None, mapping: dict | None = None, kind: str | None = None) -> None:
        """Read `path` (with these options, else the current ones); what was shown of the last file goes."""
        self._path = str(path)
        self._shut_down = False
        if fmt is not None or mapping is not None or kind is not None:
            old = self._options
            self._options = (fmt or old[0], dict(mapping if mapping is not None else old[1]), kind or old[2])
        if self._path:
            settings.set_last_dir("heldout", self._path)
        self.path_label.setText(self._path or "No held-out file yet.")
        self.heldout, self.error = None, None
        self.error_panel.clear()
        self._set_summary(f"Reading {self._path}…" if self._path else "")
        self.preview.clear(f"Reading {self._path}…" if self._path else "")
        self.file_opened.emit(self._path)
        self._request()

    def set_options(self, fmt: str, mapping: dict, kind: str) -> None:
        """The form's format, column mapping and kind: read the file again if they changed."""
        options = (fmt, dict(mapping or {}), kind)
        if options != self._options:
            self._options = options
            self._request()

    def _request(self) -> None:
        if not self._path or self._shut_down:
            self.read_finished.emit()
            return
        self._generation += 1
        self._launch()  # unless a read is under way: its end launches this one

    def _launch(self) -> None:
        if self._thread is not None or self._shut_down or self._launched == self._generation:
            return
        self._launched = generation = self._generation
        fmt, mapping, kind = self._options
        thread = HeldOutReader(generation, self._path, fmt, mapping, kind)
        thread.read.connect(self._on_read)
        thread.failed.connect(self._on_failed)
        thread.finished.connect(self._on_thread_finished)
        self._thread = thread
        thread.start()

    def _on_thread_finished(self) -> None:
        thread, self._thread = self._thread, None
        if thread is not None:
            thread.deleteLater()
        self._launch()  # the settings changed while it read: read them

    def _on_read(self, generation: int, heldout: HeldOut) -> None:
        if generation != self._generation:
            return
        self.heldout, self.error = heldout, None
        self.error_panel.clear()
        kind = KIND_WORDS.get(heldout.kind, heldout.kind)
        self._set_summary(f"{heldout.describe()}. Scored as {kind}."
                          + (f" {len(heldout.warnings)} warning(s): see the preview." if heldout.warnings else ""))
        self.preview.show_heldout(heldout)
        self._finish()

    def _on_failed(self, generation: int, error: StudioError) -> None:
        if generation != self._generation:
            return
        self.heldout, self.error = None, error
        self._set_summary("")
        self.error_panel.show_exception(error)
        self.preview.clear(f"{error.message}\n{error.hint}".strip())
        self._finish()

    def _finish(self) -> None:
        self._done = self._generation
        self.read_finished.emit()

    def _set_summary(self, text: str) -> None:
        self.summary.setText(text)
        self.summary.setVisible(bool(text))

    def clear(self) -> None:
        self._path = ""
        self._generation += 1
        self._done = self._generation
        self.heldout, self.error = None, None
        self.path_label.setText("No held-out file yet.")
        self._set_summary("")
        self.error_panel.clear()
        self.preview.clear("The first rows of the held-out file appear here once it is open.")
        self.read_finished.emit()

    def shutdown(self, timeout_ms: int = 30000) -> None:
        self._shut_down = True
        self._generation += 1
        if self._thread is not None:
            self._thread.wait(timeout_ms)
