"""Python's cyclic garbage collector, run in the GUI thread only.

Left automatic, the collector runs in whichever thread happens to allocate: a generation or
analysis QThread could then destroy Qt objects that live in the GUI thread, which crashes the
process (seen as a segfault while "Garbage-collecting" in the generation thread). So automatic
collection is off, and a timer in the GUI thread collects with the collector's own thresholds.
"""

from __future__ import annotations

import gc

from PySide6.QtCore import QObject, QTimer


class GuiThreadGarbageCollector(QObject):
    def __init__(self, parent=None, interval_ms: int = 500):
        super().__init__(parent)
        self.threshold = gc.get_threshold()
        gc.disable()
        self.timer = QTimer(self)
        self.timer.timeout.connect(self.check)
        self.timer.start(interval_ms)

    def check(self) -> None:
        gen0, gen1, gen2 = gc.get_count()
        if gen0 > self.threshold[0]:
            gc.collect(0)
            if gen1 > self.threshold[1]:
                gc.collect(1)
                if gen2 > self.threshold[2]:
                    gc.collect(2)
