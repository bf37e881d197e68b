"""What an evaluation compares: the base model with k examples in its prompt (one candidate per k, from the shot
pool) and fine-tuned models — the workspace's finished runs (tick them) or any adapter or model folder."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QFileDialog, QFormLayout, QHBoxLayout, QLabel, QLineEdit, QListWidget,
                               QListWidgetItem, QPushButton, QVBoxLayout, QWidget)

from studio.engine.evaluate.config import SELECTION_LABELS, SELECTIONS, TUNED_SEPARATOR, EvalConfig
from studio.ui import settings

K_SWEEP = "0, 1, 3, 5, 8"
POOL_FILTER = ("Training file or playground preset (*.json *.jsonl *.ndjson *.csv *.tsv *.parquet);;"
               "All files (*)")
ERROR_STYLE = "background: #fdecea; border: 1px solid #d9534f;"
PATH_ROLE = Qt.ItemDataRole.UserRole
MODEL_ROLE = Qt.ItemDataRole.UserRole + 1
TASK_WORDS = {"sft": "fine-tune", "preference": "preference tuning", "classify": "classification",
              "pretrain": "pre-train"}
EMPTY = ("No finished fine-tune or pre-train runs in the workspace yet. Train one, or add an adapter or model "
         "folder.")


def _help(name: str) -> str:
    return EvalConfig.__dataclass_fields__[name].metadata.get("help", "")


def _same(a: str, b: str) -> bool:
    try:
        return Path(a).expanduser().resolve() == Path(b).expanduser().resolve()
    except OSError:
        return a == b


class CandidatesBox(QWidget):
    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.list = QListWidget()
        self.list.setToolTip(_help("tuned") + "\nTick the runs to compare.")
        self.list.setMinimumHeight(60)
        self.list.setMaximumHeight(130)
        self.list.itemChanged.connect(lambda *_: self._maybe_changed())
        self.empty_label = QLabel(EMPTY)
        self.empty_label.setWordWrap(True)
        self.empty_label.setStyleSheet("color: #666;")
        self.add_button = QPushButton("Add folder…")
        self.add_button.setToolTip("Add an adapter folder (adapter_config.json) or a model folder (config.json) "
                                   "from anywhere")
        self.add_button.clicked.connect(self.add_folder_dialog)
        self.refresh_button = QPushButton("Refresh")
        self.refresh_button.setToolTip("Read the workspace's finished runs again")
        self.refresh_button.clicked.connect(lambda: self.refresh())

        self.shots = QLineEdit("0")
        self.shots.setPlaceholderText("e.g. 0, 1, 3, 5")
        self.shots.setToolTip(_help("shots"))
        self.shots.editingFinished.connect(self._edited)
        self.sweep_button = QPushButton("k sweep")
        self.sweep_button.setToolTip(f"Compare k = {K_SWEEP}: how the base model does with more examples")
        self.sweep_button.clicked.connect(self.sweep)
        self.pool = QLineEdit()
        self.pool.setPlaceholderText("a training file or a playground preset")
        self.pool.setToolTip(_help("shot_pool"))
        self.pool.editingFinished.connect(self._edited)
        self.pool_button = QPushButton("Browse…")
        self.pool_button.setToolTip("Choose the file the in-context examples come from")
        self.pool_button.clicked.connect(self.pool_dialog)
        self.selection = QComboBox()
        for key in SELECTIONS:
            self.selection.addItem(SELECTION_LABELS[key], key)
        self.selection.setToolTip(_help("shot_selection"))
        self.selection.currentIndexChanged.connect(lambda *_: self._maybe_changed())

        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addWidget(self.refresh_button)
        buttons.addStretch(1)
        shots_row = QHBoxLayout()
        shots_row.addWidget(self.shots, 1)
        shots_row.addWidget(self.sweep_button)
        pool_row = QHBoxLayout()
        pool_row.addWidget(self.pool, 1)
        pool_row.addWidget(self.pool_button)
        form = QFormLayout()
        form.addRow("Shots (k)", shots_row)
        form.addRow("Shot pool", pool_row)
        form.addRow("Selection", self.selection)
        tuned_title = QLabel("<b>Fine-tuned</b> (tick to compare)")
        prompt_title = QLabel("<b>Prompting</b>: the base model with k examples in its prompt")
        prompt_title.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(prompt_title)
        layout.addLayout(form)
        layout.addWidget(tuned_title)
        layout.addWidget(self.list)
        layout.addWidget(self.empty_label)
        layout.addLayout(buttons)
        self._loading = False
        self._last = self.values()
        self._seen: tuple | None = None  # the workspace's run folders as last listed

    # -- the workspace's runs --------------------------------------------------------------------
    @staticmethod
    def _snapshot(workspace: Path) -> tuple:
        """Changes whenever a run folder comes, goes or changes (file times only: nothing is read)."""
        from studio.ui.runs.rows import fingerprint, run_folders

        return (str(workspace), tuple((p.name, fingerprint(p)) for p in sorted(run_folders(workspace))))

    def refresh_if_changed(self) -> None:
        """List the runs again if the workspace's run folders changed since they were last listed."""
        if self._snapshot(settings.workspace()) != self._seen:
            self.refresh()

    def refresh(self, workspace: Path | None = None) -> None:
        """List the finished runs' outputs again, keeping what is ticked and the folders added by hand."""
        from studio.engine.evaluate.candidates import finished_outputs

        workspace = workspace or settings.workspace()
        self._seen = self._snapshot(workspace)
        ticked = self.tuned_paths()
        added = [(self.list.item(i).data(PATH_ROLE), self.list.item(i).data(MODEL_ROLE))
                 for i in range(self.list.count()) if self.list.item(i).data(MODEL_ROLE) is None]
        try:
            found = finished_outputs(workspace)
        except OSError:
            found = []
        self.list.blockSignals(True)
        self.list.clear()
        for run in found:
            what = ("LoRA adapter" if (run.output / "adapter_config.json").is_file()
                    else "classifier" if run.task == "classify" else "model")
            item = self._new_item(f"{run.name} — {TASK_WORDS.get(run.task, run.task)} ({what})", str(run.output),
                                  run.model or "")
            item.setToolTip(f"{run.output}\nbase model: {run.model or '(trained from scratch)'}\nrun: {run.run}")
        # Folders added by hand stay, and so does a ticked run no longer listed (the check then says why).
        for path in [p for p, _ in added] + ticked:
            if self._find(path) is None:
                self._new_item(Path(path).name or path, path, None)
        for i in range(self.list.count()):
            item = self.list.item(i)
            item.setCheckState(Qt.CheckState.Checked if any(_same(item.data(PATH_ROLE), p) for p in ticked)
                               else Qt.CheckState.Unchecked)
        self.list.blockSignals(False)
        self._update_empty()
        self._maybe_changed()

    def _new_item(self, text: str, path: str, model: str | None) -> QListWidgetItem:
        item = QListWidgetItem(text)
        item.setFlags(item.flags() | Qt.ItemFlag.ItemIsUserCheckable)
        item.setCheckState(Qt.CheckState.Unchecked)
        item.setData(PATH_ROLE, path)
        item.setData(MODEL_ROLE, model)  # None: a folder added by hand
        item.setToolTip(path)
        self.list.addItem(item)
        return item

    def _find(self, path: str) -> QListWidgetItem | None:
        """The item of `path`, or of the run folder `path` names (a saved evaluation names the run it scored)."""
        for i in range(self.list.count()):
            listed = Path(self.list.item(i).data(PATH_ROLE))
            if _same(str(listed), path) or listed.name in ("adapter", "model") and _same(str(listed.parent), path):
                return self.list.item(i)
        return None

    def _update_empty(self) -> None:
        self.empty_label.setVisible(self.list.count() == 0)

    def add_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose an adapter or model folder",
                                                  settings.last_dir("candidate", str(settings.workspace() / "runs")))
        if folder:
            settings.set_last_dir("candidate", folder)
            self.add_folder(folder)

    def add_folder(self, path: str, checked: bool = True) -> QListWidgetItem:
        """Tick `path` (a run's output or any adapter/model folder), adding it to the list if it is not there."""
        item = self._find(path)
        self.list.blockSignals(True)
        if item is None:
            item = self._new_item(Path(path).name or str(path), str(path), None)
            parent = Path(path).parent
            if Path(path).name in ("adapter", "model") and parent.name:
                item.setText(f"{parent.name} ({Path(path).name})")
        item.setCheckState(Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)
        self.list.blockSignals(False)
        self._update_empty()
        self._maybe_changed()
        return item

    def base_model_of(self, path: str) -> str:
        item = self._find(path)
        return str(item.data(MODEL_ROLE) or "") if item is not None else ""

    # -- values ----------------------------------------------------------------------------------
    def tuned_paths(self) -> list[str]:
        return [self.list.item(i).data(PATH_ROLE) for i in range(self.list.count())
                if self.list.item(i).checkState() == Qt.CheckState.Checked]

    def values(self) -> dict:
        """The config fields this box edits."""
        return {"shots": self.shots.text().strip(), "shot_pool": self.pool.text().strip(),
                "shot_selection": self.selection.currentData(),
                "tuned": TUNED_SEPARATOR.join(self.tuned_paths())}

    def set_values(self, cfg) -> None:
        """Show a config's candidates: its folders ticked (added when not listed), the others unticked."""
        self._loading = True
        try:
            self.shots.setText(str(cfg.shots))
            self.pool.setText(str(cfg.shot_pool))
            self.selection.setCurrentIndex(max(0, self.selection.findData(cfg.shot_selection)))
            self.set_tuned(cfg.tuned_paths())
        finally:
            self._loading = False
        self.clear_error()
        self._maybe_changed()

    def set_tuned(self, paths: list[str]) -> None:
        self.list.blockSignals(True)
        for i in range(self.list.count()):
            self.list.item(i).setCheckState(Qt.CheckState.Unchecked)
        self.list.blockSignals(False)
        for path in paths:
            self.add_folder(path)

    def set_shots(self, text: str) -> None:
        self.shots.setText(text)
        self._edited()

    def set_pool(self, path: str) -> None:
        self.pool.setText(path)
        self._edited()

    def sweep(self) -> None:
        """The usual k sweep: 0, 1, 3, 5, 8 examples in the prompt."""
        self.set_shots(K_SWEEP)

    def pool_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Choose the shot pool", settings.last_dir("shot_pool",
                                              str(settings.workspace())), POOL_FILTER)
        if path:
            settings.set_last_dir("shot_pool", path)
            self.set_pool(path)

    def _edited(self) -> None:
        self.clear_error()
        self._maybe_changed()

    def _maybe_changed(self) -> None:
        if self._loading:
            return  # one signal when the whole config is shown
        values = self.values()
        if values != self._last:
            self._last = values
            self.changed.emit()

    # -- errors ----------------------------------------------------------------------------------
    def mark_error(self, field: str | None) -> None:
        widget = {"shots": self.shots, "shot_pool": self.pool, "tuned": self.list}.get(field or "")
        if widget is not None:
            widget.setStyleSheet(ERROR_STYLE)

    def clear_error(self) -> None:
        for widget in (self.shots, self.pool, self.list):
            if widget.styleSheet():
                widget.setStyleSheet("")
