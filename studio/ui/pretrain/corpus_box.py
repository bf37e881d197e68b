"""The corpus box: the text files and folders a run reads, how to add them, and what they hold (counted by
studio.engine.data.corpus before any tokenizer exists)."""

from __future__ import annotations

from PySide6.QtCore import Signal
from PySide6.QtWidgets import QFileDialog, QGroupBox, QHBoxLayout, QLabel, QListWidget, QPushButton, QVBoxLayout

from studio.engine.errors import StudioError
from studio.engine.pretrain_config import split_corpus
from studio.ui import settings

TEXT_FILTER = ("Text and data files (*.txt *.md *.text *.json *.jsonl *.ndjson *.csv *.tsv *.parquet);;"
               "All files (*)")
NOTHING_CHOSEN = "No text chosen yet."


class CorpusBox(QGroupBox):
    paths_changed = Signal()  # files or folders added or removed

    def __init__(self, parent=None):
        super().__init__("Corpus", parent)
        self.summary = None  # the estimate (CorpusSummary) of the chosen corpus
        self.error: StudioError | None = None
        layout = QVBoxLayout(self)
        self.list = QListWidget()
        self.list.setMaximumHeight(90)
        self.list.setToolTip("Plain text files (split into documents as Document split says), or "
                             "JSON/JSONL/CSV/Parquet files (one document per row, from the text column), "
                             "or folders of them.")
        row = QHBoxLayout()
        self.add_files_button = QPushButton("Add files…")
        self.add_folder_button = QPushButton("Add folder…")
        self.clear_button = QPushButton("Clear")
        for b in (self.add_files_button, self.add_folder_button, self.clear_button):
            row.addWidget(b)
        self.add_files_button.clicked.connect(self.open_files_dialog)
        self.add_folder_button.clicked.connect(self.open_folder_dialog)
        self.clear_button.clicked.connect(lambda: self.set_paths([]))
        self.label = QLabel(NOTHING_CHOSEN)
        self.label.setWordWrap(True)
        layout.addWidget(self.list)
        layout.addLayout(row)
        layout.addWidget(self.label)

    def paths(self) -> list[str]:
        return [self.list.item(i).text() for i in range(self.list.count())]

    def set_paths(self, paths) -> None:
        """Files and folders: a list, or the config's text form (separated by ';')."""
        self.list.clear()
        for p in split_corpus(paths) if isinstance(paths, str) else [str(p) for p in paths]:
            if p not in self.paths():
                self.list.addItem(p)
        self.paths_changed.emit()

    def add(self, paths) -> None:
        self.set_paths(self.paths() + [str(p) for p in paths])

    def open_files_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Choose text files", settings.last_dir("corpus"), TEXT_FILTER)
        if paths:
            settings.set_last_dir("corpus", paths[0])
            self.add(paths)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder of text files", settings.last_dir("corpus"))
        if folder:
            settings.set_last_dir("corpus", folder)
            self.add([folder])

    def count(self, text_column: str, dedupe: bool, document_split: str, block_size: int) -> None:
        """Read the chosen text as a run would and show what it holds (or what is wrong with it)."""
        from studio.engine.data.corpus import estimate_summary, load_corpus

        self.summary, self.error = None, None
        if not self.paths():
            self.label.setText(NOTHING_CHOSEN)
            return
        try:
            corpus = load_corpus(self.paths(), text_column, dedupe, document_split)
            self.summary = estimate_summary(corpus, max(1, block_size))
            self.label.setText(self.summary.describe() + " (exact counts once tokenized)")
            self.label.setStyleSheet("")
        except StudioError as err:
            self.error = err
            self.label.setText(err.message)
            self.label.setStyleSheet("color: #b02a20;")

    def show_tokenized(self, text: str) -> None:
        """The exact numbers once a run has tokenized the corpus."""
        self.label.setText(text)
