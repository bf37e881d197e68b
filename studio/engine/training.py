"""What every training recipe shares: Trainer arguments from a config, the train/stop/resume loop,
and the atomic saving of the output."""

from __future__ import annotations

from pathlib import Path

from studio.engine.callbacks import EventCallback
from studio.engine.config import effective_save_every
from studio.engine.errors import BadConfig
from studio.engine.events import EventWriter
from studio.engine.models import DeviceChoice
from studio.engine.runs import CHECKPOINTS_DIR, atomic_dir


def training_arguments(cfg, run_dir: Path, choice: DeviceChoice, *, has_eval: bool, tokens_counting: str,
                       args_class=None, **overrides):
    """The Trainer's arguments from a config; `args_class` is a TrainingArguments subclass such as TRL's
    DPOConfig, whose own fields come in `overrides`."""
    from transformers import TrainingArguments

    eval_on = has_eval and cfg.eval_every > 0
    save_every = effective_save_every(cfg, has_eval)
    kwargs = dict(
        output_dir=str(run_dir / CHECKPOINTS_DIR),
        per_device_train_batch_size=cfg.batch_size,
        per_device_eval_batch_size=cfg.batch_size,
        gradient_accumulation_steps=cfg.gradient_accumulation,
        learning_rate=cfg.learning_rate,
        lr_scheduler_type=cfg.scheduler,
        warmup_steps=cfg.warmup_ratio,  # a float below 1 is a fraction of the steps
        weight_decay=cfg.weight_decay,
        max_grad_norm=cfg.max_grad_norm if cfg.max_grad_norm > 0 else 1e12,
        num_train_epochs=cfg.epochs,
        max_steps=cfg.max_steps if cfg.max_steps > 0 else -1,
        logging_steps=cfg.log_every,
        logging_first_step=True,
        logging_nan_inf_filter=False,  # a diverged loss must reach the NaN check, not be averaged away
        eval_strategy="steps" if eval_on else "no",
        eval_steps=cfg.eval_every if eval_on else None,
        eval_on_start=bool(has_eval and getattr(cfg, "eval_at_start", False)),
        save_strategy="steps" if save_every else "no",
        save_steps=save_every or 500,
        save_total_limit=cfg.keep_checkpoints,
        load_best_model_at_end=bool(eval_on and save_every),
        metric_for_best_model="eval_loss" if eval_on else None,
        greater_is_better=False,
        gradient_checkpointing=cfg.gradient_checkpointing,
        seed=cfg.seed,
        data_seed=cfg.seed,
        bf16=choice.precision == "bf16",
        fp16=choice.precision == "fp16",
        use_cpu=choice.device == "cpu",
        report_to="none",
        disable_tqdm=True,
        dataloader_pin_memory=choice.device == "cuda",
        include_num_input_tokens_seen=tokens_counting,
        remove_unused_columns=False,
        save_only_model=False,
        # SFT reports only the loss: gathering every evaluation logit (rows x length x vocab) is wasted memory,
        # and the packing collator's head-on-labels-only logits are flat, not (rows, length, vocab).
        prediction_loss_only=getattr(cfg, "task", "") == "sft",
    )
    kwargs.update(overrides)
    return (args_class or TrainingArguments)(**kwargs)


def check_resume_point(path: str) -> str | None:
    if not path:
        return None
    p = Path(path)
    if not (p / "trainer_state.json").is_file():
        raise BadConfig(f"Field 'resume_from': {p} is not a complete checkpoint (no trainer_state.json).",
                        "Choose a checkpoints/checkpoint-N folder of an earlier run.", field="resume_from")
    return str(p)


def train_and_save(trainer, callback: EventCallback, cfg, events: EventWriter, run_dir: Path, *,
                   output_name: str, save_output, has_eval: bool, after_training=None) -> dict:
    """Run the Trainer, then write the output atomically and report `finished`. `after_training()`, if given,
    runs before the output is saved (e.g. to tune decision thresholds) and returns fields added to the summary."""
    resume = check_resume_point(cfg.resume_from)
    result = trainer.train(resume_from_checkpoint=resume)
    if has_eval and cfg.eval_every == 0:
        events.emit("progress", phase="evaluating", fraction=None)
        trainer.evaluate()  # evaluation only at the end
    extra = after_training() if after_training else {}
    status = "stopped" if callback.stopped_by_user else "completed"
    events.emit("progress", phase="saving", fraction=0.0)
    output = run_dir / output_name
    with atomic_dir(output) as tmp:
        save_output(tmp)
    state = trainer.state
    summary = {"steps": state.global_step, "train_loss": result.training_loss,
               "best_eval_loss": state.best_metric, "best_checkpoint": state.best_model_checkpoint,
               "runtime_s": result.metrics.get("train_runtime"), "tokens_seen": state.num_input_tokens_seen}
    summary.update(extra)
    events.emit("finished", status=status, output=str(output), summary=summary)
    return summary

