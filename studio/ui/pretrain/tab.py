"""The Pre-train tab: choose text files or a folder, pick from scratch or continued, causal or masked LM,
a size preset and options; see the corpus summary and the size/memory/time estimate before Start; watch
the losses, perplexity and probe completions live; use the result for fine-tuning or in the playground.

Training runs in a worker process supervised by an EngineThread; nothing here imports torch.
"""

from __future__ import annotations

import dataclasses

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFileDialog, QHBoxLayout, QLabel, QPushButton, QScrollArea, QSplitter, QVBoxLayout,
                               QWidget)

from studio.engine.errors import BadConfig, StudioError
from studio.engine.estimates import PretrainEstimator
from studio.engine.pretrain_config import CORPUS_SEPARATOR, PretrainConfig
from studio.engine.run_state import describe_corpus
from studio.ui import settings
from studio.ui.pretrain.corpus_box import CorpusBox
from studio.ui.pretrain.form_rules import visible_fields
from studio.ui.pretrain.probe_view import ProbeView
from studio.ui.remembered import TabMemory
from studio.ui.run_tab import RunTab
from studio.ui.widgets.config_form import ConfigForm
from studio.ui.widgets.run_panel import RunPanel

HINT = ("<b>Pre-train in three steps</b><br>{corpus} 1. Add your text: .txt files (documents split at blank "
        "lines, or as Document split says) or "
        "JSON/JSONL/CSV/Parquet files with a text column, or a folder of them.<br>2. Choose From scratch (a new "
        "tokenizer and model of the size you pick) or continue pre-training a model folder.<br>3. Press Start "
        "(Ctrl+Enter) and watch the held-out perplexity fall.")


