"""The preference-tuning worker job: DPO, ORPO or KTO through TRL, with the same events, checkpoints,
stop/resume and atomic output as supervised fine-tuning.

The reference model costs no second copy: with LoRA it is a frozen copy of the adapter as it was at the start
(TRL's "ref" adapter: the base model for a new adapter, an earlier run's adapter when training continues it);
DPO and KTO compute the reference's log-probabilities once, before training, so a step runs no reference pass.
"""

from __future__ import annotations

import math
import random
import threading
from pathlib import Path

from studio.engine.callbacks import EventCallback
from studio.engine.errors import BadConfig
from studio.engine.events import EventWriter
from studio.engine.models import (check_model_safety, choose_device, load_causal_lm, load_tokenizer,
                                  parameter_counts, quantization_of, resolve_model_path)
from studio.engine.preference.config import PreferenceConfig
from studio.engine.training import train_and_save, training_arguments

# TRL's metric names -> the names in events (log and eval), the same for the three objectives.
METRIC_NAMES = {"rewards/margins": "reward_margin", "rewards/accuracies": "preference_accuracy",
                "rewards/chosen": "reward_chosen", "rewards/rejected": "reward_rejected",
                "logps/chosen": "logp_chosen", "logps/rejected": "logp_rejected", "kl": "kl",
                "log_odds_ratio": "log_odds_ratio", "nll_loss": "nll_loss"}
PROBE_ROWS = 64  # validation replies scored for KTO's preference accuracy at each evaluation


def read_run_data(cfg: PreferenceConfig):
    """(training rows, validation rows, the training file's PreferenceData) in TRL's layout for the objective."""
    from studio.engine.preference.data import read_preferences, rows_for, split_validation

    data = read_preferences(cfg.dataset, cfg.column_mapping)
    rows = rows_for(data, cfg.objective)
    if cfg.validation_file:
        val = rows_for(read_preferences(cfg.validation_file, cfg.column_mapping), cfg.objective)
    elif cfg.validation_fraction > 0 and len(rows) >= 4:
        rows, val = split_validation(rows, cfg.validation_fraction, cfg.seed)
    else:
        val = []
    if cfg.objective == "kto":
        random.Random(cfg.seed).shuffle(rows)
    else:
        # The reference pass before training reads the rows in file order: sorted by length, its batches need
        # little padding (training draws its own length-grouped random batches).
        rows.sort(key=_chars)
    if not rows:
        raise BadConfig(f"{cfg.dataset}: no rows to learn from with objective {cfg.objective}.", field="dataset")
    return rows, val, data


def _chars(row: dict) -> int:
    return sum(len(str(m.get("content", ""))) for key in ("prompt", "chosen", "rejected") for m in row.get(key, []))


def attach_adapter(model, cfg: PreferenceConfig):
    """(the model to hand to the trainer, the LoRA config the trainer should wrap it with, or None).

    A new adapter is wrapped by TRL, whose reference is then the model with the adapter switched off (no adapter
    computation at all in the reference pass). An earlier run's adapter is loaded here and trained further; TRL
    copies it into a frozen "ref" adapter, the reference."""
    if cfg.method == "full":
        return model, None
    from peft import LoraConfig, PeftModel, prepare_model_for_kbit_training

    from studio.engine.sft import lora_targets

    if cfg.method.startswith("qlora"):
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=cfg.gradient_checkpointing)
    if cfg.adapter.strip():
        return PeftModel.from_pretrained(model, cfg.adapter, is_trainable=True), None
    return model, LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout,
                             target_modules=lora_targets(cfg), task_type="CAUSAL_LM")


def kto_weights(rows: list[dict]) -> dict:
    """Desirable/undesirable weights that balance the two kinds of marks (TRL's advice: their weighted counts
    within 1 to 4/3 of each other), so a file of mostly good marks does not drown the bad ones."""
    good = sum(1 for r in rows if r["label"])
    bad = len(rows) - good
    if not good or not bad:
        return {}
    return {"desirable_weight": max(1.0, bad / good), "undesirable_weight": max(1.0, good / bad)}


def trainer_class(objective: str):
    if objective == "dpo":
        from trl import DPOConfig, DPOTrainer

        return DPOTrainer, DPOConfig
    if objective == "kto":
        from trl import KTOConfig, KTOTrainer

        return KTOTrainer, KTOConfig
    from trl.experimental.orpo import ORPOConfig, ORPOTrainer

    return ORPOTrainer, ORPOConfig


def objective_arguments(cfg: PreferenceConfig, train_rows: list[dict]) -> dict:
    # Batches of similar lengths (the "length" column, see add_lengths): pairs vary from a line to pages, and a
    # batch is padded to its longest sequence.
    args = dict(beta=cfg.beta, max_length=cfg.max_length, disable_dropout=True,
                train_sampling_strategy="group_by_length")
    if cfg.objective in ("dpo", "kto"):
        # The reference's log-probabilities once, before training: no reference forward pass at each step (nor,
        # with full fine-tuning, a second copy of the model).
        args["precompute_ref_log_probs"] = True
        args["precompute_ref_batch_size"] = 2 * cfg.batch_size  # no gradients: twice the rows fit
    if cfg.objective == "kto":
        # KTO pairs each reply with a neighbour's for its KL term, which needs a fixed order (the rows are
        # shuffled once, with the run's seed, in read_run_data).
        args.update(kto_weights(train_rows), train_sampling_strategy="sequential")
    return args


