"""What a tab that runs training shares: starting a run in a worker, re-attaching to one, and wiring
the engine (EngineThread, or RunFollower for a re-attached run) to the tab's slots."""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtWidgets import QMessageBox

from studio.engine.errors import StudioError
from studio.ui import settings
from studio.ui.safety import confirm_model_safety


class RunHost:
    """Mixin for a QWidget tab. The tab provides: engine, grace_s, error_panel, progress, status_label,
    log_view, run_started (Signal), set_config(cfg), _set_running(bool), _reset_for_run(),
    _on_event(dict), _on_finished_run(dict); optionally _on_state(str); and the words RUN_NOUN
    ("Fine-tuning") and OUTPUT_NOUN ("the adapter") for its messages."""

    RUN_NOUN, OUTPUT_NOUN = "Training", "the output"

    def launch(self, cfg, *, check_model: bool = True) -> Path | None:
        """Ask about model code / pickle weights if needed, create the run folder and start its worker."""
        if check_model and not confirm_model_safety(self, cfg.model, cfg):
            self.error_panel.show_error("unsafe_model", "Not started: the model needs permissions you did not give.",
                                        "Choose another model, or start again and allow it.")
            return None
        from studio.engine.supervisor import prepare_run
        from studio.ui.engine_thread import EngineThread

        try:
            run_dir = prepare_run(cfg, settings.workspace())
        except (StudioError, OSError) as err:
            self.error_panel.show_exception(err)
            return None
        self._follow(run_dir, EngineThread(run_dir, grace_s=self.grace_s, parent=self))
        return run_dir

    def attach(self, run_dir: Path) -> None:
        """Show a run whose worker outlived an earlier window (or has just died: it then reads failed)."""
        if self.engine is not None:
            return
        from studio.engine.config import load_config
        from studio.ui.run_follower import RunFollower

        try:
            self.set_config(load_config(Path(run_dir) / "config.yaml"))
        except StudioError as err:
            self.error_panel.show_exception(err)
        self._follow(Path(run_dir), RunFollower(run_dir, parent=self))
        self._log("Re-attached to a run that was still going when the app last closed.")

    def _follow(self, run_dir: Path, engine) -> None:
        self.run_dir, self.final_event = run_dir, None
        self._reset_for_run()
        self.progress.setRange(0, 0)  # busy until the total is known
        self._set_running(True)
        self._log(f"Run folder: {run_dir}")
        self.status_label.setText("Starting the worker…")
        self.engine = engine
        engine.event.connect(self._on_event)
        if hasattr(self, "_on_state"):
            engine.state_changed.connect(self._on_state)
        engine.finished_run.connect(self._on_finished_run)
        engine.finished.connect(self._on_thread_done)
        engine.start()
        self.run_started.emit(run_dir)

    def is_running(self) -> bool:
        return self.engine is not None

    def stop(self) -> None:
        if self.engine is not None and self.engine.state not in ("stopping", "killing", "done"):
            self.engine.request_stop()
            self.status_label.setText(f"Stopping after this step (saving a checkpoint and {self.OUTPUT_NOUN})…")
            self._log(f"Stop requested; the worker gets {self.grace_s:g} s before it is killed.")

    def _log(self, text: str) -> None:
        self.log_view.appendPlainText(f"{time.strftime('%H:%M:%S')}  {text}")

    def _on_thread_done(self) -> None:
        engine, self.engine = self.engine, None
        self._set_running(False)
        if engine is not None:
            engine.deleteLater()

    def shutdown(self, timeout_ms: int = 60000) -> None:
        """Wait for the run's thread (the app is closing; the run was already stopped)."""
        if self.engine is not None:
            self.engine.wait(timeout_ms)

    def confirm_close(self) -> bool:
        """True if closing may go on now; otherwise offers to stop the run (graceful: it saves first)."""
        if self.engine is None:
            return True
        answer = QMessageBox.question(
            self, f"{self.RUN_NOUN} is in progress",
            f"{self.RUN_NOUN} is still running. Stop it? The worker finishes its step and saves a checkpoint and "
            f"{self.OUTPUT_NOUN}, then the window closes.",
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel, QMessageBox.StandardButton.Cancel)
        if answer == QMessageBox.StandardButton.Yes:
            self.stop()
        return False