class PretrainTab(RunTab, QWidget):
    TASK = "pretrain"
    use_for_finetune = Signal(str)  # the model folder
    open_in_playground = Signal(str, str)  # model folder, adapter ("" = none)
    run_started = Signal(object)  # the run folder
    run_ended = Signal(dict)  # the final event

    def __init__(self, parent=None, *, grace_s: float = 30.0):
        super().__init__(parent)
        self._corpus_reading = None  # _reading_values() when the corpus was last read
        self.estimator = PretrainEstimator(settings.workspace)
        self.panel = RunPanel(run_noun="Pre-training", output_noun="the model", grace_s=grace_s,
                              perplexity_plot=True)
        self._build()
        self._connect_panel()
        self.ppl_plot = self.panel.ppl_plot
        self.panel.event_seen.connect(self._on_event)
        self.panel.run_ended.connect(self._recalibrate)
        self._init_preflight()
        self.form.changed.connect(self._update_start)
        self.memory = TabMemory("pretrain", PretrainConfig)
        cfg = self.memory.load()
        if cfg is not None:
            self.set_config(cfg)
        self._on_form_changed()
        self._update_start()  # a fresh tab has no text yet: Start waits for it, and the hint says so

    # -- layout ------------------------------------------------------------------------------
    def _build(self) -> None:
        left = QWidget()
        left_layout = QVBoxLayout(left)
        self.corpus_box = CorpusBox()
        self.corpus_box.paths_changed.connect(self._refresh_corpus)
        box = self.corpus_box
        self.corpus_list, self.corpus_label = box.list, box.label
        self.add_files_button, self.add_folder_button = box.add_files_button, box.add_folder_button
        self.clear_corpus_button = box.clear_button
        left_layout.addWidget(box)

        self.form = ConfigForm(PretrainConfig, exclude=("task", "corpus", "max_length", "resume_from"))
        self.form.changed.connect(self._on_form_changed)
        model_row = QHBoxLayout()
        self.browse_model_button = QPushButton("Choose model folder…")
        self.browse_model_button.clicked.connect(self.open_model_dialog)
        model_row.addStretch(1)
        model_row.addWidget(self.browse_model_button)
        left_layout.addWidget(self.form)
        left_layout.addLayout(model_row)

        self.estimate_label = QLabel()
        self.estimate_label.setWordWrap(True)
        self.estimate_label.setTextFormat(Qt.TextFormat.RichText)
        left_layout.addWidget(self.estimate_label)
        left_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(left)
        scroll.setMinimumWidth(300)

        panel = self.panel
        self.probe_view = ProbeView()
        panel.tabs.addTab(self.probe_view, "Probe completions")
        self.finetune_button = panel.result_panel.add_button(
            "Use for fine-tuning", lambda: self.output and self.use_for_finetune.emit(self.output))
        self.playground_button = panel.result_panel.add_button(
            "Open in playground", lambda: self.output and self.open_in_playground.emit(self.output, ""))

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(scroll)
        split.addWidget(panel)
        split.setStretchFactor(1, 1)
        split.setChildrenCollapsible(False)
        QVBoxLayout(self).addWidget(split)
        panel.install_shortcuts(self)

    @property
    def output(self) -> str:
        return self.panel.output

    # -- corpus ------------------------------------------------------------------------------
    @property
    def corpus_summary(self):
        return self.corpus_box.summary

    @property
    def corpus_error(self) -> StudioError | None:
        return self.corpus_box.error

    def corpus(self) -> list[str]:
        return self.corpus_box.paths()

    def set_corpus(self, paths) -> None:
        self.corpus_box.set_paths(paths)

    def add_corpus(self, paths) -> None:
        self.corpus_box.add(paths)

    def open_files_dialog(self) -> None:
        self.corpus_box.open_files_dialog()

    def open_folder_dialog(self) -> None:
        self.corpus_box.open_folder_dialog()

    def open_model_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a model folder", settings.last_dir("model"))
        if folder:
            settings.set_last_dir("model", folder)
            self.form.set_value("model", folder)
            self._on_form_changed()

    def _refresh_corpus(self) -> None:
        self._corpus_reading = self._reading_values()
        self.corpus_box.count(self._value("text_column", "text"), *self._corpus_reading,
                              block_size=self._value("block_size", 256))
        self._update_estimate()
        self._update_start()

    # -- form --------------------------------------------------------------------------------
    def _reading_values(self) -> tuple:
        """The choices that change which documents the corpus holds (the text column is left out: it is
        typed, and re-reading a large corpus at every keystroke would stall the form)."""
        return self._value("dedupe", True), self._value("document_split", "blank_line")

    def _value(self, name, default=None):
        try:
            return self.form.value(name)
        except (KeyError, StudioError):
            return default

    def _on_form_changed(self) -> None:
        visible = visible_fields(self._value("mode"), self._value("objective"), self._value("architecture", ""),
                                 self._value("method"))
        for name, on in visible.items():
            if name in self.form.editors:
                self.form.set_field_visible(name, on)
        self.browse_model_button.setVisible(self._value("mode") == "continue")
        if (self.corpus_summary is not None and self.corpus_summary.block_size != self._value("block_size")) or \
                (self.corpus() and self._corpus_reading != self._reading_values()):
            self._refresh_corpus()
        else:
            self._update_estimate()

    def _update_estimate(self) -> None:
        self.estimate_label.setText(self.estimate_text())

    def estimate_text(self) -> str:
        """Parameters, memory, steps and time before Start, calibrated on this computer's last run."""
        estimate, device = self.estimator.estimate(self.form.values(), self.corpus_summary)
        return estimate.text(device)

    def config(self) -> PretrainConfig:
        return self.form.config(corpus=CORPUS_SEPARATOR.join(self.corpus()))

    def set_config(self, cfg: PretrainConfig) -> None:
        self.form.set_config(dataclasses.replace(cfg, resume_from=""))  # a resume is a one-off
        self.set_corpus(cfg.corpus_paths())
        self._on_form_changed()

    # -- running -----------------------------------------------------------------------------
    def start_problem(self) -> str | None:
        if not self.corpus():
            return "Add text files or a folder first."
        if self.corpus_error is not None:
            return self.corpus_error.message
        return self.preflight_problem()

    def _update_start(self) -> None:
        if not hasattr(self, "preflight_watch"):
            return  # still being built
        if self.corpus():
            self._check_live()
        problem = self.start_problem()
        self.panel.set_start_allowed(problem is None, problem or "")
        self.panel.set_hint(HINT.format(corpus="✔" if problem is None else "•"))

    def start(self) -> None:
        if self.panel.is_running():
            return
        try:
            if not self.corpus():
                raise BadConfig("No text was chosen.", "Add text files or a folder with Add files… / Add folder….",
                                field="corpus")
            if self.corpus_error is not None:
                raise self.corpus_error
            cfg = self.config()
        except StudioError as err:
            self.error_panel.show_exception(err)
            return
        self.memory.save(cfg)
        self.panel.launch(cfg, check_model=cfg.mode == "continue")

    def _set_running(self, running: bool) -> None:
        if running:
            self.probe_view.clear()
        for w in (self.form, self.add_files_button, self.add_folder_button, self.clear_corpus_button,
                  self.browse_model_button):
            w.setEnabled(not running)

    def _on_event(self, ev: dict) -> None:
        """What only pre-training shows: probe completions and the exact corpus numbers once tokenized."""
        t = ev.get("type")
        if t == "sample":
            self.probe_view.show_samples(ev)
        elif t == "progress" and isinstance(ev.get("corpus"), dict):
            self.corpus_box.show_tokenized(describe_corpus(ev["corpus"]))

    def _recalibrate(self, _final: dict) -> None:
        self.estimator.forget_calibration()  # the run just finished is the newest measurement
        self._update_estimate()

    def shutdown(self, timeout_ms: int = 60000) -> None:
        try:
            self.memory.save(self.config())
        except StudioError:
            pass
        self.preflight_watch.shutdown()
        self.panel.shutdown(timeout_ms)
