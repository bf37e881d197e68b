"""Run folders in the workspace: creation, listing, status, atomic outputs and checkpoints."""

from __future__ import annotations

import contextlib
import datetime as _dt
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path


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
    dataset: str
    started: float | None  # when the run began (its first event, else the time in the folder's name)
    status: str  # running | completed | stopped | failed | unknown
    steps: int
    total_steps: int | None
    best_eval_loss: float | None
    last_loss: float | None
    output: str | None
    error: str | None
    resumable: bool = False  # stopped or failed with a complete checkpoint to continue from


# The worker writes its pid file right after it starts; a process that started later than this after the file
# was written only has the worker's old pid. (The creation time the OS reports is exact to about a second.)
PID_REUSE_SLACK_S = 5.0


def worker_process(run_dir: Path):
    """The run's worker as a psutil.Process while it runs, else None.

    The pid in worker.pid is taken for the worker only if that process is not a zombie, started before the pid
    file was written (a pid reused by a later program is not the worker) and, where its command line can be read,
    was started on this run folder. A process of another user (access denied) is not a worker of ours."""
    import psutil

    pid_file = Path(run_dir) / PID_FILE
    try:
        pid = int(pid_file.read_text().strip())
        written = pid_file.stat().st_mtime
    except (OSError, ValueError):
        return None
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE or proc.create_time() > written + PID_REUSE_SLACK_S:
            return None
        command = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, ValueError):
        return None
    if command and Path(run_dir).name not in command:  # a worker is started with its run folder
        return None
    return proc


def worker_alive(run_dir: Path) -> bool:
    return worker_process(run_dir) is not None


def kill_worker(run_dir: Path) -> bool:
    """Kill the run's worker at once (SIGKILL, TerminateProcess on Windows); False if none was running."""
    import psutil

    proc = worker_process(run_dir)
    if proc is None:
        return False
    try:
        proc.kill()
    except psutil.NoSuchProcess:
        return False
    return True


def log_tail(run_dir: Path, lines: int = 8, limit: int = 1500) -> str:
    """The last lines of the run's worker.log (what the worker printed before it ended), for a failure message."""
    try:
        with open(Path(run_dir) / LOG_FILE, "rb") as fh:
            fh.seek(0, os.SEEK_END)
            fh.seek(max(0, fh.tell() - 16 * limit))
            text = fh.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    kept = [line.rstrip() for line in text.splitlines() if line.strip()][-lines:]
    return "\n".join(kept)[-limit:]


def folder_time(run_dir: Path) -> float | None:
    """The creation time written in a run folder's name (YYYYmmdd-HHMMSS-…)."""
    m = re.match(r"(\d{8}-\d{6})", Path(run_dir).name)
    if not m:
        return None
    try:
        return _dt.datetime.strptime(m.group(1), "%Y%m%d-%H%M%S").timestamp()
    except ValueError:
        return None


def read_run_config(run_dir: Path) -> dict:
    """The run's config.yaml as a plain dict ({} when missing or unreadable: the run is still listed)."""
    try:
        import yaml

        data = yaml.safe_load((Path(run_dir) / CONFIG_FILE).read_text(encoding="utf-8"))
    except Exception:  # noqa: BLE001 - an unreadable config must not hide the run
        return {}
    return data if isinstance(data, dict) else {}


def resumed_from_run(run_dir: Path) -> Path | None:
    """The run folder whose checkpoint this run resumed, if it resumed one of a run folder."""
    point = str(read_run_config(run_dir).get("resume_from") or "")
    if not point:
        return None
    checkpoint = Path(point)
    parent = checkpoint.parent.parent
    if checkpoint.parent.name == CHECKPOINTS_DIR and (parent / CONFIG_FILE).is_file() and \
            parent.resolve() != Path(run_dir).resolve():
        return parent
    return None


def summarize_run(run_dir: Path) -> RunSummary:
    from studio.engine.run_state import load_run_state

    run_dir = Path(run_dir)
    cfg = read_run_config(run_dir)
    state = load_run_state(run_dir)
    status, error = state.status, state.error_message
    if state.events == 0:
        status = "unknown"
    if status in ("starting", "running", "unknown") and not worker_alive(run_dir):
        # The worker is gone without a final word: the run crashed or was killed.
        if status != "unknown" or (run_dir / EVENTS_FILE).exists():
            status, error = "failed", error or "The worker process ended without finishing (crashed or killed)."
    elif status == "starting":
        status = "running"
    task = cfg.get("task", "?")
    method = cfg.get("method", {"pretrain": "full", "eval": "-", "export": "-"}.get(task, "?"))
    dataset = cfg.get("dataset") or cfg.get("corpus") or ""
    model = cfg.get("model", "") or (f"new {cfg.get('architecture')}" if cfg.get("mode") == "scratch" else "")
    return RunSummary(path=run_dir, name=str(cfg.get("name", run_dir.name)), task=task,
                      method=str(method), model=str(model),
                      dataset=str(dataset), started=state.first_time or folder_time(run_dir), status=status,
                      steps=state.step, total_steps=state.total_steps, best_eval_loss=state.best_eval_loss,
                      last_loss=state.last_loss, output=state.output, error=error,
                      resumable=status in ("stopped", "failed") and last_checkpoint(run_dir) is not None)


def list_runs(workspace: Path) -> list[RunSummary]:
    runs = Path(workspace) / "runs"
    if not runs.is_dir():
        return []
    return [summarize_run(p) for p in sorted(runs.iterdir(), reverse=True)
            if p.is_dir() and not p.name.startswith(".")]
