"""Choose a model: the built-in starter model, models in the Hugging Face cache, recent folders,
a folder picked with "Browse…", or a hub id typed in."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox, QFileDialog, QHBoxLayout, QPushButton, QWidget

from studio.ui import settings

RECENT_KEY = "models"
STARTER_LABEL = "Starter model (a toy, for trying the workflow)"
STARTER_TIP = ("A tiny model (1,003-token vocabulary, 128-token context) trained on Adapt Studio's own sample text: "
               "fine-tune it on resources/sample-instructions.json with Max length 128. For your own data pick a real "
               "model, e.g. Qwen/Qwen2.5-0.5B-Instruct or HuggingFaceTB/SmolLM2-360M-Instruct.")


def starter_model() -> Path | None:
    from studio.resources import starter_model_dir

    path = starter_model_dir()
    return path if path.is_dir() else None


def _is_causal_lm(folder: Path) -> bool:
    try:
        config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    archs = config.get("architectures") or []
    return any(a.endswith(("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")) for a in archs)


def cached_models() -> list[tuple[str, str]]:
    """(hub id, snapshot folder) of the causal language models in the Hugging Face cache."""
    try:
        from huggingface_hub import scan_cache_dir

        info = scan_cache_dir()
    except Exception:  # no cache, unreadable cache, old huggingface_hub: nothing to offer
        return []
    found = []
    for repo in sorted(info.repos, key=lambda r: r.repo_id.lower()):
        if repo.repo_type != "model" or not repo.revisions:
            continue
        latest = max(repo.revisions, key=lambda r: r.last_modified)
        if _is_causal_lm(Path(latest.snapshot_path)):
            found.append((repo.repo_id, str(latest.snapshot_path)))
    return found


class ModelPicker(QWidget):
    model_changed = Signal(str)

    def __init__(self, parent=None, *, scan_cache: bool = True, recent_key: str = RECENT_KEY):
        super().__init__(parent)
        self.recent_key = recent_key
        self.combo = QComboBox()
        self.combo.setEditable(True)
        self.combo.setInsertPolicy(QComboBox.InsertPolicy.NoInsert)
        self.combo.setMinimumContentsLength(24)
        self.combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.combo.lineEdit().setPlaceholderText("a model folder or a Hugging Face id, e.g. Qwen/Qwen2.5-0.5B")
        self.combo.setToolTip("The model to start from: the built-in starter model, a model in the Hugging Face "
                              "cache on this computer, a recent folder, or a folder chosen with Browse…. You can "
                              "also type a hub id.")
        self.browse = QPushButton("Browse…")
        self.browse.setToolTip("Choose a folder that holds a transformers model (config.json, weights, tokenizer)")
        self.browse.clicked.connect(self.browse_folder)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.combo, 1)
        layout.addWidget(self.browse)
        self._last = ""
        self.refresh(scan_cache=scan_cache)
        self.combo.currentIndexChanged.connect(self._maybe_changed)
        self.combo.currentIndexChanged.connect(self._show_start_of_text)
        self.combo.lineEdit().editingFinished.connect(self._maybe_changed)
        self._show_start_of_text()

    def _show_start_of_text(self, *_) -> None:
        # A long entry is read from its start ("Starter model…", "/home/…"), not scrolled to its end.
        self.combo.lineEdit().setCursorPosition(0)

    def refresh(self, scan_cache: bool = True) -> None:
        current = self.model()
        self.combo.blockSignals(True)
        self.combo.clear()
        starter = starter_model()
        if starter:
            self.combo.addItem(STARTER_LABEL, str(starter))
            self.combo.setItemData(0, STARTER_TIP, Qt.ItemDataRole.ToolTipRole)
        for folder in settings.recent(self.recent_key):
            if Path(folder).is_dir():
                self.combo.addItem(folder, folder)
        if scan_cache:
            for repo_id, folder in cached_models():
                self.combo.addItem(f"{repo_id} (cached)", repo_id)
        self.combo.blockSignals(False)
        if current:
            self.set_model(current, remember=False)
        elif self.combo.count():
            self.combo.setCurrentIndex(0)
        self._maybe_changed()

    def model(self) -> str:
        """The chosen model: a folder path or a hub id."""
        text = self.combo.currentText().strip()
        i = self.combo.currentIndex()
        if i >= 0 and self.combo.itemText(i) == text:
            return str(self.combo.itemData(i) or text)
        return text

    def set_model(self, model: str, remember: bool = True) -> None:
        model = str(model or "")
        if remember and model and Path(model).is_dir():
            settings.add_recent(self.recent_key, model)
        i = self.combo.findData(model)
        if i < 0 and model:
            self.combo.insertItem(0 if not starter_model() else 1, model, model)
            i = self.combo.findData(model)
        if i >= 0:
            self.combo.setCurrentIndex(i)
        else:
            self.combo.setEditText(model)
        self._maybe_changed()

    def browse_folder(self) -> None:
        start = self.model() if Path(self.model()).is_dir() else settings.last_dir("model")
        folder = QFileDialog.getExistingDirectory(self, "Choose a model folder", start)
        if folder:
            settings.set_last_dir("model", folder)
            self.set_model(folder)

    def _maybe_changed(self, *_):
        model = self.model()
        if model != self._last:
            self._last = model
            self.model_changed.emit(model)
