"""Save the few-shot examples and the replies marked good as a fine-tuning dataset, by default in the
workspace's datasets folder, then offer the file to the Fine-tune tab."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QPushButton, QSizePolicy,
                               QVBoxLayout, QWidget)

from studio.engine.prompting.dataset_export import DATASET_FORMATS
from studio.ui import settings

DEFAULT_NAME = "examples.jsonl"


def datasets_folder() -> Path:
    """WORKSPACE/datasets, made if needed (else the workspace, else the home folder: the dialog still opens)."""
    folder = settings.workspace() / "datasets"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return folder.parent if folder.parent.is_dir() else Path.home()
    return folder


class DatasetBox(QWidget):
    path_chosen = Signal(str)  # the file the user chose to save to
    use_in_finetune = Signal(str)  # the saved file, when the user asks to fine-tune on it

    def __init__(self, parent=None):
        super().__init__(parent)
        self.format = QComboBox()
        self.format.addItems(DATASET_FORMATS)
        self.format.setToolTip("The dataset format; the Fine-tune tab reads all three.")
        self.save_button = QPushButton("Save examples as dataset…")
        self.save_button.setToolTip("The few-shot examples and the replies marked good, as a fine-tuning "
                                    "dataset for the Fine-tune tab.")
        self.save_button.clicked.connect(self.ask_path)
        self.saved_label = QLabel()
        self.saved_label.setWordWrap(True)
        self.saved_label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.use_button = QPushButton("Use in Fine-tune")
        self.use_button.setToolTip("Open the Fine-tune tab with this dataset.")
        self.use_button.clicked.connect(lambda: self.saved_path and self.use_in_finetune.emit(self.saved_path))
        self.saved_path = ""
        self.dialog: QFileDialog | None = None
        form = QFormLayout()
        form.setContentsMargins(0, 0, 0, 0)
        form.addRow("Format", self.format)
        use_row = QHBoxLayout()
        use_row.addWidget(self.use_button)
        use_row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addWidget(self.save_button)
        layout.addWidget(self.saved_label)
        layout.addLayout(use_row)
        self.show_saved("", 0)

    def ask_path(self) -> None:
        """A save dialog in the workspace's datasets folder; not modal to the application, so the window
        (and a test) goes on while it is open."""
        if self.dialog is not None:
            self.dialog.deleteLater()
        self.dialog = QFileDialog(self, "Save examples as dataset", str(datasets_folder()),
                                  "JSON Lines (*.jsonl);;JSON (*.json)")
        self.dialog.setAcceptMode(QFileDialog.AcceptMode.AcceptSave)
        self.dialog.setDefaultSuffix("jsonl")
        self.dialog.selectFile(DEFAULT_NAME)
        self.dialog.fileSelected.connect(self.path_chosen)
        self.dialog.open()

    def show_saved(self, path: str, count: int) -> None:
        self.saved_path = str(path)
        self.saved_label.setText(f"Saved {count} examples to {Path(path).name}." if path else "")
        self.saved_label.setToolTip(self.saved_path)
        self.saved_label.setVisible(bool(path))
        self.use_button.setVisible(bool(path))
