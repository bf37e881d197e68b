"""The Fine-tune tab: the task (chat / instructions, classification, or preference tuning), model, dataset, method
and settings on the left; the run panel (progress, live loss plot, log, result or error), the data preview and,
for a classifier or a preference run, its own metrics on the right.

The model picker is shared by the tasks; the data box and the settings below it swap with the task (a
QStackedWidget), and each task's last settings are remembered on their own."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QFrame, QGroupBox, QHBoxLayout, QLabel, QScrollArea,
                               QStackedWidget, QVBoxLayout, QWidget)

from studio.engine.classify.config import ClassifyConfig
from studio.engine.config import FineTuneConfig
from studio.engine.errors import BadConfig, StudioError
from studio.engine.preference.config import PreferenceConfig
from studio.ui import settings
from studio.ui.finetune.classify_pane import ClassifyPane
from studio.ui.finetune.dataset_panel import DatasetPanel
from studio.ui.finetune.method_choice import add_method_combo, set_method
from studio.ui.finetune.preference_pane import PreferencePane
from studio.ui.remembered import TabMemory
from studio.ui.run_tab import RunTab
from studio.ui.widgets import ConfigForm, ModelPicker
from studio.ui.widgets.classify_metrics import ClassifyMetrics
from studio.ui.widgets.preference_metrics import PreferenceMetrics
from studio.ui.widgets.run_panel import RunPanel

TASKS = {"sft": "Chat / instructions", "classify": "Classification", "preference": "Preference tuning (DPO, KTO)"}
TASK_TIPS = {"sft": "Teach a language model to answer: instruction, chat or prompt/completion data; the output is "
                    "an adapter (or a model) that generates text.",
             "classify": "Teach a model to put a label on a text (sentiment, topic, intent, spam) or to predict a "
                         "number: labelled data with a text column and a label column; the output is a classifier.",
             "preference": "Teach a chat model which replies people prefer: pairs of a chosen and a rejected reply "
                           "(DPO, ORPO) or replies marked good or bad (KTO), such as the playground's feedback; "
                           "the output is an adapter (or a model)."}
TASK_KEY = "finetune/task"
OUTPUT_NOUNS = {"sft": "the adapter", "classify": "the classifier", "preference": "the adapter"}
# Shown elsewhere in the tab (model picker, dataset panel, method combo), fixed, or set by Resume only.
FORM_EXCLUDE = ("task", "model", "dataset", "format", "column_mapping", "placeholders", "method", "resume_from")
HINT = ("<b>Fine-tune a model in three steps</b><br>{model} 1. Pick a model (the built-in starter model is a toy "
        "for trying the workflow offline).<br>{data} 2. Open a dataset (Ctrl+O): JSON, JSONL, CSV or Parquet in "
        "alpaca, messages, ShareGPT or prompt/completion format.<br>3. Press Start (Ctrl+Enter) and watch the loss "
        "fall.")
CLASSIFY_HINT = ("<b>Train a classifier in three steps</b><br>{model} 1. Pick a model: an encoder such as BERT or "
                 "MiniLM (Browse… to its folder) is small and fast; a decoder works too.<br>{data} 2. Open labelled "
                 "data (Ctrl+O): CSV, TSV, JSON, JSONL or Parquet with a text column and a label column.<br>3. Press "
                 "Start (Ctrl+Enter); the Metrics tab shows accuracy, F1 and the confusion matrix as it learns.")
PREFERENCE_HINT = ("<b>Tune toward preferred replies in three steps</b><br>{model} 1. Pick the chat model (and, in "
                   "the form, the adapter of a fine-tuning run to start from).<br>{data} 2. Open preference data "
                   "(Ctrl+O): pairs of a chosen and a rejected reply, or replies marked good/bad — the playground "
                   "writes them as you judge replies.<br>3. Press Start (Ctrl+Enter); the Preference tab shows the "
                   "reward margin and preference accuracy as it learns.")
HINTS = {"sft": HINT, "classify": CLASSIFY_HINT, "preference": PREFERENCE_HINT}


class CurrentPageStack(QStackedWidget):
    """A stacked widget as large as the page shown: the hidden task's form must not widen or lengthen the
    left side."""

    def sizeHint(self):  # noqa: N802 - Qt's name
        return self.currentWidget().sizeHint() if self.currentWidget() else super().sizeHint()

    def minimumSizeHint(self):  # noqa: N802 - Qt's name
        return self.currentWidget().minimumSizeHint() if self.currentWidget() else super().minimumSizeHint()


class FineTuneTab(RunTab, QWidget):
    TASK = "sft"
    CONFIG_CLASS = (FineTuneConfig, ClassifyConfig, PreferenceConfig)
    RUN_WORDS = "a fine-tuning, classification or preference run"
    open_in_playground = Signal(str, str)  # base model path, adapter (or fine-tuned model) path
    run_started = Signal(object)  # run folder
    run_ended = Signal(dict)  # the final event

    def __init__(self, parent=None, *, grace_s: float = 30.0):
        super().__init__(parent)
        self.panel = RunPanel(run_noun="Fine-tuning", output_noun="the adapter", grace_s=grace_s)
        self._build()
        self._connect_panel()
        self.model_picker.model_changed.connect(self._fit_max_length)
        self.model_picker.model_changed.connect(self.dataset_panel.set_model)
        self.model_picker.model_changed.connect(self._update_start)
        for box in self.data_boxes.values():
            for signal in (box.validity_changed, box.analysis_finished, box.dataset_changed):
                signal.connect(self._update_start)  # the reason shown on Start follows the data's verdict
        for form, combo in self.forms.values():
            form.changed.connect(self._update_start)
            combo.currentIndexChanged.connect(self._update_start)
        self._init_preflight()
        self.memory = TabMemory("finetune", FineTuneConfig)
        self.classify_memory = TabMemory("finetune-classify", ClassifyConfig)
        self.preference_memory = TabMemory("finetune-preference", PreferenceConfig)
        self.memories = {"sft": self.memory, "classify": self.classify_memory, "preference": self.preference_memory}
        self._restore()
        self._fit_max_length(self.model_picker.model())  # the first model is chosen before anyone listens
        self.dataset_panel.set_model(self.model_picker.model())
        self._update_start()

    # -- layout ------------------------------------------------------------------------------
    def _build(self) -> None:
        # Left: what to train.
        self.task_combo = QComboBox()
        for key, label in TASKS.items():
            self.task_combo.addItem(label, key)
            self.task_combo.setItemData(self.task_combo.count() - 1, TASK_TIPS[key], Qt.ItemDataRole.ToolTipRole)
        self.task_combo.setToolTip("What to teach the model: to answer (chat / instructions) or to label texts "
                                   "(classification). Alt+T")
        self.task_combo.currentIndexChanged.connect(self._on_task_changed)
        task_label = QLabel("&Task")
        task_label.setBuddy(self.task_combo)
        task_label.setStyleSheet("font-weight: bold;")
        task_row = QHBoxLayout()
        task_row.addWidget(task_label)
        task_row.addWidget(self.task_combo, 1)

        self.model_picker = ModelPicker()
        model_box = QGroupBox("Model")
        QVBoxLayout(model_box).addWidget(self.model_picker)

        self.dataset_panel = DatasetPanel()
        data_box = QGroupBox("Dataset")
        QVBoxLayout(data_box).addWidget(self.dataset_panel)

        self.form = ConfigForm(FineTuneConfig, exclude=FORM_EXCLUDE)
        self.method_combo = add_method_combo(self.form, FineTuneConfig)
        self.form.changed.connect(self._on_form_changed)
        chat_page = QWidget()
        chat_layout = QVBoxLayout(chat_page)
        chat_layout.setContentsMargins(0, 0, 0, 0)
        chat_layout.addWidget(data_box)
        chat_layout.addWidget(self.form)
        self.classify = ClassifyPane()
        self.preference = PreferencePane()
        self.pages = {"sft": chat_page, "classify": self.classify, "preference": self.preference}
        self.data_boxes = {"sft": self.dataset_panel, "classify": self.classify.data_box,
                           "preference": self.preference.data_box}
        self.forms = {"sft": (self.form, self.method_combo),
                      "classify": (self.classify.form, self.classify.method_combo),
                      "preference": (self.preference.form, self.preference.method_combo)}
        self.task_pages = CurrentPageStack()
        for page in self.pages.values():
            self.task_pages.addWidget(page)
        cfg_buttons = self._config_buttons("Save these settings as YAML; `studio train FILE` runs the same thing")

        left_inner = QWidget()
        left_layout = QVBoxLayout(left_inner)
        left_layout.addLayout(task_row)
        left_layout.addWidget(model_box)
        left_layout.addWidget(self.task_pages)
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
        for box in self.data_boxes.values():
            panel.tabs.addTab(box.preview_widget, "Data preview")
            box.dataset_changed.connect(lambda _p, w=box.preview_widget: panel.tabs.setCurrentWidget(w))
        self.metrics = ClassifyMetrics()
        panel.add_state_view(self.metrics, "Metrics")
        self.preference_metrics = PreferenceMetrics()
        panel.add_state_view(self.preference_metrics, "Preference")
        self.state_views = {"classify": self.metrics, "preference": self.preference_metrics}
        panel.set_hint(HINT)
        self._on_task_changed()

        self._place_beside_panel(left)

    # -- task ------------------------------------------------------------------------------------
    def task(self) -> str:
        """The selected task: "sft" (chat / instructions), "classify" or "preference"."""
        return self.task_combo.currentData()

    def set_task(self, task: str) -> None:
        self.task_combo.setCurrentIndex(max(0, self.task_combo.findData(task)))

    def _on_task_changed(self, *_) -> None:
        task = self.task()
        self.task_pages.setCurrentWidget(self.pages[task])
        self.task_pages.updateGeometry()
        tabs = self.panel.tabs
        for key, box in self.data_boxes.items():
            tabs.setTabVisible(tabs.indexOf(box.preview_widget), key == task)
        shown = self.panel.state.started.get("task")
        for key, view in self.state_views.items():
            self.panel.set_view_visible(view, key in (task, shown))
        if self.panel.engine is None:  # a running run keeps the words it started with
            self.panel.set_output_noun(OUTPUT_NOUNS[self.task()])
        if hasattr(self, "memory"):  # not while the tab is being built and restored
            settings.set_value(TASK_KEY, self.task())
            self._fit_max_length(self.model_picker.model())
        self._update_start()

    def _panel_shows_classifier(self) -> bool:
        return self.panel.state.started.get("task") == "classify"

    def _current_form(self) -> ConfigForm:
        return self.forms[self.task()][0]

    # -- config ------------------------------------------------------------------------------
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
        form = self._current_form()
        try:
            current = int(form.value("max_length"))
        except (KeyError, StudioError):
            return
        if context and current > context:
            form.set_value("max_length", context)
            form.changed.emit()
            self.panel.status_label.setText(f"Max length lowered from {current} to {context}, this model's context.")

    def set_model(self, path: str) -> None:
        self.model_picker.set_model(path)

    def open_dataset_dialog(self) -> None:
        """Ctrl+O: the data of the selected task."""
        self.data_boxes[self.task()].open_dialog()

    def load_dataset(self, path: str) -> None:
        """A chat dataset (e.g. one saved in the playground): the tab turns to chat fine-tuning."""
        self.set_task("sft")
        self.dataset_panel.load(path)

    def load_labelled(self, path: str) -> None:
        self.set_task("classify")
        self.classify.data_box.load(path)

    def open_preference(self, fields: dict) -> None:
        """"Train on my feedback" in the playground: preference tuning of that model (and adapter) on the feedback
        file, with the objective it suggests."""
        self.set_task("preference")
        if fields.get("model"):
            self.model_picker.set_model(fields["model"])
        self.preference.set_fields(objective=fields.get("objective") or "dpo", adapter=fields.get("adapter") or "")
        if fields.get("dataset"):
            self.preference.data_box.load(fields["dataset"])

    def config(self, task: str | None = None) -> FineTuneConfig | ClassifyConfig | PreferenceConfig:
        """The run's config from the whole tab, for `task` (else the selected one); raises BadConfig naming the
        field."""
        task = task or self.task()
        if task == "classify":
            return self.classify.config(self.model_picker.model())
        if task == "preference":
            return self.preference.config(self.model_picker.model())
        return self.form.config(model=self.model_picker.model(), dataset=self.dataset_panel.path(),
                                format=self.dataset_panel.format(), column_mapping=self.dataset_panel.mapping(),
                                placeholders=self.dataset_panel.placeholders(), method=self.method_combo.currentData(),
                                task="sft")

    def set_config(self, cfg: FineTuneConfig | ClassifyConfig, *, remember_model: bool = False,
                   switch: bool = True) -> None:
        """Fill the form of the config's task; `switch` also selects that task."""
        if isinstance(cfg, ClassifyConfig):
            self.classify.set_config(cfg)
        elif isinstance(cfg, PreferenceConfig):
            self.preference.set_config(cfg)
        else:
            self.form.set_config(dataclasses.replace(cfg, resume_from=""))  # a resume is a one-off
            set_method(self.method_combo, cfg.method)
        if switch:
            self.set_task(cfg.task)
        if cfg.model:
            self.model_picker.set_model(cfg.model, remember=remember_model)
        if cfg.dataset and isinstance(cfg, FineTuneConfig):
            self.dataset_panel.load(cfg.dataset, cfg.format, cfg.column_mapping, cfg.placeholders)

    @property
    def PREFLIGHT_SHOWN_ELSEWHERE(self) -> tuple[str, ...]:  # noqa: N802 - RunTab's name
        # The chat dataset panel shows the data and context checks with its token counts. The labelled-data box
        # shows a file it cannot read; the check's other data findings (truncated texts, validation labels) it
        # does not, so they stay under Start.
        if self.task() in ("classify", "preference"):
            box = self.data_boxes[self.task()]
            return ("data",) if box.last_error is not None or not box.path() else ()
        return ("data", "context")

    # -- run ---------------------------------------------------------------------------------
    def data_problem(self) -> str | None:
        return self.data_boxes[self.task()].problem()

    def start_problem(self) -> str | None:
        """Why Start cannot go yet, or None."""
        if not self.model_picker.model():
            return "Pick a model first."
        return self.data_problem() or self.preflight_problem()

    def _update_start(self, *_) -> None:
        if not hasattr(self, "preflight_watch"):
            return  # still being built
        self._check_live()
        problem = self.start_problem()
        self.panel.set_start_allowed(problem is None, problem or "")
        mark = {True: "✔", False: "•"}
        task = self.task()
        if task != "sft":  # a verdict of the data box changes which findings of the check show under Start
            self._show_checks_again()
        path = self.data_boxes[task].path()
        self.panel.set_hint(HINTS[task].format(
            model=mark[bool(self.model_picker.model())], data=mark[bool(path) and problem is None]))

    def _show_checks_again(self) -> None:
        try:
            report = self.preflight_watch.report_for(self.config())
        except StudioError:
            return
        if report is not None:
            self.panel.checks_view.show_report(report, self.PREFLIGHT_SHOWN_ELSEWHERE)

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
        self._memory(cfg).save(cfg)
        self.panel.set_output_noun(OUTPUT_NOUNS[cfg.task])
        for key, view in self.state_views.items():
            self.panel.set_view_visible(view, key == cfg.task)
        if self.panel.launch(cfg) and Path(cfg.model).is_dir():
            settings.add_recent("models", cfg.model)

    def _set_running(self, running: bool) -> None:
        for w in (self.task_combo, self.model_picker, self.task_pages, self.load_button):
            w.setEnabled(not running)

    def _memory(self, cfg) -> TabMemory:
        return self.memories[cfg.task]

    def _restore(self) -> None:
        """Both tasks' last settings; the last selected task's model is the one picked."""
        task = settings.value(TASK_KEY, "sft", str)
        task = task if task in TASKS else "sft"
        memories = list(self.memories.values())
        for memory in sorted(memories, key=lambda m: m is self._memory_of_task(task)):
            cfg = memory.load()
            if cfg is not None:
                self.set_config(cfg, remember_model=False, switch=False)
        self.set_task(task)

    def _memory_of_task(self, task: str) -> TabMemory:
        return self.memories[task]

    def _open_in_playground(self) -> None:
        if not self.panel.output:
            return
        if self._panel_shows_classifier():  # a plain model folder with its classification head
            self.open_in_playground.emit(self.panel.output, "")
        else:
            self.open_in_playground.emit(self.panel.state.started.get("model") or self.model_picker.model(),
                                         self.panel.output)

    def shutdown(self, timeout_ms: int = 60000) -> None:
        for task in TASKS:  # each task's form, as it is now, is what it comes back with
            try:
                self._memory_of_task(task).save(self.config(task))
            except StudioError:
                pass  # an unfinished form is not worth remembering over the last good one
        self.dataset_panel.shutdown()
        self.classify.shutdown()
        self.preference.shutdown()
        self.preflight_watch.shutdown()
        self.panel.shutdown(timeout_ms)
