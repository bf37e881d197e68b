"""Typed run configurations shared by the GUI, the CLI and the worker.

Every field carries its help text, bounds and group in ``metadata`` so the UI can build
forms and tooltips from it and validation can name the field, the value and what is allowed.
This module is light (no torch) so the GUI may import it at start-up.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from studio.engine.errors import BadConfig


def knob(default: Any, help: str, *, min: float | None = None, max: float | None = None,
         choices: tuple | None = None, group: str = "Training", advanced: bool = False,
         label: str | None = None, choice_labels: dict[str, str] | None = None):
    """A config field with the metadata the UI and the validator read.

    `choice_labels` maps a choice (the key a config file, the CLI and validation use) to the words a form
    shows for it; choices without an entry are shown as their key.
    """
    if choice_labels and not set(choice_labels) <= set(choices or ()):
        raise ValueError(f"choice_labels name {sorted(set(choice_labels) - set(choices or ()))}, which are not "
                         f"among the choices {choices}")
    meta = {"help": help, "min": min, "max": max, "choices": choices, "group": group,
            "advanced": advanced, "label": label, "choice_labels": dict(choice_labels or {})}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


METHODS = ("lora", "qlora-4bit", "qlora-8bit", "full")
SCHEDULERS = ("linear", "cosine", "constant", "constant_with_warmup")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
DEVICES = ("auto", "cuda", "mps", "cpu")
FORMATS = ("auto", "alpaca", "messages", "sharegpt", "prompt_completion")
# The words a form shows for each choice (see knob); files and the CLI keep the keys.
METHOD_LABELS = {"lora": "LoRA (small adapter matrices)", "qlora-4bit": "QLoRA, base model in 4 bits",
                 "qlora-8bit": "QLoRA, base model in 8 bits", "full": "Full (every weight)"}
SCHEDULER_LABELS = {"linear": "Linear decay", "cosine": "Cosine decay", "constant": "Constant",
                    "constant_with_warmup": "Constant after warm-up"}
PRECISION_LABELS = {"auto": "Automatic", "fp32": "32-bit float (fp32)", "bf16": "bfloat16 (bf16)",
                    "fp16": "16-bit float (fp16)"}
DEVICE_LABELS = {"auto": "Automatic", "cuda": "NVIDIA GPU (CUDA)", "mps": "Apple GPU (MPS)", "cpu": "CPU"}
FORMAT_LABELS = {"auto": "Automatic", "alpaca": "Alpaca (instruction / input / output)",
                 "messages": "Chat messages (OpenAI style)", "sharegpt": "ShareGPT conversations",
                 "prompt_completion": "Prompt / completion"}


SAVE_EVERY_HELP = ("Save a resumable checkpoint every this many steps (0 = only at the end). With validation on, "
                   "checkpoints fall on evaluation steps (so the best one can be kept): the interval is rounded "
                   "up to a multiple of 'eval every'.")


@dataclass
class TrainingKnobs:
    """Optimisation settings shared by every training task."""

    learning_rate: float = knob(2e-4, "Peak learning rate of AdamW.", min=1e-8, max=1.0)
    scheduler: str = knob("cosine", "How the learning rate changes over the run.",
                          choices=SCHEDULERS, choice_labels=SCHEDULER_LABELS, advanced=True)
    warmup_ratio: float = knob(0.03, "Fraction of the steps spent ramping the learning rate up from zero.",
                               min=0.0, max=0.5, advanced=True)
    weight_decay: float = knob(0.0, "AdamW weight decay.", min=0.0, max=1.0, advanced=True)
    epochs: float = knob(3.0, "Passes over the training data (ignored when max steps is set).",
                         min=0.01, max=1000.0)
    max_steps: int = knob(0, "Stop after this many optimizer steps; 0 means use epochs.", min=0, max=10_000_000)
    batch_size: int = knob(4, "Examples per device per step.", min=1, max=4096)
    gradient_accumulation: int = knob(1, "Steps whose gradients are summed before each update "
                                         "(effective batch = batch size x this).", min=1, max=1024)
    max_grad_norm: float = knob(1.0, "Clip gradients to this norm; 0 disables clipping.", min=0.0, max=1e6,
                                advanced=True)
    max_length: int = knob(512, "Longest sequence in tokens; longer examples are truncated.", min=8, max=131072)
    gradient_checkpointing: bool = knob(False, "Recompute activations in the backward pass: less memory, "
                                               "about 30% slower.", advanced=True)
    eval_every: int = knob(50, "Evaluate on the validation data every this many steps (0 = only at the end).",
                           min=0, max=10_000_000, group="Evaluation")
    eval_at_start: bool = knob(False, "Also evaluate before the first step, so the validation curve starts from "
                                      "the untrained model's score.", group="Evaluation")
    save_every: int = knob(100, SAVE_EVERY_HELP, min=0, max=10_000_000, group="Evaluation")
    keep_checkpoints: int = knob(2, "How many recent checkpoints to keep (the best is always kept).",
                                 min=1, max=1000, group="Evaluation", advanced=True)
    early_stopping_patience: int = knob(0, "Stop when the validation loss has not improved for this many "
                                           "evaluations (0 = never).", min=0, max=1000, group="Evaluation")
    validation_fraction: float = knob(0.05, "Fraction of the data held out for validation when no "
                                            "validation file is given.", min=0.0, max=0.5, group="Data")
    log_every: int = knob(1, "Report the training loss every this many steps.", min=1, max=100000,
                          advanced=True)
    seed: int = knob(42, "Random seed: the same seed and data give the same loss curve.", min=0, max=2**31 - 1,
                     advanced=True)
    device: str = knob("auto", "Where to train: auto picks CUDA, then Apple MPS, then the CPU.",
                       choices=DEVICES, choice_labels=DEVICE_LABELS, group="Hardware", advanced=True)
    precision: str = knob("auto", "Number format: auto uses bf16 on GPUs that support it, fp16 on older "
                                  "GPUs, fp32 on the CPU.", choices=PRECISIONS, choice_labels=PRECISION_LABELS,
                           group="Hardware", advanced=True)
    resume_from: str = knob("", "A checkpoint folder to resume from (empty = start fresh).", group="Run",
                            advanced=True)


@dataclass
class ModelKnobs:
    model: str = knob("", "The model: a local folder, a model in the Hugging Face cache, or a hub id.",
                      group="Model")
    allow_download: bool = knob(False, "Download the model from the Hugging Face hub if it is not on this "
                                       "computer.", group="Model", advanced=True)
    trust_remote_code: bool = knob(False, "Run Python code shipped in the model folder. Only for models "
                                          "you trust.", group="Model", advanced=True)
    allow_pickle: bool = knob(False, "Load weights stored as pickle files (.bin/.pt), which can run code "
                                     "when loaded. Only for models you trust.", group="Model", advanced=True)


@dataclass
class LoraKnobs:
    method: str = knob("lora", "lora trains small adapter matrices; qlora also loads the base model in 4 or 8 "
                               "bits to save memory; full trains every weight.", choices=METHODS,
                       choice_labels=METHOD_LABELS, group="Method")
    lora_r: int = knob(16, "LoRA rank: the size of the adapter matrices.", min=1, max=1024, group="Method",
                       label="LoRA rank (r)")
    lora_alpha: int = knob(32, "LoRA scaling (the update is scaled by alpha / r).", min=1, max=4096,
                           group="Method", label="LoRA alpha")
    lora_dropout: float = knob(0.05, "Dropout on the LoRA input.", min=0.0, max=0.9, group="Method",
                               advanced=True, label="LoRA dropout")
    target_modules: str = knob("all-linear", "Layers that get adapters: all-linear, or comma-separated module "
                                             "names such as q_proj,v_proj.", group="Method", advanced=True)


@dataclass
class FineTuneConfig(TrainingKnobs, ModelKnobs, LoraKnobs):
    """Supervised fine-tuning of a causal language model on instruction or chat data."""

    task: str = knob("sft", "The kind of run.", choices=("sft",), choice_labels={"sft": "Supervised fine-tuning"},
                     group="Run")
    name: str = knob("finetune", "A name for the run; it becomes part of the run folder's name.", group="Run")
    dataset: str = knob("", "Training data: a JSON, JSONL, CSV or Parquet file.", group="Data")
    validation_file: str = knob("", "Optional separate validation file (else a fraction is held out).",
                                group="Data", advanced=True)
    format: str = knob("auto", "Data format; auto detects it from the columns.", choices=FORMATS,
                       choice_labels=FORMAT_LABELS, group="Data")
    column_mapping: dict = knob({}, "Rename columns to the names the format expects, e.g. "
                                    "{question: instruction, answer: output}.", group="Data", advanced=True)
    placeholders: dict = knob({}, "Values for template placeholders left in the data: each {{name}} in the "
                                  "text is replaced by its value when the data is read, e.g. {name: Ada, "
                                  "company: Acme}. Placeholders without a value are trained on as written "
                                  "(the dataset check warns about them).", group="Data", advanced=True)
    train_on_prompt: bool = knob(False, "Also compute the loss on system and user tokens (by default only "
                                        "the assistant's replies are learned).", group="Data", advanced=True)
    padding_free: bool = knob(True, "Pack each batch into one row without padding (sequences kept apart "
                                    "by position ids): the same result, less wasted compute.",
                              group="Data", advanced=True)


TASKS: dict[str, type] = {"sft": FineTuneConfig}
# Recipes whose config lives in its own module register themselves when that module is imported.
TASK_MODULES = {"pretrain": "studio.engine.pretrain_config", "eval": "studio.engine.evaluate.config",
                "classify": "studio.engine.classify.config", "preference": "studio.engine.preference.config",
                "export": "studio.engine.export.config"}


def register_task(name: str, cls: type) -> None:
    """Lets other recipes (pre-training, ...) add their config class."""
    TASKS[name] = cls


def _type_of(cls, f: dataclasses.Field):
    hints = typing.get_type_hints(cls)
    return hints[f.name]


def _coerce(name: str, value: Any, typ) -> Any:
    def bad(expected: str):
        return BadConfig(f"Field '{name}' has the value {value!r}; expected {expected}.", field=name)

    if typ is bool:
        if isinstance(value, bool):
            return value
        raise bad("true or false")
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (
                isinstance(value, float) and not value.is_integer()):
            raise bad("a whole number")
        return int(value)
    if typ is float:
        if isinstance(value, str):
            try:
                value = float(value)  # YAML reads 2e-4 as a string
            except ValueError:
                raise bad("a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise bad("a number")
        return float(value)
    if typ is str:
        if value is None:
            return ""
        if not isinstance(value, (str, int, float)) or isinstance(value, bool):
            raise bad("text")
        return str(value)
    if typ is dict:
        if value is None:
            return {}
        scalar = (str, int, float)
        if not isinstance(value, dict) or not all(isinstance(k, scalar) and isinstance(v, scalar)
                                                  and not isinstance(v, bool) for k, v in value.items()):
            raise bad("a mapping of placeholder names to text values" if name == "placeholders"
                      else "a mapping of column names to column names")
        # YAML reads `year: 2024` as a number; a name or value is text wherever it is used.
        return {str(k): str(v) for k, v in value.items()}
    return value


def validate(cfg) -> None:
    """Check every field's type and bounds; raise BadConfig naming the first bad field."""
    for f in fields(cfg):
        value = _coerce(f.name, getattr(cfg, f.name), _type_of(type(cfg), f))
        setattr(cfg, f.name, value)
        meta = f.metadata
        if meta.get("choices") and value not in meta["choices"]:
            raise BadConfig(f"Field '{f.name}' has the value {value!r}; expected one of "
                            f"{', '.join(map(str, meta['choices']))}.", field=f.name)
        lo, hi = meta.get("min"), meta.get("max")
        if lo is not None and value < lo or hi is not None and value > hi:
            raise BadConfig(f"Field '{f.name}' has the value {value!r}; expected a value from {lo} to {hi}.",
                            field=f.name)
    check = getattr(cfg, "check", None)
    if check:
        check()


