"""Supervised fine-tuning: LoRA, QLoRA (4/8-bit, bitsandbytes) or all weights, on chat-shaped data."""

from __future__ import annotations

import json
import math
import random
import threading
from pathlib import Path

from studio.engine.callbacks import EventCallback
from studio.engine.config import FineTuneConfig
from studio.engine.data.files import read_records
from studio.engine.data.formats import to_conversations
from studio.engine.data.render import ensure_chat_template
from studio.engine.data.tokenize_map import select_rows, to_train_dataset, tokenize_rows
from studio.engine.events import EventWriter
from studio.engine.models import (check_model_safety, choose_device, load_causal_lm, load_tokenizer,
                                  parameter_counts, quantization_of, resolve_model_path)
from studio.engine.training import train_and_save, training_arguments


def prepare_data(cfg: FineTuneConfig, tokenizer, progress=None, cache_dir: Path | None = None):
    """Tokenized train and validation rows, and the summary of the training file. Large files go through
    `Dataset.map` in several processes, into Arrow files under `cache_dir` if given (data/tokenize_map.py)."""
    # Conversations are built inline so nothing here keeps them alive while they are tokenized.
    train, summary = tokenize_rows(tokenizer, to_conversations(read_records(cfg.dataset), cfg.format,
                                                               cfg.column_mapping, placeholders=cfg.placeholders),
                                   cfg.max_length, cfg.train_on_prompt, progress, cache_dir=cache_dir)
    if cfg.validation_file:
        val, _ = tokenize_rows(tokenizer, to_conversations(read_records(cfg.validation_file), cfg.format,
                                                           cfg.column_mapping, placeholders=cfg.placeholders),
                               cfg.max_length, cfg.train_on_prompt, cache_dir=cache_dir, name="validation")
    elif cfg.validation_fraction > 0 and len(train) >= 2:
        order = list(range(len(train)))
        random.Random(cfg.seed).shuffle(order)
        n_val = max(1, round(len(train) * cfg.validation_fraction))
        val = select_rows(train, order[:n_val])
        train = select_rows(train, sorted(order[n_val:]))
    else:
        val = []
    return train, val, summary


def to_dataset(rows):
    return to_train_dataset(rows)


def lora_targets(cfg) -> str | list[str]:
    """The target_modules field as PEFT takes it: "all-linear" or a list of module names."""
    targets = cfg.target_modules.strip()
    return targets if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()]


def apply_method(model, cfg: FineTuneConfig):
    if cfg.method == "full":
        return model
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if cfg.method.startswith("qlora"):
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                      target_modules=lora_targets(cfg), task_type="CAUSAL_LM")
    try:
        return get_peft_model(model, lora)
    except ValueError as exc:
        from studio.engine.errors import BadConfig

        raise BadConfig(f"Field 'target_modules' ({cfg.target_modules!r}) does not fit this model: {exc}",
                        field="target_modules") from None


def collator_for(cfg: FineTuneConfig, tokenizer):
    if cfg.padding_free:
        from studio.engine.batching import PackingCollator

        return PackingCollator(tokenizer.pad_token_id, cfg.max_length)
    from transformers import DataCollatorForSeq2Seq

    return DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100, pad_to_multiple_of=None)


def run_sft(cfg: FineTuneConfig, run_dir: Path, events: EventWriter, stop_requested: threading.Event) -> dict:
    from transformers import EarlyStoppingCallback, Trainer, set_seed

    events.emit("progress", phase="checking the model", fraction=0.0)
    model_path = resolve_model_path(cfg.model, cfg.allow_download)
    check_model_safety(model_path, cfg.trust_remote_code, cfg.allow_pickle)
    tokenizer = load_tokenizer(model_path, cfg.trust_remote_code)
    template_added = ensure_chat_template(tokenizer)

    events.emit("progress", phase="tokenizing", fraction=0.0)
    train_rows, val_rows, summary = prepare_data(
        cfg, tokenizer, lambda f: events.emit("progress", phase="tokenizing", fraction=f),
        cache_dir=Path(run_dir) / "tokenized")
    (run_dir / "dataset_summary.json").write_text(json.dumps(summary.as_dict(), indent=1))
    events.emit("progress", phase="tokenizing", fraction=1.0, dataset=summary.as_dict(),
                train_rows=len(train_rows), validation_rows=len(val_rows))

    choice = choose_device(cfg.device, cfg.precision)
    events.emit("progress", phase="loading the model", fraction=0.0)
    set_seed(cfg.seed)  # before the adapter's random initialisation, so a seed fixes the whole run
    model = load_causal_lm(model_path, choice, quantization=quantization_of(cfg.method),
                           trust_remote_code=cfg.trust_remote_code, allow_pickle=cfg.allow_pickle)
    # Packed rows stay apart only without a KV cache (see design notes, "Packed rows").
    model.config.use_cache = False
    model = apply_method(model, cfg)
    trainable, total = parameter_counts(model)

    has_eval = bool(val_rows)
    args = training_arguments(cfg, run_dir, choice, has_eval=has_eval,
                              tokens_counting="all" if cfg.padding_free else "non_padding")
    callback = EventCallback(events, stop_requested, started_fields=dict(
        task="sft", method=cfg.method, device=choice.device, device_name=choice.name, precision=choice.precision,
        model=str(model_path), trainable_parameters=trainable, parameters=total,
        chat_template="fallback" if template_added else "model", train_rows=len(train_rows),
        validation_rows=len(val_rows)), diverge_above=2 * math.log(len(tokenizer)))
    callbacks = [callback]
    if has_eval and cfg.early_stopping_patience and args.load_best_model_at_end:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    trainer = Trainer(model=model, args=args, train_dataset=to_dataset(train_rows),
                      eval_dataset=to_dataset(val_rows) if has_eval else None,
                      data_collator=collator_for(cfg, tokenizer), processing_class=tokenizer, callbacks=callbacks)

    def save_output(folder: Path):
        trainer.model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    return train_and_save(trainer, callback, cfg, events, run_dir, output_name="model" if cfg.method == "full"
                          else "adapter", save_output=save_output, has_eval=has_eval)
