"""The worker process: `python -m studio.engine.worker RUN_DIR`.

Runs the job described by RUN_DIR/config.yaml. Events go to stdout (the original one) and to
RUN_DIR/events.jsonl; everything libraries print goes to RUN_DIR/worker.log. `stop` on stdin, a
file named `stop` in RUN_DIR, or SIGTERM asks for a graceful stop: the current step finishes, a
checkpoint and the output are saved, and the run ends with status `stopped`.
"""

from __future__ import annotations

import errno
import importlib
import os
import signal
import sys
import threading
import traceback
from pathlib import Path

from studio.engine.config import load_config
from studio.engine.errors import DiskFull, OutOfMemory, StudioError
from studio.engine.events import EventWriter
from studio.engine.runs import CONFIG_FILE, EVENTS_FILE, LOG_FILE, PID_FILE, STOP_FILE

RECIPES = {"sft": "studio.engine.sft:run_sft", "pretrain": "studio.engine.pretrain.recipe:run_pretrain",
           "eval": "studio.engine.evaluate.recipe:run_eval", "classify": "studio.engine.classify.recipe:run_classify",
           "preference": "studio.engine.preference.recipe:run_preference",
           "export": "studio.engine.export.recipe:run_export"}


def _split_streams(run_dir: Path):
    """Keep the real stdout for events; send fd 1 and fd 2 (library prints, warnings) to worker.log."""
    events_out = os.fdopen(os.dup(1), "w", encoding="utf-8", buffering=1)
    log = open(run_dir / LOG_FILE, "a", encoding="utf-8", buffering=1)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    sys.stdout = log
    sys.stderr = log
    return events_out


def _watch_for_stop(stop: threading.Event, run_dir: Path, events: EventWriter) -> None:
    def read_stdin():
        try:
            for line in sys.stdin:
                if line.strip() == "stop":
                    stop.set()
                elif line.strip() == "detach":
                    events.detach_stream()  # the window closes and leaves the run going
        except (OSError, ValueError):
            pass  # stdin closed: the supervisor is gone; the run goes on and can be re-attached

    def poll_file():
        while not stop.wait(0.5):
            if (run_dir / STOP_FILE).exists():
                stop.set()

    threading.Thread(target=read_stdin, daemon=True).start()
    threading.Thread(target=poll_file, daemon=True).start()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())


def classify(exc: BaseException) -> dict:
    """The `failed` event fields for an exception."""
    if isinstance(exc, StudioError):
        return exc.as_event()
    text = f"{type(exc).__name__}: {exc}"
    chain = [exc, exc.__cause__, exc.__context__]
    if any(isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT) for e in chain if e) or \
            "No space left on device" in str(exc):
        return DiskFull(f"The disk is full: a file could not be written ({text.splitlines()[0][:300]}).").as_event()
    if isinstance(exc, MemoryError) or "out of memory" in str(exc).lower():
        err = OutOfMemory(f"Ran out of memory ({text.splitlines()[0][:300]}).")
        return err.as_event()
    return {"kind": "internal", "message": f"Internal error — {text.splitlines()[0][:500] if text else text}",
            "hint": "The full traceback is in worker.log in the run folder; please report it."}


def run(run_dir: Path, events: EventWriter) -> int:
    stop = threading.Event()
    _watch_for_stop(stop, run_dir, events)
    try:
        cfg = load_config(run_dir / CONFIG_FILE)
        if not getattr(cfg, "allow_download", False):
            # No network unless the user asked for a download (set before transformers is imported).
            os.environ["HF_HUB_OFFLINE"] = "1"
            os.environ["TRANSFORMERS_OFFLINE"] = "1"
        module, func = RECIPES[cfg.task].split(":")
        recipe = getattr(importlib.import_module(module), func)
        recipe(cfg, run_dir, events, stop)
        return 0
    except BaseException as exc:  # noqa: BLE001 - every failure must end as a `failed` event
        traceback.print_exc()
        if isinstance(exc, KeyboardInterrupt):
            events.emit("failed", kind="interrupted", message="The run was interrupted.", hint="")
        else:
            events.emit("failed", **classify(exc))
        return 1


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 1:
        print("usage: python -m studio.engine.worker RUN_DIR", file=sys.stderr)
        return 2
    run_dir = Path(argv[0]).resolve()
    (run_dir / PID_FILE).write_text(str(os.getpid()))
    events_out = _split_streams(run_dir)
    events = EventWriter(run_dir / EVENTS_FILE, events_out)
    try:
        return run(run_dir, events)
    finally:
        events.close()
        (run_dir / PID_FILE).unlink(missing_ok=True)


if __name__ == "__main__":
    sys.exit(main())
