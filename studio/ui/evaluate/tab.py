"""The Evaluate tab: prompt, fine-tune or pre-train — which works on the person's own held-out data?

Left: the model, the held-out file (with its format, kind and column mapping), the candidates (k-shot prompts of
the base model, fine-tuned runs and folders) and the rest of the evaluation's settings. Right: the run panel
(Start, Stop, progress, log) with the held-out preview, the results (recommendation, table, plots, confusion
matrix) and the per-example answers. Results are read from the run folder's results.json and examples.jsonl
after each `scored` event and at the end; an evaluation opened from the Runs list shows its saved results.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QComboBox, QFrame, QGroupBox, QScrollArea,
                               QVBoxLayout, QWidget)

from studio.engine.errors import BadConfig, StudioError
from studio.engine.evaluate.config import EvalConfig
from studio.ui import settings
from studio.ui.evaluate.candidates_box import CandidatesBox
from studio.ui.evaluate.examples_view import ExamplesView
from studio.ui.evaluate.heldout_box import HeldOutBox
from studio.ui.evaluate.results_view import ResultsView
from studio.ui.evaluate.run_results import HELDOUT, LOG, RunResults
from studio.ui.remembered import TabMemory
from studio.ui.run_tab import RunTab
from studio.ui.widgets import ConfigForm, ModelPicker
from studio.ui.widgets.run_panel import READY, RunPanel

CANDIDATE_FIELDS = ("shots", "shot_pool", "shot_selection", "tuned")
DATA_FIELDS = ("format", "kind", "max_examples", "column_mapping")
# Shown by the tab's own widgets (model picker, held-out box, candidates box) or fixed.
FORM_EXCLUDE = ("task", "model", "dataset") + CANDIDATE_FIELDS + DATA_FIELDS
HINT = ("<b>Prompt, fine-tune or pre-train: which works on your data?</b><br>{model} 1. Pick the base model."
        "<br>{data} 2. Open a held-out file (Ctrl+O): examples no candidate was trained on — labelled text, "
        "instruction/output pairs or raw text.<br>{cands} 3. Choose the candidates: the base model with k examples "
        "in its prompt (Shots; k sweep tries 0, 1, 3, 5, 8) and the fine-tuned runs to tick.<br>4. Press Start "
        "(Ctrl+Enter): every candidate is scored on every example; the table, the plots and a recommendation "
        "appear in Results as each one finishes.")


class EvaluateTab(RunResults, RunTab, QWidget):
    TASK = "eval"
    CONFIG_CLASS = EvalConfig
    RUN_WORDS = "an evaluation"
    CLI_COMMAND = "studio eval"
    run_started = Signal(object)  # run folder
    run_ended = Signal(dict)  # the final event
    results_shown = Signal()  # the results view was filled (live, at the end, or from a saved run)

    def __init__(self, parent=None, *, grace_s: float = 30.0):
        super().__init__(parent)
        self.panel = RunPanel(run_noun="Evaluation", output_noun="the results", grace_s=grace_s)
        self.shown_run: Path | None = None  # the run folder whose results are shown
        self._build()
        self._connect_panel()
        self.model_picker.model_changed.connect(self._update_start)
        self.heldout.read_finished.connect(self._update_start)
        self.candidates.changed.connect(self._update_start)
        self.form.changed.connect(self._update_start)
        self.data_form.changed.connect(self._on_data_options)
        self.panel.event_seen.connect(self._on_event)
        self.panel.run_started.connect(self._on_run_started)
        self.panel.run_ended.connect(self._on_run_ended)
        self._init_preflight()
        self.memory = TabMemory("evaluate", EvalConfig)
        self._ready = True
        self._restore()
        self._update_start()

    # -- layout ------------------------------------------------------------------------------
    def _build(self) -> None:
        self.model_picker = ModelPicker()
        self.model_picker.setToolTip("The base model: the prompting candidates are this model with k examples; "
                                     "adapters go on it.")
        model_box = QGroupBox("Model")
        QVBoxLayout(model_box).addWidget(self.model_picker)

        self.heldout = HeldOutBox()
        keep = set(DATA_FIELDS)
        self.data_form = ConfigForm(EvalConfig, exclude=[f.name for f in dataclasses.fields(EvalConfig)
                                                         if f.name not in keep], advanced_title="Column mapping")
        self.data_form.insert_row("Data", "File", self.heldout)
        for box in self.data_form.findChildren(QGroupBox):
            if box.title() == "Data" and box.parent() is self.data_form:
                box.setTitle("Held-out data")

        self.candidates = CandidatesBox()
        cand_box = QGroupBox("Candidates")
        QVBoxLayout(cand_box).addWidget(self.candidates)

        self.form = ConfigForm(EvalConfig, exclude=FORM_EXCLUDE)
        cfg_buttons = self._config_buttons("Save these settings as YAML, to run the same evaluation again")

        left_inner = QWidget()
        left_layout = QVBoxLayout(left_inner)
        for w in (model_box, self.data_form, cand_box, self.form):
            left_layout.addWidget(w)
        left_layout.addLayout(cfg_buttons)
        left_layout.addStretch(1)
        # Combo boxes as wide as their longest choice would make the column too wide for a small window.
        self.model_picker.combo.setMinimumContentsLength(12)
        for combo in [*left_inner.findChildren(QComboBox)]:
            if combo.sizeAdjustPolicy() != QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon:
                combo.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
                combo.setMinimumContentsLength(10)
        left = QScrollArea()
        left.setWidgetResizable(True)
        left.setWidget(left_inner)
        left.setFrameShape(QFrame.Shape.NoFrame)
        left.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        # Scrolls up and down only; as wide as its content needs, so nothing is cut off at the right.
        scrollbar = left.verticalScrollBar().sizeHint().width()
        left.setMinimumWidth(max(300, left_inner.minimumSizeHint().width() + scrollbar))
        self.left = left

        panel = self.panel
        panel.progress.setFormat("")  # "%v / %m scored" once a run starts (see _set_running)
        panel.loss_plot.hide()  # a loss curve means nothing here; the log stays
        panel.tabs.setTabText(LOG, "Log")
        self.results_view = ResultsView()
        self.examples_view = ExamplesView()
        panel.tabs.addTab(self.heldout.preview, "Held-out file")
        panel.tabs.addTab(self.results_view, "Results")
        panel.tabs.addTab(self.examples_view, "Examples")
        self.heldout.file_opened.connect(lambda path: path and panel.tabs.setCurrentIndex(HELDOUT))
        panel.set_hint(HINT)

        self._place_beside_panel(left)

    # -- config ------------------------------------------------------------------------------
    def config(self) -> EvalConfig:
        """The evaluation's config from the whole tab; raises BadConfig naming the field (marked in the tab)."""
        self.candidates.clear_error()
        self.data_form.clear_error()
        try:
            data = self.data_form.values()
            cfg = self.form.config(model=self.model_picker.model(), dataset=self.heldout.path(), task="eval",
                                   **data, **self.candidates.values())
        except BadConfig as err:
            self.candidates.mark_error(err.field)
            self.data_form.mark_error(err.field or "")
            raise
        return cfg

    def set_config(self, cfg: EvalConfig, *, remember_model: bool = False) -> None:
        self.form.set_config(cfg)
        self.data_form.set_config(cfg)
        if cfg.model:
            self.model_picker.set_model(cfg.model, remember=remember_model)
        self.candidates.set_values(cfg)
        if cfg.dataset:
            self.heldout.load(cfg.dataset, cfg.format, cfg.column_mapping, cfg.kind)
        else:
            self.heldout.clear()
        self._update_start()

    def apply(self, **fields) -> None:
        """Set some fields, keeping the rest (the playground's "Evaluate…" uses this). Folders in `tuned` are
        ticked; candidates ticked before stay ticked."""
        names = {f.name for f in dataclasses.fields(EvalConfig)}
        unknown = set(fields) - names
        if unknown:
            raise ValueError(f"not fields of an evaluation: {', '.join(sorted(unknown))}")
        if fields.get("model"):
            self.model_picker.set_model(fields["model"], remember=False)
        for path in EvalConfig(tuned=fields.get("tuned", "")).tuned_paths():
            self.candidates.add_folder(path)
        if "shots" in fields:
            self.candidates.set_shots(str(fields["shots"]))
        if "shot_pool" in fields:
            self.candidates.set_pool(str(fields["shot_pool"]))
        if "shot_selection" in fields:
            self.candidates.selection.setCurrentIndex(max(0, self.candidates.selection.findData(
                fields["shot_selection"])))
        for form in (self.form, self.data_form):
            touched = [name for name in fields if name in form.editors]
            for name in touched:
                form.set_value(name, fields[name])
            if touched:
                form.changed.emit()
        if fields.get("dataset"):
            self.heldout.load(fields["dataset"])
        self._update_start()

    def showEvent(self, event) -> None:  # noqa: N802 - Qt's name
        super().showEvent(event)
        self.candidates.refresh_if_changed()  # runs that finished since the tab was last shown

    def add_candidate(self, output: str, model: str = "") -> None:
        """Tick a run's output (adapter or model folder) as a candidate and, if given, set its base model."""
        self.candidates.refresh_if_changed()
        self.candidates.add_folder(str(output))
        if model:
            self.model_picker.set_model(model, remember=False)
        self._update_start()

    def _on_data_options(self) -> None:
        try:
            values = self.data_form.values()
        except BadConfig:
            self._update_start()
            return  # a mapping being typed; the form marks it when the config is built
        self.heldout.set_options(values["format"], values["column_mapping"], values["kind"])
        self._update_start()

    def open_heldout_dialog(self) -> None:
        self.heldout.open_dialog()

    def load_heldout(self, path: str) -> None:
        self.heldout.load(path)

    # -- start -------------------------------------------------------------------------------
    def start_problem(self) -> str | None:
        """Why Start cannot go yet, in one sentence, or None."""
        problem = self.heldout.problem()
        if problem is not None:
            return problem
        try:
            self.config()
        except StudioError as err:
            return err.message
        return self.preflight_problem()  # the model, the candidates' folders, the shot pool (checked live)

    def _on_preflight(self, report) -> None:
        """The live check's errors and warnings under Start, less what the held-out box already says."""
        shown = self.heldout.shown_messages()
        self.panel.checks_view.show_report(dataclasses.replace(report, findings=[
            f for f in report.findings if f.message not in shown]))
        self._update_start()

    def _update_start(self, *_) -> None:
        if not getattr(self, "_ready", False):
            return  # still being built
        if self.heldout.path():
            self._check_live()
        else:  # nothing to check yet: no model is loaded in the background for a tab never used
            self.panel.checks_view.show_report(None)
        problem = self.start_problem()
        self.panel.set_start_allowed(problem is None, problem or "")
        if not self.panel.is_running() and self.panel.final_event is None and self.shown_run is None:
            # Say why Start is grey where the eye already is, once there is something to evaluate.
            self.panel.status_label.setText(f"Not ready: {problem}" if problem and self.heldout.path() else READY)
        if self.shown_run is not None:
            self.panel.set_hint("")  # results are shown: the first steps are no longer news
            return
        values = self.candidates.values()
        try:
            has_candidates = bool(values["tuned"]) or bool(EvalConfig(shots=values["shots"]).shot_counts())
        except StudioError:
            has_candidates = False
        mark = {True: "✔", False: "•"}
        self.panel.set_hint(HINT.format(model=mark[bool(self.model_picker.model())],
                                        data=mark[bool(self.heldout.heldout)], cands=mark[has_candidates]))

    def start(self) -> None:
        if self.panel.is_running():
            return
        try:
            problem = self.start_problem()
            if problem is not None:
                raise BadConfig(problem, "Fix it on the left, then press Start.")
            cfg = self.config()
        except StudioError as err:
            self.error_panel.show_exception(err)
            return
        self.memory.save(cfg)
        if self.panel.launch(cfg, check_model=bool(cfg.model)) and Path(cfg.model).is_dir():
            settings.add_recent("models", cfg.model)

    def _set_running(self, running: bool) -> None:
        if running:
            self.panel.progress.setFormat("%v / %m scored")  # a saved evaluation shown before said "finished"
        for w in (self.model_picker, self.data_form, self.candidates, self.form, self.load_button):
            w.setEnabled(not running)

    def _restore(self) -> None:
        cfg = self.memory.load()
        if cfg is not None:
            self.set_config(cfg)

    def shutdown(self, timeout_ms: int = 60000) -> None:
        try:
            self.memory.save(self.config())
        except StudioError:
            pass  # an unfinished form is not worth remembering over the last good one
        self.heldout.shutdown()
        self.preflight_watch.shutdown()
        self.panel.shutdown(timeout_ms)
