"""The dataset part of the Fine-tune tab: open a file, detect its format, map columns, preview the rows
as the model sees them (trained part marked) and summarise the token lengths.

Reading a file is quick and needs no torch; rendering needs the model's tokenizer (transformers), so
all of it runs in a QThread and the GUI thread only shows the results.
"""

from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Qt, QThread, Signal
from PySide6.QtWidgets import (QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QHeaderView, QLabel, QPushButton,
                               QSplitter, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget)

from studio.engine.config import FORMATS
from studio.engine.errors import StudioError
from studio.ui import settings
from studio.ui.widgets.error_panel import ErrorPanel

FILE_FILTER = "Datasets (*.json *.jsonl *.ndjson *.csv *.tsv *.parquet);;All files (*)"
PREVIEW_ROWS = 20
SUMMARY_ROW_LIMIT = 5000
KEEP = "(keep)"
TARGET_NAMES = [KEEP, "instruction", "input", "output", "system", "history", "messages", "conversations", "prompt",
                "completion", "chosen", "rejected"]
TRAINED_STYLE = "background-color:#d8f0d2; color:#1b5e20; font-weight:bold;"


PREVIEW_CHARS = 2000  # per message: a 50 MB cell must not become a 50 MB label


def clip_messages(messages: list[dict]) -> list[dict]:
    """Messages cut to what the preview shows, marked where they were cut."""
    return [{**m, "content": m["content"][:PREVIEW_CHARS] + f" … ({len(m['content']) - PREVIEW_CHARS:,} more "
             f"characters)"} if len(m["content"]) > PREVIEW_CHARS else m for m in messages]


def render_html(text: str, spans: list[tuple[int, int]]) -> str:
    """The rendered conversation as HTML with the trained (assistant) spans marked."""
    out, pos = [], 0
    for start, end in spans:
        out.append(html.escape(text[pos:start]))
        out.append(f'<span style="{TRAINED_STYLE}">{html.escape(text[start:end])}</span>')
        pos = end
    out.append(html.escape(text[pos:]))
    return "".join(out).replace("\n", "<br>")


def plain_html(messages: list[dict]) -> str:
    parts = []
    for m in clip_messages(messages):
        body = html.escape(m["content"]).replace("\n", "<br>")
        if m["role"] == "assistant":
            body = f'<span style="{TRAINED_STYLE}">{body}</span>'
        parts.append(f"<b>{html.escape(m['role'])}:</b> {body}")
    return "<br>".join(parts)


class DatasetAnalysis(QThread):
    """Reads a dataset file and (if a model is given) renders and tokenizes it with the model's tokenizer."""

    # Each signal carries the analysis' generation number, so results of a superseded analysis are ignored.
    parsed = Signal(int, object)  # columns, rows, detected, format, preview [(where, messages)], dropped, error
    analyzed = Signal(int, object)  # previews [(where, html)], summary (DatasetSummary) or note/error
    failed = Signal(int, object)  # a StudioError (or other exception) reading the file

    def __init__(self, generation: int, path: str, fmt: str, mapping: dict, model: str, max_length: int,
                 train_on_prompt: bool = False, parent=None):
        super().__init__(parent)
        self.generation = generation
        self.path, self.fmt, self.mapping, self.model = path, fmt, dict(mapping), model
        self.max_length, self.train_on_prompt = max_length, train_on_prompt

    def run(self) -> None:
        from studio.engine.data.files import read_records
        from studio.engine.data.formats import Conversations, detect_format, split_mapping, to_conversations

        try:
            records = read_records(self.path)
        except Exception as exc:  # noqa: BLE001 - shown in the panel
            self.failed.emit(self.generation, exc)
            return
        col_map, _ = split_mapping(self.mapping)
        info = {"columns": records.columns, "rows": len(records.rows),
                "detected": detect_format([col_map.get(c, c) for c in records.columns]),
                "format": None, "preview": [], "dropped": {}, "error": None}
        try:
            convs = to_conversations(records, self.fmt, self.mapping)
        except Exception as exc:  # noqa: BLE001
            info["error"] = exc
            self.parsed.emit(self.generation, info)
            return
        info.update(format=convs.format, dropped=convs.dropped,
                    preview=list(zip(convs.where[:PREVIEW_ROWS], convs.conversations[:PREVIEW_ROWS])))
        self.parsed.emit(self.generation, info)
        if not self.model:
            self.analyzed.emit(self.generation, {"note": "Choose a model to see the rows rendered with its chat template and the "
                                        "token lengths."})
            return
        try:
            from studio.engine.data.render import assistant_spans, ensure_chat_template, tokenize_all
            from studio.engine.models import load_tokenizer, resolve_model_path

            tokenizer = load_tokenizer(resolve_model_path(self.model))
            fallback = ensure_chat_template(tokenizer)
            previews = []
            for where, messages in info["preview"]:
                text, spans = assistant_spans(tokenizer, clip_messages(messages))
                previews.append((where, render_html(text, spans)))
            sampled = len(convs.conversations) > SUMMARY_ROW_LIMIT
            if sampled:
                convs = Conversations(format=convs.format, conversations=convs.conversations[:SUMMARY_ROW_LIMIT],
                                      where=convs.where[:SUMMARY_ROW_LIMIT], dropped=convs.dropped,
                                      source=convs.source)
            _, summary = tokenize_all(tokenizer, convs, self.max_length, self.train_on_prompt)
            self.analyzed.emit(self.generation, {"previews": previews, "summary": summary, "sampled": sampled,
                                "fallback_template": fallback})
        except Exception as exc:  # noqa: BLE001
            self.analyzed.emit(self.generation, {"error": exc})


