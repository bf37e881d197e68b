"""The playground's generation thread: keeps the models loaded between prompts, streams text as signals.

One long-lived QThread works through a queue of jobs (load, generate, inspect, batch). The
engine calls happen in this thread; signals cross to the GUI thread as queued connections.
Stop sets a threading.Event that a stopping criterion reads after every token.
torch and transformers are imported here only when the first job runs.
A chat that outgrows the context window is fitted by the engine (prompting.fit_chat): the oldest turns
are left out, and `context_note` says so.
No garbage collection here: a collection in this thread could destroy Qt objects of the GUI thread
(studio/ui/gc_guard.py collects in the GUI thread, and defers a library's own gc.collect() called here).
Closing never destroys the thread while it runs: a model load cannot be interrupted, so a thread still busy
when its tab closes is handed to the application, with its signals cut, and deletes itself once it ends.
"""

from __future__ import annotations

import queue
import threading
import traceback
import warnings

from PySide6.QtCore import QCoreApplication, QThread, Signal

from studio.engine.errors import StudioError


class GenerationThread(QThread):
    status = Signal(str)  # what it is doing, for people
    model_loaded = Signal(dict)  # {"sides": [...], "context_window": int, "shared": bool, "device": str}
    chunk = Signal(str, str)  # side, text
    progress = Signal(str, int, float)  # side, new tokens so far, seconds since the first of them
    context_note = Signal(str)  # what was left out of the chat to fit the context window ("" = nothing)
    reply = Signal(str, dict)  # side, GenerationResult as a dict
    inspected = Signal(dict)  # {"text", "tokens", "context_window", "pieces"}
    batch_row = Signal(int, dict)  # row index, {"prompt", "base", "tuned", ...}
    failed = Signal(str, str, str)  # kind, message, hint
    job_done = Signal(str)  # job kind: the UI is ready for the next one

    def __init__(self, parent=None):
        super().__init__(parent)
        self._jobs: queue.Queue = queue.Queue()
        self.stop_event = threading.Event()
        self.pair = None
        self._pair_key = None
        self.detached = False  # handed to the application by shutdown(): its tab is gone

    # ---- GUI thread -----------------------------------------------------------------------------------

    def submit(self, kind: str, **params) -> None:
        self.stop_event.clear()
        self._jobs.put((kind, params))
        if not self.isRunning():
            self.start()

    def stop(self) -> None:
        self.stop_event.set()

    def shutdown(self, wait_ms: int = 5_000) -> bool:
        """End the thread once its current job is done (a generation stops at the next token); True if it has
        ended. A job still running after `wait_ms` (a big model loading) finishes on its own, detached."""
        self.stop_event.set()
        if not self.isRunning():
            return True
        if self.detached:
            return False
        self._jobs.put(None)
        if self.wait(wait_ms):
            return True
        self._detach()
        return False

    def _detach(self) -> None:
        """Outlive the tab: no signal reaches its (soon deleted) widgets, the application owns the thread, the
        thread deletes itself when its job is done, and the application waits for it before it quits."""
        self.detached = True
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # PySide warns about a signal that had nothing connected
            for name in ("status", "model_loaded", "chunk", "progress", "context_note", "reply", "inspected",
                         "batch_row", "failed", "job_done"):
                getattr(self, name).disconnect()
        from studio.ui.runs.background import keep_until_done

        self.setParent(QCoreApplication.instance())
        self.finished.connect(self.deleteLater)
        if self.isFinished():  # it ended while this ran: `finished` has already been emitted
            self.deleteLater()
        else:
            keep_until_done(self)

    # ---- the thread -----------------------------------------------------------------------------------

    def run(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            kind, params = job
            try:
                getattr(self, f"_do_{kind}")(**params)
            except StudioError as exc:
                self.failed.emit(exc.kind, exc.message, exc.hint)
            except MemoryError:
                self.failed.emit("out_of_memory", "The computer ran out of memory.",
                                 "Choose a smaller model or lower the max new tokens.")
            except Exception as exc:  # noqa: BLE001 - shown to the user, never a crash of the window
                if type(exc).__name__ == "OutOfMemoryError":
                    self.failed.emit("out_of_memory", "The GPU ran out of memory.",
                                     "Choose a smaller model, shorten the prompt or lower the max new tokens.")
                else:
                    self.failed.emit("internal", f"{type(exc).__name__}: {exc}",
                                     traceback.format_exc(limit=3).strip().splitlines()[-1])
            finally:
                self.job_done.emit(kind)

    def _ensure_pair(self, model: str, tuned: str | None, options: dict):
        key = (model, tuned or None, tuple(sorted(options.items())))
        if self.pair is not None and key == self._pair_key:
            return self.pair
        self.status.emit("Loading the model…")
        # Free the old models before loading new ones (their reference cycles wait for the GUI thread's collector).
        self.pair = self._pair_key = None
        from studio.engine.generation import load_pair

        self.pair = load_pair(model, tuned, **options)
        self._pair_key = key
        self.model_loaded.emit({"sides": self.pair.sides, "context_window": self.pair.base.context_window,
                                "shared": self.pair.shared, "device": self.pair.base.choice.name})
        self.status.emit("Model loaded.")
        return self.pair

    def _do_load(self, model: str, tuned: str | None, options: dict) -> None:
        self._ensure_pair(model, tuned, options)

    def _render(self, pair, preset, conversation, prompt) -> tuple[str, str]:
        """The text the model receives, and what was left out of a chat to fit the context window."""
        from studio.engine.prompt_fit import fit_chat
        from studio.engine.prompting import render

        if preset.mode != "chat":
            return render(pair.base.tokenizer, preset, conversation=conversation, prompt=prompt), ""
        turns = conversation if conversation is not None else [{"role": "user", "content": prompt}]
        fitted = fit_chat(pair.base.tokenizer, preset, turns, pair.base.context_window)
        return fitted.text, fitted.note()

    def _do_inspect(self, model: str, tuned: str | None, options: dict, preset, conversation, prompt: str) -> None:
        from studio.engine.prompt_fit import inspect_prompt

        pair = self._ensure_pair(model, tuned, options)
        text, note = self._render(pair, preset, conversation, prompt)
        self.context_note.emit(note)
        info = inspect_prompt(pair.base.tokenizer, text, pair.base.context_window,
                              add_special_tokens=preset.mode != "chat")
        self.inspected.emit({"text": info.text, "tokens": info.tokens, "context_window": info.context_window,
                             "pieces": info.token_pieces})

    def _do_generate(self, model: str, tuned: str | None, options: dict, preset, conversation, prompt: str,
                     sides: list[str], samples: dict | None = None) -> None:
        """`sides`: base and/or tuned; or, with `samples` ({name: SamplingSettings}), replies of the primary side
        (the fine-tuned one when there is one) named by those keys, each with its own settings."""
        pair = self._ensure_pair(model, tuned, options)
        text, note = self._render(pair, preset, conversation, prompt)
        self.context_note.emit(note)
        if samples:
            runs = [(name, pair.primary(), sampling) for name, sampling in samples.items()]
        else:
            runs = [(s, s, preset.sampling) for s in [s for s in sides if s in pair.sides] or [pair.primary()]]
        for name, side, sampling in runs:
            if self.stop_event.is_set():
                break
            self.status.emit(f"Generating ({name if samples else 'fine-tuned' if side == 'tuned' else 'base'})…")
            result = pair.generate(side, text, sampling, chat=preset.mode == "chat",
                                   on_text=lambda chunk, s=name: self.chunk.emit(s, chunk),
                                   on_tokens=lambda n, seconds, s=name: self.progress.emit(s, n, seconds),
                                   stop_event=self.stop_event)
            self.reply.emit(name, result.as_dict())
        self.status.emit("Stopped." if self.stop_event.is_set() else "Ready.")

    def _do_batch(self, model: str, tuned: str | None, options: dict, preset, prompts: list[str]) -> None:
        pair = self._ensure_pair(model, tuned, options)
        for i, prompt in enumerate(prompts):
            if self.stop_event.is_set():
                break
            self.status.emit(f"Batch: prompt {i + 1} of {len(prompts)}…")
            row = {"prompt": prompt}
            try:
                text, note = self._render(pair, preset, None, prompt)
                if note:
                    row["note"] = note
                for side in pair.sides:
                    result = pair.generate(side, text, preset.sampling, chat=preset.mode == "chat",
                                           stop_event=self.stop_event)
                    row[side] = result.text
                    row[f"{side}_tokens"] = result.new_tokens
            except StudioError as exc:  # one bad prompt (empty, too long) does not end the batch
                row["error"] = exc.message
            self.batch_row.emit(i, row)
        self.status.emit("Batch stopped." if self.stop_event.is_set() else "Batch done.")
