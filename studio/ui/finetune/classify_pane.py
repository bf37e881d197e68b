"""The classification side of the Fine-tune tab's form: the labelled-data box and the settings of a
ClassifyConfig (the model picker above them is the tab's, shared with the chat form)."""

from __future__ import annotations

import dataclasses

from PySide6.QtWidgets import QComboBox, QGroupBox, QVBoxLayout, QWidget

from studio.engine.classify.config import ClassifyConfig
from studio.engine.errors import StudioError
from studio.ui.finetune.classify_data import ClassifyDataBox
from studio.ui.finetune.method_choice import add_method_combo, set_method
from studio.ui.widgets import ConfigForm

# Shown elsewhere (the model picker, the data box, the method combo), fixed, or set by Resume only.
CLASSIFY_EXCLUDE = ("task", "model", "dataset", "text_column", "text_pair_column", "label_column", "method",
                    "resume_from")


class ClassifyPane(QWidget):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.data_box = ClassifyDataBox()
        data_group = QGroupBox("Labelled data")
        QVBoxLayout(data_group).addWidget(self.data_box)
        self.form = ConfigForm(ClassifyConfig, exclude=CLASSIFY_EXCLUDE)
        self.method_combo = add_method_combo(self.form, ClassifyConfig)
        for editor in self.form.editors.values():
            if isinstance(editor, QComboBox):  # long choice words must not widen the whole left side
                editor.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
                editor.setMinimumContentsLength(14)
                editor.setMinimumWidth(editor.sizeHint().width())  # Qt keeps the old minimum hint cached
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(data_group)
        layout.addWidget(self.form)
        self.data_box.weigh_classes_requested.connect(self.weigh_classes)
        self.form.changed.connect(self._on_form_changed)
        self._on_form_changed()

    def weigh_classes(self) -> None:
        self.form.set_value("class_weights", True)  # its check box reports the change to the form

    def _on_form_changed(self) -> None:
        try:
            problem, separator = self.form.value("problem"), self.form.value("label_separator")
            weighed = bool(self.form.value("class_weights"))
        except StudioError:
            return
        self.data_box.set_reading(problem, separator)
        self.data_box.set_class_weights(weighed)

    def config(self, model: str) -> ClassifyConfig:
        """The run's config; raises BadConfig naming the field."""
        return self.form.config(model=model, dataset=self.data_box.path(), method=self.method_combo.currentData(),
                                task="classify", **self.data_box.column_fields())

    def set_config(self, cfg: ClassifyConfig) -> None:
        self.form.set_config(dataclasses.replace(cfg, resume_from=""))  # a resume is a one-off
        set_method(self.method_combo, cfg.method)
        if cfg.dataset:
            self.data_box.load(cfg.dataset, {name: getattr(cfg, name) for name in
                                             ("text_column", "text_pair_column", "label_column")})

    def problem(self) -> str | None:
        return self.data_box.problem()

    def shutdown(self) -> None:
        self.data_box.shutdown()
