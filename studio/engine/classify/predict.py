"""Using a trained classifier: tell a classifier folder from other models, load it, and score texts.

The folder is a plain transformers model (`AutoModelForSequenceClassification`); the label names come from
config.json's id2label, the problem from its problem_type, and multi-label thresholds from `label_thresholds`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from studio.engine.errors import BadModel

PROBLEM_TYPES = {"single_label_classification": "single_label", "multi_label_classification": "multi_label",
                 "regression": "regression"}
THRESHOLDS_KEY = "label_thresholds"  # config.json: {label: probability above which it is predicted}


def _json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _run_task(folder: Path) -> str:
    try:
        import yaml

        data = yaml.safe_load((folder / "config.yaml").read_text(encoding="utf-8"))
    except Exception:  # noqa: BLE001 - an unreadable run config just means "not a classifier run"
        return ""
    return str(data.get("task", "")) if isinstance(data, dict) else ""


def _names_classifier(config_json: Path) -> bool:
    names = _json(config_json).get("architectures") or []
    return any(str(n).endswith("ForSequenceClassification") for n in names)


def is_classifier(path) -> bool:
    """A model folder whose config.json names a ...ForSequenceClassification architecture, or a run folder of
    task classify (or any folder whose `model/` is such a model folder)."""
    try:
        folder = Path(str(path)).expanduser()
        if (folder / "config.json").is_file():
            return _names_classifier(folder / "config.json")
        if (folder / "config.yaml").is_file() and _run_task(folder) == "classify":
            return True
        return (folder / "model" / "config.json").is_file() and _names_classifier(folder / "model" / "config.json")
    except OSError:
        return False


def classifier_folder(path) -> Path:
    """The loadable model folder: a run folder gives its output `model/`."""
    folder = Path(str(path)).expanduser()
    if (folder / "config.json").is_file():
        return folder
    if (folder / "model" / "config.json").is_file() and _names_classifier(folder / "model" / "config.json"):
        return folder / "model"
    if (folder / "config.yaml").is_file() and _run_task(folder) == "classify":
        model = folder / "model"
        if (model / "config.json").is_file():
            return model
        raise BadModel(f"The classification run {folder.name} has no model yet ({model} is missing): it has not "
                       "finished.", "Wait for the run to finish, or choose another run.", field="model")
    raise BadModel(f"{folder} is neither a classifier model folder (config.json) nor a classification run folder.",
                   field="model")


def problem_of(config) -> str:
    """single_label | multi_label | regression, from a transformers config (object or dict)."""
    get = config.get if isinstance(config, dict) else (lambda k, d=None: getattr(config, k, d))
    problem = PROBLEM_TYPES.get(get("problem_type") or "")
    if problem:
        return problem
    return "regression" if int(get("num_labels", 0) or len(get("id2label") or {}) or 2) == 1 else "single_label"


def label_names(config) -> list[str]:
    """Label names in id order."""
    id2label = config.get("id2label") if isinstance(config, dict) else getattr(config, "id2label", None)
    id2label = id2label or {}
    return [str(id2label[k]) for k in sorted(id2label, key=int)]


@dataclass
class Classifier:
    labels: list[str]
    problem: str
    thresholds: dict[str, float]
    model: object = field(default=None, repr=False)
    tokenizer: object = field(default=None, repr=False)
    device: str = "cpu"
    max_length: int = 512

    def predict(self, texts: list[str], pairs: list[str] | None = None, batch_size: int = 32
                ) -> list[dict[str, float]]:
        """Per text: the probability of each label (softmax for single_label, sigmoid for multi_label), or
        {"value": x} for regression."""
        import torch

        if pairs is not None and len(pairs) != len(texts):
            raise ValueError(f"{len(texts)} texts but {len(pairs)} pairs")
        # Sorted by length so each batch pads little; the results are put back in the callers' order.
        order = sorted(range(len(texts)), key=lambda i: len(texts[i]) + (len(pairs[i]) if pairs else 0))
        out: list[dict[str, float] | None] = [None] * len(texts)
        self.model.eval()
        with torch.inference_mode():
            for start in range(0, len(order), batch_size):
                rows = order[start:start + batch_size]
                batch = self.tokenizer([texts[i] for i in rows], [pairs[i] for i in rows] if pairs else None,
                                       truncation=True, max_length=self.max_length, padding=True,
                                       return_tensors="pt").to(self.device)
                logits = self.model(**batch).logits.float()
                if self.problem == "regression":
                    values = [{"value": float(v)} for v in logits[:, 0].tolist()]
                else:
                    probs = torch.sigmoid(logits) if self.problem == "multi_label" else logits.softmax(-1)
                    values = [dict(zip(self.labels, map(float, p))) for p in probs.tolist()]
                for i, value in zip(rows, values):
                    out[i] = value
        return out  # type: ignore[return-value]

    def decide(self, scores: dict[str, float]) -> list[str]:
        """The predicted label(s) of one text's scores: the most probable label, or for multi-label each label
        above its threshold."""
        if self.problem == "regression":
            return []
        if self.problem == "multi_label":
            return [n for n in self.labels if scores.get(n, 0.0) >= self.thresholds.get(n, 0.5)]
        return [max(self.labels, key=lambda n: scores.get(n, 0.0))]


def _model_limit(tokenizer, config) -> int:
    limits = [v for v in (getattr(tokenizer, "model_max_length", None), getattr(config, "max_position_embeddings",
                                                                                 None)) if v and v < 1_000_000]
    return min(limits) if limits else 512


def load_classifier(path, device: str = "cpu", *, trust_remote_code=False, allow_pickle=False) -> Classifier:
    from transformers import AutoModelForSequenceClassification

    from studio.engine.classify.model import load_classifier_tokenizer
    from studio.engine.models import check_model_safety

    folder = classifier_folder(path)
    check_model_safety(folder, trust_remote_code, allow_pickle)
    if not is_classifier(folder):
        raise BadModel(f"{folder} is not a classifier: its config.json names no ...ForSequenceClassification "
                       "architecture.", "Choose the model/ folder of a classification run.", field="model")
    tokenizer = load_classifier_tokenizer(folder, trust_remote_code)
    try:
        model = AutoModelForSequenceClassification.from_pretrained(
            folder, trust_remote_code=trust_remote_code, use_safetensors=None if allow_pickle else True)
    except Exception as exc:  # noqa: BLE001 - any loading failure is a bad model folder to the user
        raise BadModel(f"Could not load the classifier in {folder}: {str(exc).splitlines()[0] if str(exc) else exc!r}",
                       field="model") from None
    if model.config.pad_token_id is None:
        model.config.pad_token_id = tokenizer.pad_token_id
    model.to(device)
    labels = label_names(model.config)
    problem = problem_of(model.config)
    saved = getattr(model.config, THRESHOLDS_KEY, None) or {}
    thresholds = {n: float(saved.get(n, 0.5)) for n in labels} if problem == "multi_label" else {}
    return Classifier(labels if problem != "regression" else [], problem, thresholds, model, tokenizer, device,
                      _model_limit(tokenizer, model.config))
