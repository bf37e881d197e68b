"""Slow reads (the workspace's runs, the Hugging Face cache) done off the GUI thread, their result delivered
as a signal in the GUI thread; and the rule that keeps such threads safe at exit.

A thread belongs to the application, not to the widget that asked: closing that widget while the read
runs must not destroy a running QThread (that aborts the process). The widget's connection goes with the
widget; the thread deletes itself once finished. Before the process ends, every thread handed to
`keep_until_done` is waited for: when the application quits (aboutToQuit) and, for a process that ends
without an event loop (`--smoke-test`, scripts), when the interpreter exits.
"""

from __future__ import annotations

import atexit
import threading
from typing import Callable

from PySide6.QtCore import QCoreApplication, QThread, Qt, Signal

_unfinished: set[QThread] = set()
_lock = threading.Lock()


def keep_until_done(thread: QThread) -> None:
    """Wait for `thread` before the application or the interpreter goes (call it in the GUI thread)."""
    with _lock:
        _unfinished.add(thread)
    thread.finished.connect(lambda: _forget(thread), Qt.ConnectionType.DirectConnection)
    app = QCoreApplication.instance()
    if app is not None:
        app.aboutToQuit.connect(thread.wait)


def _forget(thread: QThread) -> None:
    with _lock:
        _unfinished.discard(thread)


@atexit.register
def wait_for_unfinished() -> None:
    with _lock:
        waiting = list(_unfinished)
    for thread in waiting:
        try:
            thread.wait()
        except RuntimeError:  # it finished and was deleted meanwhile
            pass


class BackgroundCall(QThread):
    done = Signal(object)  # the function's result, or the exception it raised

    def __init__(self, function: Callable[[], object]):
        super().__init__(QCoreApplication.instance())
        self.function = function
        self.finished.connect(self.deleteLater)
        keep_until_done(self)

    def run(self) -> None:
        try:
            result = self.function()
        except Exception as exc:  # noqa: BLE001 - reported to the GUI thread, never raised in a thread
            result = exc
        self.done.emit(result)


def call_in_background(function: Callable[[], object], on_done: Callable[[object], None]) -> BackgroundCall:
    """Run `function` in a thread; `on_done(result or exception)` is called in the GUI thread."""
    thread = BackgroundCall(function)
    thread.done.connect(on_done, Qt.ConnectionType.QueuedConnection)  # in the GUI thread, whatever on_done is
    thread.start()
    return thread
