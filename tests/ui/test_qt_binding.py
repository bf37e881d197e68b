"""The Qt binding must keep Python's reference counts: PySide6 6.12.0 on Python 3.11 returned None and True
without counting them, and after a few thousand signals or repaints the interpreter aborted mid-run
("none_dealloc"). pyproject.toml keeps that version out; this test catches any other that does the same."""

import sys

from PySide6.QtCore import QObject, Signal


class Emitter(QObject):
    ping = Signal()


def test_signals_and_event_processing_keep_reference_counts(qapp):
    emitter = Emitter()
    true_before, none_before = sys.getrefcount(True), sys.getrefcount(None)
    for _ in range(200):
        emitter.ping.emit()
        qapp.processEvents()
    assert sys.getrefcount(True) - true_before > -50  # a leak of one per call would show as -200
    assert sys.getrefcount(None) - none_before > -50
