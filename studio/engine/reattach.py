"""Finding runs whose worker outlived the window that started it, and following their events.

A worker runs in its own process session, so closing (or crashing) the GUI does not stop it. The
next start of the app lists the runs that still look running: those whose worker is alive are
followed again by tailing events.jsonl (and stopped by writing the `stop` file the worker polls);
those whose worker is gone get a `failed` event, so they never read as running.
"""

from __future__ import annotations

import os
from pathlib import Path

from studio.engine.events import TERMINAL_TYPES, EventWriter, decode
from studio.engine.runs import EVENTS_FILE, PID_FILE, STOP_FILE, log_tail, worker_alive

ORPHAN_MESSAGE = ("The worker process ended without finishing (it crashed, was killed, or the computer "
                  "restarted).")


def last_event(run_dir: Path) -> dict | None:
    """The last complete event of the run's events.jsonl, read from the end of the file (None if it has none)."""
    try:
        with open(Path(run_dir) / EVENTS_FILE, "rb") as fh:
            size, chunk = fh.seek(0, os.SEEK_END), 1 << 16
            while True:
                start = max(0, size - chunk)
                fh.seek(start)
                lines = fh.read(size - start).split(b"\n")
                lines.pop()  # what follows the last newline: nothing, or a line still being written
                for line in reversed(lines[1:] if start else lines):  # a chunk may begin mid-line
                    event = decode(line.decode("utf-8", errors="replace"))
                    if event:
                        return event
                if start == 0:
                    return None
                chunk *= 4
    except OSError:
        return None


def find_unfinished(workspace: Path) -> tuple[list[Path], list[Path]]:
    """One pass over the workspace's runs, reading only the end of each events.jsonl: the runs whose worker is
    still alive (to show again), and the runs whose worker vanished without a final event, which get their
    `failed` event written now (so they never read as running)."""
    runs = Path(workspace) / "runs"
    try:
        folders = sorted((p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")), reverse=True)
    except OSError:
        return [], []
    live, closed = [], []
    for folder in folders:
        last = last_event(folder)
        if last is not None and last["type"] in TERMINAL_TYPES:
            continue
        if worker_alive(folder):
            live.append(folder)
        elif last is not None and _write_orphan_failure(folder):
            closed.append(folder)
    return live, closed


def live_runs(workspace: Path) -> list[Path]:
    """Runs whose worker process is still alive and has not reported an end."""
    return find_unfinished(workspace)[0]


def close_orphans(workspace: Path) -> list[Path]:
    """close_orphan for every run of the workspace."""
    return find_unfinished(workspace)[1]


def close_orphan(run_dir: Path, *, kind: str = "crashed", message: str | None = None) -> bool:
    """If the run started but its worker vanished without a final event, write its `failed` event (`message`
    when the caller knows why the worker is gone: it killed it)."""
    path = Path(run_dir)
    if worker_alive(path):
        return False
    last = last_event(path)
    if last is None or last["type"] in TERMINAL_TYPES:
        return False
    return _write_orphan_failure(path, kind, message)


def _write_orphan_failure(path: Path, kind: str = "crashed", message: str | None = None) -> bool:
    if message is None:
        tail = log_tail(path)
        message = ORPHAN_MESSAGE + (f" The end of worker.log:\n{tail}" if tail else "")
    writer = EventWriter(path / EVENTS_FILE)
    writer.emit("failed", kind=kind, message=message,
                hint="Resume from the last complete checkpoint in the run folder.")
    writer.close()
    (path / PID_FILE).unlink(missing_ok=True)
    return True


def request_stop(run_dir: Path) -> None:
    """Ask a worker this process did not start to stop gracefully."""
    (Path(run_dir) / STOP_FILE).write_text("stop\n")


class EventTail:
    """Reads the events appended to a run's events.jsonl since the last call."""

    def __init__(self, run_dir: Path, from_start: bool = True):
        self.path = Path(run_dir) / EVENTS_FILE
        self.offset = 0 if from_start else (self.path.stat().st_size if self.path.exists() else 0)
        self._partial = b""

    def poll(self) -> list[dict]:
        try:
            with open(self.path, "rb") as fh:
                fh.seek(self.offset)
                data = fh.read()
        except FileNotFoundError:
            return []
        self.offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()  # an incomplete last line waits for the next poll
        events = []
        for line in lines:
            event = decode(line.decode("utf-8", errors="replace"))
            if event:
                events.append(event)
        return events
