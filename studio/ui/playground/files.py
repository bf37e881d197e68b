"""The playground's files: presets, the examples saved as a dataset, batch prompt files and batch results.

A mixin of PlaygroundTab (it uses the tab's widgets and error panel). The dialogs call the `*_file`
methods; tests call them directly with a path.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from studio.engine.errors import StudioError
from studio.engine.generation import read_prompt_file, save_batch_results
from studio.engine.prompting import example_conversations, load_preset, save_dataset, save_preset


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
