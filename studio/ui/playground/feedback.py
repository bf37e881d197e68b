"""The playground's feedback loop: two replies to pick the better from, thumbs on a single reply, and the feedback
file they fill (studio.engine.preference.feedback), which "Train on my feedback" hands to preference tuning.

A mixin of PlaygroundTab (it uses the tab's widgets, its running job and its error panel), as PlaygroundFiles is.
With "Two replies" on, each Send or Regenerate asks for two replies: base and fine-tuned when Compare is on, else
two samples of the loaded model. Neither joins a chat by itself: the picked one does; after "Both bad" the
message stays unanswered, so Regenerate asks again. A pair waits for its pick until the next generation.
"""

from __future__ import annotations

from pathlib import Path

from studio.engine.errors import StudioError
from studio.engine.preference.feedback import (Suggestion, count_feedback, describe_sample, feedback_path,
                                               make_source, record_mark, record_pair, suggest, two_samples)
from studio.ui import settings
from studio.ui.playground.compare import SAMPLES

TWO_REPLIES_KEY = "playground/two_replies"
NO_PAIR = "There are no two replies to pick from yet."
GREEDY_NOTE = " Sample 2 was sampled (greedy decoding gives the same reply every time)."


class PlaygroundFeedback:
    def _init_feedback(self) -> None:
        chat = self.chat
        self.two_replies, self.bad_button, self.pick_bar = chat.two_replies, chat.bad_button, chat.pick_bar
        self.feedback_line = chat.feedback
        self.pair: dict | None = None  # two finished replies waiting for a pick: sides, texts, shown, prompt, chat
        self._answered: dict = {}  # the reply that joined last (side, text, prompt, chat): what thumbs judge
        self._counted = None  # the feedback file as last counted: (path, mtime, size)
        self.suggestion = Suggestion(None, "")
        self.two_replies.setChecked(settings.value(TWO_REPLIES_KEY, False, bool))
        self.two_replies.toggled.connect(self._two_replies_toggled)
        self.pick_bar.left.clicked.connect(lambda: self.pick("left"))
        self.pick_bar.right.clicked.connect(lambda: self.pick("right"))
        self.pick_bar.both_bad.clicked.connect(self.both_bad)
        self.pick_bar.edit.toggled.connect(self._update_feedback_controls)
        self.good_button.clicked.connect(self.mark_good)
        self.bad_button.clicked.connect(self.mark_bad)
        self.feedback_line.train_button.clicked.connect(self.train_on_my_feedback)
        self.feedback_line.refresh_wanted.connect(self.refresh_feedback)
        self.refresh_feedback()

    def feedback_file(self) -> Path:
        return feedback_path(settings.workspace())

    def _picking(self) -> bool:
        return self.two_replies.isChecked()

    def _two_replies_toggled(self, on: bool) -> None:
        settings.set_value(TWO_REPLIES_KEY, on)
        if not on:
            self.pair = None
        self._update_panes()
        self._update_feedback_controls()

    def _title_samples(self, sides: list[str]) -> None:
        if tuple(sides) != SAMPLES:
            return
        sampling = self.sampling.settings()
        whose = "the fine-tuned model" if self._tuned() else "the model"
        for name, settings_, forced in zip(SAMPLES, two_samples(sampling), (False, sampling.greedy)):
            note = describe_sample(settings_, forced)
            self.chat.pane(name).set_title(f"{name.capitalize()} · {note}", f"A reply of {whose}: {note}.")

    # ---- a generation and its replies ------------------------------------------------------------------

    def _begin_replies(self, preset, prompt: str, sides: list[str]) -> dict | None:
        """Note what the running job answers; the settings of two samples of one model (else None)."""
        chat = preset.mode == "chat"
        system = self.system.toPlainText()
        messages = ([{"role": "system", "content": system}] if chat and system.strip() else []) + \
            (self.conversation_turns() if chat else [{"role": "user", "content": prompt}])
        self.pair = None
        self._job.update(picking=self._picking(), sides=list(sides), replies={}, prompt_messages=messages,
                         greedy=preset.sampling.greedy)
        self._title_samples(sides)
        return dict(zip(SAMPLES, two_samples(preset.sampling))) if tuple(sides) == SAMPLES else None

    def _reply_arrived(self, side: str, text: str, no_text: bool) -> None:
        job = self._job
        if no_text or "replies" not in job:
            return
        job["replies"][side] = text
        if side == job.get("joining"):
            self._answered = dict(side=side, text=text, prompt=job["prompt_messages"], chat=job["chat"])

    def _replies_done(self) -> None:
        """Both replies came: they wait for the pick (and the message counts as answered meanwhile)."""
        job = self._job
        if not job.get("picking") or len(job.get("replies", {})) < 2:
            return
        job["joined"] = True
        texts = dict(job["replies"])
        note = GREEDY_NOTE if tuple(job["sides"]) == SAMPLES and job["greedy"] else ""
        if not all(t.strip() for t in texts.values()):  # the model ended at once: nothing to judge or keep
            self.status.setText("A reply came back empty: Regenerate for two new ones." + note)
            return
        # What the panes show, to tell an edit from the pane's own rendering (a text box drops "\r" and turns
        # no-break spaces into plain ones): an unedited reply is recorded exactly as the model gave it.
        shown = {side: self.chat.pane(side).text() for side in texts}
        self.pair = dict(sides=job["sides"], texts=texts, shown=shown, prompt=job["prompt_messages"],
                         chat=job["chat"])
        same = len(set(t.strip() for t in texts.values())) == 1
        self.status.setText(("The two replies are the same: edit one before picking it, mark both bad, or "
                             "Regenerate." if same else "Which reply is better? Pick one, or Both bad.") + note)

    def _forget_replies(self) -> None:
        self.pair, self._answered = None, {}
        self._update_feedback_controls()

    def _update_feedback_controls(self) -> None:
        waiting = self.pair is not None and not self.busy
        self.pick_bar.set_ready(waiting)
        for pane in self.panes.values():
            pane.set_editable(waiting and self.pick_bar.edit.isChecked())
        for button in (self.good_button, self.bad_button):
            button.setEnabled(not self.busy and self.pair is None)

    def _refuse_second_message(self) -> bool:
        """A chat whose last message is unanswered (its two replies wait for a pick, or both were bad) takes no
        new message: two user turns in a row break many chat templates."""
        turns = self.conversation_turns()
        if turns and turns[-1]["role"] == "user":
            self._show_error(StudioError("The last message has no reply yet.",
                                         "Pick the better of the two replies, or press Regenerate for new ones "
                                         "(Clear conversation starts again)."))
            return True
        return False

    # ---- marks ---------------------------------------------------------------------------------------

    def _source(self, sides: list[str], edited: bool = False) -> dict:
        return make_source(self.model_picker.model(), self._tuned(), sides, edited)

    def _record(self, write, *args) -> bool:
        path = self.feedback_file()
        try:
            write(path, *args)
        except StudioError as exc:
            self._show_error(exc)
            return False
        except OSError as exc:
            self._show_error(StudioError(f"Could not write the feedback file {path}: {exc.strerror or exc}.",
                                         "Check that the workspace folder can be written (File > Settings)."))
            return False
        self.error_panel.clear()
        self.refresh_feedback()
        return True

    def pick(self, which: str) -> bool:
        """"left" or "right" is the better reply: a pair (the chosen text as shown: the person may have edited
        it); in a chat, it joins the conversation."""
        pair = self.pair
        if pair is None or self.busy:
            self._show_error(StudioError(NO_PAIR))
            return False
        left, right = pair["sides"]
        chosen_side, rejected_side = (left, right) if which == "left" else (right, left)
        shown = self.chat.pane(chosen_side).text()
        edited = shown != pair["shown"][chosen_side]
        chosen = shown if edited else pair["texts"][chosen_side]
        source = self._source([chosen_side, rejected_side], edited)
        if not self._record(record_pair, pair["prompt"], chosen, pair["texts"][rejected_side], source):
            return False
        if pair["chat"]:
            self.chat.add_turn("assistant", chosen)
        self.pair, self._answered = None, dict(side=chosen_side, text=chosen, prompt=pair["prompt"], chat=pair["chat"])
        self._update_feedback_controls()
        self.status.setText(f"Saved: the {which} reply is better.")
        return True

    def both_bad(self) -> bool:
        """Both replies marked bad; a chat's message stays unanswered."""
        pair = self.pair
        if pair is None or self.busy:
            self._show_error(StudioError(NO_PAIR))
            return False
        for side in pair["sides"]:  # as the model gave them: an edit only matters for a pair's chosen reply
            if not self._record(record_mark, pair["prompt"], pair["texts"][side], False, self._source([side])):
                return False
        self.pair = None
        self._update_feedback_controls()
        self.status.setText("Saved both replies as bad." + (" Regenerate asks again." if pair["chat"] else ""))
        return True

    def mark_good(self) -> bool:
        """Good: the last reply, marked good in the feedback file, and kept (with the turns before it) for the
        dataset the examples are saved as."""
        return self._mark(True)

    def mark_bad(self) -> bool:
        return self._mark(False)

    def _mark(self, good: bool) -> bool:
        if self.pair is not None:
            self._show_error(StudioError("Pick the better of the two replies first (or Both bad)."))
            return False
        system = self.system.toPlainText()
        system_turn = [{"role": "system", "content": system}] if system.strip() else []
        chat = self.mode.currentData() == "chat"
        answered = self._answered if self._answered.get("chat") == chat else {}
        if chat:
            turns = self.conversation_turns()
            if not turns or turns[-1]["role"] != "assistant":
                self._show_error(StudioError("There is no reply to mark yet."))
                return False
            prompt, reply, conversation = system_turn + turns[:-1], turns[-1]["content"], turns
        else:
            if not answered:
                self._show_error(StudioError("There is no reply to mark yet."))
                return False
            prompt, reply = answered["prompt"], answered["text"]
            conversation = prompt + [{"role": "assistant", "content": reply}]
        edited = bool(answered) and reply != answered["text"]  # a chat's reply changed in the conversation table
        side = answered.get("side") or ("tuned" if self._tuned() else "base")
        if not self._record(record_mark, prompt, reply, good, self._source([side], edited)):
            return False
        if good:
            self.good.append(system_turn + conversation)
            self.good_label.setText(f"{len(self.good)} replies marked good")
        self.status.setText(f"Saved: the last reply is {'good' if good else 'bad'}.")
        return True

    # ---- the file, and training on it -----------------------------------------------------------------

    def refresh_feedback(self) -> None:
        """Count the marks in the workspace's feedback file again, if it (or the workspace) changed."""
        path = self.feedback_file()
        try:
            stat = path.stat()
            key = (path, stat.st_mtime_ns, stat.st_size)
        except OSError:
            key = (path, None, None)
        if key == self._counted:
            return
        self._counted = key
        try:
            counts = count_feedback(path)
        except (StudioError, OSError) as exc:
            self.suggestion = Suggestion(None, exc.message if isinstance(exc, StudioError) else str(exc))
            self.feedback_line.show_counts(path, "the file cannot be read", False, self.suggestion.reason)
            return
        self.suggestion = suggest(counts)
        self.feedback_line.show_counts(path, str(counts), self.suggestion.objective is not None,
                                       self.suggestion.reason)

    def train_on_my_feedback(self) -> dict | None:
        """Hand the feedback file to the Fine-tune tab's preference tuning: the suggested objective, on the model
        that replied (with its adapter, or a fully fine-tuned model folder itself)."""
        self._counted = None
        self.refresh_feedback()
        objective = self.suggestion.objective
        if objective is None:
            self._show_error(StudioError("There is nothing to train on yet.", self.suggestion.reason))
            return None
        model, tuned = self.model_picker.model(), self._tuned() or ""
        if not model.strip():
            self._show_error(StudioError("Choose the model whose replies you marked first."))
            return None
        full_model = tuned and (Path(tuned) / "config.json").is_file() and \
            not (Path(tuned) / "adapter_config.json").is_file()
        fields = dict(dataset=str(self.feedback_file()), objective=objective, model=tuned if full_model else model,
                      adapter="" if full_model else tuned)
        self.train_on_feedback.emit(fields)
        return fields
