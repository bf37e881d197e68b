"""Classification fine-tuning (task "classify"): a sequence-classification head on an encoder or a decoder, trained
with LoRA, QLoRA (4/8-bit, bitsandbytes) or all weights, on labelled text. The same worker, events, checkpoints,
stop/resume and atomic outputs as supervised fine-tuning (training.py)."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from studio.engine.callbacks import EventCallback
from studio.engine.classify.config import ClassifyConfig
from studio.engine.classify.data import label_summary, read_run_data
from studio.engine.classify.model import (apply_method, load_classifier_tokenizer, load_sequence_classifier,
                                          save_adapter_and_merged, save_full)
from studio.engine.events import EventWriter
from studio.engine.models import (check_model_safety, choose_device, parameter_counts, quantization_of,
                                  resolve_model_path)
from studio.engine.runs import atomic_dir
from studio.engine.training import train_and_save, training_arguments

# The figure higher-is-better metrics are compared on; "loss" is the validation loss (lower is better).
SCALAR_METRICS = ("accuracy", "macro_f1", "micro_f1", "mse", "pearson", "spearman")


def best_metric_name(cfg: ClassifyConfig, problem: str) -> str:
    if cfg.best_metric == "auto":
        return "loss" if problem == "regression" else "macro_f1"
    return cfg.best_metric


def best_of_history(log_history: list[dict], metric: str) -> dict | None:
    """The evaluation with the best `metric` (the first of equals), as {step, metric, value, loss, figures}."""
    evals = [h for h in log_history if "eval_loss" in h]
    key = "eval_loss" if metric == "loss" else f"eval_{metric}"
    evals = [h for h in evals if isinstance(h.get(key), (int, float))]
    if not evals:
        return None
    best = (min if metric == "loss" else max)(evals, key=lambda h: h[key])
    figures = {m: best[f"eval_{m}"] for m in SCALAR_METRICS if isinstance(best.get(f"eval_{m}"), (int, float))}
    return {"step": best.get("step"), "metric": metric, "value": best[key], "loss": best["eval_loss"],
            "figures": figures}


def run_classify(cfg: ClassifyConfig, run_dir: Path, events: EventWriter, stop_requested: threading.Event) -> dict:
    from transformers import EarlyStoppingCallback, set_seed

    from studio.engine.classify.batches import ClassifyTrainer, PadCollator, class_weights, tokenize
    from studio.engine.classify.metrics import compute_for, multi_label_metrics, tune_thresholds

    run_dir = Path(run_dir)
    events.emit("progress", phase="checking the model", fraction=0.0)
    model_path = resolve_model_path(cfg.model, cfg.allow_download)
    check_model_safety(model_path, cfg.trust_remote_code, cfg.allow_pickle)
    tokenizer = load_classifier_tokenizer(model_path, cfg.trust_remote_code)

    events.emit("progress", phase="reading data", fraction=0.0)
    full, train, val = read_run_data(cfg)
    problem, names = full.problem, full.label_names
    summary = label_summary(full)
    (run_dir / "dataset_summary.json").write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    sizes = dict(dataset=summary, train_rows=len(train.texts), validation_rows=len(val.texts) if val else 0)
    events.emit("progress", phase="reading data", fraction=1.0, **sizes)
    events.emit("progress", phase="tokenizing", fraction=0.0)
    train_ds = tokenize(train, tokenizer, cfg.max_length,
                        progress=lambda f: f < 1 and events.emit("progress", phase="tokenizing", fraction=round(f, 3)))
    val_ds = tokenize(val, tokenizer, cfg.max_length) if val else None
    if val_ds is not None:
        val_ds.rows.sort(key=lambda r: len(r["input_ids"]))  # less padding; the metrics do not depend on order
    events.emit("progress", phase="tokenizing", fraction=1.0, **sizes)

    choice = choose_device(cfg.device, cfg.precision)
    events.emit("progress", phase="loading the model", fraction=0.0)
    set_seed(cfg.seed)  # before the head's and the adapter's random initialisation
    model = load_sequence_classifier(model_path, choice, problem, names, tokenizer.pad_token_id,
                                     quantization=quantization_of(cfg.method), trust_remote_code=cfg.trust_remote_code,
                                     allow_pickle=cfg.allow_pickle)
    model = apply_method(model, cfg)
    trainable, total = parameter_counts(model)

    has_eval = val_ds is not None and len(val_ds) > 0
    best = best_metric_name(cfg, problem)
    overrides: dict = dict(label_names=["labels"])
    if has_eval and cfg.eval_every > 0 and best != "loss":
        overrides.update(metric_for_best_model=best, greater_is_better=True)
    args = training_arguments(cfg, run_dir, choice, has_eval=has_eval, tokens_counting="non_padding", **overrides)
    callback = EventCallback(events, stop_requested, perplexity=False, started_fields=dict(
        task="classify", problem=problem, labels=names, best_metric=best, method=cfg.method, device=choice.device,
        device_name=choice.name, precision=choice.precision, model=str(model_path), trainable_parameters=trainable,
        parameters=total, train_rows=len(train_ds), validation_rows=len(val_ds) if val_ds else 0))
    callbacks = [callback]
    if has_eval and cfg.early_stopping_patience and args.load_best_model_at_end:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    thresholds = {"values": [cfg.threshold] * len(names)}
    trainer = ClassifyTrainer(
        model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds if has_eval else None,
        data_collator=PadCollator(tokenizer.pad_token_id, problem, 8 if choice.device == "cuda" else 1),
        processing_class=tokenizer, callbacks=callbacks,
        compute_metrics=compute_for(problem, names, lambda: thresholds["values"]) if has_eval else None,
        problem=problem, class_weights=class_weights(train) if cfg.class_weights else None,
        train_lengths=train_ds.lengths() if cfg.group_by_length else None)

    def after_training() -> dict:
        extra: dict = {"problem": problem, "labels": names, "best_metric": best}
        if has_eval and problem == "multi_label":
            events.emit("progress", phase="evaluating", fraction=None)
            out = trainer.predict(val_ds)
            thresholds["values"] = tune_thresholds(out.predictions, out.label_ids, cfg.threshold)
            tuned = multi_label_metrics(out.predictions, out.label_ids, names, thresholds["values"])
            events.emit("eval", step=trainer.state.global_step, eval_loss=out.metrics.get("test_loss"),
                        thresholds_tuned=True, **tuned)
            extra["thresholds"] = tuned["thresholds"]
            extra["tuned_metrics"] = {m: tuned[m] for m in SCALAR_METRICS if m in tuned}
        history = trainer.state.log_history
        found = best_of_history(history, best)
        if not found:
            extra["best_eval_loss"] = None  # no validation data: no best figure
            return extra
        # The saved model is the best checkpoint when one was kept, else the last state.
        kept = found if args.load_best_model_at_end else best_of_history([h for h in history if "eval_loss" in h][-1:],
                                                                         best)
        extra.update(best_value=found["value"], best_step=found["step"], metrics=kept["figures"],
                     metrics_step=kept["step"], best_eval_loss=min(h["eval_loss"] for h in history if "eval_loss" in h))
        return extra

    def save_output(folder: Path) -> None:
        tuned = dict(zip(names, thresholds["values"])) if problem == "multi_label" else None
        if cfg.method == "full":
            save_full(trainer.model, tokenizer, folder, tuned)
            return
        with atomic_dir(run_dir / "adapter") as adapter_tmp:
            save_adapter_and_merged(trainer.model, tokenizer, cfg, model_path, choice, problem, names, adapter_tmp,
                                    folder, tuned)

    return train_and_save(trainer, callback, cfg, events, run_dir, output_name="model", save_output=save_output,
                          has_eval=has_eval, after_training=after_training)
