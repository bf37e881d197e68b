"""The pre-training recipe: read the corpus, build or load the model, pack the text into blocks, train with the
Trainer (held-out loss and perplexity at every evaluation; masked-token accuracy for masked LM; probe
completions for decoders), save a plain model folder."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from studio.engine.callbacks import EventCallback
from studio.engine.data.corpus import load_corpus, pack
from studio.engine.events import EventWriter
from studio.engine.models import choose_device, parameter_counts
from studio.engine.presets import parameter_count
from studio.engine.pretrain.blocks import make_datasets
from studio.engine.pretrain.masking import BlockCollator, masked_accuracy_metrics
from studio.engine.pretrain.models import apply_lora, starting_model
from studio.engine.pretrain.probes import complete_probes, default_probes
from studio.engine.pretrain_config import PretrainConfig
from studio.engine.training import check_resume_point, train_and_save, training_arguments


def batches_consumed(checkpoint: str, gradient_accumulation: int) -> int:
    """How many training batches a run had taken when it saved `checkpoint` (the Trainer skips as many)."""
    state = json.loads((Path(checkpoint) / "trainer_state.json").read_text(encoding="utf-8"))
    return int(state["global_step"]) * gradient_accumulation


def run_pretrain(cfg: PretrainConfig, run_dir: Path, events: EventWriter, stop_requested: threading.Event) -> dict:
    from transformers import EarlyStoppingCallback, Trainer

    run_dir = Path(run_dir)
    events.emit("progress", phase="reading the corpus", fraction=0.0)
    corpus = load_corpus(cfg.corpus_paths(), cfg.text_column, cfg.dedupe, cfg.document_split)
    choice = choose_device(cfg.device, cfg.precision)
    start = starting_model(cfg, corpus, choice, lambda phase, **fields: events.emit("progress", phase=phase, **fields))
    tokenizer, model = start.tokenizer, start.model

    events.emit("progress", phase="tokenizing", fraction=0.0)
    packed = pack(corpus, tokenizer, cfg.block_size, whole_words=cfg.objective == "mlm" and cfg.whole_word_masking,
                  wrap_specials=cfg.objective == "mlm",
                  progress=lambda f: events.emit("progress", phase="tokenizing", fraction=round(f, 3)))
    collator = BlockCollator(cfg.objective, tokenizer, probability=cfg.mlm_probability,
                             whole_words=packed.word_ids is not None, seed=cfg.seed)
    if cfg.resume_from:  # masks are numbered by batch: go on from the checkpoint's batch
        collator.batches = batches_consumed(check_resume_point(cfg.resume_from), cfg.gradient_accumulation)
    train_ds, val_ds = make_datasets(cfg, packed, collator)
    summary = packed.summary.as_dict()
    (run_dir / "corpus_summary.json").write_text(json.dumps(summary, indent=1))
    events.emit("progress", phase="tokenizing", fraction=1.0, corpus=summary)

    if cfg.method == "lora":
        model = apply_lora(model, cfg)
    trainable, total = parameter_counts(model)

    has_eval = val_ds is not None
    args = training_arguments(cfg, run_dir, choice, has_eval=has_eval, tokens_counting="all")
    probes = (cfg.probes() or default_probes(corpus)) if cfg.objective == "clm" else []
    holder: dict = {}

    def extra_eval(step: int) -> dict:
        if probes and "trainer" in holder:
            samples = complete_probes(holder["trainer"].model, tokenizer, probes, cfg.probe_tokens)
            events.emit("sample", step=step, samples=samples)
        return {}

    started = dict(task="pretrain", mode=cfg.mode, objective=cfg.objective, method=cfg.method,
                   architecture=cfg.architecture if cfg.mode == "scratch" else model.config.model_type,
                   device=choice.device, device_name=choice.name, precision=choice.precision, model=start.source,
                   trainable_parameters=trainable, parameters=total, vocab_size=len(tokenizer),
                   block_size=cfg.block_size, corpus=summary, probe_prompts=probes)
    if start.arch is not None:
        started["estimated_parameters"] = parameter_count(start.arch, len(tokenizer), cfg.block_size)
    callback = EventCallback(events, stop_requested, started_fields=started, extra_eval=extra_eval)
    callbacks = [callback]
    if has_eval and cfg.early_stopping_patience and args.load_best_model_at_end:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    compute, preprocess = masked_accuracy_metrics() if cfg.objective == "mlm" and has_eval else (None, None)
    trainer = Trainer(model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds, data_collator=collator,
                      processing_class=tokenizer, callbacks=callbacks, compute_metrics=compute,
                      preprocess_logits_for_metrics=preprocess)
    holder["trainer"] = trainer
    if has_eval and not cfg.resume_from:
        events.emit("progress", phase="evaluating", fraction=None)
        trainer.evaluate()  # the untrained (or starting) model's held-out numbers: step 0 of the curves

    def save_output(folder: Path):
        out = trainer.model
        if cfg.method == "lora":
            out = out.merge_and_unload()  # a plain model folder that transformers loads without peft
        if cfg.objective == "clm":
            out.config.use_cache = True
        out.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        (folder / "corpus_summary.json").write_text(json.dumps(summary, indent=1))

    return train_and_save(trainer, callback, cfg, events, run_dir, output_name="model", save_output=save_output,
                          has_eval=has_eval)
