"""The engine thread: starts a worker process for a run folder, re-emits its events as Qt signals.

The GUI thread never blocks: reading the worker's stdout happens in `run()`; stopping writes
`stop` to the worker (graceful: it finishes the step and saves) and, if the worker has not ended
after `grace_s`, a timer in the GUI thread kills it and the state says so.

`state` is written by both threads (this thread as the run goes, the GUI thread on stop and kill), so
every change, and the stop/kill wishes it depends on, happens under one lock; the change is announced
under it too, so `state_changed` arrives in the order the state changed.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

from PySide6.QtCore import QThread, QTimer, Signal

from studio.engine.supervisor import WorkerProcess


class EngineThread(QThread):
    event = Signal(dict)  # every event of the worker, including the final one
    finished_run = Signal(dict)  # the final event: finished (completed|stopped) or failed
    state_changed = Signal(str)  # starting | running | stopping | killing | detached | done

    def __init__(self, run_dir: Path, grace_s: float = 30.0, parent=None):
        super().__init__(parent)
        self.run_dir = Path(run_dir)
        self.grace_s = grace_s
        self.worker = WorkerProcess(self.run_dir)
        self._lock = threading.RLock()
        self._state = "idle"
        self.final_event: dict | None = None
        self.killed_after_grace = False
        self._stop_wanted = False
        self._kill_wanted = False
        self._kill_reason: str | None = None
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self._grace_over)
        self.finished.connect(self._kill_timer.stop)

    # -- worker side (runs in this thread) ---------------------------------------------------
    def run(self) -> None:
        self._set_state("starting")
        final = None
        try:
            self.worker.start()
            with self._lock:  # a stop or kill asked for while the process was starting is carried out now
                if self._kill_wanted:
                    self._set_state("killing")
                    self.worker.kill(self._kill_reason)
                elif self._stop_wanted:
                    self.worker.request_stop()
                    self._set_state("stopping")
                else:
                    self._set_state("running")
            for ev in self.worker.events():
                if ev.get("type") in ("finished", "failed"):
                    final = ev
                self.event.emit(ev)
            if self.worker.detached and final is None:
                self._set_state("detached")  # the run goes on alone; a later window re-attaches to it
                return
        except Exception as exc:  # noqa: BLE001 - the GUI must always hear how the run ended
            self.worker.kill()
            final = {"type": "failed", "time": time.time(), "kind": "internal",
                     "message": f"Could not run the worker process: {exc}",
                     "hint": "See worker.log in the run folder."}
            self.event.emit(final)
        final = final or self.worker.final_event or {
            "type": "failed", "time": time.time(), "kind": "crashed",
            "message": "The worker process ended without reporting how the run ended.", "hint": ""}
        self.final_event = final
        self._set_state("done")
        self.finished_run.emit(final)

    @property
    def state(self) -> str:
        with self._lock:
            return self._state

    def _set_state(self, state: str) -> None:
        with self._lock:
            self._state = state
            self.state_changed.emit(state)

    # -- GUI side ------------------------------------------------------------------------------
    @property
    def pid(self) -> int | None:
        return self.worker.pid

    def request_stop(self) -> None:
        """Ask the worker to stop after its current step (it saves a checkpoint and the output);
        kill it if it is still running `grace_s` seconds later."""
        with self._lock:
            if self._stop_wanted or self._state == "done":
                return
            self._stop_wanted = True
            self.worker.request_stop()
            if self._state == "running":
                self._set_state("stopping")
        self._kill_timer.start(int(self.grace_s * 1000))

    def detach(self) -> None:
        """Leave the worker running on its own (the window is closing); this thread then ends."""
        if self.state != "done":
            self._kill_timer.stop()
            self.worker.detach()

    def kill(self, reason: str | None = None) -> None:
        """Kill the worker now (the run ends as failed, kind 'killed')."""
        with self._lock:
            self._kill_wanted = True
            self._kill_reason = reason
            if self.worker.running():
                self._set_state("killing")
                self.worker.kill(reason)

    def _grace_over(self) -> None:
        if self.isRunning() and self.worker.running():
            self.killed_after_grace = True
            self.kill(f"The worker did not stop within {self.grace_s:g} s of the stop request, so it was killed.")