def from_dict(data: dict, source: str = "the config") -> Any:
    if not isinstance(data, dict):
        raise BadConfig(f"{source} must be a mapping of field names to values, not {type(data).__name__}.")
    task = data.get("task", "sft")
    if not isinstance(task, str):
        raise BadConfig(f"Field 'task' in {source} has the value {task!r}; expected one of "
                        f"{', '.join(sorted(set(TASKS) | set(TASK_MODULES)))}.", field="task")
    if task not in TASKS and task in TASK_MODULES:
        import importlib

        importlib.import_module(TASK_MODULES[task])
    cls = TASKS.get(task)
    if cls is None:
        raise BadConfig(f"Field 'task' in {source} has the value {task!r}; expected one of "
                        f"{', '.join(sorted(set(TASKS) | set(TASK_MODULES)))}.", field="task")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise BadConfig(f"{source} has unknown field(s) {', '.join(unknown)}; the fields of a '{task}' run are: "
                        f"{', '.join(sorted(known))}.", field=unknown[0])
    cfg = cls(**data)
    validate(cfg)
    return cfg


def to_dict(cfg) -> dict:
    return dataclasses.asdict(cfg)


def load_config(path: str | Path) -> Any:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadConfig(f"Config file {path} does not exist.") from None
    except (UnicodeDecodeError, IsADirectoryError) as exc:
        raise BadConfig(f"Config file {path} is not a UTF-8 text file ({exc}).") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise BadConfig(f"Config file {path} is not valid YAML{where}: {getattr(exc, 'problem', exc)}.") from None
    except RecursionError:
        raise BadConfig(f"Config file {path} is nested too deeply to read.") from None
    if data is None or data == {}:
        raise BadConfig(f"Config file {path} is empty.", "A config needs at least 'model' and 'dataset' (see the "
                        "README's example), or save one from the app with Save config….")
    return from_dict(data, source=f"Config file {path}")


def save_config(cfg, path: str | Path) -> None:
    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(yaml.safe_dump(to_dict(cfg), sort_keys=False, allow_unicode=True), encoding="utf-8")
    tmp.replace(path)


def effective_save_every(cfg, has_eval: bool) -> int:
    """The checkpoint interval a run really uses: with evaluation on, keeping the best checkpoint needs a save
    on each evaluation step, so the interval is rounded up to a multiple of eval_every."""
    if has_eval and cfg.eval_every > 0 and cfg.save_every:
        return math.ceil(cfg.save_every / cfg.eval_every) * cfg.eval_every
    return cfg.save_every
