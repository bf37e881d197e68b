"""The training method combo of the Fine-tune tab's forms (chat and classification): LoRA, QLoRA or full, shown
in the form's Method group; the LoRA settings hide while "full" is chosen, since full training has no adapter."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox

from studio.ui.widgets import ConfigForm

METHOD_LABELS = {"lora": "LoRA", "qlora-4bit": "QLoRA 4-bit", "qlora-8bit": "QLoRA 8-bit", "full": "Full fine-tune"}
LORA_FIELDS = ("lora_r", "lora_alpha", "lora_dropout", "target_modules")


def add_method_combo(form: ConfigForm, config_cls: type) -> QComboBox:
    """A combo of `config_cls`'s methods, placed first in the form's Method group and kept in step with the
    visibility of the LoRA fields. The form's `method` field stays excluded: the combo's key goes into
    `form.config(method=...)`."""
    field = config_cls.__dataclass_fields__["method"]
    combo = QComboBox()
    for key in field.metadata["choices"]:
        combo.addItem(METHOD_LABELS.get(key, key), key)
    combo.setToolTip(field.metadata["help"])
    form.insert_row("Method", "Method", combo)

    def show_lora_fields(*_) -> None:
        for name in LORA_FIELDS:
            if name in form.editors:
                form.set_field_visible(name, combo.currentData() != "full")

    combo.currentIndexChanged.connect(show_lora_fields)
    show_lora_fields()
    return combo


def set_method(combo: QComboBox, method: str) -> None:
    combo.setCurrentIndex(max(0, combo.findData(method)))
