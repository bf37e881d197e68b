"""What an evaluation compares: the base model with k in-context examples (one candidate per k) and fine-tuned
models (a LoRA adapter on its base, a fully fine-tuned or continued-pre-trained model folder, a classifier with
its own head, or the output of a run folder). Light module (no torch): the pre-flight check and the Evaluate tab
list candidates with it."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from studio.engine.errors import BadConfig
from studio.engine.runs import CONFIG_FILE, EVENTS_FILE, list_runs, read_run_config


@dataclass
class Candidate:
    id: str  # "prompt-3", "tuned-1": unique within one evaluation
    label: str  # what a person reads: "starter-model, 3-shot", "walkthrough (LoRA adapter)"
    kind: str  # prompt | tuned
    model: str  # the model folder (for an adapter, its base model)
    adapter: str | None = None
    shots: int | None = None
    run: str | None = None  # the run folder that produced it
    train_seconds: float | None = None
    train_tokens: int | None = None
    classifier: bool = False  # a model with a classification head: it predicts labels, it does not write them

    def as_dict(self) -> dict:
        return dict(self.__dict__)


def _is_run_folder(path: Path) -> bool:
    return (path / CONFIG_FILE).is_file() and (path / EVENTS_FILE).is_file()


def _run_costs(state) -> tuple[float | None, int | None]:
    """Training time (first training event to the end) and tokens seen, from a run's state."""
    seconds = None
    if state.started_time is not None and state.last_time is not None:
        seconds = max(0.0, state.last_time - state.started_time)
    return seconds, state.tokens_seen


def _output_of_run(run_dir: Path, state) -> Path:
    output = Path(state.output) if state.output else None
    if output is None or not output.exists():
        for name in ("model", "adapter") if state.started.get("task") == "classify" else ("adapter", "model"):
            if (run_dir / name).is_dir():
                return run_dir / name
        raise BadConfig(f"The run {run_dir} has no finished output (no adapter/ or model/ folder); its status is "
                        f"{state.status}.", "Evaluate a run that finished, or resume this one first.", field="tuned")
    return output


def _adapter_base(adapter: Path, base_model: str) -> str:
    """The base model an adapter goes on: the one it names if that folder is here, else the evaluation's model."""
    try:
        named = json.loads((adapter / "adapter_config.json").read_text(encoding="utf-8")).get(
            "base_model_name_or_path") or ""
    except (OSError, ValueError):
        named = ""
    if named and Path(named).expanduser().is_dir():
        return str(Path(named).expanduser())
    if not base_model:
        raise BadConfig(f"The adapter {adapter} names the base model {named or '(none)'}, which is not on this "
                        "computer, and no model was chosen.", "Choose the base model the adapter was trained on.",
                        field="model")
    return base_model


def _model_name(model: str) -> str:
    path = Path(model)
    return path.parent.name if path.name in ("model", "adapter") and path.parent.name else path.name or model


def tuned_candidate(path: str, base_model: str, number: int) -> Candidate:
    """A fine-tuned candidate from an adapter folder, a model folder or a run folder."""
    folder = Path(path).expanduser()
    if not folder.exists():
        raise BadConfig(f"The fine-tuned candidate {folder} does not exist (as a folder, or as the name of a finished "
                        "run in the workspace).", "Choose an adapter/ or model/ folder of a finished run, the run "
                        "folder, or a run's name.", field="tuned")
    run = folder if _is_run_folder(folder) else folder.parent if _is_run_folder(folder.parent) else None
    state = None
    if run is not None:
        from studio.engine.run_state import load_run_state

        state = load_run_state(run)  # with the runs it resumed: the training time and tokens of the whole curve
    if folder == run:
        folder = _output_of_run(run, state)
    name = _run_name(run) if run else folder.name
    from studio.engine.classify.predict import classifier_folder, is_classifier

    if is_classifier(folder):
        cand = Candidate(f"tuned-{number}", f"{name} (classifier)", "tuned", str(classifier_folder(folder)),
                         classifier=True)
    elif (folder / "adapter_config.json").is_file():
        cand = Candidate(f"tuned-{number}", f"{name} (LoRA adapter)", "tuned", _adapter_base(folder, base_model),
                         adapter=str(folder))
    elif (folder / "config.json").is_file():
        cand = Candidate(f"tuned-{number}", f"{name} (model)", "tuned", str(folder))
    else:
        raise BadConfig(f"{folder} is neither an adapter (adapter_config.json) nor a model folder (config.json).",
                        "Choose the adapter/ or model/ folder of a finished run, or the run folder.", field="tuned")
    if run is not None:
        cand.run = str(run)
        cand.train_seconds, cand.train_tokens = _run_costs(state)
    return cand


def _run_name(run_dir: Path) -> str:
    return str(read_run_config(run_dir).get("name") or run_dir.name)


def resolve_run_names(cfg, workspace: Path | None) -> None:
    """Fine-tuned candidates given by a run's name ("topics") become that name's newest finished run folder, so
    the evaluation's saved config names the exact run it scored."""
    if workspace is None:
        return
    from studio.engine.evaluate.config import TUNED_SEPARATOR

    entries = cfg.tuned_paths()
    if all(Path(e).expanduser().exists() for e in entries):
        return
    by_name: dict[str, Path] = {}
    for run in finished_outputs(workspace):  # newest first: the first of a name wins
        by_name.setdefault(run.name, run.run)
    cfg.tuned = TUNED_SEPARATOR.join(str(by_name[e]) if not Path(e).expanduser().exists() and e in by_name else e
                                     for e in entries)


def resolve_candidates(cfg) -> list[Candidate]:
    """Every candidate of an evaluation config, prompting ones first; BadConfig for a folder that is unusable."""
    base = _model_name(cfg.model) if cfg.model else "base model"
    found = [Candidate(f"prompt-{k}", f"{base}, {k}-shot", "prompt", cfg.model, shots=k) for k in cfg.shot_counts()]
    for number, path in enumerate(cfg.tuned_paths(), start=1):
        found.append(tuned_candidate(path, cfg.model, number))
    if any(c.kind == "prompt" for c in found) and not cfg.model:
        raise BadConfig("Prompting candidates need a model: the Model field is empty.", field="model")
    return found


# Runs whose output can be a candidate (an evaluation's own runs are not).
TUNING_TASKS = ("sft", "preference", "classify", "pretrain")


@dataclass
class FinishedRun:
    """A finished training run whose output can be evaluated (for the Evaluate tab's candidate list)."""

    run: Path
    name: str
    task: str
    output: Path
    model: str  # the base model it was trained from ("" for a model trained from scratch)


def finished_outputs(workspace: Path) -> list[FinishedRun]:
    """The workspace's completed or stopped fine-tune, preference-tuning, classification and pre-train runs that saved
    an output, newest first."""
    found = []
    for summary in list_runs(workspace):
        if summary.task not in TUNING_TASKS or summary.status not in ("completed", "stopped"):
            continue
        if summary.task == "pretrain" and read_run_config(summary.path).get("objective") == "mlm":
            continue  # an encoder fills in blanks; it does not answer, so nothing here can score it
        output = Path(summary.output) if summary.output else None
        if output is None or not output.is_dir():
            continue
        found.append(FinishedRun(summary.path, summary.name, summary.task, output, summary.model))
    return found
