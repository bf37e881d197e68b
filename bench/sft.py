"""Targets 1 and 2: SFT throughput and efficiency, our engine path against plain Trainer scripts.

Three full fine-tuning runs of the same ~17M Llama (same saved weights, data, hyperparameters and
seed) take turns step by step in one process (bench/interleave.py), with a matmul-peak probe taking
its turn too, so every run and the peak see the same machine load:

* ours: what `run_sft` builds: `prepare_data`, `collator_for(cfg)` (the packing collator),
  `training_arguments(cfg)` and the Trainer;
* plain: a Trainer script the usual way: `DataCollatorForSeq2Seq` (dynamic padding), default random sampler;
* grouped: the same with `train_sampling_strategy="group_by_length"`.

After the steps each run is evaluated on the same held-out rows (eval loss after the same examples).
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from bench.common import ALPACA, matmul_flops, median, sft_model_folder
from bench.interleave import Baton, Counting, run_interleaved, step_timer

HP = dict(learning_rate=1e-3, batch_size=16, max_length=512, seed=42, warmup_ratio=0.0, scheduler="constant",
          weight_decay=0.0, max_grad_norm=1.0)


def flops_per_batch(lengths: list[int], n_params: int, layers: int, hidden: int, mult: int = 6) -> float:
    """Model FLOPs of training on these sequences: mult x N per token (6 full, 4 LoRA) plus attention,
    12 x layers x hidden x n per token of an n-token sequence (PaLM's accounting, on each sequence's own
    length: the work a perfect kernel must do, not what padding or packing adds)."""
    return sum(mult * n_params * n + 12 * layers * hidden * n * n for n in lengths)


def run(warmup: int = 2, steps: int = 8, workdir: Path | None = None) -> dict:
    import torch
    from transformers import (AutoModelForCausalLM, DataCollatorForSeq2Seq, Trainer, TrainingArguments,
                              set_seed)

    from studio.engine.config import FineTuneConfig
    from studio.engine.data.render import ensure_chat_template
    from studio.engine.models import choose_device, load_causal_lm, load_tokenizer
    from studio.engine.sft import collator_for, prepare_data, to_dataset
    from studio.engine.training import training_arguments

    workdir = Path(workdir or tempfile.mkdtemp(prefix="bench-sft-"))
    folder = sft_model_folder()
    total = warmup + steps
    cfg = FineTuneConfig(model=str(folder), dataset=str(ALPACA), method="full", max_steps=total, eval_every=0,
                         save_every=0, validation_fraction=0.05, log_every=1, padding_free=True, **HP)
    tokenizer = load_tokenizer(folder, False)
    ensure_chat_template(tokenizer)
    train_rows, val_rows, _ = prepare_data(cfg, tokenizer)
    choice = choose_device(cfg.device, cfg.precision)

    names = ["ours", "plain", "grouped", "peak"]
    baton = Baton(names)
    timers = {n: step_timer(baton, n) for n in names[:3]}
    collators, trainers = {}, {}

    # ours: the engine's path, piece by piece as run_sft assembles it
    set_seed(cfg.seed)
    model = load_causal_lm(folder, choice)
    model.config.use_cache = False
    args = training_arguments(cfg, workdir / "ours", choice, has_eval=True, tokens_counting="all")
    collators["ours"] = Counting(collator_for(cfg, tokenizer))
    trainers["ours"] = Trainer(model=model, args=args, train_dataset=to_dataset(train_rows),
                               eval_dataset=to_dataset(val_rows), data_collator=collators["ours"],
                               processing_class=tokenizer, callbacks=[timers["ours"]])
    # the plain scripts
    for name, strategy in (("plain", "random"), ("grouped", "group_by_length")):
        set_seed(cfg.seed)
        m = AutoModelForCausalLM.from_pretrained(folder)
        if choice.device != "cpu":
            m.to(choice.device)
        a = TrainingArguments(output_dir=str(workdir / name), per_device_train_batch_size=HP["batch_size"],
                              per_device_eval_batch_size=HP["batch_size"], learning_rate=HP["learning_rate"],
                              lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0, max_grad_norm=1.0,
                              max_steps=total, seed=cfg.seed, logging_steps=1, save_strategy="no", report_to="none",
                              disable_tqdm=True, use_cpu=choice.device == "cpu", train_sampling_strategy=strategy,
                              bf16=choice.precision == "bf16", fp16=choice.precision == "fp16")
        collators[name] = Counting(DataCollatorForSeq2Seq(tokenizer, padding=True, label_pad_token_id=-100))
        trainers[name] = Trainer(model=m, args=a, train_dataset=to_dataset(train_rows),
                                 eval_dataset=to_dataset(val_rows), data_collator=collators[name],
                                 processing_class=tokenizer, callbacks=[timers[name]])

    peaks: list[float] = []

    def peak_probe():
        baton.acquire("peak")
        while len(baton.active) > 1:
            peaks.append(matmul_flops(2048, repeats=2))
            baton.pass_on("peak")
            baton.acquire("peak")

    jobs = {n: trainers[n].train for n in names[:3]}
    jobs["peak"] = peak_probe
    t0 = time.perf_counter()
    errors = run_interleaved(jobs, baton)
    wall = time.perf_counter() - t0
    if errors:
        raise next(iter(errors.values()))
    train_batches = {n: list(collators[n].batches[:total]) for n in names[:3]}
    evals = {n: trainers[n].evaluate()["eval_loss"] for n in names[:3]}

    cfg_m = model.config
    n_params = sum(p.numel() for p in model.parameters())
    peak = median(peaks)
    out = {"params": n_params, "peak_flops": peak, "peak_samples": len(peaks), "wall_s": wall,
           "steps": steps, "warmup": warmup, "method": "full", "device": choice.device, "runs": {}}
    for n in names[:3]:
        batches = train_batches[n][warmup:total]
        times = timers[n].times[warmup:total]
        tokens = sum(b["tokens"] for b in batches)
        computed = sum(b["computed"] for b in batches)
        flops = sum(flops_per_batch(b["lengths"], n_params, cfg_m.num_hidden_layers, cfg_m.hidden_size)
                    for b in batches)
        out["runs"][n] = {"tokens_per_s": tokens / sum(times), "padding": 1 - tokens / computed,
                          "step_s_median": median(times), "mfu": flops / sum(times) / peak,
                          "eval_loss": evals[n], "tokens": tokens, "computed": computed,
                          "train_loss": [h["loss"] for h in trainers[n].state.log_history if "loss" in h]}
    del torch
    return out


if __name__ == "__main__":
    import json
    import sys

    print(json.dumps(run(steps=int(sys.argv[1]) if len(sys.argv) > 1 else 8), indent=1))
