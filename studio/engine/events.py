"""The event stream: JSON lines on the worker's stdout and in the run's events.jsonl."""

from __future__ import annotations

import json
import math
import threading
import time
from pathlib import Path
from typing import IO, Iterator

TERMINAL_TYPES = ("finished", "failed")


def make_event(type: str, **fields) -> dict:
    return {"type": type, "time": time.time(), **fields}


def _clean(value):
    # JSON has no NaN/inf; a diverged loss must still be written and read back.
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


def encode(event: dict) -> str:
    return json.dumps(_clean(event), ensure_ascii=False, default=str)


def decode(line: str) -> dict | None:
    """One line of the stream, or None for anything that is not an event (library noise)."""
    line = line.strip()
    if not line.startswith("{"):
        return None
    try:
        event = json.loads(line)
    except json.JSONDecodeError:
        return None
    return event if isinstance(event, dict) and "type" in event else None


class EventWriter:
    """Writes each event to a file (flushed, so a crash loses nothing written) and to a stream."""

    def __init__(self, path: Path | None, stream: IO[str] | None = None):
        self.path = path
        self.stream = stream
        self._file = open(path, "a", encoding="utf-8") if path else None
        self._stream_lock = threading.Lock()  # detach_stream() comes from another thread

    def emit(self, type: str, **fields) -> dict:
        event = make_event(type, **fields)
        line = encode(event)
        if self._file:
            self._file.write(line + "\n")
            self._file.flush()
        with self._stream_lock:
            if self.stream:
                try:
                    self.stream.write(line + "\n")
                    self.stream.flush()
                except (BrokenPipeError, OSError, ValueError):
                    self.stream = None  # the supervisor went away; the file still has everything
        return event

    def detach_stream(self) -> None:
        """Stop writing to the stream and close it: the supervisor reading it sees the end and lets the
        run go on alone (the file keeps every event, and a later window re-attaches by reading it)."""
        with self._stream_lock:
            stream, self.stream = self.stream, None
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass

    def close(self) -> None:
        if self._file:
            self._file.close()
            self._file = None


def read_events(path: Path) -> list[dict]:
    return list(iter_events(path))


def iter_events(path: Path) -> Iterator[dict]:
    try:
        with open(path, encoding="utf-8", errors="replace") as fh:
            for line in fh:
                event = decode(line)
                if event:
                    yield event
    except FileNotFoundError:
        return

