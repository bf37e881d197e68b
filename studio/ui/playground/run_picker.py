"""Pick a finished run of the workspace to try in the playground: its adapter on its base model, or the
model a full fine-tune or a pre-training run wrote.

The workspace is read when the picker is shown (the playground tab comes into view) and each time its
list opens, never while the window is being built: reading a run is a few small files, so the list is
fresh at little cost.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import QComboBox

from studio.ui import settings

FINISHED = ("completed", "stopped")  # a stopped run saved its output too


@dataclass
class PlayableRun:
    path: Path  # the run folder
    label: str
    model: str  # what goes in the Model field: the base model, or the run's own model folder
    adapter: str  # the adapter folder; "" when the run wrote a whole model


def _output_folder(run) -> Path | None:
    """The run's output folder; also found in the run folder when the workspace was moved since."""
    for candidate in (Path(run.output), run.path / Path(run.output).name):
        if candidate.is_dir():
            return candidate
    return None


def _is_causal_lm(folder: Path) -> bool:
    """A model that generates text (a masked LM from pre-training does not)."""
    try:
        archs = json.loads((folder / "config.json").read_text(encoding="utf-8")).get("architectures") or []
    except (OSError, ValueError, AttributeError):
        return False
    return any(a.endswith(("ForCausalLM", "LMHeadModel", "ForConditionalGeneration")) for a in archs)


def playable_runs(workspace: Path) -> list[PlayableRun]:
    """The runs that finished (completed or stopped) with an adapter, a generating model or a classifier, newest
    first."""
    from studio.engine.classify.predict import is_classifier
    from studio.engine.runs import list_runs

    try:
        runs = list_runs(workspace)
    except OSError:  # an unreadable workspace: nothing to offer, Browse… still works
        return []
    found = []
    for run in runs:
        if run.status not in FINISHED or not run.output:
            continue
        output = _output_folder(run)
        if output is None:
            continue
        if (output / "adapter_config.json").is_file() and run.model:
            found.append(PlayableRun(run.path, f"{run.path.name} · adapter · {run.status}", run.model, str(output)))
        elif _is_causal_lm(output):
            found.append(PlayableRun(run.path, f"{run.path.name} · model · {run.status}", str(output), ""))
        elif is_classifier(output):  # the playground shows its classify view for it
            found.append(PlayableRun(run.path, f"{run.path.name} · classifier · {run.status}", str(output), ""))
    return found


class RunPicker(QComboBox):
    run_chosen = Signal(str, str)  # model, adapter ("" = none)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.setMinimumContentsLength(12)
        self.setToolTip("A finished run of the workspace: its adapter on its base model, or the model it wrote.")
        self.runs: list[PlayableRun] = []
        self.activated.connect(self._on_activated)
        self.addItem("Finished runs…")

    def refresh(self) -> None:
        chosen = self.currentData()
        self.runs = playable_runs(settings.workspace())
        self.blockSignals(True)
        self.clear()
        self.addItem(f"Finished runs ({len(self.runs)})…" if self.runs else "No finished runs yet")
        for run in self.runs:
            self.addItem(run.label, str(run.path))
            self.setItemData(self.count() - 1, f"{run.path}\nmodel: {run.model}\nadapter: {run.adapter or 'none'}",
                             Qt.ItemDataRole.ToolTipRole)
        self.setCurrentIndex(max(0, self.findData(chosen)) if chosen else 0)
        self.blockSignals(False)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        self.refresh()

    def showPopup(self) -> None:
        self.refresh()
        super().showPopup()

    def _on_activated(self, index: int) -> None:
        if 1 <= index <= len(self.runs):
            run = self.runs[index - 1]
            self.run_chosen.emit(run.model, run.adapter)
