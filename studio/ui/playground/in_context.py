"""The playground's left panel: the in-context part of a prompt (mode, system prompt, few-shot examples,
completion template), the sampling settings, presets and the examples saved as a dataset.

It scrolls vertically and always fits its width (no horizontal scrolling: its content is kept narrow),
so that nothing is clipped in a small window.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (QComboBox, QFormLayout, QFrame, QGroupBox, QHBoxLayout, QLabel, QLineEdit,
                               QPlainTextEdit, QPushButton, QScrollArea, QVBoxLayout, QWidget)

from studio.engine.prompting.templates import DEFAULT_COMPLETION_TEMPLATE
from studio.ui.playground.dataset_box import DatasetBox
from studio.ui.playground.examples import ExampleEditor
from studio.ui.playground.sampling import SamplingPanel


class InContextPanel(QScrollArea):
    def __init__(self, parent=None):
        super().__init__(parent)
        self.mode = QComboBox()
        self.mode.addItem("Chat (through the chat template)", "chat")
        self.mode.addItem("Completion (raw text continues)", "completion")
        self.mode.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.mode.setMinimumContentsLength(12)
        self.system = QPlainTextEdit()
        self.system.setPlaceholderText("System prompt (optional)")
        self.system.setMaximumHeight(80)
        self.examples = ExampleEditor()
        self.template = QLineEdit(DEFAULT_COMPLETION_TEMPLATE.replace("\n", "\\n"))
        self.template.setToolTip("How each example is written in completion mode; \\n is a new line.")
        self.sampling = SamplingPanel()
        self.load_preset_button = QPushButton("Load preset…")
        self.save_preset_button = QPushButton("Save preset…")
        self.dataset = DatasetBox()
        self.good_label = QLabel("0 replies marked good")

        content = QWidget()
        lv = QVBoxLayout(content)
        form = QFormLayout()
        form.addRow("Mode", self.mode)
        form.addRow("System", self.system)
        lv.addLayout(form)
        examples_box = QGroupBox("Few-shot examples")
        ev = QVBoxLayout(examples_box)
        ev.addWidget(self.examples)
        ev.addWidget(QLabel("Completion template"))
        ev.addWidget(self.template)
        lv.addWidget(examples_box)
        sampling_box = QGroupBox("Sampling")
        QVBoxLayout(sampling_box).addWidget(self.sampling)
        lv.addWidget(sampling_box)
        presets = QHBoxLayout()
        presets.addWidget(self.load_preset_button)
        presets.addWidget(self.save_preset_button)
        lv.addLayout(presets)
        dataset_box = QGroupBox("Dataset")
        dv = QVBoxLayout(dataset_box)
        dv.addWidget(self.dataset)
        dv.addWidget(self.good_label)
        lv.addWidget(dataset_box)
        lv.addStretch(1)

        self.setWidgetResizable(True)
        self.setWidget(content)
        self.setFrameShape(QFrame.Shape.NoFrame)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # As wide as the content needs with the vertical scroll bar shown: never clipped at the right.
        self.setMinimumWidth(content.minimumSizeHint().width() + self.verticalScrollBar().sizeHint().width())
