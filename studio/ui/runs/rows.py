"""What the Runs list shows for each run folder, and the scan that reads them (no Qt).

Reading a run means reading its whole events.jsonl, so a scan keeps what it read keyed by a fingerprint of
the run's files: a later scan reads again only the runs whose files changed, and the runs that may still
change without touching their files (a live worker can die at any moment).
"""

from __future__ import annotations

import datetime as _dt
import os
from dataclasses import dataclass, field
from pathlib import Path

from studio.engine.runs import (CONFIG_FILE, EVENTS_FILE, PID_FILE, RunSummary, complete_checkpoints, read_run_config,
                                summarize_run)

KIND_NAMES = {"sft": "Fine-tune", "classify": "Classification", "pretrain": "Pre-train", "eval": "Evaluation",
              "preference": "Preference", "export": "Export"}
# Statuses that can change while no file of the run changes (the worker dies): such runs are always read again.
VOLATILE_STATUSES = ("running", "unknown")


@dataclass
class RunEntry:
    """A run as the list shows it: the engine's summary and the run's config.yaml as a plain dict."""

    summary: RunSummary
    config: dict = field(default_factory=dict)

    @property
    def path(self) -> Path:
        return self.summary.path


def run_folders(workspace: Path) -> list[Path]:
    """The run folders of a workspace, as `studio.engine.runs.list_runs` finds them."""
    runs = Path(workspace) / "runs"
    try:
        return [p for p in runs.iterdir() if p.is_dir() and not p.name.startswith(".")]
    except OSError:  # no runs folder yet, or it cannot be read: nothing to list
        return []


def fingerprint(run_dir: Path) -> tuple:
    """Changes whenever something the list shows about the run may have changed."""
    parts: list = []
    for name in (EVENTS_FILE, CONFIG_FILE, PID_FILE):
        try:
            st = os.stat(Path(run_dir) / name)
            parts.append((st.st_mtime_ns, st.st_size))
        except OSError:
            parts.append(None)
    parts.append(tuple(p.name for p in complete_checkpoints(run_dir)))  # decides whether it can resume
    return tuple(parts)


def events_size(run_dir: Path) -> int:
    try:
        return os.stat(Path(run_dir) / EVENTS_FILE).st_size
    except OSError:
        return 0


Cache = dict  # run folder -> (fingerprint, RunEntry)


def needs_reading(run_dir: Path, cache: Cache) -> bool:
    known = cache.get(run_dir)
    return known is None or known[1].summary.status in VOLATILE_STATUSES or known[0] != fingerprint(run_dir)


def read_entry(run_dir: Path) -> RunEntry:
    """One run's entry; a folder that cannot be read is still listed, with the reason."""
    try:
        return RunEntry(summarize_run(run_dir), read_run_config(run_dir))
    except Exception as exc:  # noqa: BLE001 - one unreadable folder must not hide the others
        summary = RunSummary(path=run_dir, name=run_dir.name, task="?", method="?", model="", dataset="",
                             started=None, status="unknown", steps=0, total_steps=None, best_eval_loss=None,
                             last_loss=None, output=None, error=f"This run folder could not be read: {exc}")
        return RunEntry(summary, {})


def scan(folders: list[Path], cache: Cache) -> tuple[list[RunEntry], Cache]:
    """Entries for `folders`, newest first, reading only what changed since `cache`; returns the new cache."""
    fresh: Cache = {}
    for run_dir in folders:
        known = cache.get(run_dir)
        mark = fingerprint(run_dir)
        if known is None or known[0] != mark or known[1].summary.status in VOLATILE_STATUSES:
            known = (mark, read_entry(run_dir))
        fresh[run_dir] = known
    entries = [entry for _, entry in fresh.values()]
    entries.sort(key=lambda e: (e.summary.started or 0.0, e.path.name), reverse=True)
    return entries, fresh


# -- the text of each column ------------------------------------------------------------------------------
def kind_text(summary: RunSummary) -> str:
    return KIND_NAMES.get(summary.task, summary.task or "?")


def model_text(summary: RunSummary) -> str:
    """A model folder or hub id shortened to its last part (the full one is the cell's tooltip)."""
    model = summary.model.strip().rstrip("/\\")
    return model.replace("\\", "/").rsplit("/", 1)[-1] if model else "—"


def dataset_paths(entry: RunEntry) -> list[str]:
    value = entry.config.get("dataset") or entry.config.get("corpus") or entry.summary.dataset
    if isinstance(value, (list, tuple)):
        items = [str(v) for v in value]
    else:  # a pre-training corpus is several paths separated by ';' (see pretrain_config.split_corpus)
        items = str(value or "").replace("\n", ";").split(";")
    return [s.strip() for s in items if s.strip()]


def dataset_text(entry: RunEntry) -> str:
    paths = dataset_paths(entry)
    if not paths:
        return "—"
    if len(paths) == 1:
        return Path(paths[0].rstrip("/\\")).name or paths[0]
    return f"{len(paths)} files"


def steps_text(summary: RunSummary) -> str:
    if summary.total_steps:
        return f"{summary.steps:,}/{summary.total_steps:,}"
    return f"{summary.steps:,}" if summary.steps else "—"


def loss_text(value: float | None) -> str:
    return f"{value:.4f}" if value is not None else "—"


def date_text(summary: RunSummary) -> str:
    if summary.started is None:
        return "—"
    return _dt.datetime.fromtimestamp(summary.started).strftime("%Y-%m-%d %H:%M")


def cells(entry: RunEntry) -> dict[str, tuple[str, str]]:
    """Column title -> (text, tooltip)."""
    s = entry.summary
    return {
        "Name": (s.name, str(s.path)),
        "Kind": (kind_text(s), ""),
        "Model": (model_text(s), s.model),
        "Dataset": (dataset_text(entry), "\n".join(dataset_paths(entry))),
        "Method": ("—" if s.task == "eval" else s.method, ""),
        "Status": (s.status, (s.error or "") if s.status in ("failed", "unknown") else ""),
        "Steps": (steps_text(s), ""),
        "Best eval loss": (loss_text(s.best_eval_loss), ""),
        "Date": (date_text(s), ""),
    }
