"""The pre-flight check run live, off the GUI thread, as the person edits a training tab.

`request(cfg, workspace)` is debounced: a burst of edits costs one check of the last config. A check
already running is never cancelled (it is fast once the tokenizer is cached); when it ends, the newest
request runs if it differs. `finished` carries the report of the config last asked about, never a stale one.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject, QThread, QTimer, Signal

from studio.engine.preflight import Finding, Preflight, preflight


class _CheckThread(QThread):
    def __init__(self, cfg, workspace: Path, parent=None):
        super().__init__(parent)
        self.cfg, self.workspace = cfg, workspace
        self.report: Preflight | None = None

    def run(self) -> None:
        try:
            self.report = preflight(self.cfg, self.workspace)
        except Exception as exc:  # noqa: BLE001 - a fault of the check must not take the tab down
            self.report = Preflight(config=self.cfg, findings=[Finding(
                "warning", "internal", f"The pre-flight check failed unexpectedly ({type(exc).__name__}: {exc}); "
                "the run checks again when it starts.")])


class PreflightWatch(QObject):
    finished = Signal(object)  # Preflight of the latest requested config

    def __init__(self, parent=None, delay_ms: int = 300):
        super().__init__(parent)
        self.latest: Preflight | None = None
        self._wanted: tuple | None = None  # (config, workspace) last asked for
        self._thread: _CheckThread | None = None
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(delay_ms)
        self._timer.timeout.connect(self._launch)

    def request(self, cfg, workspace: Path) -> None:
        wanted = (dataclasses.replace(cfg), Path(workspace))
        if wanted == self._wanted:
            return
        self._wanted = wanted
        self._timer.start()

    def pending(self) -> bool:
        return self._timer.isActive() or self._thread is not None

    def report_for(self, cfg) -> Preflight | None:
        """The last report if it is about `cfg` as it is now."""
        return self.latest if self.latest is not None and self.latest.checked(cfg) else None

    def _launch(self) -> None:
        if self._thread is not None or self._wanted is None:
            return  # the running check launches the newest request when it ends
        cfg, workspace = self._wanted
        self._thread = _CheckThread(cfg, workspace, self)
        self._thread.finished.connect(self._done)
        self._thread.start()

    def _done(self) -> None:
        thread, self._thread = self._thread, None
        if thread is None:
            return
        thread.deleteLater()
        if self._wanted is not None and thread.cfg == self._wanted[0] and thread.workspace == self._wanted[1]:
            self.latest = thread.report
            self.finished.emit(thread.report)
        else:
            self._launch()

    def shutdown(self, timeout_ms: int = 10000) -> None:
        """Stop checking; a check still running after `timeout_ms` (a slow disk or a busy machine) is handed to the
        application, which waits for it before it quits, instead of being destroyed with this object."""
        self._timer.stop()
        self._wanted = None
        thread = self._thread
        if thread is not None and not thread.wait(timeout_ms):
            from studio.ui.runs.background import keep_until_done

            self._thread = None
            thread.finished.disconnect(self._done)
            thread.setParent(QCoreApplication.instance())
            thread.finished.connect(thread.deleteLater)
            keep_until_done(thread)
