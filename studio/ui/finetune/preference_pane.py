"""The preference-tuning side of the Fine-tune tab's form: the preference data box (open a file of pairs or
marked replies, see what was read and a preview of the first pairs) and the settings of a PreferenceConfig
(objective, beta, the adapter to start from; the model picker above is the tab's).

The file is read off the GUI thread (a large file of pairs takes seconds); a result for a file that is no longer
the chosen one is dropped.
"""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QAbstractItemView, QComboBox, QGroupBox, QHBoxLayout, QHeaderView, QLabel,
                               QPushButton, QTableWidget, QTableWidgetItem, QVBoxLayout, QWidget, QFileDialog)

from studio.engine.errors import StudioError
from studio.engine.preference.config import PreferenceConfig
from studio.ui import settings
from studio.ui.finetune.dataset_panel import FILE_FILTER
from studio.ui.finetune.elided_label import ElidedLabel
from studio.ui.finetune.method_choice import add_method_combo, set_method
from studio.ui.runs.background import call_in_background
from studio.ui.widgets import ConfigForm
from studio.ui.widgets.error_panel import ErrorPanel

PREFERENCE_EXCLUDE = ("task", "model", "dataset", "method", "resume_from")
NO_DATA = "Open a preference data file first (pairs of replies, or replies marked good/bad)."
PREVIEW_ROWS = 50


def _last_text(messages) -> str:
    if isinstance(messages, list) and messages:
        return str(messages[-1].get("content", ""))
    return str(messages or "")


def read_summary(path: str) -> dict:
    """What the box shows about a file (in a thread): the data read, the first rows, or the error."""
    from studio.engine.preference.data import read_preferences

    data = read_preferences(path)
    rows = [("pair", _last_text(p["prompt"]), _last_text(p["chosen"]), _last_text(p["rejected"]))
            for p in data.pairs[:PREVIEW_ROWS]]
    rows += [("good" if m["label"] else "bad", _last_text(m["prompt"]),
              _last_text(m["completion"]) if m["label"] else "", "" if m["label"] else _last_text(m["completion"]))
             for m in data.marks[:max(0, PREVIEW_ROWS - len(rows))]]
    return {"path": path, "data": data, "rows": rows, "pairs": len(data.pairs), "marks": len(data.marks),
            "warnings": list(data.warnings)}


class PreferencePreview(QTableWidget):
    def __init__(self, parent=None):
        super().__init__(0, 4, parent)
        self.setHorizontalHeaderLabels(["Kind", "Prompt", "Chosen / good", "Rejected / bad"])
        header = self.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        for column in (1, 2, 3):
            header.setSectionResizeMode(column, QHeaderView.ResizeMode.Stretch)
        self.verticalHeader().hide()
        self.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        self.setWordWrap(False)

    def set_rows(self, rows) -> None:
        self.setRowCount(0)
        for values in rows:
            r = self.rowCount()
            self.insertRow(r)
            for c, value in enumerate(values):
                item = QTableWidgetItem(value.replace("\n", " ⏎ "))
                item.setToolTip(value[:2000] if len(value) > 60 else "")
                self.setItem(r, c, item)


