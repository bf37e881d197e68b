"""The Fine-tune tab: model, dataset, method and settings on the left; the run panel (progress, live loss
plot, log, result or error) and the data preview on the right."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6.QtCore import Signal
from PySide6.QtWidgets import (QComboBox, QFrame, QGroupBox, QHBoxLayout, QPushButton, QScrollArea,
                               QVBoxLayout, QWidget)

from studio.engine.config import FineTuneConfig
from studio.engine.errors import BadConfig, StudioError
from studio.ui import settings
from studio.ui.finetune.dataset_panel import DatasetPanel
from studio.ui.remembered import TabMemory
from studio.ui.run_tab import RunTab
from studio.ui.widgets import ConfigForm, ModelPicker
from studio.ui.widgets.run_panel import RunPanel

METHOD_LABELS = {"lora": "LoRA", "qlora-4bit": "QLoRA 4-bit", "qlora-8bit": "QLoRA 8-bit", "full": "Full fine-tune"}
LORA_FIELDS = {"lora_r", "lora_alpha", "lora_dropout", "target_modules"}
# Shown elsewhere in the tab (model picker, dataset panel, method combo), fixed, or set by Resume only.
FORM_EXCLUDE = ("task", "model", "dataset", "format", "column_mapping", "placeholders", "method", "resume_from")
HINT = ("<b>Fine-tune a model in three steps</b><br>{model} 1. Pick a model (the built-in starter model is a toy "
        "for trying the workflow offline).<br>{data} 2. Open a dataset (Ctrl+O): JSON, JSONL, CSV or Parquet in "
        "alpaca, messages, ShareGPT or prompt/completion format.<br>3. Press Start (Ctrl+Enter) and watch the loss "
        "fall.")


class FineTuneTab(RunTab, QWidget):
    TASK = "sft"
    CONFIG_CLASS = FineTuneConfig
    RUN_WORDS = "a fine-tuning run"
    PREFLIGHT_SHOWN_ELSEWHERE = ("data", "context")  # the dataset panel shows both, with the token counts
    open_in_playground = Signal(str, str)  # base model path, adapter (or fine-tuned model) path
    run_started = Signal(object)  # run folder
    run_ended = Signal(dict)  # the final event

    def __init__(self, parent=None, *, grace_s: float = 30.0):
        super().__init__(parent)
        self.panel = RunPanel(run_noun="Fine-tuning", output_noun="the adapter", grace_s=grace_s)
        self._build()
        self._connect_panel()
        self._on_method_changed()
        self.model_picker.model_changed.connect(self._fit_max_length)
        self.model_picker.model_changed.connect(self.dataset_panel.set_model)
        self.model_picker.model_changed.connect(self._update_start)
        for signal in (self.dataset_panel.validity_changed, self.dataset_panel.analysis_finished,
                       self.dataset_panel.dataset_changed):
            signal.connect(self._update_start)  # the reason shown on Start follows the panel's verdict
        self.form.changed.connect(self._update_start)
        self.method_combo.currentIndexChanged.connect(self._update_start)
        self._init_preflight()
        self.memory = TabMemory("finetune", FineTuneConfig)
        self._restore()
        self._fit_max_length(self.model_picker.model())  # the first model is chosen before anyone listens
        self.dataset_panel.set_model(self.model_picker.model())
        self._update_start()

    # -- layout ------------------------------------------------------------------------------
    def _build(self) -> None:
        # Left: what to train.
        self.model_picker = ModelPicker()
        model_box = QGroupBox("Model")
        QVBoxLayout(model_box).addWidget(self.model_picker)

        self.dataset_panel = DatasetPanel()
        data_box = QGroupBox("Dataset")
        QVBoxLayout(data_box).addWidget(self.dataset_panel)

        self.method_combo = QComboBox()
        for key, label in METHOD_LABELS.items():
            self.method_combo.addItem(label, key)
        self.method_combo.setToolTip(FineTuneConfig.__dataclass_fields__["method"].metadata["help"])
        self.method_combo.currentIndexChanged.connect(self._on_method_changed)
        self.form = ConfigForm(FineTuneConfig, exclude=FORM_EXCLUDE)
        self.form.insert_row("Method", "Method", self.method_combo)
        self.form.changed.connect(self._on_form_changed)
        self.save_button = QPushButton("Save config…")
        self.save_button.setToolTip("Save these settings as YAML; `studio train FILE` runs the same thing")
        self.save_button.clicked.connect(self.save_config_dialog)
        self.load_button = QPushButton("Load config…")
        self.load_button.clicked.connect(self.load_config_dialog)
        cfg_buttons = QHBoxLayout()
        cfg_buttons.addWidget(self.save_button)
        cfg_buttons.addWidget(self.load_button)
        cfg_buttons.addStretch(1)

        left_inner = QWidget()
        left_layout = QVBoxLayout(left_inner)
        for w in (model_box, data_box, self.form):
            left_layout.addWidget(w)
        left_layout.addLayout(cfg_buttons)
        left_layout.addStretch(1)
        left = QScrollArea()
        left.setWidgetResizable(True)
        left.setWidget(left_inner)
        left.setFrameShape(QFrame.Shape.NoFrame)
        left.setMinimumWidth(300)

        # Right: the run.
        panel = self.panel
        self.playground_button = panel.result_panel.add_button("Open in playground", self._open_in_playground)
        panel.tabs.addTab(self.dataset_panel.preview_widget, "Data preview")
        self.dataset_panel.dataset_changed.connect(lambda _p: panel.tabs.setCurrentIndex(1))
        panel.set_hint(HINT)

        self._place_beside_panel(left)

    # -- config ------------------------------------------------------------------------------
    def _on_method_changed(self, *_):
        method = self.method_combo.currentData()
        hidden = LORA_FIELDS if method == "full" else set()
        self.form.set_visible_fields([n for n in self.form.editors if n not in hidden])

    def _on_form_changed(self) -> None:
        try:
            self.dataset_panel.set_max_length(int(self.form.value("max_length")))
        except (KeyError, StudioError):
            pass

    def _fit_max_length(self, model: str) -> None:
        """Lower the max length to a model's shorter context (the starter model has 128 tokens) and say so:
        a newcomer should not have to learn what a context is before the first run."""
        from studio.engine.data.analysis import model_context_length

        if not model or not Path(model).is_dir():
            return
        context = model_context_length(model)
        try:
            current = int(self.form.value("max_length"))
        except (KeyError, StudioError):
            return
        if context and current > context:
            self.form.set_value("max_length", context)
            self.form.changed.emit()
            self.panel.status_label.setText(f"Max length lowered from {current} to {context}, this model's context.")

    def set_model(self, path: str) -> None:
        self.model_picker.set_model(path)

    def open_dataset_dialog(self) -> None:
        self.dataset_panel.open_dialog()

    def load_dataset(self, path: str) -> None:
        self.dataset_panel.load(path)

    def config(self) -> FineTuneConfig:
        """The run's config from the whole tab; raises BadConfig naming the field."""
        return self.form.config(model=self.model_picker.model(), dataset=self.dataset_panel.path(),
                                format=self.dataset_panel.format(), column_mapping=self.dataset_panel.mapping(),
                                placeholders=self.dataset_panel.placeholders(), method=self.method_combo.currentData(), task="sft")

    def set_config(self, cfg: FineTuneConfig, *, remember_model: bool = False) -> None:
        self.form.set_config(dataclasses.replace(cfg, resume_from=""))  # a resume is a one-off
        self.method_combo.setCurrentIndex(max(0, self.method_combo.findData(cfg.method)))
        if cfg.model:
            self.model_picker.set_model(cfg.model, remember=remember_model)
        if cfg.dataset:
            self.dataset_panel.load(cfg.dataset, cfg.format, cfg.column_mapping, cfg.placeholders)

    # -- run ---------------------------------------------------------------------------------
    def start_problem(self) -> str | None:
        """Why Start cannot go yet, or None."""
        if not self.model_picker.model():
            return "Pick a model first."
        return self.dataset_panel.problem() or self.preflight_problem()

    def _update_start(self, *_) -> None:
        if not hasattr(self, "preflight_watch"):
            return  # still being built
        self._check_live()
        problem = self.start_problem()
        self.panel.set_start_allowed(problem is None, problem or "")
        mark = {True: "✔", False: "•"}
        self.panel.set_hint(HINT.format(model=mark[bool(self.model_picker.model())],
                                        data=mark[bool(self.dataset_panel.path()) and problem is None]))

    def start(self) -> None:
        if self.panel.is_running():
            return
        try:
            problem = self.start_problem()
            if problem is not None:
                raise BadConfig(problem, "Fix it in the form on the left, then press Start.", field="dataset")
            cfg = self.config()
        except StudioError as err:
            self.error_panel.show_exception(err)
            return
        self.memory.save(cfg)
        if self.panel.launch(cfg) and Path(cfg.model).is_dir():
            settings.add_recent("models", cfg.model)

    def _set_running(self, running: bool) -> None:
        for w in (self.model_picker, self.dataset_panel, self.method_combo, self.form, self.load_button):
            w.setEnabled(not running)

    def _restore(self) -> None:
        cfg = self.memory.load()
        if cfg is not None:
            self.set_config(cfg, remember_model=False)

    def _open_in_playground(self) -> None:
        if self.panel.output:
            self.open_in_playground.emit(self.panel.state.started.get("model") or self.model_picker.model(),
                                         self.panel.output)

    def shutdown(self, timeout_ms: int = 60000) -> None:
        try:
            self.memory.save(self.config())
        except StudioError:
            pass  # an unfinished form is not worth remembering over the last good one
        self.dataset_panel.shutdown()
        self.preflight_watch.shutdown()
        self.panel.shutdown(timeout_ms)