class KtoProbe:
    """KTO's preference accuracy on validation replies, which TRL does not report: the share of marked replies the
    model has moved the right way from where it started."""

    def __init__(self, model, tokenizer, rows: list[dict], max_length: int, beta: float):
        from studio.engine.preference.scoring import reply_scores

        self.model, self.tokenizer, self.max_length, self.beta = model, tokenizer, max_length, beta
        self.rows = rows[:PROBE_ROWS]
        self.pairs = [(r["prompt"], r["completion"]) for r in self.rows]
        self.reference = reply_scores(model, tokenizer, self.pairs, max_length=max_length)

    def __call__(self, step: int) -> dict:
        from studio.engine.preference.scoring import mark_accuracy, reply_scores

        scores = reply_scores(self.model, self.tokenizer, self.pairs, max_length=self.max_length)
        labels = [r["label"] for r in self.rows]
        fields = {"preference_accuracy": mark_accuracy(scores, self.reference, labels)}
        # TRL's KTO reports a margin only for batches holding both kinds: this one is over the probed replies.
        gains = {True: [], False: []}
        for score, ref, good in zip(scores, self.reference, labels):
            gains[bool(good)].append(self.beta * (score.logp - ref.logp))
        if gains[True] and gains[False]:
            fields["reward_margin"] = sum(gains[True]) / len(gains[True]) - sum(gains[False]) / len(gains[False])
        return fields


def add_lengths(dataset):
    """The tokenized rows' lengths (prompt and replies), which the length-grouped sampler reads."""
    if dataset is None or "length" in dataset.column_names:
        return dataset
    id_columns = [c for c in dataset.column_names if c.endswith("_ids") and not c.startswith("KL_")]
    return dataset.map(lambda row: {"length": sum(len(row[c]) for c in id_columns)}, desc=None)


def run_preference(cfg: PreferenceConfig, run_dir: Path, events: EventWriter,
                   stop_requested: threading.Event) -> dict:
    from datasets import Dataset
    from transformers import EarlyStoppingCallback, set_seed

    from studio.engine.data.render import ensure_chat_template

    events.emit("progress", phase="checking the model", fraction=0.0)
    model_path = resolve_model_path(cfg.model, cfg.allow_download)
    check_model_safety(model_path, cfg.trust_remote_code, cfg.allow_pickle)
    tokenizer = load_tokenizer(model_path, cfg.trust_remote_code)
    template_added = ensure_chat_template(tokenizer)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token

    events.emit("progress", phase="reading data", fraction=None)
    train_rows, val_rows, data = read_run_data(cfg)
    summary = {"source": data.source, "format": data.format, "pairs": len(data.pairs), "marks": len(data.marks),
               "dropped": {reason: {"count": len(where), "examples": where[:3]}
                           for reason, where in data.dropped.items()}}
    events.emit("progress", phase="reading data", fraction=1.0, dataset=summary, train_rows=len(train_rows),
                validation_rows=len(val_rows))

    choice = choose_device(cfg.device, cfg.precision)
    events.emit("progress", phase="loading the model", fraction=0.0)
    set_seed(cfg.seed)  # before the adapter's random initialisation, so a seed fixes the whole run
    model = load_causal_lm(model_path, choice, quantization=quantization_of(cfg.method),
                           trust_remote_code=cfg.trust_remote_code, allow_pickle=cfg.allow_pickle)
    model.config.use_cache = False
    model, lora = attach_adapter(model, cfg)

    has_eval = bool(val_rows)
    trainer_cls, args_cls = trainer_class(cfg.objective)
    args = training_arguments(cfg, run_dir, choice, has_eval=has_eval, tokens_counting="all", args_class=args_cls,
                              prediction_loss_only=True, **objective_arguments(cfg, train_rows))
    callback = EventCallback(events, stop_requested, started_fields=dict(
        task="preference", objective=cfg.objective, method=cfg.method, device=choice.device,
        device_name=choice.name, precision=choice.precision, model=str(model_path), adapter=cfg.adapter or None,
        reference=reference_words(cfg),
        chat_template="fallback" if template_added else "model", train_rows=len(train_rows),
        validation_rows=len(val_rows)), perplexity=False, metric_names=METRIC_NAMES,
        diverge_above=None if cfg.objective != "orpo" else 2 * math.log(len(tokenizer)))
    callbacks = [callback]
    if has_eval and cfg.early_stopping_patience and args.load_best_model_at_end:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    # Tokenizing, and for DPO and KTO scoring every reply with the reference model (one forward pass each).
    events.emit("progress", phase="tokenizing", fraction=None)
    trainer = trainer_cls(model=model, args=args, train_dataset=Dataset.from_list(train_rows),
                          eval_dataset=Dataset.from_list(val_rows) if has_eval else None,
                          processing_class=tokenizer, callbacks=callbacks, **({"peft_config": lora} if lora else {}))
    model = trainer.model
    trainable, total = parameter_counts(model)
    callback.started_fields.update(trainable_parameters=trainable, parameters=total)
    if cfg.objective == "kto" and has_eval:
        callback.extra_eval = KtoProbe(model, tokenizer, val_rows, cfg.max_length, cfg.beta)
    trainer.train_dataset = add_lengths(trainer.train_dataset)
    trainer.eval_dataset = add_lengths(trainer.eval_dataset)

    def save_output(folder: Path):
        if cfg.method == "full":
            trainer.model.save_pretrained(folder)
        else:
            trainer.model.save_pretrained(folder, selected_adapters=["default"])
        tokenizer.save_pretrained(folder)

    return train_and_save(trainer, callback, cfg, events, run_dir, output_name="model" if cfg.method == "full"
                          else "adapter", save_output=save_output, has_eval=has_eval)


def reference_words(cfg: PreferenceConfig) -> str:
    if cfg.objective == "orpo":
        return "none (ORPO)"
    start = "the starting adapter" if cfg.adapter.strip() else "the starting model"
    return f"{start}'s log-probabilities, computed before training"
