"""The Prompt playground: in-context learning with streaming, few-shot examples, and base beside fine-tuned.

Nothing here imports torch or transformers: the generation thread loads them with the first model.
Compare runs the base and the fine-tuned side one after the other on the same rendered prompt,
settings and seed. With an adapter the model is in memory once (a PeftModel; the base side runs
with the adapter disabled); a fully fine-tuned model folder is loaded as a second model.
In chat mode the fine-tuned side's reply (the base model's, without one) joins the conversation.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QCheckBox, QComboBox, QFileDialog, QFormLayout, QGroupBox, QHBoxLayout, QHeaderView,
                               QLabel, QLineEdit, QPlainTextEdit, QPushButton, QScrollArea, QSplitter, QTableWidget,
                               QTableWidgetItem, QTabWidget, QVBoxLayout, QWidget)

from studio.engine.errors import StudioError
from studio.engine.prompting import (DATASET_FORMATS, DEFAULT_COMPLETION_TEMPLATE, Preset, batch_columns,
                                     example_conversations,
                                     load_preset, read_prompt_file, save_batch_results, save_dataset, save_preset)
from studio.ui.generation_thread import GenerationThread
from studio.ui.playground.compare import SIDE_TITLES, SidePane, describe_result
from studio.ui.playground.examples import ExampleEditor
from studio.ui.playground.sampling import SamplingPanel
from studio.ui.widgets.error_panel import ErrorPanel
from studio.ui.widgets.model_picker import ModelPicker

class PlaygroundTab(QWidget):
    busy_changed = Signal(bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.thread = GenerationThread(self)
        self.busy = False
        self.good: list[list[dict]] = []  # conversations whose last reply the user marked good
        self.last_prompt = ""
        self.batch_rows: list[dict] = []
        self._primary = "base"
        self._build()
        self.thread.chunk.connect(self._on_chunk)
        self.thread.reply.connect(self._on_reply)
        self.thread.failed.connect(self._on_failed)
        self.thread.job_done.connect(self._on_job_done)
        self.thread.status.connect(self.status.setText)
        self.thread.model_loaded.connect(self._on_model_loaded)
        self.thread.inspected.connect(self._on_inspected)
        self.thread.batch_row.connect(self._on_batch_row)
        self._update_mode()
        self._set_busy(False)

    # ---- building -------------------------------------------------------------------------------------

    def _build(self) -> None:
        self.model_picker = ModelPicker(self)
        self.tuned_edit = QLineEdit()
        self.tuned_edit.setPlaceholderText("optional: an adapter/ folder or a fine-tuned model/ folder of a run")
        self.tuned_edit.setToolTip("An adapter folder (adapter_config.json) or a fully fine-tuned model folder. "
                                   "Compare shows its replies beside the base model's.")
        tuned_browse = QPushButton("Browse…")
        tuned_browse.clicked.connect(self._browse_tuned)
        self.load_button = QPushButton("Load")
        self.load_button.clicked.connect(self.load_models)
        self.status = QLabel("No model loaded yet; it loads with the first prompt.")
        self.error_panel = ErrorPanel(self)
        top = QFormLayout()
        top.addRow("Model", self.model_picker)
        row = QHBoxLayout()
        row.addWidget(self.tuned_edit, 1)
        row.addWidget(tuned_browse)
        row.addWidget(self.load_button)
        top.addRow("Adapter / fine-tuned", row)

        # Left: the in-context part and the settings.
        self.mode = QComboBox()
        self.mode.addItem("Chat (through the chat template)", "chat")
        self.mode.addItem("Completion (raw text continues)", "completion")
        self.mode.currentIndexChanged.connect(self._update_mode)
        self.system = QPlainTextEdit()
        self.system.setPlaceholderText("System prompt (optional)")
        self.system.setMaximumHeight(80)
        self.examples = ExampleEditor()
        self.template = QLineEdit(DEFAULT_COMPLETION_TEMPLATE.replace("\n", "\\n"))
        self.template.setToolTip("How each example is written in completion mode; \\n is a new line.")
        self.sampling = SamplingPanel()
        load_preset_button = QPushButton("Load preset…")
        save_preset_button = QPushButton("Save preset…")
        load_preset_button.clicked.connect(self._ask_load_preset)
        save_preset_button.clicked.connect(self._ask_save_preset)
        self.dataset_format = QComboBox()
        self.dataset_format.addItems(DATASET_FORMATS)
        save_dataset_button = QPushButton("Save examples as dataset…")
        save_dataset_button.setToolTip("The few-shot examples and the replies marked good, as a fine-tuning "
                                       "dataset for the Fine-tune tab.")
        save_dataset_button.clicked.connect(self._ask_save_dataset)
        self.good_label = QLabel("0 replies marked good")

        left = QWidget()
        lv = QVBoxLayout(left)
        form = QFormLayout()
        form.addRow("Mode", self.mode)
        form.addRow("System", self.system)
        lv.addLayout(form)
        ex_box = QGroupBox("Few-shot examples")
        QVBoxLayout(ex_box).addWidget(self.examples)
        ex_box.layout().addWidget(QLabel("Completion template"))
        ex_box.layout().addWidget(self.template)
        lv.addWidget(ex_box)
        s_box = QGroupBox("Sampling")
        QVBoxLayout(s_box).addWidget(self.sampling)
        lv.addWidget(s_box)
        presets = QHBoxLayout()
        presets.addWidget(load_preset_button)
        presets.addWidget(save_preset_button)
        lv.addLayout(presets)
        ds = QHBoxLayout()
        ds.addWidget(self.dataset_format)
        ds.addWidget(save_dataset_button)
        lv.addLayout(ds)
        lv.addWidget(self.good_label)
        lv.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(left)

        # Right: conversation + compare, batch, inspector.
        self.panes = {"base": SidePane(SIDE_TITLES["base"]), "tuned": SidePane(SIDE_TITLES["tuned"])}
        self.compare = QCheckBox("Compare base and fine-tuned side by side")
        self.compare.setChecked(True)
        self.compare.toggled.connect(self._update_panes)
        sides = QSplitter(Qt.Orientation.Horizontal)
        sides.addWidget(self.panes["base"])
        sides.addWidget(self.panes["tuned"])
        self.conversation = QTableWidget(0, 2)
        self.conversation.setHorizontalHeaderLabels(["Role", "Text"])
        self.conversation.horizontalHeader().setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.conversation.setToolTip("The conversation so far; double-click a text to edit it.")
        self.prompt = QPlainTextEdit()
        self.prompt.setPlaceholderText("Your message (chat) or the text to continue (completion)")
        self.prompt.setMaximumHeight(90)
        self.send_button = QPushButton("Send")
        self.stop_button = QPushButton("Stop")
        self.regen_button = QPushButton("Regenerate")
        self.clear_button = QPushButton("Clear conversation")
        self.good_button = QPushButton("Mark reply good")
        self.send_button.clicked.connect(lambda: self.send())
        self.stop_button.clicked.connect(self.stop)
        self.regen_button.clicked.connect(self.regenerate)
        self.clear_button.clicked.connect(self.clear_conversation)
        self.good_button.clicked.connect(self.mark_good)
        buttons = QHBoxLayout()
        for b in (self.send_button, self.stop_button, self.regen_button, self.clear_button, self.good_button):
            buttons.addWidget(b)
        chat = QWidget()
        cv = QVBoxLayout(chat)
        cv.addWidget(self.compare)
        cv.addWidget(sides, 3)
        cv.addWidget(self.conversation, 2)
        cv.addWidget(self.prompt)
        cv.addLayout(buttons)

        self.batch_table = QTableWidget(0, 0)
        self.batch_file = QLabel("No prompts file.")
        open_batch = QPushButton("Open prompts file…")
        open_batch.setToolTip("A .txt file with one prompt a line, or JSON Lines with a \"prompt\" field.")
        open_batch.clicked.connect(self._ask_batch_file)
        self.run_batch_button = QPushButton("Run batch")
        self.run_batch_button.clicked.connect(self.run_batch)
        save_batch = QPushButton("Save results…")
        save_batch.clicked.connect(self._ask_save_batch)
        batch = QWidget()
        bv = QVBoxLayout(batch)
        bh = QHBoxLayout()
        for w in (open_batch, self.batch_file, self.run_batch_button, save_batch):
            bh.addWidget(w)
        bv.addLayout(bh)
        bv.addWidget(self.batch_table)
        self.batch_prompts: list[str] = []

        self.inspect_button = QPushButton("Inspect the prompt")
        self.inspect_button.clicked.connect(self.inspect)
        self.inspect_label = QLabel("The exact text the model receives, after the template and examples.")
        self.inspect_text = QPlainTextEdit()
        self.inspect_text.setReadOnly(True)
        inspector = QWidget()
        iv = QVBoxLayout(inspector)
        iv.addWidget(self.inspect_button)
        iv.addWidget(self.inspect_label)
        iv.addWidget(self.inspect_text)

        self.views = QTabWidget()
        self.views.addTab(chat, "Conversation")
        self.views.addTab(batch, "Batch")
        self.views.addTab(inspector, "Inspector")
        split = QSplitter(Qt.Orientation.Horizontal)
        split.addWidget(scroll)
        split.addWidget(self.views)
        split.setStretchFactor(1, 2)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.error_panel)
        layout.addWidget(split, 1)
        layout.addWidget(self.status)

    # ---- state ---------------------------------------------------------------------------------------

    def load_pair(self, model: str, adapter: str | None = None) -> None:
        """Select a base model and (optionally) an adapter or fine-tuned model folder ("Open in playground")."""
        self.model_picker.set_model(model)
        self.tuned_edit.setText(adapter or "")
        self.compare.setChecked(bool(adapter))
        self._update_panes()
        self.status.setText("Selected; the model loads with the first prompt (or press Load).")

    def preset(self) -> Preset:
        return Preset(mode=self.mode.currentData(), system=self.system.toPlainText(),
                      examples=self.examples.examples(),
                      completion_template=self.template.text().replace("\\n", "\n"),
                      sampling=self.sampling.settings())

    def set_preset(self, preset: Preset) -> None:
        self.mode.setCurrentIndex(self.mode.findData(preset.mode))
        self.system.setPlainText(preset.system)
        self.examples.set_examples(preset.examples)
        self.template.setText(preset.completion_template.replace("\n", "\\n"))
        self.sampling.set_settings(preset.sampling)

    def conversation_turns(self) -> list[dict]:
        turns = []
        for row in range(self.conversation.rowCount()):
            turns.append({"role": self.conversation.item(row, 0).text(),
                          "content": self.conversation.item(row, 1).text()})
        return turns

    def _add_turn(self, role: str, content: str) -> None:
        row = self.conversation.rowCount()
        self.conversation.insertRow(row)
        role_item = QTableWidgetItem(role)
        role_item.setFlags(role_item.flags() & ~Qt.ItemFlag.ItemIsEditable)
        self.conversation.setItem(row, 0, role_item)
        self.conversation.setItem(row, 1, QTableWidgetItem(content))

    def _tuned(self) -> str | None:
        return self.tuned_edit.text().strip() or None

    def _job_args(self) -> dict:
        return dict(model=self.model_picker.model(), tuned=self._tuned(), options={})

    def _sides(self) -> list[str]:
        self._primary = "tuned" if self._tuned() else "base"
        return ["base", "tuned"] if self._tuned() and self.compare.isChecked() else [self._primary]

    def _update_mode(self) -> None:
        chat = self.mode.currentData() == "chat"
        self.conversation.setVisible(chat)
        self.clear_button.setVisible(chat)
        self.template.setEnabled(not chat)

    def _update_panes(self) -> None:
        sides = self._sides()
        for side, pane in self.panes.items():
            pane.setVisible(side in sides)

    def _set_busy(self, busy: bool) -> None:
        self.busy = busy
        for w in (self.send_button, self.regen_button, self.load_button, self.run_batch_button,
                  self.inspect_button, self.good_button, self.clear_button):
            w.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        self.busy_changed.emit(busy)

    def is_busy(self) -> bool:
        return self.busy

    def _submit(self, kind: str, **params) -> None:
        self.error_panel.clear()
        self._set_busy(True)
        self.thread.submit(kind, **self._job_args(), **params)

    # ---- actions -------------------------------------------------------------------------------------

    def load_models(self) -> None:
        if not self.busy:
            self._submit("load")

    def send(self, text: str | None = None) -> None:
        """Send the typed message (chat) or continue the typed text (completion)."""
        if self.busy:
            return
        text = self.prompt.toPlainText() if text is None else text
        preset = self.preset()
        if preset.mode == "chat":
            if text.strip():
                self._add_turn("user", text)
                self.prompt.clear()
            elif not (self.conversation_turns() and self.conversation_turns()[-1]["role"] == "user"):
                self._show_error(StudioError("The prompt is empty.", "Type a message for the model first."))
                return
        elif not text.strip():
            self._show_error(StudioError("The prompt is empty.", "Type the text the model should continue first."))
            return
        self.last_prompt = text
        self._generate(preset, text)

    def _generate(self, preset: Preset, prompt: str) -> None:
        sides = self._sides()
        self._update_panes()
        for pane in self.panes.values():
            pane.clear()
        conversation = self.conversation_turns() if preset.mode == "chat" else None
        self._submit("generate", preset=preset, conversation=conversation, prompt=prompt, sides=sides)

    def regenerate(self) -> None:
        if self.busy:
            return
        preset = self.preset()
        if preset.mode == "chat":
            while self.conversation.rowCount() and self.conversation_turns()[-1]["role"] == "assistant":
                self.conversation.removeRow(self.conversation.rowCount() - 1)
            if not self.conversation.rowCount():
                return self._show_error(StudioError("There is no message to answer again."))
            self._generate(preset, "")
        elif self.last_prompt.strip():
            self._generate(preset, self.last_prompt)

    def stop(self) -> None:
        self.thread.stop()

    def clear_conversation(self) -> None:
        self.conversation.setRowCount(0)
        for pane in self.panes.values():
            pane.clear()

    def mark_good(self) -> None:
        """Keep the last reply (with the turns before it) for the dataset."""
        if self.mode.currentData() == "chat":
            turns = self.conversation_turns()
            if not turns or turns[-1]["role"] != "assistant":
                return self._show_error(StudioError("There is no reply to mark yet."))
            conv = turns
        else:
            reply = self.panes[self._primary].text()
            if not (self.last_prompt.strip() and reply.strip()):
                return self._show_error(StudioError("There is no reply to mark yet."))
            conv = [{"role": "user", "content": self.last_prompt}, {"role": "assistant", "content": reply}]
        system = self.system.toPlainText()
        self.good.append(([{"role": "system", "content": system}] if system.strip() else []) + conv)
        self.good_label.setText(f"{len(self.good)} replies marked good")

    def inspect(self) -> None:
        if self.busy:
            return
        preset = self.preset()
        text = self.prompt.toPlainText()
        conversation = self.conversation_turns() if preset.mode == "chat" else None
        if conversation is not None and text.strip():
            conversation = conversation + [{"role": "user", "content": text}]
        self.views.setCurrentIndex(2)
        self._submit("inspect", preset=preset, conversation=conversation, prompt=text)

    def run_batch(self) -> None:
        if self.busy:
            return
        if not self.batch_prompts:
            return self._show_error(StudioError("Open a prompts file first.",
                                                "A .txt file (one prompt a line) or JSON Lines with \"prompt\"."))
        self.batch_rows = []
        self.batch_table.setRowCount(0)
        self._sides()
        self._submit("batch", preset=self.preset(), prompts=list(self.batch_prompts))

    # ---- files (the dialogs call these; tests call them directly) ----------------------------------------

    def load_preset_file(self, path) -> bool:
        try:
            self.set_preset(load_preset(path))
        except StudioError as exc:
            self._show_error(exc)
            return False
        return True

    def save_preset_file(self, path) -> bool:
        try:
            save_preset(self.preset(), path)
        except StudioError as exc:
            self._show_error(exc)
            return False
        return True

    def dataset_conversations(self) -> list[list[dict]]:
        return example_conversations(self.examples.examples(), self.system.toPlainText()) + self.good

    def save_dataset_file(self, path, fmt: str | None = None) -> bool:
        try:
            save_dataset(self.dataset_conversations(), path, fmt or self.dataset_format.currentText())
        except StudioError as exc:
            self._show_error(exc)
            return False
        self.status.setText(f"Saved {len(self.dataset_conversations())} examples to {path}.")
        return True

    def load_batch_file(self, path) -> bool:
        try:
            self.batch_prompts = read_prompt_file(path)
        except StudioError as exc:
            self._show_error(exc)
            return False
        self.batch_file.setText(f"{Path(path).name}: {len(self.batch_prompts)} prompts")
        return True

    def save_batch_file(self, path) -> bool:
        if not self.batch_rows:
            self._show_error(StudioError("There are no batch results to save yet."))
            return False
        try:
            save_batch_results(self.batch_rows, path)
        except OSError as exc:
            self._show_error(StudioError(f"Could not write {path}: {exc}"))
            return False
        return True

    def _ask_load_preset(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load preset", "", "Presets (*.json)")
        if path:
            self.load_preset_file(path)

    def _ask_save_preset(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save preset", "preset.json", "Presets (*.json)")
        if path:
            self.save_preset_file(path)

    def _ask_save_dataset(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save examples as dataset", "examples.jsonl",
                                              "JSON Lines (*.jsonl);;JSON (*.json)")
        if path:
            self.save_dataset_file(path)

    def _ask_batch_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open prompts", "", "Prompts (*.txt *.jsonl)")
        if path:
            self.load_batch_file(path)

    def _ask_save_batch(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save batch results", "results.csv",
                                              "CSV (*.csv);;JSON Lines (*.jsonl)")
        if path:
            self.save_batch_file(path)

    def _browse_tuned(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Adapter or fine-tuned model folder")
        if path:
            self.tuned_edit.setText(path)

    # ---- thread signals ------------------------------------------------------------------------------

    def _show_error(self, exc: StudioError) -> None:
        self.error_panel.show_error(exc.kind, exc.message, exc.hint)

    def _on_chunk(self, side: str, text: str) -> None:
        self.panes[side].append(text)

    def _on_reply(self, side: str, result: dict) -> None:
        self.panes[side].stats.setText(describe_result(result))
        if side == self._primary and self.mode.currentData() == "chat":
            self._add_turn("assistant", result["text"])

    def _on_failed(self, kind: str, message: str, hint: str) -> None:
        self.error_panel.show_error(kind, message, hint)
        self.status.setText("Failed; see the message above.")

    def _on_job_done(self, kind: str) -> None:
        self._set_busy(False)

    def _on_model_loaded(self, info: dict) -> None:
        self.status.setText(f"Loaded on {info['device']}; context window {info['context_window']} tokens.")

    def _on_inspected(self, info: dict) -> None:
        over = " — longer than the context window!" if info["tokens"] >= info["context_window"] else ""
        self.inspect_label.setText(f"{info['tokens']} tokens / {info['context_window']} context{over}")
        self.inspect_text.setPlainText(info["text"])

    def _on_batch_row(self, index: int, row: dict) -> None:
        self.batch_rows.append(row)
        columns = batch_columns(self.batch_rows)
        self.batch_table.setColumnCount(len(columns))
        self.batch_table.setHorizontalHeaderLabels(columns)
        self.batch_table.setRowCount(len(self.batch_rows))
        for i, r in enumerate(self.batch_rows):
            for j, c in enumerate(columns):
                self.batch_table.setItem(i, j, QTableWidgetItem(str(r.get(c, ""))))

    # ---- closing -------------------------------------------------------------------------------------

    def shutdown(self) -> None:
        self.thread.shutdown()
