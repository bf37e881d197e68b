"""The Pre-train tab: choose text files or a folder, pick from scratch or continued, causal or masked LM,
a size preset and options; see the corpus summary and the size/memory/time estimate before Start; watch
the losses, perplexity and probe completions live; use the result for fine-tuning or in the playground.

Training runs in a worker process supervised by an EngineThread; nothing here imports torch.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFileDialog, QGroupBox, QHBoxLayout, QLabel, QListWidget,
                               QPlainTextEdit, QProgressBar, QPushButton, QScrollArea, QSplitter, QTabWidget,
                               QVBoxLayout, QWidget)

from studio.engine import presets
from studio.engine.errors import BadConfig, StudioError
from studio.engine.pretrain_config import CORPUS_SEPARATOR, PretrainConfig, split_corpus
from studio.ui import settings
from studio.ui.widgets.formatting import fmt_duration
from studio.ui.run_host import RunHost
from studio.ui.widgets.config_form import ConfigForm
from studio.ui.widgets.error_panel import ErrorPanel
from studio.ui.widgets.loss_plot import LossPlot

TEXT_FILTER = ("Text and data files (*.txt *.md *.text *.json *.jsonl *.ndjson *.csv *.tsv *.parquet);;"
               "All files (*)")
SCRATCH_ONLY = ("architecture", "hidden_size", "num_layers", "num_heads", "intermediate_size", "vocab_size")
CUSTOM_ONLY = ("hidden_size", "num_layers", "num_heads", "intermediate_size")
CONTINUE_ONLY = ("model", "allow_download", "trust_remote_code", "allow_pickle", "method")
LORA_ONLY = ("lora_r", "lora_alpha", "lora_dropout", "target_modules")
MLM_ONLY = ("mlm_probability", "whole_word_masking")
CLM_ONLY = ("probe_prompts", "probe_tokens")


class PretrainTab(RunHost, QWidget):
    RUN_NOUN, OUTPUT_NOUN = "Pre-training", "the model so far"
    use_for_finetune = Signal(str)  # the model folder
    open_in_playground = Signal(str, str)  # model folder, adapter ("" = none)
    run_started = Signal(object)  # the run folder
    run_ended = Signal(dict)  # the final event

    def __init__(self, parent=None, *, grace_s: float = 30.0):
        super().__init__(parent)
        self.grace_s = grace_s
        self.engine = None
        self.run_dir: Path | None = None
        self.final_event: dict | None = None
        self.output = ""
        self.corpus_summary = None  # the estimate (CorpusSummary) of the chosen corpus
        self.corpus_error: StudioError | None = None
        self._build()
        self._on_form_changed()

    # -- layout ------------------------------------------------------------------------------
    def _build(self) -> None:
        left = QWidget()
        left_layout = QVBoxLayout(left)

        corpus_box = QGroupBox("Corpus")
        cl = QVBoxLayout(corpus_box)
        self.corpus_list = QListWidget()
        self.corpus_list.setMaximumHeight(90)
        self.corpus_list.setToolTip("Plain text files (one document per file), or JSON/JSONL/CSV/Parquet files "
                                    "(one document per row, from the text column), or folders of them.")
        row = QHBoxLayout()
        self.add_files_button = QPushButton("Add files…")
        self.add_folder_button = QPushButton("Add folder…")
        self.clear_corpus_button = QPushButton("Clear")
        for b in (self.add_files_button, self.add_folder_button, self.clear_corpus_button):
            row.addWidget(b)
        self.add_files_button.clicked.connect(self.open_files_dialog)
        self.add_folder_button.clicked.connect(self.open_folder_dialog)
        self.clear_corpus_button.clicked.connect(lambda: self.set_corpus([]))
        self.corpus_label = QLabel("No text chosen yet.")
        self.corpus_label.setWordWrap(True)
        cl.addWidget(self.corpus_list)
        cl.addLayout(row)
        cl.addWidget(self.corpus_label)
        left_layout.addWidget(corpus_box)

        self.form = ConfigForm(PretrainConfig, exclude=("task", "corpus", "max_length"))
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
        buttons = QHBoxLayout()
        self.start_button = QPushButton("Start")
        self.stop_button = QPushButton("Stop")
        self.stop_button.setEnabled(False)
        self.start_button.clicked.connect(self.start)
        self.stop_button.clicked.connect(self.stop)
        buttons.addWidget(self.start_button)
        buttons.addWidget(self.stop_button)
        left_layout.addLayout(buttons)
        left_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(left)
        scroll.setMinimumWidth(360)

        right = QWidget()
        rl = QVBoxLayout(right)
        self.error_panel = ErrorPanel()
        rl.addWidget(self.error_panel)
        self.status_label = QLabel("Choose your text and press Start.")
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.stats_label = QLabel("")
        self.metrics_label = QLabel("")
        for w in (self.status_label, self.progress, self.stats_label, self.metrics_label):
            rl.addWidget(w)
        self.loss_plot = LossPlot(title="Loss (train and held-out)")
        self.ppl_plot = LossPlot(title="Held-out perplexity")
        self.ppl_plot.plot.setLabel("left", "perplexity")
        self.ppl_plot.plot.setLogMode(False, True)
        plots = QSplitter(Qt.Orientation.Vertical)
        plots.addWidget(self.loss_plot)
        plots.addWidget(self.ppl_plot)
        self.right_tabs = QTabWidget()
        self.right_tabs.addTab(plots, "Curves")
        self.probe_view = QPlainTextEdit()
        self.probe_view.setReadOnly(True)
        self.probe_view.setPlaceholderText("Decoders: the probe prompts and the model's completions at each "
                                           "evaluation appear here.")
        self.right_tabs.addTab(self.probe_view, "Probe completions")
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.right_tabs.addTab(self.log_view, "Log")
        rl.addWidget(self.right_tabs, 1)

        self.result_panel = QWidget()
        res = QHBoxLayout(self.result_panel)
        res.setContentsMargins(0, 0, 0, 0)
        self.result_label = QLabel()
        self.result_label.setWordWrap(True)
        self.finetune_button = QPushButton("Use for fine-tuning")
        self.playground_button = QPushButton("Open in playground")
        self.finetune_button.clicked.connect(lambda: self.output and self.use_for_finetune.emit(self.output))
        self.playground_button.clicked.connect(lambda: self.output and self.open_in_playground.emit(self.output, ""))
        res.addWidget(self.result_label, 1)
        res.addWidget(self.finetune_button)
        res.addWidget(self.playground_button)
        self.result_panel.hide()
        rl.addWidget(self.result_panel)

        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(scroll)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        QVBoxLayout(self).addWidget(split)

    # -- corpus ------------------------------------------------------------------------------
    def corpus(self) -> list[str]:
        return [self.corpus_list.item(i).text() for i in range(self.corpus_list.count())]

    def set_corpus(self, paths) -> None:
        self.corpus_list.clear()
        for p in split_corpus(paths) if isinstance(paths, str) else [str(p) for p in paths]:
            if p not in self.corpus():
                self.corpus_list.addItem(p)
        self._refresh_corpus()

    def add_corpus(self, paths) -> None:
        self.set_corpus(self.corpus() + [str(p) for p in paths])

    def open_files_dialog(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Choose text files", settings.last_dir("corpus"), TEXT_FILTER)
        if paths:
            settings.set_last_dir("corpus", paths[0])
            self.add_corpus(paths)

    def open_folder_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a folder of text files", settings.last_dir("corpus"))
        if folder:
            settings.set_last_dir("corpus", folder)
            self.add_corpus([folder])

    def open_model_dialog(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Choose a model folder", settings.last_dir("model"))
        if folder:
            settings.set_last_dir("model", folder)
            self.form.set_value("model", folder)
            self._on_form_changed()

    def _refresh_corpus(self) -> None:
        from studio.engine.data.corpus import estimate_summary, load_corpus

        self.corpus_summary, self.corpus_error = None, None
        paths = self.corpus()
        if not paths:
            self.corpus_label.setText("No text chosen yet.")
        else:
            try:
                corpus = load_corpus(paths, self._value("text_column", "text"), self._value("dedupe", True))
                self.corpus_summary = estimate_summary(corpus, max(1, self._value("block_size", 256)))
                self.corpus_label.setText(self.corpus_summary.describe() + " (exact counts once tokenized)")
                self.corpus_label.setStyleSheet("")
            except StudioError as err:
                self.corpus_error = err
                self.corpus_label.setText(err.message)
                self.corpus_label.setStyleSheet("color: #b02a20;")
        self._update_estimate()

    # -- form --------------------------------------------------------------------------------
    def _value(self, name, default=None):
        try:
            return self.form.value(name)
        except (KeyError, StudioError):
            return default

    def _on_form_changed(self) -> None:
        mode, objective = self._value("mode"), self._value("objective")
        arch, method = self._value("architecture", ""), self._value("method")
        visible = {
            **{n: mode == "scratch" for n in SCRATCH_ONLY},
            **{n: mode == "continue" for n in CONTINUE_ONLY},
            **{n: mode == "scratch" and str(arch).startswith("custom") for n in CUSTOM_ONLY},
            **{n: mode == "continue" and method == "lora" for n in LORA_ONLY},
            **{n: objective == "mlm" for n in MLM_ONLY},
            **{n: objective == "clm" for n in CLM_ONLY},
        }
        for name, on in visible.items():
            if name in self.form.editors:
                self.form.set_field_visible(name, on)
        self.browse_model_button.setVisible(mode == "continue")
        if self.corpus_summary is not None and self.corpus_summary.block_size != self._value("block_size"):
            self._refresh_corpus()
        else:
            self._update_estimate()

    def _update_estimate(self) -> None:
        self.estimate_label.setText(self.estimate_text())

    def estimate_text(self) -> str:
        """Parameters, memory and time before Start (rough, and marked so)."""
        v = self.form.values()
        block, batch = v["block_size"], v["batch_size"] * v["gradient_accumulation"]
        params = None
        arch = None
        if v["mode"] == "scratch":
            try:
                arch = presets.resolve_arch(v["architecture"], v["hidden_size"], v["num_layers"], v["num_heads"],
                                            v["intermediate_size"])
            except KeyError:
                return ""
            params = presets.parameter_count(arch, v["vocab_size"], block)
        else:
            params = _params_from_folder(v["model"])
        if params is None:
            return "Choose a model folder to see its size."
        text = f"<b>{presets.human_count(params)} parameters</b>"
        if arch is not None:
            mem = presets.memory_estimate(arch, v["vocab_size"], block, v["batch_size"])
        else:
            trainable = 0.02 if v["method"] == "lora" else 1.0
            mem = params * 4 + params * trainable * 12 + 300 * 2**20 + v["batch_size"] * block * 2**14
        text += f" · training memory ≈ {presets.human_bytes(mem)}"
        steps = v["max_steps"]
        if not steps and self.corpus_summary is not None and self.corpus_summary.blocks:
            train_blocks = self.corpus_summary.blocks * (1 - v["validation_fraction"])
            steps = math.ceil(v["epochs"] * train_blocks / batch)
        if steps:
            tokens = steps * batch * block
            flops = (presets.flops_per_token(arch, v["vocab_size"], block) if arch else 6 * params) * tokens
            device = "cpu" if v["device"] in ("auto", "cpu") else v["device"]
            secs = flops / presets.THROUGHPUT[device]
            text += (f" · {steps:,} steps, {presets.human_count(tokens)} tokens · time on a CPU ≈ "
                     f"{presets.human_seconds(secs)}" + (f" (a GPU: ≈ {presets.human_seconds(flops / presets.THROUGHPUT['cuda'])})"
                                                        if device == "cpu" else ""))
        return text + " <i>(rough estimates)</i>"

    def config(self) -> PretrainConfig:
        return self.form.config(corpus=CORPUS_SEPARATOR.join(self.corpus()))

    def set_config(self, cfg: PretrainConfig) -> None:
        self.form.set_config(cfg)
        self.set_corpus(cfg.corpus_paths())
        self._on_form_changed()

    # -- running -----------------------------------------------------------------------------
    def start(self) -> None:
        if self.engine is not None:
            return
        self.error_panel.clear()
        self.result_panel.hide()
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
        self.launch(cfg, check_model=cfg.mode == "continue")

    def _reset_for_run(self) -> None:
        self.output = ""
        for view in (self.loss_plot, self.ppl_plot, self.probe_view, self.log_view):
            view.clear()
        self.metrics_label.setText("")
        self.stats_label.setText("")

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.stop_button.setEnabled(running)
        for w in (self.form, self.add_files_button, self.add_folder_button, self.clear_corpus_button,
                  self.browse_model_button):
            w.setEnabled(not running)

    def _on_event(self, ev: dict) -> None:
        t = ev.get("type")
        if t == "log":
            step, total = int(ev.get("step") or 0), int(ev.get("total_steps") or 0)
            if total:
                self.progress.setRange(0, total)
                self.progress.setValue(min(step, total))
            if isinstance(ev.get("loss"), (int, float)):
                self.loss_plot.add_point("train", step, ev["loss"])
            tps = ev.get("tokens_per_s")
            seen = ev.get("tokens_seen")
            self.stats_label.setText(
                f"elapsed {fmt_duration(ev.get('elapsed_s'))} · ETA {fmt_duration(ev.get('eta_s'))}"
                + (f" · {presets.human_count(seen)} tokens seen" if isinstance(seen, (int, float)) else "")
                + (f" · {tps:,.0f} tokens/s" if isinstance(tps, (int, float)) else ""))
            if self.engine is None or self.engine.state not in ("stopping", "killing"):
                self.status_label.setText(f"Training: step {step} of {total}, loss {ev.get('loss', float('nan')):.4f}")
        elif t == "eval":
            step = ev.get("step", 0)
            if isinstance(ev.get("eval_loss"), (int, float)):
                self.loss_plot.add_point("eval", step, ev["eval_loss"])
            if isinstance(ev.get("perplexity"), (int, float)):
                self.ppl_plot.add_point("perplexity", step, ev["perplexity"])
            acc = ev.get("masked_accuracy")
            text = (f"Held-out at step {step}: loss {ev.get('eval_loss', float('nan')):.4f}, perplexity "
                    f"{ev.get('perplexity', float('nan')):.2f}"
                    + (f", masked-token accuracy {acc:.1%}" if isinstance(acc, (int, float)) else ""))
            self.metrics_label.setText(text)
            self._log(text)
        elif t == "sample":
            lines = [f"— step {ev.get('step')} —"]
            for s in ev.get("samples") or []:
                lines.append(f"{s.get('prompt')!s} ⟶ {s.get('completion')!s}")
            self.probe_view.appendPlainText("\n".join(lines) + "\n")
        elif t == "progress":
            phase, frac = ev.get("phase", ""), ev.get("fraction")
            self.status_label.setText(f"{phase.capitalize()}…" + (f" {frac:.0%}" if frac else ""))
            if ev.get("corpus"):
                c = ev["corpus"]
                self.corpus_label.setText(
                    f"{c['documents']} documents, {c['tokens']:,} tokens, {c['blocks']:,} blocks of "
                    f"{c['block_size']} ({c['train_blocks']} for training, {c['validation_blocks']} held out)"
                    + (f"; {c['duplicates_removed']} duplicates removed" if c.get("duplicates_removed") else ""))
                self._log(self.corpus_label.text())
            elif not frac:
                self._log(phase)
        elif t == "started":
            total = int(ev.get("total_steps") or 0)
            if total:
                self.progress.setRange(0, total)
                self.progress.setValue(int(ev.get("resumed_at") or 0))
            self._log(f"started on {ev.get('device_name', ev.get('device'))} ({ev.get('precision')}), {total} steps, "
                      f"{ev.get('trainable_parameters', 0):,} trainable parameters of {ev.get('parameters', 0):,}")
        elif t == "checkpoint":
            self._log(f"checkpoint at step {ev.get('step')}: {ev.get('path')}")
        elif t in ("finished", "failed"):
            self._log(f"{t}: {ev.get('status') or ev.get('message')}")

    def _on_finished_run(self, final: dict) -> None:
        self.final_event = final
        self.loss_plot.redraw()
        self.ppl_plot.redraw()
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        if final.get("type") == "finished":
            status = final.get("status", "completed")
            self.output = final.get("output") or ""
            if status == "completed":
                self.progress.setValue(self.progress.maximum())
            best = (final.get("summary") or {}).get("best_eval_loss")
            what = "Stopped; the model so far was saved" if status == "stopped" else "Done"
            self.result_label.setText(f"<b>{what}.</b> Model: {self.output}" + (
                f"<br>Best held-out loss {best:.4f} (perplexity {math.exp(min(best, 50)):.2f})"
                if isinstance(best, (int, float)) else ""))
            self.result_panel.show()
            self.status_label.setText("Finished." if status == "completed" else f"{what}.")
        else:
            self.error_panel.show_event(final)
            self.status_label.setText("The run failed.")
        self.run_ended.emit(final)


def _params_from_folder(folder: str) -> int | None:
    """Parameter count of a model folder from its safetensors headers (no torch)."""
    path = Path(folder or "").expanduser()
    if not path.is_dir():
        return None
    total = 0
    for f in path.glob("*.safetensors"):
        try:
            with open(f, "rb") as fh:
                n = int.from_bytes(fh.read(8), "little")
                header = json.loads(fh.read(n))
        except (OSError, ValueError):
            continue
        for name, info in header.items():
            if name != "__metadata__":
                total += math.prod(info.get("shape") or [1])
    return total or None
