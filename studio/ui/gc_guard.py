"""Python's cyclic garbage collector, run in the GUI thread only.

Left automatic, the collector runs in whichever thread happens to allocate: a generation or
analysis QThread could then destroy Qt objects that live in the GUI thread, which crashes the
process (seen as a segfault while "Garbage-collecting" in the generation thread). So automatic
collection is off, and a timer in the GUI thread collects with the collector's own thresholds.
Libraries call gc.collect() themselves too (accelerate does after loading a checkpoint, in the
generation thread that loads the model): while the guard is installed such a call made outside the
GUI thread collects nothing there; it asks the GUI thread's timer for a full collection instead.
"""

from __future__ import annotations

import gc
import threading

from PySide6.QtCore import QObject, QTimer


class GuiThreadGarbageCollector(QObject):
    def __init__(self, parent=None, interval_ms: int = 500):
        super().__init__(parent)
        self.threshold = gc.get_threshold()
        self.gui_thread = threading.get_ident()  # built in the GUI thread
        self.collect_requested = False  # a gc.collect() from another thread waits for the next tick
        self._real_collect = gc.collect
        gc.disable()
        gc.collect = self._collect
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.check)
        self.timer.start(interval_ms)

    def _collect(self, generation: int = 2) -> int:
        """gc.collect while the guard is installed: as usual in the GUI thread, deferred to it elsewhere."""
        if threading.get_ident() == self.gui_thread:
            return self._real_collect(generation)
        self.collect_requested = True
        return 0

    def check(self) -> None:
        if self.collect_requested:
            self.collect_requested = False
            self._real_collect(2)
            return
        gen0, gen1, gen2 = gc.get_count()
        if gen0 > self.threshold[0]:
            self._real_collect(0)
            if gen1 > self.threshold[1]:
                self._real_collect(1)
                if gen2 > self.threshold[2]:
                    self._real_collect(2)

    def uninstall(self) -> None:
        """Automatic collection back on, gc.collect as it was (the application never does this; tests do)."""
        self.timer.stop()
        if gc.collect == self._collect:
            gc.collect = self._real_collect
        gc.enable()
