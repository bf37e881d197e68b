"""Asking the person before anything runs code from a model folder."""

from __future__ import annotations

from PySide6.QtWidgets import QMessageBox, QWidget

from studio.engine.errors import StudioError, UnsafeModel

REMOTE_CODE_TEXT = (
    "This model ships its own Python code (listed under auto_map in its config.json). Loading it runs that "
    "code on this computer, with your permissions: it could read, change or send your files.\n\n"
    "Allow it only if you trust where this model came from.")
PICKLE_TEXT = (
    "This model's weights are pickle files (.bin / .pt). Unpickling can run arbitrary code on this computer, "
    "with your permissions.\n\nAllow it only if you trust where this model came from. Converting the model to "
    "safetensors avoids the question.")


def confirm_model_safety(parent: QWidget, model: str, cfg) -> bool:
    """Check the model folder; ask for each risk the config does not already allow. Sets
    cfg.trust_remote_code / cfg.allow_pickle when the person agrees; False if they refuse."""
    from studio.engine.models import check_model_safety, resolve_model_path

    try:
        path = resolve_model_path(model, getattr(cfg, "allow_download", False))
    except StudioError:
        return True  # not a local model: the worker reports the problem in its own words
    while True:
        try:
            check_model_safety(path, cfg.trust_remote_code, cfg.allow_pickle)
            return True
        except UnsafeModel as err:
            remote = "Python code" in err.message
            answer = QMessageBox.warning(
                parent, "Run code from this model?" if remote else "Load pickle weights?",
                f"{path}\n\n{REMOTE_CODE_TEXT if remote else PICKLE_TEXT}",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No, QMessageBox.StandardButton.No)
            if answer != QMessageBox.StandardButton.Yes:
                return False
            if remote:
                cfg.trust_remote_code = True
            else:
                cfg.allow_pickle = True
