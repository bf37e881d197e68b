"""Starting and watching a worker process, without Qt (the CLI uses it directly, the GUI from a QThread)."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from studio.engine.config import save_config, validate
from studio.engine.events import EventWriter, decode
from studio.engine.runs import CONFIG_FILE, EVENTS_FILE, LOG_FILE, create_run_dir, log_tail


def prepare_run(cfg, workspace: Path) -> Path:
    """A new run folder holding the resolved config, once the pre-flight check passes; nothing is created if it
    fails. The check is run here even when the caller has just shown one (the GUI checks live): its files are
    cached, so this costs milliseconds, and the disk or a checkpoint may have changed since."""
    from studio.engine.preflight import preflight
    from studio.engine.resume import check_resume

    preflight(cfg, workspace).raise_first()
    validate(cfg)
    check_resume(cfg)  # resolves a run folder to its checkpoint, as the worker needs it
    if hasattr(cfg, "tuned_paths"):
        from studio.engine.evaluate.candidates import resolve_run_names

        resolve_run_names(cfg, workspace)
    _make_paths_absolute(cfg)
    run_dir = create_run_dir(workspace, cfg.name)
    save_config(cfg, run_dir / CONFIG_FILE)
    return run_dir


def _make_paths_absolute(cfg) -> None:
    """Relative paths are read from the folder the command ran in; the saved run (Resume, the Runs list,
    Open in playground) must not depend on where the app is started next time."""
    def absolute(value: str) -> str:
        path = Path(value).expanduser()
        return str(path.resolve()) if value and not path.is_absolute() and path.exists() else value

    for name in ("model", "dataset", "validation_file", "shot_pool", "source", "adapter"):
        if isinstance(getattr(cfg, name, None), str):
            setattr(cfg, name, absolute(getattr(cfg, name)))
    if hasattr(cfg, "corpus_paths"):
        from studio.engine.pretrain_config import CORPUS_SEPARATOR

        cfg.corpus = CORPUS_SEPARATOR.join(absolute(p) for p in cfg.corpus_paths())
    if hasattr(cfg, "tuned_paths"):
        from studio.engine.evaluate.config import TUNED_SEPARATOR

        cfg.tuned = TUNED_SEPARATOR.join(absolute(p) for p in cfg.tuned_paths())


# What a worker runs: `python -m studio.engine.worker RUN_DIR`. The UI supervision tests swap in a fast fake
# worker (tests/fake_worker.py) that runs the real worker loop with a recipe that trains nothing.
WORKER_ARGS = ["-m", "studio.engine.worker"]
NEW_PROCESS_GROUP = getattr(subprocess, "CREATE_NEW_PROCESS_GROUP", 0)  # Windows only; 0 elsewhere


@dataclass
class Outcome:
    status: str  # completed | stopped | failed | killed
    returncode: int | None
    final_event: dict | None


class WorkerProcess:
    """One worker: start it, iterate its events, ask it to stop, kill it if it will not."""

    def __init__(self, run_dir: Path):
        self.run_dir = Path(run_dir)
        self.proc: subprocess.Popen | None = None
        self.final_event: dict | None = None
        self.killed = False
        self.detached = False
        self.kill_reason: str | None = None

    def start(self) -> None:
        env = dict(os.environ, PYTHONUNBUFFERED="1", TOKENIZERS_PARALLELISM="false")
        # stderr goes to worker.log from the first byte: an error before the worker redirects its own output
        # (a broken install failing at import) is then on record, and quoted if the worker dies without a word.
        with open(self.run_dir / LOG_FILE, "ab") as log:
            self.proc = subprocess.Popen(
                [sys.executable, *WORKER_ARGS, str(self.run_dir)],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                text=True, encoding="utf-8", errors="replace", bufsize=1, env=env,
                # Its own session (process group on Windows): a Ctrl-C in the terminal reaches the CLI only,
                # which asks the worker to stop; closing the window does not end a run left in the background.
                start_new_session=True, creationflags=NEW_PROCESS_GROUP)

    def events(self) -> Iterator[dict]:
        assert self.proc and self.proc.stdout
        for line in self.proc.stdout:
            event = decode(line)
            if event is None:
                continue
            if event["type"] in ("finished", "failed"):
                self.final_event = event
            yield event
        if self.detached and self.final_event is None:
            return  # the run goes on without us; its events.jsonl tells how it ends
        self.proc.wait()
        if self.final_event is None:
            # The worker died without a word (killed, crashed in native code, failed at import): say so in the
            # run's own record too, so the run never reads as running or done.
            writer = EventWriter(self.run_dir / EVENTS_FILE)
            self.final_event = writer.emit("failed", kind="killed" if self.killed else "crashed",
                                           message=self._silent_end_message(),
                                           hint="The last complete checkpoint in the run folder can be resumed; "
                                                "worker.log in the run folder has everything the worker printed.")
            writer.close()
            yield self.final_event

    def _silent_end_message(self) -> str:
        if self.killed:
            return self.kill_reason or "The worker process was stopped by force before the run finished."
        code = self.proc.returncode
        how = f"was killed (signal {-code})" if code < 0 else f"ended unexpectedly (exit code {code})"
        message = f"The worker process {how} before the run finished."
        tail = log_tail(self.run_dir)
        return f"{message} The end of worker.log:\n{tail}" if tail else message

    def request_stop(self) -> None:
        if self.proc and self.proc.poll() is None and self.proc.stdin:
            try:
                self.proc.stdin.write("stop\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                pass

    def detach(self) -> None:
        """Let the run go on alone: the worker closes its event stream, which ends `events()` here."""
        if self.proc and self.proc.poll() is None and self.proc.stdin:
            self.detached = True
            try:
                self.proc.stdin.write("detach\n")
                self.proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError):
                pass

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def kill(self, reason: str | None = None) -> None:
        """Kill the worker now; `reason` becomes the message of the run's `failed` event."""
        if self.proc and self.proc.poll() is None:
            self.killed = True
            self.kill_reason = reason
            self.proc.kill()

    def running(self) -> bool:
        return bool(self.proc and self.proc.poll() is None)

    def outcome(self) -> Outcome:
        ev = self.final_event or {}
        status = ev.get("status", "completed") if ev.get("type") == "finished" else (
            "killed" if self.killed else "failed")
        return Outcome(status=status, returncode=self.proc.returncode if self.proc else None, final_event=ev)
