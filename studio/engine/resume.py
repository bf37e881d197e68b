"""Resuming a run: find the checkpoint to continue from and refuse one of another model, before any
worker starts (a mismatch found by the worker costs the user the imports and a failed run folder)."""

from __future__ import annotations

import json
from pathlib import Path

from studio.engine.errors import BadConfig
from studio.engine.runs import CHECKPOINTS_DIR, CONFIG_FILE, last_checkpoint, read_run_config

# Settings that must match between a checkpoint's run and the run that resumes it.
MUST_MATCH = ("task", "method", "mode", "objective", "architecture")


def resume_checkpoint(path: str | Path) -> Path:
    """The checkpoint to resume from: a checkpoint folder itself, or a run folder's last complete one."""
    p = Path(path).expanduser()
    if not p.exists():
        raise BadConfig(f"Field 'resume_from': {p} does not exist.",
                        "Choose a run folder (its last complete checkpoint is used) or a checkpoint folder.",
                        field="resume_from")
    if (p / "trainer_state.json").is_file():
        return p
    if (p / CHECKPOINTS_DIR).is_dir() or (p / CONFIG_FILE).is_file():
        point = last_checkpoint(p)
        if point is None:
            raise BadConfig(f"Field 'resume_from': the run {p.name} has no complete checkpoint to resume from.",
                            "A run saves checkpoints every 'save every' steps and when it is stopped; start it "
                            "afresh instead.", field="resume_from")
        return point
    raise BadConfig(f"Field 'resume_from': {p} is neither a run folder nor a complete checkpoint "
                    "(no trainer_state.json).", "Choose a run folder or one of its checkpoints/checkpoint-N folders.",
                    field="resume_from")


def _same_model(a: str, b: str) -> bool:
    pa, pb = Path(a).expanduser(), Path(b).expanduser()
    if pa.exists() and pb.exists():
        return pa.resolve() == pb.resolve()
    return a.rstrip("/") == b.rstrip("/")


def _checkpoint_base_model(point: Path) -> str | None:
    """The base model an adapter checkpoint was trained on, as PEFT recorded it."""
    try:
        data = json.loads((point / "adapter_config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return data.get("base_model_name_or_path") or None


def check_resume(cfg) -> None:
    """Resolve cfg.resume_from to a complete checkpoint and check it belongs to this model and kind of run."""
    if not getattr(cfg, "resume_from", ""):
        return
    point = resume_checkpoint(cfg.resume_from)
    cfg.resume_from = str(point)
    source_run = point.parent.parent if point.parent.name == CHECKPOINTS_DIR else None
    earlier = read_run_config(source_run) if source_run is not None else {}
    model = str(getattr(cfg, "model", "") or "")
    if earlier:
        if model and earlier.get("model") and not _same_model(model, str(earlier["model"])):
            raise BadConfig(f"Field 'resume_from': the checkpoint {point.name} of run {source_run.name} was trained "
                            f"on {earlier['model']}, but this run's model is {model}.",
                            "Resume it with its own model (Runs › Resume does this), or start afresh.",
                            field="resume_from")
        for name in MUST_MATCH:
            ours = getattr(cfg, name, None)
            if ours is not None and earlier.get(name) is not None and str(earlier[name]) != str(ours):
                raise BadConfig(f"Field 'resume_from': the checkpoint's run used {name} '{earlier[name]}', this "
                                f"run uses '{ours}'; a checkpoint continues only the same kind of run.",
                                "Resume it with its own settings (Runs › Resume), or start afresh.",
                                field="resume_from")
        return
    base = _checkpoint_base_model(point)
    if base and model and not _same_model(model, base):
        raise BadConfig(f"Field 'resume_from': the adapter in {point} was trained on {base}, but this run's "
                        f"model is {model}.", "Choose the same base model, or start afresh.", field="resume_from")


def resume_config(run_dir: Path):
    """The config that continues a stopped or crashed run: its own settings, from its last checkpoint."""
    from studio.engine.config import load_config

    run_dir = Path(run_dir)
    cfg = load_config(run_dir / CONFIG_FILE)
    cfg.resume_from = str(resume_checkpoint(run_dir))
    return cfg
