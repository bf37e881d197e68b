"""Run folders in the workspace: creation, listing, status, atomic outputs and checkpoints."""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from studio.engine.events import iter_events

WORKSPACE_ENV = "ADAPT_STUDIO_WORKSPACE"
CONFIG_FILE = "config.yaml"
EVENTS_FILE = "events.jsonl"
LOG_FILE = "worker.log"
PID_FILE = "worker.pid"
STOP_FILE = "stop"  # its presence asks the worker to stop gracefully
CHECKPOINTS_DIR = "checkpoints"
COMPLETE_MARKER = ".complete"


def default_workspace() -> Path:
    env = os.environ.get(WORKSPACE_ENV)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_data_dir("adapt-studio", appauthor=False))


def safe_name(name: str, limit: int = 60) -> str:
    """A run name made safe as one folder name on every platform."""
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", name.strip()).strip("-._")
    return (cleaned or "run")[:limit]


def create_run_dir(workspace: Path, name: str) -> Path:
    runs = Path(workspace) / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
    base = runs / f"{stamp}-{safe_name(name)}"
    path, n = base, 1
    while True:
        try:
            path.mkdir()
            return path
        except FileExistsError:
            n += 1
            path = base.with_name(f"{base.name}-{n}")


@contextlib.contextmanager
def atomic_dir(final: Path):
    """Yield a temporary folder beside `final`; rename it into place only if the block succeeds,
    so a crash never leaves a half-written output under the final name."""
    final = Path(final)
    tmp = final.with_name(f".{final.name}.partial")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = final.with_name(f".{final.name}.old")
    if final.exists():
        if old.exists():
            shutil.rmtree(old)
        final.rename(old)
    tmp.rename(final)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


def mark_complete(checkpoint: Path) -> None:
    tmp = checkpoint / (COMPLETE_MARKER + ".tmp")
    tmp.write_text("ok\n")
    tmp.replace(checkpoint / COMPLETE_MARKER)


def complete_checkpoints(run_dir: Path) -> list[Path]:
    """Checkpoints whose writing finished, oldest first (a kill mid-save leaves no marker)."""
    folder = Path(run_dir) / CHECKPOINTS_DIR
    found = []
    for p in folder.glob("checkpoint-*"):
        m = re.fullmatch(r"checkpoint-(\d+)", p.name)
        if m and (p / COMPLETE_MARKER).exists():
            found.append((int(m.group(1)), p))
    return [p for _, p in sorted(found)]


def last_checkpoint(run_dir: Path) -> Path | None:
    done = complete_checkpoints(run_dir)
    return done[-1] if done else None


@dataclass
class RunSummary:
    path: Path
    name: str
    task: str
    method: str
    model: str
    started: float | None
    status: str  # running | completed | stopped | failed | unknown
    steps: int
    total_steps: int | None
    best_eval_loss: float | None
    last_loss: float | None
    output: str | None
    error: str | None


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    except OSError:
        return False
    return True


def worker_alive(run_dir: Path) -> bool:
    try:
        pid = int((Path(run_dir) / PID_FILE).read_text().strip())
    except (FileNotFoundError, ValueError):
        return False
    if not _pid_alive(pid):
        return False
    cmdline = Path(f"/proc/{pid}/cmdline")
    if cmdline.exists():  # the pid may have been reused by another program since the worker died
        try:
            return b"studio.engine.worker" in cmdline.read_bytes() or b"adapt-studio" in cmdline.read_bytes()
        except OSError:
            return True
    return True


def summarize_run(run_dir: Path) -> RunSummary:
    run_dir = Path(run_dir)
    cfg: dict = {}
    try:
        import yaml

        cfg = yaml.safe_load((run_dir / CONFIG_FILE).read_text(encoding="utf-8")) or {}
    except Exception:  # an unreadable config still lists the run
        cfg = {}
    status, steps, total, best, last, output, error, started = "unknown", 0, None, None, None, None, None, None
    for ev in iter_events(run_dir / EVENTS_FILE):
        t = ev["type"]
        if t == "started":
            status, started, total = "running", ev.get("time"), ev.get("total_steps")
        elif t == "log" and isinstance(ev.get("loss"), (int, float)):
            steps, last = ev.get("step", steps), ev["loss"]
        elif t == "eval" and isinstance(ev.get("eval_loss"), (int, float)):
            best = ev["eval_loss"] if best is None else min(best, ev["eval_loss"])
        elif t == "finished":
            status, output = ev.get("status", "completed"), ev.get("output")
        elif t == "failed":
            status, error = "failed", ev.get("message")
    if status in ("running", "unknown") and not worker_alive(run_dir):
        # The worker is gone without a final word: the run crashed or was killed.
        if status == "running" or (run_dir / EVENTS_FILE).exists():
            status, error = "failed", error or "The worker process ended without finishing (crashed or killed)."
    return RunSummary(path=run_dir, name=cfg.get("name", run_dir.name), task=cfg.get("task", "?"),
                      method=cfg.get("method", "full" if cfg.get("task") == "pretrain" else "?"),
                      model=str(cfg.get("model", "")), started=started, status=status, steps=steps,
                      total_steps=total, best_eval_loss=best, last_loss=last, output=output, error=error)


def list_runs(workspace: Path) -> list[RunSummary]:
    runs = Path(workspace) / "runs"
    if not runs.is_dir():
        return []
    return [summarize_run(p) for p in sorted(runs.iterdir(), reverse=True)
            if p.is_dir() and not p.name.startswith(".")]