class PreferenceDataBox(QWidget):
    dataset_changed = Signal(str)
    analysis_finished = Signal()
    validity_changed = Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._path = ""
        self._objective = "dpo"
        self._reading = False
        self.last_error: StudioError | Exception | None = None
        self.result: dict | None = None
        self.open_button = QPushButton("Open…")
        self.open_button.setToolTip("Open preference data: pairs (prompt, chosen, rejected) or single replies "
                                    "marked good/bad, e.g. the playground's feedback file (Ctrl+O)")
        self.open_button.clicked.connect(self.open_dialog)
        self.path_label = ElidedLabel("")
        self.summary_label = QLabel(NO_DATA)
        self.summary_label.setWordWrap(True)
        self.error_panel = ErrorPanel(self)
        top = QHBoxLayout()
        top.addWidget(self.open_button)
        top.addWidget(self.path_label, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addWidget(self.summary_label)
        layout.addWidget(self.error_panel)
        self.preview_widget = PreferencePreview()

    def path(self) -> str:
        return self._path

    def problem(self) -> str | None:
        if not self._path:
            return NO_DATA
        if self._reading:
            return "The data is still being read."
        if self.last_error is not None:
            return getattr(self.last_error, "message", None) or str(self.last_error)
        return None

    def open_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open preference data", settings.last_dir("dataset"),
                                              FILE_FILTER)
        if path:
            self.load(path)

    def load(self, path: str) -> None:
        self._path = str(path)
        settings.set_last_dir("dataset", path)
        settings.add_recent("datasets", self._path)
        self.path_label.setText(self._path)
        self.dataset_changed.emit(self._path)
        self.reload()

    def set_objective(self, objective: str) -> None:
        """What the file holds for this objective (pairs, or marks for KTO): described again, not read again."""
        if objective != self._objective:
            self._objective = objective
            if self.result is not None:
                self._show_summary()

    def reload(self) -> None:
        path = self._path
        self._reading, self.last_error, self.result = True, None, None
        self.error_panel.clear()
        self.summary_label.setText(f"Reading {path}…")
        self.validity_changed.emit(False)
        call_in_background(lambda: read_summary(path), lambda result: self._on_read(path, result))

    def _show_summary(self) -> None:
        from studio.engine.preference.data import describe

        warnings = "".join(f"<br>⚠ {w}" for w in self.result["warnings"][:3])
        self.summary_label.setText(describe(self.result["data"], self._objective) + warnings)

    def _on_read(self, path: str, result) -> None:
        if path != self._path:
            return  # another file was chosen meanwhile
        self._reading = False
        if isinstance(result, Exception):
            self.last_error = result
            self.summary_label.setText("")
            if isinstance(result, StudioError):
                self.error_panel.show_exception(result)
            else:
                self.error_panel.show_error("bad_dataset", f"Could not read {path}: {result}", "")
            self.preview_widget.set_rows([])
        else:
            self.result = result
            self._show_summary()
            self.preview_widget.set_rows(result["rows"])
        self.analysis_finished.emit()
        self.validity_changed.emit(self.problem() is None)

    def shutdown(self) -> None:
        self._path = ""  # a read still running is dropped when it ends


class PreferencePane(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.data_box = PreferenceDataBox()
        data_group = QGroupBox("Preference data")
        QVBoxLayout(data_group).addWidget(self.data_box)
        self.form = ConfigForm(PreferenceConfig, exclude=PREFERENCE_EXCLUDE)
        self.method_combo = add_method_combo(self.form, PreferenceConfig)
        for editor in self.form.editors.values():
            if isinstance(editor, QComboBox):  # long choice words must not widen the whole left side
                editor.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
                editor.setMinimumContentsLength(14)
                editor.setMinimumWidth(editor.sizeHint().width())
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(data_group)
        layout.addWidget(self.form)
        self.form.changed.connect(self._on_form_changed)

    def _on_form_changed(self) -> None:
        try:
            self.data_box.set_objective(self.form.value("objective"))
        except StudioError:
            pass

    def config(self, model: str) -> PreferenceConfig:
        return self.form.config(model=model, dataset=self.data_box.path(), method=self.method_combo.currentData(),
                                task="preference")

    def set_config(self, cfg: PreferenceConfig) -> None:
        self.form.set_config(dataclasses.replace(cfg, resume_from=""))
        set_method(self.method_combo, cfg.method)
        if cfg.dataset:
            self.data_box.load(cfg.dataset)

    def set_fields(self, **values) -> None:
        for name, value in values.items():
            self.form.set_value(name, value)
        self.form.changed.emit()

    def problem(self) -> str | None:
        return self.data_box.problem()

    def shutdown(self) -> None:
        self.data_box.shutdown()
