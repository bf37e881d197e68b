"""The Fine-tune tab: model, dataset, method and settings on the left; the run (progress, live loss plot,
log, result or error), the data preview and the past runs on the right."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QUrl, Qt, Signal
from PySide6.QtGui import QDesktopServices, QKeySequence, QShortcut
from PySide6.QtWidgets import (QComboBox, QFileDialog, QFrame, QGroupBox, QHBoxLayout, QLabel,
                               QPlainTextEdit, QProgressBar, QPushButton, QScrollArea, QSplitter,
                               QTabWidget, QVBoxLayout, QWidget)

from studio.engine.config import FineTuneConfig, load_config, save_config
from studio.engine.errors import BadConfig, StudioError
from studio.ui import settings
from studio.ui.widgets.formatting import fmt_duration
from studio.ui.finetune.dataset_panel import DatasetPanel
from studio.ui.runs_view import RunsView
from studio.ui.run_host import RunHost
from studio.ui.widgets import ConfigForm, ErrorPanel, LossPlot, ModelPicker

METHOD_LABELS = {"lora": "LoRA", "qlora-4bit": "QLoRA 4-bit", "qlora-8bit": "QLoRA 8-bit", "full": "Full fine-tune"}
LORA_FIELDS = {"lora_r", "lora_alpha", "lora_dropout", "target_modules"}
# Shown elsewhere in the tab (model picker, dataset panel, method combo) or fixed.
FORM_EXCLUDE = ("task", "model", "dataset", "format", "column_mapping", "method")
CONFIG_FILTER = "Run config (*.yaml *.yml *.json);;All files (*)"


class FineTuneTab(RunHost, QWidget):
    RUN_NOUN, OUTPUT_NOUN = "Fine-tuning", "the adapter"
    open_in_playground = Signal(str, str)  # base model path, adapter (or fine-tuned model) path
    run_started = Signal(object)  # run folder
    run_ended = Signal(dict)  # the final event

    def __init__(self, parent=None, *, grace_s: float = 30.0):
        super().__init__(parent)
        self.grace_s = grace_s
        self.engine = None  # the EngineThread of the current run
        self.run_dir: Path | None = None
        self.final_event: dict | None = None
        self.last_event: dict | None = None
        self._base_model = ""
        self._output = ""
        self._build()
        self._on_method_changed()
        self.model_picker.model_changed.connect(self.dataset_panel.set_model)
        self.dataset_panel.set_model(self.model_picker.model())

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
        left = QScrollArea()
        left.setWidgetResizable(True)
        left.setWidget(left_inner)
        left.setFrameShape(QFrame.Shape.NoFrame)
        left.setMinimumWidth(380)

        # Right: the run.
        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Start fine-tuning (Ctrl+Enter)")
        self.start_button.setStyleSheet("font-weight: bold; padding: 4px 18px;")
        self.start_button.clicked.connect(self.start)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip("Stop after the current step and save the adapter (Esc or Ctrl+.)")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("step %v / %m")
        self.status_label = QLabel("Ready.")
        self.stats_label = QLabel("")
        self.stats_label.setStyleSheet("color: #555;")
        run_row = QHBoxLayout()
        run_row.addWidget(self.start_button)
        run_row.addWidget(self.stop_button)
        run_row.addWidget(self.progress, 1)

        self.error_panel = ErrorPanel()
        self.result_panel = QFrame()
        self.result_panel.setObjectName("ResultPanel")
        self.result_panel.setStyleSheet("#ResultPanel { background: #eaf6ea; border: 1px solid #9ccc9c; "
                                        "border-radius: 4px; }")
        self.result_label = QLabel()
        self.result_label.setWordWrap(True)
        self.result_label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
        self.playground_button = QPushButton("Open in playground")
        self.playground_button.clicked.connect(self._open_in_playground)
        self.folder_button = QPushButton("Show in folder")
        self.folder_button.clicked.connect(self._show_in_folder)
        res_layout = QHBoxLayout(self.result_panel)
        res_layout.addWidget(self.result_label, 1)
        res_layout.addWidget(self.playground_button)
        res_layout.addWidget(self.folder_button)
        self.result_panel.hide()

        self.loss_plot = LossPlot()
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        self.log_view.setPlaceholderText("Messages of the run appear here.")
        training = QSplitter(Qt.Orientation.Vertical)
        training.addWidget(self.loss_plot)
        training.addWidget(self.log_view)
        training.setStretchFactor(0, 3)
        training.setStretchFactor(1, 1)

        self.runs_view = RunsView(tasks={"sft"})
        self.runs_view.load_config_requested.connect(self.set_config)
        self.right_tabs = QTabWidget()
        self.right_tabs.addTab(training, "Training")
        self.right_tabs.addTab(self.dataset_panel.preview_widget, "Data preview")
        self.right_tabs.addTab(self.runs_view, "Runs")

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addLayout(run_row)
        status_row = QHBoxLayout()
        status_row.addWidget(self.status_label, 1)
        status_row.addWidget(self.stats_label)
        right_layout.addLayout(status_row)
        right_layout.addWidget(self.error_panel)
        right_layout.addWidget(self.result_panel)
        right_layout.addWidget(self.right_tabs, 1)

        splitter = QSplitter(Qt.Orientation.Horizontal)
        splitter.addWidget(left)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 2)
        splitter.setStretchFactor(1, 3)
        self.splitter = splitter
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)

        self.dataset_panel.dataset_changed.connect(lambda _p: self.right_tabs.setCurrentIndex(1))
        for keys, slot in ((("Ctrl+Return", "Ctrl+Enter"), self.start), (("Esc", "Ctrl+."), self.stop)):
            for key in keys:
                sc = QShortcut(QKeySequence(key), self)
                sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                sc.activated.connect(slot)

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
                                method=self.method_combo.currentData(), task="sft")

    def set_config(self, cfg: FineTuneConfig) -> None:
        self.form.set_config(cfg)
        self.method_combo.setCurrentIndex(max(0, self.method_combo.findData(cfg.method)))
        if cfg.model:
            self.model_picker.set_model(cfg.model, remember=False)
        if cfg.dataset:
            self.dataset_panel.load(cfg.dataset, cfg.format, cfg.column_mapping)

    def save_config_dialog(self) -> None:
        try:
            cfg = self.config()
        except StudioError as err:
            self.error_panel.show_exception(err)
            return
        path, _ = QFileDialog.getSaveFileName(self, "Save the run config", str(
            Path(settings.last_dir("config")) / f"{cfg.name}.yaml"), CONFIG_FILTER)
        if path:
            settings.set_last_dir("config", path)
            save_config(cfg, path)
            self.status_label.setText(f"Saved {path} — run it with: studio train {path}")

    def load_config_dialog(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load a run config", settings.last_dir("config"), CONFIG_FILTER)
        if not path:
            return
        settings.set_last_dir("config", path)
        try:
            cfg = load_config(path)
        except StudioError as err:
            self.error_panel.show_exception(err)
            return
        if not isinstance(cfg, FineTuneConfig):
            self.error_panel.show_error("bad_config", f"{path} is a '{cfg.task}' run, not a fine-tuning run.",
                                        "Open it in the tab for that kind of run.")
            return
        self.error_panel.clear()
        self.set_config(cfg)

    # -- run ---------------------------------------------------------------------------------
    def start(self) -> None:
        if self.engine is not None:
            return
        self.error_panel.clear()
        self.result_panel.hide()
        try:
            cfg = self.config()
            if not cfg.dataset:
                raise BadConfig("No dataset was chosen.", "Open a dataset file with Open… (Ctrl+O).",
                                field="dataset")
            if not cfg.model:
                raise BadConfig("No model was chosen.", "Pick a model folder or a cached model.", field="model")
            if self.dataset_panel.last_error is not None:
                err = self.dataset_panel.last_error
                raise BadConfig(f"The dataset has a problem: {getattr(err, 'message', err)}",
                                "Fix the file or the format / column mapping first.", field="dataset")
        except StudioError as err:
            self.error_panel.show_exception(err)
            return
        if self.launch(cfg) and Path(cfg.model).is_dir():
            settings.add_recent("models", cfg.model)

    def _reset_for_run(self) -> None:
        self._base_model = self.model_picker.model()
        self._output = ""
        self.loss_plot.clear()
        self.log_view.clear()
        self.stats_label.setText("")
        self.right_tabs.setCurrentIndex(0)
        self.runs_view.set_workspace(settings.workspace())

    def kill(self) -> None:
        if self.engine is not None:
            self.engine.kill()

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        for w in (self.model_picker, self.dataset_panel, self.method_combo, self.form, self.load_button):
            w.setEnabled(not running)

    def _on_state(self, state: str) -> None:
        if state == "killing":
            self.status_label.setText("The worker did not stop in time: killing it.")
            self._log("Killing the worker process.")

    def _on_event(self, ev: dict) -> None:
        self.last_event = ev
        t = ev.get("type")
        if t == "log":
            step, total = int(ev.get("step") or 0), int(ev.get("total_steps") or 0)
            if total:
                self.progress.setRange(0, total)
                self.progress.setValue(min(step, total))
            if ev.get("loss") is not None:
                self.loss_plot.add_point("train", step, ev["loss"])
            if ev.get("learning_rate") is not None:
                self.loss_plot.add_point("learning_rate", step, ev["learning_rate"])
            tps = ev.get("tokens_per_s")
            self.stats_label.setText(f"elapsed {fmt_duration(ev.get('elapsed_s'))} · ETA {fmt_duration(ev.get('eta_s'))}"
                                     + (f" · {tps:,.0f} tokens/s" if isinstance(tps, (int, float)) else ""))
            if self.engine is None or self.engine.state not in ("stopping", "killing"):
                self.status_label.setText(f"Training: step {step} of {total}, loss {ev.get('loss', float('nan')):.4f}")
        elif t == "eval":
            if ev.get("eval_loss") is not None:
                self.loss_plot.add_point("eval", ev.get("step", 0), ev["eval_loss"])
            self._log(f"eval at step {ev.get('step')}: loss {ev.get('eval_loss'):.4f}, perplexity "
                      f"{ev.get('perplexity', float('nan')):.2f}")
        elif t == "progress":
            frac = ev.get("fraction")
            phase = ev.get("phase", "")
            self.status_label.setText(f"{phase.capitalize()}…" + (f" {frac:.0%}" if frac else ""))
            if ev.get("dataset"):
                d = ev["dataset"]
                self._log(f"dataset: {d.get('used')} of {d.get('rows')} rows used, "
                          f"{ev.get('train_rows')} for training, {ev.get('validation_rows')} for validation")
            elif frac in (0, 0.0, None):
                self._log(phase)
        elif t == "started":
            self._base_model = ev.get("model") or self._base_model
            if ev.get("total_steps"):
                self.progress.setRange(0, int(ev["total_steps"]))
                self.progress.setValue(int(ev.get("resumed_at") or 0))
            if ev.get("warning"):
                self._log(f"WARNING: {ev['warning']}")
                self.error_panel.show_error("warning", ev["warning"])
            params = ev.get("trainable_parameters")
            self._log(f"started on {ev.get('device_name', ev.get('device'))} ({ev.get('precision')}), "
                      f"{ev.get('total_steps')} steps"
                      + (f", {params:,} trainable parameters of {ev.get('parameters', 0):,}" if params else ""))
        elif t == "checkpoint":
            self._log(f"checkpoint at step {ev.get('step')}: {ev.get('path')}")
        elif t == "finished":
            self._log(f"finished ({ev.get('status')}): {ev.get('output')}")
        elif t == "failed":
            self._log(f"failed ({ev.get('kind')}): {ev.get('message')}")

    def _on_finished_run(self, final: dict) -> None:
        self.final_event = final
        self.loss_plot.redraw()
        if final.get("type") == "finished":
            status = final.get("status", "completed")
            self._output = final.get("output") or ""
            summary = final.get("summary") or {}
            what = "Stopped; the adapter so far was saved" if status == "stopped" else "Done"
            if self.progress.maximum() == 0:
                self.progress.setRange(0, 1)
            if status == "completed":
                self.progress.setValue(self.progress.maximum())
            loss = summary.get("best_eval_loss")
            self.result_label.setText(f"<b>{what}.</b> Output: {self._output}"
                                      + (f"<br>Best eval loss: {loss:.4f}" if isinstance(loss, (int, float)) else ""))
            self.result_panel.show()
            self.status_label.setText(f"{what}." if status == "stopped" else "Finished.")
        else:
            if self.progress.maximum() == 0:
                self.progress.setRange(0, 1)
            self.error_panel.show_event(final)
            self.status_label.setText("The run failed.")
        self.runs_view.refresh()
        if self.run_dir:
            self.runs_view.select_run(self.run_dir)
        self.run_ended.emit(final)

    def _open_in_playground(self) -> None:
        if self._output:
            self.open_in_playground.emit(self._base_model, self._output)

    def _show_in_folder(self) -> None:
        target = self._output or (str(self.run_dir) if self.run_dir else "")
        if target:
            QDesktopServices.openUrl(QUrl.fromLocalFile(target))

    def shutdown(self, timeout_ms: int = 60000) -> None:
        self.dataset_panel.shutdown()
        super().shutdown(timeout_ms)

FinetuneTab = FineTuneTab
