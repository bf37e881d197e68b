"""The one run panel of every training tab: Start/Stop, progress, status, ETA, the curves, the log, the
result (or the error) with its actions, and the supervision of the run's worker.

What it shows is a rendering of one `RunState` (studio.engine.run_state), folded from the run's events;
the tab around it only builds the config and decides what its result buttons do.
"""

from __future__ import annotations

import datetime as _dt
import time
from pathlib import Path

from PySide6.QtCore import QTimer, QUrl, Qt, Signal
from PySide6.QtGui import QDesktopServices, QKeySequence, QShortcut
from PySide6.QtWidgets import (QHBoxLayout, QLabel, QPlainTextEdit, QProgressBar, QPushButton, QSplitter,
                               QTabWidget, QVBoxLayout, QWidget)

from studio.engine.run_state import RunState, describe_event
from studio.ui.widgets.checks_view import ChecksView
from studio.ui.widgets.error_panel import ErrorPanel
from studio.ui.widgets.formatting import fmt_duration
from studio.ui.widgets.loss_plot import LossPlot
from studio.ui.widgets.result_panel import ResultPanel

READY = "Ready."


class RunPanel(QWidget):
    start_requested = Signal()
    resume_requested = Signal(object)  # the run folder to continue from its last checkpoint
    run_started = Signal(object)  # the new run folder
    run_ended = Signal(dict)  # the final event
    running_changed = Signal(bool)
    event_seen = Signal(dict)  # every event, after the panel has shown it (tabs add their own views)

    def __init__(self, parent=None, *, run_noun: str = "Training", output_noun: str = "the output",
                 grace_s: float = 30.0, perplexity_plot: bool = False):
        super().__init__(parent)
        self.run_noun, self.output_noun, self.grace_s = run_noun, output_noun, grace_s
        self.engine = None  # EngineThread (a run this window started) or RunFollower (a re-attached one)
        self.run_dir: Path | None = None
        self.final_event: dict | None = None
        self.state = RunState()
        self.state_views: list[QWidget] = []  # task-specific views (add_state_view), redrawn from the state
        self._build(perplexity_plot)
        self._ticker = QTimer(self)  # the ETA counts down between logged steps
        self._ticker.setInterval(1000)
        self._ticker.timeout.connect(self._render_stats)

    # -- layout ------------------------------------------------------------------------------
    def _build(self, perplexity_plot: bool) -> None:
        self.start_button = QPushButton("Start")
        self.start_button.setToolTip("Start (Ctrl+Enter)")
        self.start_button.setStyleSheet("font-weight: bold; padding: 4px 18px;")
        self.start_button.clicked.connect(self.start_requested)
        self.stop_button = QPushButton("Stop")
        self.stop_button.setToolTip(f"Stop after the current step and save {self.output_noun} (Ctrl+.)")
        self.stop_button.setEnabled(False)
        self.stop_button.clicked.connect(self.stop)
        self.progress = QProgressBar()
        self.progress.setRange(0, 1)
        self.progress.setValue(0)
        self.progress.setFormat("step %v / %m")
        top = QHBoxLayout()
        for w, stretch in ((self.start_button, 0), (self.stop_button, 0), (self.progress, 1)):
            top.addWidget(w, stretch)

        self.status_label = QLabel(READY)
        self.stats_label = QLabel("")
        self.stats_label.setStyleSheet("color: #555;")
        status = QHBoxLayout()
        status.addWidget(self.status_label, 1)
        status.addWidget(self.stats_label)
        self.hint_label = QLabel()  # the empty state: what to do first
        self.hint_label.setWordWrap(True)
        self.hint_label.setTextFormat(Qt.TextFormat.RichText)
        self.hint_label.setStyleSheet("color: #444; background: #f4f6fa; border: 1px solid #d5dbe5; "
                                      "border-radius: 4px; padding: 8px;")
        self.hint_label.hide()

        self.checks_view = ChecksView()  # the live pre-flight check's errors and warnings
        self.error_panel = ErrorPanel()
        self.error_panel.dismissed.connect(self._error_dismissed)
        self.result_panel = ResultPanel()
        self.result_panel.folder_button.clicked.connect(self._show_folder)
        self.result_panel.resume_button.clicked.connect(lambda: self.run_dir and self.resume_requested.emit(
            self.run_dir))

        self.loss_plot = LossPlot()
        self.ppl_plot = LossPlot(title="Held-out perplexity") if perplexity_plot else None
        if self.ppl_plot is not None:
            self.ppl_plot.plot.setLabel("left", "perplexity")
            self.ppl_plot.plot.setLogMode(False, True)
        self.log_view = QPlainTextEdit()
        self.log_view.setReadOnly(True)
        self.log_view.setMaximumBlockCount(5000)
        self.log_view.setPlaceholderText("Messages of the run appear here.")
        curves = QSplitter(Qt.Orientation.Vertical)
        for w in (self.loss_plot, self.ppl_plot, self.log_view):
            if w is not None:
                curves.addWidget(w)
        for i in range(curves.count() - 1):  # the plots share the height; the log gets a quarter of a plot
            curves.setStretchFactor(i, 4)
            curves.widget(i).setMinimumHeight(110)  # below this the axis labels overlap
        curves.setStretchFactor(curves.count() - 1, 1)
        self.tabs = QTabWidget()
        self.tabs.addTab(curves, "Curves")

        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(top)
        layout.addLayout(status)
        for w in (self.checks_view, self.hint_label, self.error_panel, self.result_panel):
            layout.addWidget(w)
        layout.addWidget(self.tabs, 1)

    def install_shortcuts(self, host: QWidget) -> None:
        """Ctrl+Enter starts, Ctrl+. stops, anywhere in `host` (the tab). Esc does not stop: it is pressed
        to close popups and dialogs, and a stop by accident costs a run."""
        for keys, slot in ((("Ctrl+Return", "Ctrl+Enter"), self._start_shortcut), (("Ctrl+.",), self.stop)):
            for key in keys:
                sc = QShortcut(QKeySequence(key), host)
                sc.setContext(Qt.ShortcutContext.WidgetWithChildrenShortcut)
                sc.activated.connect(slot)

    def _start_shortcut(self) -> None:
        if self.start_button.isEnabled():
            self.start_requested.emit()

    def set_hint(self, html: str) -> None:
        """The empty state's instructions (shown until a run starts)."""
        self.hint_label.setText(html)
        self.hint_label.setVisible(bool(html) and self.engine is None and self.run_dir is None)

    def set_output_noun(self, noun: str) -> None:
        """What the run saves, in words ("the adapter", "the classifier"), for Stop and the result."""
        self.output_noun = noun
        self.stop_button.setToolTip(f"Stop after the current step and save {noun} (Ctrl+.)")

    def add_state_view(self, widget: QWidget, title: str) -> None:
        """A tab of the panel for a view of the run that the tab adds (e.g. a classifier's metrics). The widget has
        `show_state(RunState)`, called whenever the state may have changed: after each event, when a run
        starts (a resumed run's state holds its parent's history) and when it ends."""
        self.tabs.addTab(widget, title)
        self.state_views.append(widget)
        widget.show_state(self.state)

    def set_view_visible(self, widget: QWidget, visible: bool) -> None:
        self.tabs.setTabVisible(self.tabs.indexOf(widget), visible)

    def _show_state_views(self) -> None:
        for view in self.state_views:
            view.show_state(self.state)

    def set_start_allowed(self, allowed: bool, why: str = "") -> None:
        self.start_button.setEnabled(allowed and self.engine is None)
        self.start_button.setToolTip("Start (Ctrl+Enter)" if allowed else f"Not yet: {why}")
        self._start_allowed = allowed

    # -- running -----------------------------------------------------------------------------
    def launch(self, cfg, *, check_model: bool = True) -> Path | None:
        """Ask about model code / pickle weights if needed, create the run folder (once the pre-flight check
        passes) and start its worker."""
        from studio.engine.errors import StudioError
        from studio.ui import settings
        from studio.ui.safety import confirm_model_safety

        if self.engine is not None:
            return None
        self.error_panel.clear()
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
        """Show a run whose worker outlived an earlier window (its events are replayed from the file)."""
        from studio.ui.run_follower import RunFollower

        if self.engine is None:
            self._follow(Path(run_dir), RunFollower(run_dir, parent=self, grace_s=self.grace_s))
            self._log("Re-attached to a run that was still going when the app last closed.")

    def _follow(self, run_dir: Path, engine) -> None:
        from studio.engine.run_state import load_run_state
        from studio.engine.runs import resumed_from_run

        self.run_dir, self.final_event = run_dir, None
        parent = resumed_from_run(run_dir)
        # A resumed run continues the curve of the run it resumed: start from that run's state.
        self.state = load_run_state(parent) if parent is not None else RunState()
        self.state.status, self.state.phase, self.state.output = "starting", "starting", None
        self._reset_views()
        self.tabs.setCurrentIndex(0)  # a starting run shows its curves, whatever tab was looked at before
        if parent is not None:
            self._plot_history()
            where = f"step {self.state.step}" if self.state.step else "its checkpoint"
            self._log(f"Resuming run {parent.name} from {where}.")
        self._log(f"Run folder: {run_dir}")
        self.engine = engine
        engine.event.connect(self._on_event)
        engine.state_changed.connect(self._on_engine_state)
        engine.finished_run.connect(self._on_finished_run)
        engine.finished.connect(self._on_thread_done)
        self._set_running(True)
        self._render()
        self._show_state_views()
        engine.start()
        self._ticker.start()
        self.run_started.emit(run_dir)

    def _reset_views(self) -> None:
        for plot in (self.loss_plot, self.ppl_plot):
            if plot is not None:
                plot.clear()
        self.log_view.clear()
        self.error_panel.clear()
        self.result_panel.hide()
        self.hint_label.hide()
        self.stats_label.setText("")
        self.progress.setRange(0, 0)  # busy until the total is known

    def _plot_history(self) -> None:
        for step, loss in self.state.train:
            self.loss_plot.add_point("train", step, loss)
        for step, lr in self.state.learning_rate:
            self.loss_plot.add_point("learning_rate", step, lr)
        for e in self.state.evals:
            self._plot_eval(e.step, e.loss, e.perplexity)

    def _plot_eval(self, step, loss, perplexity) -> None:
        self.loss_plot.add_point("eval", step, loss)
        if self.ppl_plot is not None and perplexity is not None:
            self.ppl_plot.add_point("perplexity", step, perplexity)

    def is_running(self) -> bool:
        return self.engine is not None

    def run_in_progress(self) -> bool:
        """A run whose end has not been reported: once the final event is in, the thread only waits for the worker
        process to exit, which closing the window can wait for without asking."""
        return self.engine is not None and self.final_event is None

    def stop(self) -> None:
        if self.engine is not None and self.engine.state not in ("stopping", "killing", "done", "detached"):
            self.engine.request_stop()
            self.status_label.setText(f"Stopping after this step (saving a checkpoint and {self.output_noun})…")
            self._log(f"Stop requested; the worker gets {self.grace_s:g} s before it is killed.")

    def kill(self) -> None:
        if self.engine is not None:
            self.engine.kill()

    def detach(self) -> None:
        """The window closes and the run goes on alone; the next start of the app re-attaches to it."""
        if self.engine is not None:
            self._log("Left running in the background.")
            self.engine.detach()

    def shutdown(self, timeout_ms: int = 60000) -> None:
        """Wait for the run's thread (the app is closing; the run was already stopped or detached)."""
        if self.engine is not None:
            self.engine.wait(timeout_ms)

    def _set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running and getattr(self, "_start_allowed", True))
        self.stop_button.setEnabled(running)
        self.running_changed.emit(running)

    # -- events ------------------------------------------------------------------------------
    def _on_event(self, ev: dict) -> None:
        self.state.apply(ev)
        t = ev.get("type")
        if t == "log":
            step = ev.get("step", 0)
            self.loss_plot.add_point("train", step, ev.get("loss"))
            self.loss_plot.add_point("learning_rate", step, ev.get("learning_rate"))
        elif t == "eval" and self.state.evals and self.state.evals[-1].step == ev.get("step"):
            e = self.state.evals[-1]
            self._plot_eval(e.step, e.loss, e.perplexity)
        elif t == "started" and ev.get("warning"):
            self.error_panel.show_error("warning", ev["warning"])
        line = describe_event(ev)
        if line:
            self._log(line, ev.get("time"))
        self._render()
        self._show_state_views()
        self.event_seen.emit(ev)

    def _on_engine_state(self, state: str) -> None:
        if state == "killing":
            self.status_label.setText("The worker did not stop in time: killing it.")
            self._log("Killing the worker process.")

    def _render(self) -> None:
        s = self.state
        if s.total_steps:
            self.progress.setRange(0, s.total_steps)
            self.progress.setValue(min(s.step, s.total_steps))
        if self.engine is None or self.engine.state not in ("stopping", "killing"):
            self.status_label.setText(s.phase_text())
        self._render_stats()

    def _render_stats(self) -> None:
        s = self.state
        if s.done or s.started_time is None:
            self.stats_label.setText("")
            return
        elapsed = time.time() - s.started_time if self.engine is not None else s.elapsed_s
        eta = s.eta_at(time.time())
        parts = [f"elapsed {fmt_duration(elapsed)}", f"ETA {fmt_duration(eta)}"]
        if s.tokens_per_s is not None:
            parts.append(f"{s.tokens_per_s:,.0f} tokens/s")
        self.stats_label.setText(" · ".join(parts))

    def _on_finished_run(self, final: dict) -> None:
        from studio.engine.runs import last_checkpoint

        self.final_event = final
        self.state.apply(final) if not self.state.done else None
        for plot in (self.loss_plot, self.ppl_plot):
            if plot is not None:
                plot.redraw()
        if self.progress.maximum() == 0:
            self.progress.setRange(0, 1)
        s = self.state
        if s.status == "completed":
            self.progress.setValue(self.progress.maximum())
        resumable = s.status in ("stopped", "failed") and self.run_dir is not None and \
            last_checkpoint(self.run_dir) is not None
        if s.status == "failed":
            self.error_panel.show_event(final)
            self.status_label.setText("The run failed.")
        else:
            self.status_label.setText("Finished." if s.status == "completed" else "Stopped.")
        self.result_panel.show_result(s, self.output_noun, resumable=resumable)
        self._render_stats()
        self._show_state_views()
        self.run_ended.emit(final)

    def _on_thread_done(self) -> None:
        engine, self.engine = self.engine, None
        self._ticker.stop()
        self._set_running(False)
        if engine is not None:
            engine.deleteLater()

    def _error_dismissed(self) -> None:
        # A dismissed failure no longer needs the status line to shout about it.
        if self.engine is None and self.state.status == "failed":
            self.status_label.setText(READY)

    # -- output ------------------------------------------------------------------------------
    @property
    def output(self) -> str:
        return self.state.output or ""

    def _show_folder(self) -> None:
        target = self.output or (str(self.run_dir) if self.run_dir else "")
        if target:
            QDesktopServices.openUrl(QUrl.fromLocalFile(target))

    def _log(self, text: str, when: float | None = None) -> None:
        stamp = _dt.datetime.fromtimestamp(when if isinstance(when, (int, float)) else time.time())
        self.log_view.appendPlainText(f"{stamp:%H:%M:%S}  {text}")
