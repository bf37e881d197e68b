"""Errors a person can act on. Each carries a kind (as in the `failed` event), a message and a hint."""

from __future__ import annotations


class StudioError(Exception):
    kind = "internal"
    default_hint = ""

    def __init__(self, message: str, hint: str = "", *, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint or self.default_hint
        self.field = field

    def as_event(self) -> dict:
        event = {"kind": self.kind, "message": self.message, "hint": self.hint}
        if self.field:
            event["field"] = self.field
        return event


class BadConfig(StudioError):
    kind = "bad_config"
    default_hint = "Fix the named field in the form or the YAML file and start again."


class BadDataset(StudioError):
    kind = "bad_dataset"
    default_hint = "Fix the named file (line or field) or choose another format / column mapping."


class BadModel(StudioError):
    kind = "bad_model"
    default_hint = "Choose a folder that holds a transformers model (config.json, weights and tokenizer)."


class NanLoss(StudioError):
    kind = "nan_loss"
    default_hint = ("The training diverged. Lower the learning rate (try 10x smaller), keep gradient clipping "
                    "on, or use fp32/bf16 instead of fp16.")


class OutOfMemory(StudioError):
    kind = "out_of_memory"
    default_hint = ("Lower the batch size (raise gradient accumulation to keep the effective batch), lower the "
                    "max length, turn on gradient checkpointing, or use QLoRA 4-bit.")


class UnsafeModel(StudioError):
    kind = "unsafe_model"
    default_hint = "Only allow this for a model from a source you trust."


class DiskFull(StudioError):
    kind = "disk_full"
    default_hint = ("Free space on the disk that holds the workspace (or move the workspace in Settings), then "
                    "resume from the last complete checkpoint.")
