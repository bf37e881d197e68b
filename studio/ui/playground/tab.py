"""The Prompt playground: in-context learning with streaming, few-shot examples, and base beside fine-tuned.

Nothing here imports torch or transformers: the generation thread loads them with the first model.
Compare runs the base and the fine-tuned side one after the other on the same rendered prompt,
settings and seed. With an adapter the model is in memory once (a PeftModel; the base side runs
with the adapter disabled); a fully fine-tuned model folder is loaded as a second model.
In chat mode the reply of the side chosen in "Continue with" joins the conversation (without a
comparison, the one side's; with "Two replies", the one picked: see feedback.py). A message that gets no
reply (a failure, or Stop before any text) leaves the conversation again and goes back to the prompt box.
A chat longer than the context window is fitted by the engine (the oldest turns are left out), and the
Conversation page says what was left out.
The page widgets live in studio/ui/playground/; this file composes them and holds the flow.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (QFormLayout, QHBoxLayout, QLabel, QLineEdit, QPushButton, QSizePolicy,
                               QSplitter, QTabWidget, QVBoxLayout, QWidget)

from studio.engine.errors import StudioError
from studio.engine.prompting.presets import Preset
from studio.ui.generation_thread import GenerationThread
from studio.ui.playground.batch import BatchView
from studio.ui.playground.classify_view import attach_classify_view
from studio.ui.playground.compare import SAMPLES, describe_result
from studio.ui.playground.conversation import ConversationView
from studio.ui.playground.feedback import PlaygroundFeedback
from studio.ui.playground.files import PlaygroundFiles
from studio.ui.playground.in_context import InContextPanel
from studio.ui.playground.inspector import InspectorView
from studio.ui.playground.run_picker import RunPicker
from studio.ui.safety import NOT_ALLOWED, ModelPermissions
from studio.ui.widgets.error_panel import ErrorPanel
from studio.ui.widgets.model_picker import ModelPicker


class PlaygroundTab(PlaygroundFiles, PlaygroundFeedback, QWidget):
    busy_changed = Signal(bool)
    use_dataset_in_finetune = Signal(str)  # a dataset file just saved here, to fine-tune on
    evaluate_requested = Signal(dict)  # evaluation config fields: this model, adapter, prompt and examples
    train_on_feedback = Signal(dict)  # preference-tuning fields: the feedback file, objective, model, adapter

    def __init__(self, parent=None):
        super().__init__(parent)
        self.generation = GenerationThread(self)
        self.permissions, self._load_options = ModelPermissions(), {}  # what the person allowed, per model folder
        self.busy = False
        self.good: list[list[dict]] = []  # conversations whose last reply the user marked good
        self.last_prompt = ""
        self._primary = "base"
        self._job = {}  # the running generation: chat or not, the side that joins, what to undo without a reply
        self._note = ""
        self._build()
        self._init_feedback()
        g = self.generation
        g.chunk.connect(self._on_chunk)
        g.progress.connect(self._on_progress)
        g.reply.connect(self._on_reply)
        g.failed.connect(self._on_failed)
        g.job_done.connect(self._on_job_done)
        g.status.connect(self.status.setText)
        g.model_loaded.connect(self._on_model_loaded)
        g.context_note.connect(self._on_context_note)
        g.inspected.connect(self._on_inspected)
        g.batch_row.connect(self._on_batch_row)
        self._update_compare()
        self._update_mode()
        self._set_busy(False)

    # ---- building -------------------------------------------------------------------------------------

    def _build(self) -> None:
        self.model_picker = ModelPicker(self)
        self.tuned_edit = QLineEdit()
        self.tuned_edit.setPlaceholderText("optional: an adapter/ or model/ folder of a run")
        self.tuned_edit.setToolTip("An adapter folder (adapter_config.json) or a fully fine-tuned model folder. "
                                   "Compare shows its replies beside the base model's.")
        self.tuned_edit.textChanged.connect(self._update_compare)
        self.run_picker = RunPicker(self)
        self.run_picker.run_chosen.connect(self.open_run)
        tuned_browse = QPushButton("Browse…")
        tuned_browse.clicked.connect(self._browse_tuned)
        self.load_button = QPushButton("Load")
        self.load_button.clicked.connect(self.load_models)
        self.evaluate_button = QPushButton("Evaluate…")
        self.evaluate_button.setToolTip("Score this model (and the adapter) with this system prompt and these "
                                        "few-shot examples on a held-out file, in the Evaluate tab")
        self.evaluate_button.clicked.connect(self.evaluate)
        self.status = QLabel("No model loaded yet; it loads with the first prompt.")
        self.status.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self.error_panel = ErrorPanel(self)
        top = QFormLayout()
        top.addRow("Model", self.model_picker)
        row = QHBoxLayout()
        row.addWidget(self.tuned_edit, 2)
        row.addWidget(self.run_picker, 1)
        row.addWidget(tuned_browse)
        row.addWidget(self.load_button)
        row.addWidget(self.evaluate_button)
        top.addRow("Adapter / fine-tuned", row)

        self.in_context = InContextPanel()
        left = self.in_context
        self.mode, self.system, self.examples, self.template = left.mode, left.system, left.examples, left.template
        self.sampling, self.good_label, self.dataset_format = left.sampling, left.good_label, left.dataset.format
        self.mode.currentIndexChanged.connect(self._update_mode)
        self.in_context.load_preset_button.clicked.connect(self._ask_load_preset)
        self.in_context.save_preset_button.clicked.connect(self._ask_save_preset)
        self.in_context.dataset.path_chosen.connect(self.save_dataset_file)
        self.in_context.dataset.use_in_finetune.connect(self.use_dataset_in_finetune)

        self.chat = ConversationView()
        chat = self.chat
        self.compare, self.continue_with, self.panes, self.prompt = chat.compare, chat.continue_with, chat.panes, \
            chat.prompt
        self.send_button, self.stop_button, self.regen_button = chat.send_button, chat.stop_button, chat.regen_button
        self.clear_button, self.good_button, self.conversation = chat.clear_button, chat.good_button, chat.table
        self.compare.toggled.connect(self._update_panes)
        self.send_button.clicked.connect(lambda: self.send())
        self.stop_button.clicked.connect(self.stop)
        self.regen_button.clicked.connect(self.regenerate)
        self.clear_button.clicked.connect(self.clear_conversation)

        self.batch = BatchView()
        self.batch_table, self.batch_file, self.run_batch_button = self.batch.table, self.batch.file_label, \
            self.batch.run_button
        self.batch.open_button.clicked.connect(self._ask_batch_file)
        self.batch.run_button.clicked.connect(self.run_batch)
        self.batch.save_button.clicked.connect(self._ask_save_batch)
        self.inspector = InspectorView()
        self.inspect_button, self.inspect_label, self.inspect_text = self.inspector.button, self.inspector.label, \
            self.inspector.text
        self.inspect_button.clicked.connect(self.inspect)

        self.views = QTabWidget()
        self.views.addTab(self.chat, "Conversation")
        self.views.addTab(self.batch, "Batch")
        self.views.addTab(self.inspector, "Inspector")
        split = QSplitter(Qt.Orientation.Horizontal)
        split.setChildrenCollapsible(False)
        split.addWidget(self.in_context)
        split.addWidget(self.views)
        split.setStretchFactor(1, 1)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.error_panel)
        layout.addWidget(attach_classify_view(self, split), 1)  # a classifier gets its own view
        layout.addWidget(self.status)

    # ---- state ---------------------------------------------------------------------------------------

    @property
    def batch_rows(self) -> list[dict]:
        return self.batch.rows

    def load_pair(self, model: str, adapter: str | None = None) -> None:
        """Select a base model and (optionally) an adapter or fine-tuned model folder ("Open in playground")."""
        self.model_picker.set_model(model)
        self.tuned_edit.setText(adapter or "")
        self.compare.setChecked(bool(adapter))
        self._update_panes()
        self.status.setText("Selected; the model loads with the first prompt (or press Load).")

    def open_run(self, model: str, adapter: str) -> None:
        """A run chosen in the run picker: select its model (and adapter) and load them."""
        self.load_pair(model, adapter or None)
        self.load_models()

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
        return self.chat.turns()

    def _tuned(self) -> str | None:
        return self.tuned_edit.text().strip() or None

    def _job_args(self) -> dict:
        return dict(model=self.model_picker.model(), tuned=self._tuned(), options=self._load_options or {})

    def _sides(self) -> list[str]:
        self._primary = "tuned" if self._tuned() else "base"
        if self._tuned() and self.compare.isChecked():
            return ["base", "tuned"]
        return list(SAMPLES) if self._picking() else [self._primary]

    def _joining_side(self) -> str:
        """The side whose reply joins the conversation: the one chosen to continue with in a comparison."""
        sides = self._sides()
        return self.continue_with.currentData() if len(sides) > 1 else sides[0]

    def _update_compare(self) -> None:
        self.chat.set_compare_available(bool(self._tuned()))
        self._update_panes()

    def _update_mode(self) -> None:
        chat = self.mode.currentData() == "chat"
        self.conversation.setVisible(chat)
        self.clear_button.setVisible(chat)
        self.template.setEnabled(not chat)
        self._update_panes()

    def _update_panes(self) -> None:
        sides = self._sides()
        self.chat.show_sides(sides, self.mode.currentData() == "chat", self._picking())
        self._title_samples(sides)

    def _set_busy(self, busy: bool) -> None:
        self.busy = busy
        for w in (self.send_button, self.regen_button, self.load_button, self.run_batch_button, self.run_picker,
                  self.inspect_button, self.good_button, self.clear_button):
            w.setEnabled(not busy)
        self.stop_button.setEnabled(busy)
        self.chat.set_busy(busy)
        self._update_feedback_controls()
        self.busy_changed.emit(busy)

    def is_busy(self) -> bool:
        return self.busy

    def _submit(self, kind: str, **params) -> None:
        self.error_panel.clear()
        self._set_busy(True)
        if self._models_allowed(kind):
            self.generation.submit(kind, **self._job_args(), **params)

    def _models_allowed(self, kind: str) -> bool:
        """Ask before loading a model with its own code or pickle weights (once per folder); a refusal ends the
        job before it starts, as a failure would."""
        self._load_options = self.permissions.ask(self, self.model_picker.model(), self._tuned())
        if self._load_options is None:
            self._on_failed("unsafe_model", *NOT_ALLOWED)
            self._on_job_done(kind)
        return self._load_options is not None

    # ---- actions -------------------------------------------------------------------------------------

    def load_models(self) -> None:
        if self.classify_view.active:
            self.classify_view.load()
        elif not self.busy:
            self._submit("load")

    def send(self, text: str | None = None) -> None:
        """Send the typed message (chat) or continue the typed text (completion)."""
        if self.busy:
            return
        text = self.prompt.toPlainText() if text is None else text
        preset = self.preset()
        added = None
        if preset.mode == "chat":
            if text.strip():
                if self._refuse_second_message():
                    return
                self.chat.add_turn("user", text)
                self.prompt.clear()
                added = text
            elif not (self.conversation_turns() and self.conversation_turns()[-1]["role"] == "user"):
                self._show_error(StudioError("The prompt is empty.", "Type a message for the model first."))
                return
        elif not text.strip():
            self._show_error(StudioError("The prompt is empty.", "Type the text the model should continue first."))
            return
        self.last_prompt = text
        self._generate(preset, text, added=added)

    def _generate(self, preset: Preset, prompt: str, added: str | None = None, replaced=()) -> None:
        """`added`: the message this send put in the conversation; `replaced`: the replies Regenerate took out.
        Both are undone if no reply joins (a failure, or Stop before any text)."""
        sides = self._sides()
        self._update_panes()
        self.views.setCurrentWidget(self.chat)  # where the reply streams
        for pane in self.panes.values():
            pane.clear()
        chat = preset.mode == "chat"
        self._job = dict(chat=chat, joining=None if self._picking() else self._joining_side(), joined=False,
                         added=added, replaced=list(replaced))
        samples = self._begin_replies(preset, prompt, sides)
        self._submit("generate", preset=preset, conversation=self.conversation_turns() if chat else None,
                     prompt=prompt, sides=sides, samples=samples)

    def regenerate(self) -> None:
        if self.busy:
            return
        preset = self.preset()
        if preset.mode == "chat":
            replaced = self.chat.pop_replies()
            if not self.conversation.rowCount():
                return self._show_error(StudioError("There is no message to answer again."))
            self._generate(preset, "", replaced=replaced)
        elif self.last_prompt.strip():
            self._generate(preset, self.last_prompt)

    def stop(self) -> None:
        self.generation.stop()

    def clear_conversation(self) -> None:
        self.chat.clear()
        self._forget_replies()

    def inspect(self) -> None:
        if self.busy:
            return
        preset = self.preset()
        text = self.prompt.toPlainText()
        conversation = self.conversation_turns() if preset.mode == "chat" else None
        if conversation is not None and text.strip():
            conversation = conversation + [{"role": "user", "content": text}]
        self.views.setCurrentWidget(self.inspector)
        self._submit("inspect", preset=preset, conversation=conversation, prompt=text)

    def run_batch(self) -> None:
        if self.busy:
            return
        if not self.batch.prompts:
            return self._show_error(StudioError("Open a prompts file first.",
                                                "A .txt file (one prompt a line) or JSON Lines with \"prompt\"."))
        self.batch.clear_rows()
        self._sides()
        self._submit("batch", preset=self.preset(), prompts=list(self.batch.prompts))

    # ---- thread signals ------------------------------------------------------------------------------

    def _show_error(self, exc: StudioError) -> None:
        self.error_panel.show_error(exc.kind, exc.message, exc.hint)

    def _on_chunk(self, side: str, text: str) -> None:
        self.chat.pane(side).append(text)

    def _on_progress(self, side: str, tokens: int, seconds: float) -> None:
        self.chat.pane(side).show_progress(tokens, seconds)

    def _on_inspected(self, info: dict) -> None:
        self.inspector.show_info(info, self._note)

    def _on_batch_row(self, index: int, row: dict) -> None:
        self.batch.add_row(row)

    def _on_reply(self, side: str, result: dict) -> None:
        self.chat.pane(side).stats.setText(describe_result(result))
        job = self._job
        no_text = result["stop_reason"] == "stopped" and not result["text"]
        self._reply_arrived(side, result["text"], no_text)
        if job.get("chat") and side == job["joining"] and not no_text:
            self.chat.add_turn("assistant", result["text"])
            job["joined"] = True

    def _on_failed(self, kind: str, message: str, hint: str) -> None:
        self.error_panel.show_error(kind, message, hint)
        self.status.setText("Failed; see the message above.")

    def _on_job_done(self, kind: str) -> None:
        if kind == "generate":
            self._replies_done()
            if self._job.get("chat") and not self._job["joined"]:
                self._undo_unanswered()
        self._job = {}
        self._set_busy(False)

    def _undo_unanswered(self) -> None:
        """No reply joined: the conversation is as it was before, and the message is back in the prompt box."""
        added, replaced = self._job["added"], self._job["replaced"]
        turns = self.conversation_turns()
        if added is not None and turns and turns[-1] == {"role": "user", "content": added}:
            self.chat.pop_turn()
            if not self.prompt.toPlainText().strip():
                self.prompt.setPlainText(added)
        for turn in replaced:
            self.chat.add_turn(turn["role"], turn["content"])
        why = "Failed; see the message above." if self.error_panel.isVisible() else "Stopped before a reply."
        self.status.setText(why + (" Your message is back in the prompt box." if added is not None else ""))

    def _on_model_loaded(self, info: dict) -> None:
        self.status.setText(f"Loaded on {info['device']}; context window {info['context_window']} tokens.")

    def _on_context_note(self, note: str) -> None:
        self._note = note
        self.chat.set_note(note)

    # ---- closing -------------------------------------------------------------------------------------

    def shutdown(self) -> None:
        self.generation.shutdown()
        self.classify_view.shutdown()
