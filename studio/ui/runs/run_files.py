"""What the Runs list's actions do to a run folder: rename it, throw it away, find what the playground opens."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import yaml
from PySide6.QtCore import QFile

from studio.engine.runs import CONFIG_FILE, read_run_config
from studio.ui.runs.rows import RunEntry


def rename_run(run_dir: Path, name: str) -> None:
    """Change the name a run is listed under: the 'name' field of its config.yaml.

    The folder keeps its name (resumed runs and configs refer to it by path), and the file is replaced
    atomically, so a crash mid-write leaves the old config, never half a new one. Raises OSError.
    """
    path = Path(run_dir) / CONFIG_FILE
    data = read_run_config(run_dir)
    if not data:
        raise OSError(f"{path} is missing or could not be read as a config; nothing was changed")
    data["name"] = name
    fd, tmp = tempfile.mkstemp(dir=run_dir, prefix=f".{CONFIG_FILE}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def move_to_trash(path: Path) -> bool:
    """Move a folder to the system trash; False where this system has none (it is then left in place)."""
    return QFile.moveToTrash(str(Path(path).resolve()))


def delete_permanently(path: Path) -> None:
    shutil.rmtree(path)


def output_path(entry: RunEntry) -> Path | None:
    """The run's saved adapter or model folder, if it exists."""
    out = entry.summary.output
    if not out:
        return None
    path = Path(out)
    if not path.is_absolute():
        path = entry.path / path
    return path if path.is_dir() else None


def is_adapter(folder: Path) -> bool:
    return (folder / "adapter_config.json").is_file() or folder.name == "adapter"


def playground_target(entry: RunEntry) -> tuple[str, str] | None:
    """(model, adapter) to open in the playground: (base model, adapter folder) for an adapter, (model folder,
    "") for a full or pre-trained model; None when the run has no output, or an adapter without a base model."""
    out = output_path(entry)
    if out is None:
        return None
    if not is_adapter(out):
        return str(out), ""
    base = str(entry.config.get("model") or "")
    return (base, str(out)) if base else None


def exportable(entry: RunEntry) -> bool:
    """A run whose model generates text and that has something to export: its output, or a complete checkpoint."""
    return entry.summary.task in ("sft", "preference", "pretrain") and (
        playground_target(entry) is not None or entry.summary.resumable)


def evaluation_target(entry: RunEntry) -> tuple[str, str] | None:
    """(output folder, the model it was trained from) of a finished fine-tune, preference or pre-train run, for the
    Evaluate tab; None for other runs and runs without an output."""
    if entry.summary.task not in ("sft", "preference", "pretrain"):
        return None
    if entry.summary.status not in ("completed", "stopped"):
        return None
    out = output_path(entry)
    return (str(out), str(entry.config.get("model") or "")) if out is not None else None


def has_results(entry: RunEntry) -> bool:
    """Whether an evaluation's folder holds results to show."""
    from studio.engine.evaluate.results import RESULTS_FILE

    return (entry.path / RESULTS_FILE).is_file()
