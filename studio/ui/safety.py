"""Asking the person before anything runs code from a model folder."""

from __future__ import annotations

from types import SimpleNamespace

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

NOT_ALLOWED = ("Not loaded: the model needs permissions you did not give.",
               "Choose another model, or load it again and allow it.")  # message, hint


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
        except StudioError:
            return True  # not a model folder (an adapter, no config.json): loading it says what is wrong
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


class ModelPermissions:
    """What the person allowed for each model folder, remembered while the window is open (the playground asks
    once for a folder, not before every prompt)."""

    def __init__(self):
        self.allowed: dict[str, dict] = {}  # model -> {"trust_remote_code": bool, "allow_pickle": bool}

    def ask(self, parent: QWidget, *models: str | None) -> dict | None:
        """The load options the models need (trust_remote_code, allow_pickle), asking about each risk not
        allowed yet; None when the person refuses one (then nothing may be loaded)."""
        nothing = {"trust_remote_code": False, "allow_pickle": False}
        options = dict(nothing)
        for model in filter(None, models):
            asked = SimpleNamespace(allow_download=False, **self.allowed.get(model, nothing))  # each folder asks
            if not confirm_model_safety(parent, model, asked):
                return None
            self.allowed[model] = {"trust_remote_code": asked.trust_remote_code, "allow_pickle": asked.allow_pickle}
            for key in options:
                options[key] = options[key] or self.allowed[model][key]
        return {key: True for key, on in options.items() if on}
