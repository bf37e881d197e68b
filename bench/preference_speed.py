"""Preference tuning: DPO tokens/s of the engine against a plain TRL `DPOTrainer` script, and the peak memory of a
DPO run against a supervised (SFT) run on the same data, both with LoRA.

    python -m bench.preference_speed [--pairs 64] [--trials 2] [--max-length 384] [--epochs 2]

Model: the ~17M-parameter Llama of the SFT bench (bench.common.sft_model_folder), fp32 on the CPU (CUDA when
present). Data: the first pairs of ../shared/datasets/dpo_en_demo.json (ShareGPT pairs, prompts and replies from a
line to pages), read by the engine's reader for both arms. Same weights, tokenizer (with the same chat template),
LoRA settings, batch, max length, learning rate, epochs and seed:

* ours: `run_preference` as the worker runs it (length-grouped batches, the reference's log-probabilities computed
  once before training, rows sorted by length for that pass);
* plain: the documented TRL recipe, `DPOTrainer(model=PATH, peft_config=LoraConfig(...))` with `DPOConfig`
  defaults otherwise (random batches, the reference computed with the adapter off at every step), except precision
  and gradient checkpointing, which DPOConfig turns on by default and which are set as ours.

Speed: each arm's wall time from building the trainer to the end of training (tokenizing, the reference pass and
every step), the arms alternating order from trial to trial; tokens/s counts each pair's prompt + chosen and
prompt + rejected tokens up to the max length, once per epoch, the same count for both arms.
Memory: each run in its own process; its peak resident memory (VmHWM) less the process's size once the model and
data are loaded, for DPO and for SFT on the same pairs' chosen replies (what supervised fine-tuning learns from a
preference file).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, device, machine, median, sft_model_folder  # noqa: E402

DPO_DEMO = ROOT.parent / "shared" / "datasets" / "dpo_en_demo.json"
LORA = dict(lora_r=16, lora_alpha=32, lora_dropout=0.0)


def _status(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def subset(pairs: int, folder: Path) -> Path:
    rows = json.loads(DPO_DEMO.read_text(encoding="utf-8"))[:pairs]
    path = folder / f"dpo-{pairs}.json"
    path.write_text(json.dumps(rows), encoding="utf-8")
    return path


def counted_tokens(model: Path, data: Path, max_length: int) -> int:
    from studio.engine.data.render import ensure_chat_template
    from studio.engine.models import load_tokenizer
    from studio.engine.preference.data import read_preferences
    from studio.engine.preference.scoring import encode

    tokenizer = load_tokenizer(model)
    ensure_chat_template(tokenizer)
    total = 0
    for pair in read_preferences(data).pairs:
        for key in ("chosen", "rejected"):
            total += len(encode(tokenizer, pair["prompt"], pair[key], max_length)[0])
    return total


def config(model: Path, data: Path, a, seed: int, workdir: Path):
    from studio.engine.preference.config import PreferenceConfig

    return PreferenceConfig(model=str(model), dataset=str(data), batch_size=a.batch_size, max_length=a.max_length,
                            epochs=a.epochs, learning_rate=5e-5, scheduler="constant", warmup_ratio=0.0,
                            validation_fraction=0.0, eval_every=0, save_every=0, log_every=10, seed=seed,
                            device=device(), **LORA)


def ours(cfg, run_dir: Path) -> float:
    from studio.engine.events import EventWriter
    from studio.engine.preference.recipe import run_preference

    run_dir.mkdir(parents=True, exist_ok=True)
    writer = EventWriter(run_dir / "events.jsonl", None)
    t0 = time.perf_counter()
    run_preference(cfg, run_dir, writer, threading.Event())
    writer.close()
    return time.perf_counter() - t0


def plain(cfg, run_dir: Path) -> float:
    from datasets import Dataset
    from peft import LoraConfig
    from trl import DPOConfig, DPOTrainer

    from studio.engine.data.render import ensure_chat_template
    from studio.engine.models import load_tokenizer
    from studio.engine.preference.data import read_preferences

    tokenizer = load_tokenizer(Path(cfg.model))
    ensure_chat_template(tokenizer)
    rows = read_preferences(cfg.dataset).pairs
    t0 = time.perf_counter()
    args = DPOConfig(output_dir=str(run_dir), per_device_train_batch_size=cfg.batch_size, max_length=cfg.max_length,
                     num_train_epochs=cfg.epochs, learning_rate=cfg.learning_rate, lr_scheduler_type="constant",
                     warmup_steps=0, seed=cfg.seed, logging_steps=10, save_strategy="no", report_to="none",
                     disable_tqdm=True, use_cpu=cfg.device == "cpu", beta=cfg.beta,
                     # DPOConfig defaults to bf16 and gradient checkpointing; the arms share ours (fp32 on the
                     # CPU, automatic precision on a GPU, no checkpointing) so that only the recipe differs.
                     bf16=cfg_precision(cfg) == "bf16", fp16=cfg_precision(cfg) == "fp16", gradient_checkpointing=False)
    trainer = DPOTrainer(model=cfg.model, args=args, train_dataset=Dataset.from_list(rows), processing_class=tokenizer,
                         peft_config=LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=0.0,
                                                target_modules="all-linear", task_type="CAUSAL_LM"))
    trainer.train()
    return time.perf_counter() - t0


def cfg_precision(cfg) -> str:
    from studio.engine.models import choose_device

    return choose_device(cfg.device, cfg.precision).precision


def speed(model: Path, data: Path, a, workdir: Path) -> dict:
    tokens = counted_tokens(model, data, a.max_length) * a.epochs
    trials = []
    for number in range(a.trials):
        seed = 42 + number
        cfg = config(model, data, a, seed, workdir)
        order = ("ours", "plain") if number % 2 == 0 else ("plain", "ours")
        wall = {}
        for arm in order:
            run = ours if arm == "ours" else plain
            wall[arm] = run(cfg, workdir / f"{arm}-{seed}")
        trials.append({"seed": seed, "order": order, "wall_s": wall,
                       "tokens_per_s": {arm: tokens / s for arm, s in wall.items()}})
        print(f"[bench] trial {number + 1}: " + ", ".join(f"{arm} {tokens / s:.0f} tokens/s ({s:.1f} s)"
                                                           for arm, s in wall.items()), file=sys.stderr, flush=True)
    return {"tokens": tokens, "trials": trials}


def child(kind: str, model: str, data: str, a_json: str) -> None:
    """One run in this process; prints its peak memory and its size before training as JSON."""
    from studio.engine.config import FineTuneConfig
    from studio.engine.events import EventWriter
    from studio.engine.models import choose_device, load_causal_lm

    a = argparse.Namespace(**json.loads(a_json))
    run_dir = Path(tempfile.mkdtemp(prefix=f"bench-pref-{kind}-"))
    cfg = config(Path(model), Path(data), a, 42, run_dir)
    # Imports and one load of the model and data first, so that "before" holds what both runs need anyway.
    import trl  # noqa: F401

    from studio.engine.preference.data import read_preferences

    read_preferences(data)
    load_causal_lm(Path(model), choose_device(cfg.device, cfg.precision))
    before = _status("VmRSS")
    writer = EventWriter(run_dir / "events.jsonl", None)
    if kind == "dpo":
        from studio.engine.preference.recipe import run_preference

        run_preference(cfg, run_dir, writer, threading.Event())
    else:
        from studio.engine.sft import run_sft

        sft = FineTuneConfig(**{k: getattr(cfg, k) for k in ("model", "dataset", "batch_size", "max_length", "epochs",
                                                             "learning_rate", "scheduler", "warmup_ratio", "seed",
                                                             "validation_fraction", "eval_every", "save_every",
                                                             "log_every", "device", *LORA)})
        run_sft(sft, run_dir, writer, threading.Event())
    print(json.dumps({"peak": _status("VmHWM"), "before": before}))


def memory(model: Path, data: Path, a) -> dict:
    out = {}
    for kind in ("sft", "dpo"):
        proc = subprocess.run([sys.executable, "-m", "bench.preference_speed", "--child", kind, str(model), str(data),
                               json.dumps(vars(a))], capture_output=True, text=True, cwd=ROOT, check=True)
        out[kind] = json.loads(proc.stdout.strip().splitlines()[-1])
    return out


def render(r: dict) -> str:
    mib = lambda b: f"{b / 2**20:,.0f} MiB"  # noqa: E731
    s = r["speed"]
    per = {arm: median([t["tokens_per_s"][arm] for t in s["trials"]]) for arm in ("ours", "plain")}
    ratios = ", ".join(f"{t['tokens_per_s']['ours'] / t['tokens_per_s']['plain']:.2f}x" for t in s["trials"])
    m = r["memory"]
    growth = {k: v["peak"] - v["before"] for k, v in m.items()}
    return "\n".join([
        f"DPO with LoRA on {r['machine']}: the ~17M Llama, {r['pairs']} pairs of dpo_en_demo.json, batch "
        f"{r['batch_size']}, max length {r['max_length']}, {r['epochs']:g} epochs; {s['tokens']:,} tokens.", "",
        "| arm | tokens/s (median of trials) | vs plain TRL |", "|---|---|---|",
        f"| ours (run_preference) | {per['ours']:.0f} | {per['ours'] / per['plain']:.2f}x |",
        f"| plain TRL DPOTrainer | {per['plain']:.0f} | 1.00x |", "",
        f"ours / plain per trial: {ratios}", "",
        "| run (LoRA, same pairs) | peak memory | growth during the run | vs SFT |", "|---|---|---|---|",
        f"| SFT on the chosen replies | {mib(m['sft']['peak'])} | {mib(growth['sft'])} | 1.00x |",
        f"| DPO | {mib(m['dpo']['peak'])} | {mib(growth['dpo'])} | {growth['dpo'] / growth['sft']:.2f}x growth, "
        f"{m['dpo']['peak'] / m['sft']['peak']:.2f}x peak |"])


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] == "--child":
        child(*argv[1:5])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pairs", type=int, default=64)
    ap.add_argument("--trials", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--max-length", type=int, default=384)
    ap.add_argument("--epochs", type=float, default=2.0)
    a = ap.parse_args(argv)
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="bench-preference-"))
    model = sft_model_folder()
    data = subset(a.pairs, workdir)
    result = {"machine": machine(), "pairs": a.pairs, "batch_size": a.batch_size, "max_length": a.max_length,
              "epochs": a.epochs, "speed": speed(model, data, a, workdir), "memory": memory(model, data, a)}
    print(render(result))
    print(f"\n({time.perf_counter() - started:.0f} s in all)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