class DatasetPanel(QWidget):
    """Controls (open, format, mapping, summary, errors); `preview_widget` is placed elsewhere by the tab."""

    dataset_changed = Signal(str)
    analysis_finished = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._path = ""
        self._model = ""
        self._max_length = 512
        self._generation = 0
        self._threads: set[DatasetAnalysis] = set()
        self.columns: list[str] = []
        self._pending_mapping: dict = {}
        self.summary = None
        self.last_error: BaseException | None = None

        self.open_button = QPushButton("Open…")
        self.open_button.setToolTip("Open a dataset: JSON, JSONL, CSV or Parquet (Ctrl+O)")
        self.open_button.clicked.connect(self.open_dialog)
        self.path_label = QLabel("No dataset yet.")
        self.path_label.setWordWrap(True)
        self.path_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.format_combo = QComboBox()
        for name in FORMATS:
            self.format_combo.addItem(name, name)
        self.format_combo.setToolTip("The data format; auto detects it from the columns.")
        self.format_combo.currentIndexChanged.connect(self._reanalyze)
        self.detected_label = QLabel("")
        self.mapping_table = QTableWidget(0, 2)
        self.mapping_table.setHorizontalHeaderLabels(["Column in the file", "Use as"])
        self.mapping_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.mapping_table.verticalHeader().hide()
        self.mapping_table.setToolTip("Rename columns to the names the format expects, e.g. question → instruction")
        self.mapping_table.setMaximumHeight(130)
        self.summary_label = QLabel("")
        self.summary_label.setWordWrap(True)
        self.error_panel = ErrorPanel()

        top = QHBoxLayout()
        top.addWidget(self.open_button)
        top.addWidget(self.path_label, 1)
        fmt_row = QHBoxLayout()
        fmt_row.addWidget(self.format_combo)
        fmt_row.addWidget(self.detected_label, 1)
        form = QFormLayout()
        form.addRow("Format", fmt_row)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.error_panel)
        layout.addLayout(form)
        layout.addWidget(self.mapping_table)
        layout.addWidget(self.summary_label)

        # The preview: the first rows as the model sees them, and the token-length histogram.
        self.preview_table = QTableWidget(0, 2)
        self.preview_table.setHorizontalHeaderLabels(["Row", "As the model sees it (trained part in green)"])
        self.preview_table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        self.preview_table.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.preview_table.verticalHeader().hide()
        self.preview_table.setWordWrap(True)
        self.histogram = pg.PlotWidget(background="w", title="Tokens per example")
        self.histogram.setLabel("bottom", "tokens")
        self.histogram.setLabel("left", "examples")
        self.histogram.setMaximumHeight(220)
        self.preview_widget = QSplitter(Qt.Orientation.Vertical)
        self.preview_widget.addWidget(self.preview_table)
        self.preview_widget.addWidget(self.histogram)
        self.preview_widget.setStretchFactor(0, 3)
        self.preview_widget.setStretchFactor(1, 1)

    # -- public API -----------------------------------------------------------------------------
    def path(self) -> str:
        return self._path

    def format(self) -> str:
        return self.format_combo.currentData()

    def mapping(self) -> dict:
        out = {}
        for r in range(self.mapping_table.rowCount()):
            col = self.mapping_table.item(r, 0).text()
            combo = self.mapping_table.cellWidget(r, 1)
            target = combo.currentText().strip() if combo else KEEP
            if target and target != KEEP and target != col:
                out[col] = target
        return out

    def busy(self) -> bool:
        return any(t.isRunning() for t in self._threads)

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open a dataset", settings.last_dir("dataset"), FILE_FILTER)
        if path:
            self.load(path)

    def load(self, path: str, fmt: str | None = None, mapping: dict | None = None) -> None:
        self._path = str(path)
        settings.set_last_dir("dataset", path)
        settings.add_recent("datasets", str(path))
        self.path_label.setText(str(path))
        self.path_label.setToolTip(str(path))
        self.format_combo.blockSignals(True)
        self.format_combo.setCurrentIndex(max(0, self.format_combo.findData(fmt or "auto")))
        self.format_combo.blockSignals(False)
        self._set_mapping_rows([], mapping or {})
        self._pending_mapping = dict(mapping or {})
        self.dataset_changed.emit(self._path)
        self._start()

    def set_model(self, model: str) -> None:
        if model != self._model:
            self._model = model
            if self._path:
                self._start()

    def set_max_length(self, max_length: int) -> None:
        if max_length != self._max_length:
            self._max_length = max_length
            if self._path and self.summary is not None:
                self._start()

    def shutdown(self, timeout_ms: int = 30000) -> None:
        self._generation += 1
        for t in list(self._threads):
            t.wait(timeout_ms)

    # -- analysis ----------------------------------------------------------------------------
    def _reanalyze(self, *_):
        if self._path:
            self._start()

    def _start(self) -> None:
        self._generation += 1
        gen = self._generation
        mapping = self.mapping() if self.mapping_table.rowCount() else self._pending_mapping
        self.error_panel.clear()
        self.last_error = None
        self.summary = None
        self.summary_label.setText("Reading the file…")
        thread = DatasetAnalysis(gen, self._path, self.format(), mapping, self._model, self._max_length)
        # bound methods of this widget, so the slots run in the GUI thread (queued)
        thread.parsed.connect(self._parsed_slot)
        thread.analyzed.connect(self._analyzed_slot)
        thread.failed.connect(self._failed_slot)
        thread.finished.connect(self._thread_done)
        self._threads.add(thread)
        thread.start()

    def _parsed_slot(self, gen: int, info: dict) -> None:
        if gen == self._generation:
            self._on_parsed(info)

    def _analyzed_slot(self, gen: int, result: dict) -> None:
        if gen == self._generation:
            self._on_analyzed(result)

    def _failed_slot(self, gen: int, exc) -> None:
        if gen == self._generation:
            self._on_failed(exc)

    def _thread_done(self) -> None:
        for t in [t for t in self._threads if t.isFinished()]:
            self._threads.discard(t)
            t.deleteLater()

    def _set_mapping_rows(self, columns: list[str], mapping: dict) -> None:
        self.columns = list(columns)
        self.mapping_table.setRowCount(0)
        for col in columns:
            r = self.mapping_table.rowCount()
            self.mapping_table.insertRow(r)
            item = QTableWidgetItem(col)
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
            self.mapping_table.setItem(r, 0, item)
            combo = QComboBox()
            combo.setEditable(True)
            combo.addItems(TARGET_NAMES)
            combo.setCurrentText(mapping.get(col, KEEP))
            combo.currentTextChanged.connect(self._reanalyze)
            self.mapping_table.setCellWidget(r, 1, combo)

    def _on_parsed(self, info: dict) -> None:
        if info["columns"] != self.columns:
            self._set_mapping_rows(info["columns"], self._pending_mapping)
        detected = info["detected"]
        self.detected_label.setText(f"detected: {detected}" if detected else "format not recognised")
        self._fill_preview([(w, plain_html(m)) for w, m in info["preview"]])
        if info["error"] is not None:
            self._on_failed(info["error"], keep_columns=True)
            return
        dropped = sum(len(v) for v in info["dropped"].values())
        self.summary_label.setText(f"{info['rows']} rows, {info['format']} format"
                                   + (f", {dropped} dropped" if dropped else "") + ". Tokenizing…")

    def _on_analyzed(self, result: dict) -> None:
        if "previews" in result:
            self._fill_preview(result["previews"])
        summary = result.get("summary")
        if summary is not None:
            self.summary = summary
            text = self._describe(summary)
            if result.get("sampled"):
                text += f"<br><i>Token lengths estimated from the first {SUMMARY_ROW_LIMIT} rows.</i>"
            if result.get("fallback_template"):
                text += "<br><i>This model has no chat template: the studio's simple fallback template is used.</i>"
            self.summary_label.setText(text)
            self._plot_histogram(summary.lengths)
        elif isinstance(result.get("error"), StudioError):  # e.g. every row longer than the max length
            self._on_failed(result["error"], keep_columns=True)
            return
        elif "error" in result:
            exc = result["error"]
            msg = getattr(exc, "message", None) or str(exc)
            self.summary_label.setText(f"Rows read; could not render them with the model: {html.escape(msg)}")
        else:
            self.summary_label.setText(self.summary_label.text().replace(" Tokenizing…", "") + " "
                                       + result.get("note", ""))
        self.analysis_finished.emit()

    def _on_failed(self, exc: BaseException, keep_columns: bool = False) -> None:
        self.last_error = exc
        if not keep_columns:
            self._set_mapping_rows([], {})
            self.preview_table.setRowCount(0)
        self.summary = None
        self.summary_label.setText("")
        self.histogram.clear()
        if isinstance(exc, StudioError):
            self.error_panel.show_exception(exc)
        else:
            self.error_panel.show_error("internal", f"Could not read the dataset: {exc}")
        self.analysis_finished.emit()

    @staticmethod
    def _describe(s) -> str:
        lines = [f"<b>{s.rows}</b> rows ({s.format} format), <b>{s.used}</b> used · tokens per example: "
                 f"min {s.min_tokens}, median {s.median_tokens:.0f}, p95 {s.p95_tokens}, max {s.max_tokens} · "
                 f"<b>{s.truncated}</b> truncated to the max length · {s.trained_tokens} trained tokens"]
        for reason, locs in s.dropped.items():
            more = "…" if len(locs) > 3 else ""
            lines.append(f"Dropped {len(locs)}: {html.escape(reason)} ({html.escape(', '.join(locs[:3]))}{more})")
        return "<br>".join(lines)

    def _fill_preview(self, rows: list[tuple[str, str]]) -> None:
        self.preview_table.setRowCount(0)
        for where, body in rows:
            r = self.preview_table.rowCount()
            self.preview_table.insertRow(r)
            self.preview_table.setItem(r, 0, QTableWidgetItem(where))
            label = QLabel(f'<span style="font-family:monospace">{body}</span>')
            label.setTextFormat(Qt.TextFormat.RichText)
            label.setWordWrap(True)
            label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
            label.setContentsMargins(4, 4, 4, 4)
            label.setAlignment(Qt.AlignmentFlag.AlignTop | Qt.AlignmentFlag.AlignLeft)
            self.preview_table.setCellWidget(r, 1, label)
        self.preview_table.resizeRowsToContents()
        for r in range(self.preview_table.rowCount()):  # long rows scroll; no row fills the whole view
            self.preview_table.setRowHeight(r, min(self.preview_table.rowHeight(r), 240))

    def preview_text(self, row: int) -> str:
        label = self.preview_table.cellWidget(row, 1)
        return label.text() if label else ""

    def _plot_histogram(self, lengths: list[int]) -> None:
        self.histogram.clear()
        if not lengths:
            return
        counts, edges = np.histogram(np.asarray(lengths), bins=min(40, max(5, len(set(lengths)))))
        self.histogram.plot(edges, counts, stepMode="center", fillLevel=0, brush=(70, 130, 220, 120),
                            pen=pg.mkPen((30, 90, 200)))
        self.histogram.addItem(pg.InfiniteLine(self._max_length, pen=pg.mkPen((200, 50, 50), style=Qt.PenStyle.DashLine),
                                               label="max length", labelOpts={"position": 0.9, "color": (200, 50, 50)}))
