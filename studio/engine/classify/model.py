"""A sequence-classification model from any encoder or decoder folder: the head, LoRA/QLoRA around it, and the
outputs a run leaves (the PEFT adapter, and a plain transformers model with the adapter merged in)."""

from __future__ import annotations

from pathlib import Path

from studio.engine.classify.predict import THRESHOLDS_KEY
from studio.engine.errors import BadConfig, BadModel
from studio.engine.models import DeviceChoice

PROBLEM_TYPES = {"single_label": "single_label_classification", "multi_label": "multi_label_classification",
                 "regression": "regression"}


def load_classifier_tokenizer(path: Path, trust_remote_code: bool = False):
    """The model's tokenizer with a padding token: decoders often have none, and their classification head reads
    the last token that is not padding, so padding must be told apart from the text."""
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(path, trust_remote_code=trust_remote_code)
    except Exception as exc:  # noqa: BLE001 - any failure here means the folder's tokenizer is unusable
        raise BadModel(f"Could not load a tokenizer from {path}: {exc}",
                       "The folder needs tokenizer files (tokenizer.json or a vocabulary).", field="model") from None
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token or tokenizer.unk_token
    if tokenizer.pad_token is None:
        raise BadModel(f"The tokenizer in {path} has neither a pad, an end-of-sequence nor an unknown token, so "
                       "batches cannot be padded.", field="model")
    return tokenizer


def head_config(problem: str, label_names: list[str]) -> dict:
    """The from_pretrained arguments that shape the head and name its outputs."""
    names = label_names if problem != "regression" else ["value"]
    return dict(num_labels=len(names), id2label=dict(enumerate(names)),
                label2id={n: i for i, n in enumerate(names)}, problem_type=PROBLEM_TYPES[problem])


def load_sequence_classifier(path: Path, choice: DeviceChoice, problem: str, label_names: list[str],
                             pad_token_id: int, *, quantization: str | None = None, trust_remote_code: bool = False,
                             allow_pickle: bool = False, dtype=None):
    """The model with a fresh head of the right size (a folder that already holds a classifier with other labels
    gets a new head: ignore_mismatched_sizes)."""
    from transformers import AutoModelForSequenceClassification

    from studio.engine.models import load_checked, quantization_kwargs

    kwargs = dict(dtype=dtype or choice.torch_dtype, trust_remote_code=trust_remote_code,
                  use_safetensors=None if allow_pickle else True, ignore_mismatched_sizes=True,
                  **head_config(problem, label_names))
    kwargs.update(quantization_kwargs(choice, quantization))
    model, info = load_checked(AutoModelForSequenceClassification, path, "with a classification head",
                               output_loading_info=True, **kwargs)
    model.config.pad_token_id = pad_token_id
    # Layers the checkpoint lacks start random (the head, and e.g. a pooler or a pre-classifier): LoRA trains them
    # in full, as it does the head.
    model.new_modules = sorted({key.rsplit(".", 1)[0] for key in info.get("missing_keys", ()) if "." in key})
    if hasattr(model.config, "use_cache"):
        model.config.use_cache = False  # a classifier reads one forward pass; a cache only costs memory
    if not quantization and choice.device != "cpu":
        model.to(choice.device)
    return model


def apply_method(model, cfg):
    """LoRA (or QLoRA) adapters with the head trained in full (PEFT's SEQ_CLS puts it in modules_to_save)."""
    if cfg.method == "full":
        return model
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if cfg.method.startswith("qlora"):
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    from studio.engine.sft import lora_targets

    targets = lora_targets(cfg)
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=targets, task_type="SEQ_CLS",
                      modules_to_save=[m for m in getattr(model, "new_modules", []) if m not in ("classifier", "score")]
                      or None)
    try:
        return get_peft_model(model, lora)
    except ValueError as exc:
        raise BadConfig(f"Field 'target_modules' ({cfg.target_modules!r}) does not fit this model: {exc}",
                        field="target_modules") from None


def _finish_config(config, thresholds: dict[str, float] | None) -> None:
    if thresholds:
        setattr(config, THRESHOLDS_KEY, dict(thresholds))
    if hasattr(config, "use_cache"):
        config.use_cache = True


def save_full(model, tokenizer, folder: Path, thresholds: dict[str, float] | None) -> None:
    _finish_config(model.config, thresholds)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def save_adapter_and_merged(peft_model, tokenizer, cfg, model_path: Path, choice: DeviceChoice, problem: str,
                            label_names: list[str], adapter_dir: Path, model_dir: Path,
                            thresholds: dict[str, float] | None) -> None:
    """The PEFT adapter, then the adapter merged into the base model as a plain transformers folder. A quantized
    base cannot be merged into: the base is loaded again unquantized and the saved adapter applied to it."""
    peft_model.save_pretrained(adapter_dir)
    tokenizer.save_pretrained(adapter_dir)
    if cfg.method.startswith("qlora"):
        from peft import PeftModel

        del peft_model
        base = load_sequence_classifier(model_path, choice, problem, label_names, tokenizer.pad_token_id,
                                        trust_remote_code=cfg.trust_remote_code, allow_pickle=cfg.allow_pickle)
        merged = PeftModel.from_pretrained(base, adapter_dir).merge_and_unload()
    else:
        merged = peft_model.merge_and_unload()
    save_full(merged, tokenizer, model_dir, thresholds)
