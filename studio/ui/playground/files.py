"""The playground's files: presets, the examples saved as a dataset, batch prompt files and batch results, and
the preset handed to the Evaluate tab.

A mixin of PlaygroundTab (it uses the tab's widgets and error panel). The dialogs call the `*_file`
methods; tests call them directly with a path.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from studio.engine.errors import StudioError
from studio.engine.prompting.batch_files import read_prompt_file, save_batch_results
from studio.engine.prompting.dataset_export import example_conversations, save_dataset
from studio.engine.prompting.presets import load_preset, save_preset


class PlaygroundFiles:
    def load_preset_file(self, path) -> bool:
        try:
            self.set_preset(load_preset(path))
        except StudioError as exc:
            self._show_error(exc)
            return False
        return True

    def save_preset_file(self, path) -> bool:
        try:
            save_preset(self.preset(), path)
        except StudioError as exc:
            self._show_error(exc)
            return False
        return True

    def dataset_conversations(self) -> list[list[dict]]:
        return example_conversations(self.examples.examples(), self.system.toPlainText()) + self.good

    def save_dataset_file(self, path, fmt: str | None = None) -> bool:
        """Save the dataset; then the Dataset box offers "Use in Fine-tune" (use_dataset_in_finetune)."""
        conversations = self.dataset_conversations()
        try:
            save_dataset(conversations, path, fmt or self.dataset_format.currentText())
        except StudioError as exc:
            self._show_error(exc)
            return False
        self.in_context.dataset.show_saved(str(path), len(conversations))
        self.status.setText(f"Saved {len(conversations)} examples to {path}.")
        return True

    def load_batch_file(self, path) -> bool:
        try:
            self.batch.prompts = read_prompt_file(path)
        except StudioError as exc:
            self._show_error(exc)
            return False
        self.batch_file.setText(f"{Path(path).name}: {len(self.batch.prompts)} prompts")
        return True

    def save_batch_file(self, path) -> bool:
        if not self.batch_rows:
            self._show_error(StudioError("There are no batch results to save yet."))
            return False
        try:
            save_batch_results(self.batch_rows, path)
        except OSError as exc:
            self._show_error(StudioError(f"Could not write {path}: {exc}"))
            return False
        return True

    def _ask_load_preset(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Load preset", "", "Presets (*.json)")
        if path:
            self.load_preset_file(path)

    def _ask_save_preset(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save preset", "preset.json", "Presets (*.json)")
        if path:
            self.save_preset_file(path)

    def _ask_batch_file(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open prompts", "", "Prompts (*.txt *.jsonl)")
        if path:
            self.load_batch_file(path)

    def _ask_save_batch(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save batch results", "results.csv",
                                              "CSV (*.csv);;JSON Lines (*.jsonl)")
        if path:
            self.save_batch_file(path)

    def _browse_tuned(self) -> None:
        path = QFileDialog.getExistingDirectory(self, "Adapter or fine-tuned model folder")
        if path:
            self.tuned_edit.setText(path)

    def evaluate(self) -> dict | None:
        """Hand this model, adapter, mode, system prompt and template to the Evaluate tab; the few-shot
        examples travel as a preset saved in WORKSPACE/presets, the shot pool, compared at k = 0 and k = all."""
        preset = self.preset()
        fields = dict(model=self.model_picker.model(), mode=preset.mode, system=preset.system,
                      completion_template=preset.completion_template, shots="0")
        if self._tuned():
            fields["tuned"] = self._tuned()  # ticked beside the candidates already ticked there
        if preset.examples:
            try:
                path = self._save_evaluation_preset(preset)
            except (StudioError, OSError) as exc:
                self._show_error(exc if isinstance(exc, StudioError) else StudioError(
                    f"Could not save the examples for the evaluation: {exc}.", "Check the workspace folder."))
                return None
            fields.update(shot_pool=str(path), shots=f"0, {len(preset.examples)}", shot_selection="fixed")
        self.evaluate_requested.emit(fields)
        return fields

    def _save_evaluation_preset(self, preset) -> Path:
        import datetime as _dt

        from studio.ui import settings

        folder = settings.workspace() / "presets"
        folder.mkdir(parents=True, exist_ok=True)
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        path, n = folder / f"{stamp}.json", 1
        while path.exists():
            n += 1
            path = folder / f"{stamp}-{n}.json"
        return save_preset(preset, path)
