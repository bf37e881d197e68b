"""The workspace's runs, read off the GUI thread when there is much to read.

A refresh reads only the runs whose files changed since the last one (see rows.scan). When that is
little (the run that just ended), it is read at once in the GUI thread, so a tab that refreshes and then
selects its run finds it; when it is much (the first look at a big workspace), a QThread reads it and
`listed` comes later. Each scan carries a generation number: the result of a superseded scan only
fills the cache, it never replaces a newer list.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QCoreApplication, QObject, QThread, Signal

from studio.ui.runs import rows
from studio.ui.runs.background import keep_until_done


class RunScanThread(QThread):
    scanned = Signal(int, object)  # generation, (entries, cache) or the exception that ended the scan

    def __init__(self, generation: int, folders: list[Path], cache: rows.Cache, parent=None):
        super().__init__(parent)
        self.generation, self.folders, self.cache = generation, folders, dict(cache)

    def run(self) -> None:
        try:
            result = rows.scan(self.folders, self.cache)
        except Exception as exc:  # noqa: BLE001 - a failed scan is reported, never raised in a thread
            result = exc
        self.scanned.emit(self.generation, result)


class RunCatalog(QObject):
    listed = Signal(object)  # list[rows.RunEntry], newest first
    failed = Signal(str)  # a scan could not read the workspace

    # At most this much is read in the GUI thread by one refresh; more goes to a thread.
    sync_max_runs = 16
    sync_max_event_bytes = 2_000_000

    def __init__(self, parent=None):
        super().__init__(parent)
        self.workspace: Path | None = None
        self._cache: rows.Cache = {}
        self._generation = 0
        self._scanning: int | None = None  # generation of the scan in flight
        self._rescan = False  # a refresh came while a scan was in flight
        self._thread: RunScanThread | None = None
        app = QCoreApplication.instance()
        if app is not None:
            app.aboutToQuit.connect(self.wait_for_scan)

    @property
    def scanning(self) -> bool:
        return self._scanning is not None

    def wait_for_scan(self) -> None:
        """Block until the scan in flight (if any) has finished; its result still comes as a signal."""
        if self._thread is not None:
            self._thread.wait()

    def set_workspace(self, workspace: Path | None) -> None:
        self.workspace = Path(workspace) if workspace else None
        self._cache = {}
        self._rescan = False
        self._generation += 1  # a scan of the former workspace must not list its runs here

    def refresh(self, wait: bool = False, background: bool = False) -> None:
        """Emit `listed` with the current runs: now when `wait` or when little changed (unless `background`),
        else from a thread."""
        if self.workspace is None:
            self._generation += 1
            self.listed.emit([])
            return
        folders = rows.run_folders(self.workspace)
        if wait:
            self._read_now(folders)
            return
        if self.scanning:
            self._rescan = True
            return
        stale = [f for f in folders if rows.needs_reading(f, self._cache)]
        if background and stale:
            self._start_scan(folders)
        elif len(stale) <= self.sync_max_runs and sum(map(rows.events_size, stale)) <= self.sync_max_event_bytes:
            self._read_now(folders)
        else:
            self._start_scan(folders)

    def _read_now(self, folders: list[Path]) -> None:
        self._generation += 1
        try:
            entries, self._cache = rows.scan(folders, self._cache)
        except Exception as exc:  # noqa: BLE001 - the list says what went wrong instead of crashing
            self.failed.emit(f"The runs in {self.workspace} could not be read: {exc}")
            return
        self.listed.emit(entries)

    def _start_scan(self, folders: list[Path]) -> None:
        self._generation += 1
        self._scanning = self._generation
        self._rescan = False
        # Parented to the application, not to this object: closing the view while a scan runs must not
        # destroy a running QThread (that aborts the process). It deletes itself once finished.
        thread = RunScanThread(self._generation, folders, self._cache, QCoreApplication.instance())
        thread.scanned.connect(self._scanned)
        thread.finished.connect(thread.deleteLater)
        keep_until_done(thread)
        self._thread = thread
        thread.start()

    def _scanned(self, generation: int, result) -> None:
        if generation == self._scanning:
            self._scanning, self._thread = None, None
        if isinstance(result, Exception):
            if generation == self._generation:
                self.failed.emit(f"The runs in {self.workspace} could not be read: {result}")
            return
        entries, cache = result
        if generation == self._generation:
            self._cache = cache
            self.listed.emit(entries)
        else:  # superseded, but what it read is still true of those folders: keep it for the next refresh
            for path, known in cache.items():
                if path not in self._cache and self.workspace and path.parent == self.workspace / "runs":
                    self._cache[path] = known
        if self._rescan and not self.scanning:
            self._rescan = False
            self.refresh()
