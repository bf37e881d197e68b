"""Choose a model: the built-in starter model, models in the Hugging Face cache, recent folders,
a folder picked with "Browse…", or a hub id typed in.

Reading the Hugging Face cache walks every file in it, so it is read in a thread, once for every picker of
the window; until it has been read a picker lists "Hugging Face cache: scanning…" (an entry that cannot be
chosen) and everything else."""

from __future__ import annotations

import json
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject, Qt, Signal
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
        from huggingface_hub import constants, scan_cache_dir

        info = scan_cache_dir(constants.HF_HUB_CACHE)  # the cache as configured now (HF_HUB_CACHE, HF_HOME)
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


SCANNING_LABEL = "Hugging Face cache: scanning…"
SCANNING = "<scanning the cache>"  # the data of that entry: never a model


class CacheScan(QObject):
    """The Hugging Face cache read in a thread, for every picker at once; kept until a picker asks again."""

    scanned = Signal(object)  # list of (hub id, snapshot folder)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.models: list[tuple[str, str]] | None = None  # None until the first scan has finished
        self._call = None

    @property
    def scanning(self) -> bool:
        return self._call is not None

    def request(self, again: bool = False) -> None:
        """Scan unless a scan is under way or (unless `again`) one has finished."""
        from studio.ui.runs.background import call_in_background

        if self.scanning or (self.models is not None and not again):
            return
        self._call = call_in_background(cached_models, self._done)

    def _done(self, result) -> None:
        self._call = None
        self.models = result if isinstance(result, list) else []
        self.scanned.emit(self.models)


_cache_scan: CacheScan | None = None


def cache_scan() -> CacheScan:
    """The application's one CacheScan."""
    global _cache_scan
    if _cache_scan is None:
        _cache_scan = CacheScan(QCoreApplication.instance())
    return _cache_scan


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
        self.scan_cache = scan_cache
        self.cached: list[tuple[str, str]] = []  # (hub id, folder) of the models found in the Hugging Face cache
        self.scanning = False
        if scan_cache:
            cache_scan().scanned.connect(self._cache_scanned)
        self.refresh(scan_cache=scan_cache and cache_scan().models is None)
        self.combo.currentIndexChanged.connect(self._maybe_changed)
        self.combo.currentIndexChanged.connect(self._show_start_of_text)
        self.combo.lineEdit().editingFinished.connect(self._maybe_changed)
        self._show_start_of_text()

    def _show_start_of_text(self, *_) -> None:
        # A long entry is read from its start ("Starter model…", "/home/…"), not scrolled to its end.
        self.combo.lineEdit().setCursorPosition(0)

    def refresh(self, scan_cache: bool = True) -> None:
        """List the starter model, the recent folders and the cached models; `scan_cache` reads the Hugging Face
        cache again (in a thread: its models join the list when it has been read)."""
        if self.scan_cache:
            scan = cache_scan()
            if scan_cache:
                scan.request(again=True)
            self.scanning = scan.scanning
            self.cached = list(scan.models or [])
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
        self._add_cached()
        self.combo.blockSignals(False)
        if current:
            self.set_model(current, remember=False)
        elif self.combo.count() and self.combo.itemData(0) != SCANNING:
            self.combo.setCurrentIndex(0)
        else:
            self.combo.setCurrentIndex(-1)
        self._maybe_changed()

    def _add_cached(self) -> None:
        for repo_id, _folder in self.cached:
            if self.combo.findData(repo_id) < 0:
                self.combo.addItem(f"{repo_id} (cached)", repo_id)
        if self.scanning:
            self.combo.addItem(SCANNING_LABEL, SCANNING)
            entry = self.combo.model().item(self.combo.count() - 1)
            entry.setFlags(entry.flags() & ~(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsSelectable))
            entry.setToolTip("The models in the Hugging Face cache on this computer are being listed.")

    def _cache_scanned(self, models: list) -> None:
        """The cache has been read: its models replace the "scanning…" entry; the choice stays as it was."""
        self.scanning, self.cached = False, list(models)
        self.combo.blockSignals(True)
        at = self.combo.findData(SCANNING)
        if at >= 0:
            self.combo.removeItem(at)
        self._add_cached()
        self.combo.blockSignals(False)
        if self.combo.currentIndex() < 0 and not self.combo.currentText() and self.combo.count():
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
