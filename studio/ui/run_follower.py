"""Following a run whose worker this window did not start (it outlived an earlier window).

Same signals and methods as EngineThread, so a tab can show a re-attached run exactly like one
it started: events come from tailing events.jsonl on a timer, Stop writes the run's `stop`
file (the worker polls it) and kills the worker if it has not ended `grace_s` seconds later,
and a worker that vanished without a final event gets a `failed` event written for it.
Everything here runs in the GUI thread (timers), so no state is shared with another thread.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, QTimer, Signal

from studio.engine.events import TERMINAL_TYPES
from studio.engine.reattach import EventTail, close_orphan, request_stop
from studio.engine.runs import PID_FILE, kill_worker, worker_alive

KILLED_MESSAGE = "The worker process was stopped by force before the run finished."


class RunFollower(QObject):
    event = Signal(dict)
    finished_run = Signal(dict)
    state_changed = Signal(str)
    finished = Signal()  # like QThread.finished: nothing more will come

    def __init__(self, run_dir: Path, poll_ms: int = 250, parent=None, *, grace_s: float = 30.0):
        super().__init__(parent)
        self.run_dir = Path(run_dir)
        self.grace_s = grace_s
        self.state = "running"
        self.final_event: dict | None = None
        self.killed_after_grace = False
        self._kill_reason: str | None = None  # set once this window killed the worker
        self._tail = EventTail(self.run_dir)
        self._timer = QTimer(self)
        self._timer.setInterval(poll_ms)
        self._timer.timeout.connect(self._poll)
        self._kill_timer = QTimer(self)
        self._kill_timer.setSingleShot(True)
        self._kill_timer.timeout.connect(self._grace_over)

    def start(self) -> None:
        self.state_changed.emit(self.state)
        self._poll()
        if self.final_event is None:
            self._timer.start()

    @property
    def pid(self) -> int | None:
        try:
            return int((self.run_dir / PID_FILE).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None

    def _poll(self) -> None:
        alive = worker_alive(self.run_dir)
        events = self._tail.poll()
        if not events and not alive:
            # Gone without a word: record it, then read that record back like any other event.
            if self._kill_reason is None:
                close_orphan(self.run_dir)
            else:
                close_orphan(self.run_dir, kind="killed", message=self._kill_reason)
            events = self._tail.poll()
        for ev in events:
            self.event.emit(ev)
            if ev.get("type") in TERMINAL_TYPES:
                self._end(ev)
                return

    def _end(self, final: dict) -> None:
        self._timer.stop()
        self._kill_timer.stop()
        self.final_event = final
        self.state = "done"
        self.state_changed.emit("done")
        self.finished_run.emit(final)
        self.finished.emit()

    def request_stop(self) -> None:
        if self.state == "running":
            request_stop(self.run_dir)
            self.state = "stopping"
            self.state_changed.emit("stopping")
            self._kill_timer.start(int(self.grace_s * 1000))

    def kill(self, reason: str | None = None) -> None:
        """Kill the worker now; the next poll finds it gone and records the run as failed (kind 'killed')."""
        if self.state in ("done", "detached"):
            return
        self._kill_reason = reason or KILLED_MESSAGE
        if kill_worker(self.run_dir):
            self.state = "killing"
            self.state_changed.emit("killing")
        self._poll()

    def _grace_over(self) -> None:
        if self.state == "stopping" and worker_alive(self.run_dir):
            self.killed_after_grace = True
            self.kill(f"The worker did not stop within {self.grace_s:g} s of the stop request, so it was killed.")

    def detach(self) -> None:
        """Stop following (the window is closing); the worker goes on and a later window re-attaches."""
        self._timer.stop()
        self._kill_timer.stop()
        self.state = "detached"
        self.finished.emit()

    def isRunning(self) -> bool:  # noqa: N802 - mirrors QThread
        return self.state not in ("done", "detached")

    def wait(self, timeout_ms: int = 0) -> bool:
        return True  # nothing runs in this process
