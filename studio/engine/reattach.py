"""Finding runs whose worker outlived the window that started it, and following their events.

A worker runs in its own process session, so closing (or crashing) the GUI does not stop it. The
next start of the app lists the runs that still look running: those whose worker is alive are
followed again by tailing events.jsonl (and stopped by writing the `stop` file the worker polls);
those whose worker is gone get a `failed` event, so they never read as running.
"""

from __future__ import annotations

from pathlib import Path

from studio.engine.events import EventWriter, decode
from studio.engine.runs import EVENTS_FILE, PID_FILE, STOP_FILE, list_runs, worker_alive


def live_runs(workspace: Path) -> list[Path]:
    """Runs whose worker process is still alive and has not reported an end."""
    return [r.path for r in list_runs(workspace) if r.status == "running" and worker_alive(r.path)]


def close_orphan(run_dir: Path) -> bool:
    """If the run started but its worker vanished without a final event, write its `failed` event."""
    path = Path(run_dir)
    if worker_alive(path) or not (path / EVENTS_FILE).exists():
        return False
    last = None
    for event in EventTail(path).poll():
        last = event
    if last is None or last["type"] in ("finished", "failed"):
        return False
    writer = EventWriter(path / EVENTS_FILE)
    writer.emit("failed", kind="crashed",
                message="The worker process ended without finishing (it crashed, was killed, or the computer "
                        "restarted).",
                hint="Resume from the last complete checkpoint in the run folder.")
    writer.close()
    (path / PID_FILE).unlink(missing_ok=True)
    return True


def close_orphans(workspace: Path) -> list[Path]:
    """close_orphan for every run of the workspace."""
    return [r.path for r in list_runs(workspace) if close_orphan(r.path)]


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
