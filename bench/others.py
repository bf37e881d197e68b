"""Targets 3-6: pre-training, GUI responsiveness, playground streaming, QLoRA memory."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import C4, CACHE, ROOT, matmul_flops, median, sft_model_folder
from bench.interleave import Baton, Counting, run_interleaved, step_timer


# ------------------------------------------------------------------------------------------ 3. pre-training
def pretrain(warmup: int = 1, steps: int = 3, block: int = 256, batch: int = 4) -> dict:
    """Our corpus packing + BlockCollator + training_arguments vs a plain Trainer with
    DataCollatorForLanguageModeling(mlm=False) on the same packed blocks; interleaved step by step."""
    from transformers import (AutoModelForCausalLM, DataCollatorForLanguageModeling, Trainer, TrainingArguments,
                              set_seed)

    from studio.engine.data.corpus import load_corpus, pack
    from studio.engine.models import choose_device, load_tokenizer
    from studio.engine.pretrain.masking import BlockCollator
    from studio.engine.pretrain_config import PretrainConfig
    from studio.engine.training import training_arguments

    folder = sft_model_folder()
    tok = load_tokenizer(folder, False)
    corpus = load_corpus([str(C4)], "text", True)
    packed = pack(corpus, tok, block)
    from datasets import Dataset

    ds = Dataset.from_dict({"input_ids": packed.input_ids})
    total = warmup + steps
    work = Path(tempfile.mkdtemp(prefix="bench-pt-"))
    cfg = PretrainConfig(mode="continue", model=str(folder), corpus=str(C4), block_size=block, batch_size=batch,
                         max_steps=total, eval_every=0, save_every=0, validation_fraction=0.0, log_every=1,
                         learning_rate=1e-3, warmup_ratio=0.0, scheduler="constant") \
        if _has_fields(PretrainConfig, ("mode", "corpus")) else None
    choice = choose_device("auto", "auto")
    names = ["ours", "plain", "peak"]
    baton = Baton(names)
    timers = {n: step_timer(baton, n) for n in names[:2]}
    trainers, counters = {}, {}
    for name in names[:2]:
        set_seed(42)
        model = AutoModelForCausalLM.from_pretrained(folder)
        if name == "ours":
            model.config.use_cache = False
            args = training_arguments(cfg, work / name, choice, has_eval=False, tokens_counting="all")
            counters[name] = Counting(BlockCollator("clm"))
        else:
            args = TrainingArguments(output_dir=str(work / name), per_device_train_batch_size=batch, max_steps=total,
                                     learning_rate=1e-3, lr_scheduler_type="constant", warmup_steps=0, seed=42,
                                     logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True,
                                     use_cpu=choice.device == "cpu", bf16=choice.precision == "bf16")
            counters[name] = Counting(DataCollatorForLanguageModeling(tok, mlm=False))
        trainers[name] = Trainer(model=model, args=args, train_dataset=ds, data_collator=counters[name],
                                 callbacks=[timers[name]])
    peaks = []

    def probe():
        baton.acquire("peak")
        while len(baton.active) > 1:
            peaks.append(matmul_flops(2048, repeats=2))
            baton.pass_on("peak")
            baton.acquire("peak")

    jobs = {n: trainers[n].train for n in names[:2]}
    jobs["peak"] = probe
    errors = run_interleaved(jobs, baton)
    if errors:
        raise next(iter(errors.values()))
    n_params = sum(p.numel() for p in trainers["ours"].model.parameters())
    mc = trainers["ours"].model.config
    out = {"block": block, "batch": batch, "steps": steps, "peak_flops": median(peaks), "runs": {}}
    for n in names[:2]:
        times = timers[n].times[warmup:total]
        tokens = sum(b["tokens"] for b in counters[n].batches[warmup:total])
        flops = tokens * (6 * n_params + 12 * mc.num_hidden_layers * mc.hidden_size * block)
        out["runs"][n] = {"tokens_per_s": tokens / sum(times), "mfu": flops / sum(times) / median(peaks)}
    return out


def _has_fields(cls, names) -> bool:
    import dataclasses

    have = {f.name for f in dataclasses.fields(cls)}
    return all(n in have for n in names)


# ------------------------------------------------------------------------------------------ 4. responsiveness
def responsiveness(seconds: float = 4.0, events_per_s: int = 400) -> dict:
    """A QTimer probe (10 ms) in an offscreen QApplication while a QThread emits a fast stream of `log`
    events (as EngineThread re-emits the worker's) into the Fine-tune tab's LossPlot."""
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtCore import QElapsedTimer, QThread, QTimer, Signal
    from PySide6.QtWidgets import QApplication

    from studio.ui.widgets.loss_plot import LossPlot

    app = QApplication.instance() or QApplication([])
    plot = LossPlot()
    plot.resize(800, 500)
    plot.show()

    class Replay(QThread):
        event = Signal(dict)

        def run(self):
            step, t_end = 0, time.perf_counter() + seconds
            while time.perf_counter() < t_end:
                step += 1
                self.event.emit({"type": "log", "time": time.time(), "step": step, "loss": 5.0 / (1 + step / 100),
                                 "learning_rate": 1e-3, "tokens_per_s": 900.0})
                time.sleep(1 / events_per_s)

    replay = Replay()
    received = [0]

    def on_event(ev):
        received[0] += 1
        plot.add_point("train", ev["step"], ev["loss"])

    replay.event.connect(on_event)
    lags = []
    clock = QElapsedTimer()
    interval = 10
    probe = QTimer()
    probe.setInterval(interval)
    last = [None]

    def tick():
        now = clock.elapsed()
        if last[0] is not None:
            lags.append(max(0, now - last[0] - interval))
        last[0] = now

    probe.timeout.connect(tick)
    clock.start()
    probe.start()
    replay.finished.connect(app.quit)
    replay.start()
    app.exec()
    probe.stop()
    plot.timer.stop()
    lags.sort()
    p99 = lags[int(0.99 * (len(lags) - 1))] if lags else float("nan")
    return {"p99_ms": p99, "max_ms": lags[-1] if lags else None, "median_ms": median(lags), "probes": len(lags),
            "events": received[0], "seconds": seconds}


# ------------------------------------------------------------------------------------------ 5. playground
def playground(trials: int = 5, new_tokens: int = 48) -> dict:
    """studio.engine.streaming.stream_generate (streaming to a callback) vs model.generate with a plain
    transformers streamer, same model, prompt and greedy settings; interleaved trials, medians."""
    import torch
    from transformers import AutoModelForCausalLM
    from transformers.generation.streamers import BaseStreamer

    from studio.engine.models import load_tokenizer
    from studio.engine.prompting.sampling import SamplingSettings
    from studio.engine.streaming import stream_generate

    folder = sft_model_folder()
    tok = load_tokenizer(folder, False)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    model.generation_config.eos_token_id = None  # a random model: generate exactly new_tokens
    prompt = "Describe a process of making crepes. " * 8
    settings = SamplingSettings(greedy=True, max_new_tokens=new_tokens, seed=0)

    class Timing(BaseStreamer):
        def __init__(self):
            self.first, self.n, self.prompt_seen = None, 0, False

        def put(self, value):
            if not self.prompt_seen:
                self.prompt_seen = True
                return
            self.first = self.first or time.perf_counter()
            self.n += value.numel()

        def end(self):
            pass

    def plain():
        enc = tok(prompt, return_tensors="pt", add_special_tokens=False)
        s = Timing()
        t0 = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**enc, max_new_tokens=new_tokens, do_sample=False, streamer=s,
                                 pad_token_id=tok.pad_token_id, eos_token_id=None)
        t1 = time.perf_counter()
        n = out.shape[1] - enc["input_ids"].shape[1]
        return s.first - t0, (n - 1) / (t1 - s.first), n

    def ours():
        chunks = []
        r = stream_generate(model, tok, prompt, settings, context_window=512, on_text=chunks.append)
        return r.time_to_first_token_s, r.tokens_per_s, r.new_tokens

    res = {"ours": [], "plain": []}
    plain(), ours()  # warm-up
    for _ in range(trials):
        res["plain"].append(plain())
        res["ours"].append(ours())
    out = {}
    for k, v in res.items():
        out[k] = {"ttft_s": median([x[0] for x in v]), "decode_tok_s": median([x[1] for x in v]),
                  "new_tokens": v[0][2]}
    out["ttft_ratio"] = out["plain"]["ttft_s"] / out["ours"]["ttft_s"]  # >1: ours faster
    out["decode_ratio"] = out["ours"]["decode_tok_s"] / out["plain"]["decode_tok_s"]
    return out


# ------------------------------------------------------------------------------------------ 6. memory
def memory_model_folder() -> Path:
    """A ~100M-parameter Llama (hidden 768, 12 layers, 8k vocabulary, untied head) for the memory rows."""
    from studio.engine.scratch import build_model, llama_config

    folder = CACHE / "llama-100m"
    if (folder / "config.json").is_file():
        return folder
    small = sft_model_folder()
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(small)
    cfg = llama_config(len(tok), hidden=768, layers=12, heads=12, context=512, tokenizer=tok)
    cfg.tie_word_embeddings = False
    model = build_model(cfg, seed=0)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


CHILD = r"""
import json, resource, sys, torch
from pathlib import Path
from studio.engine.config import FineTuneConfig
from studio.engine.models import choose_device, load_causal_lm
from studio.engine.sft import apply_method
method, folder = sys.argv[1], Path(sys.argv[2])
choice = choose_device("auto", "auto")
quant = {"qlora-4bit": "4bit"}.get(method)
model = load_causal_lm(folder, choice, quantization=quant)
model.config.use_cache = False
cfg = FineTuneConfig(model=str(folder), method=method, lora_r=16, lora_alpha=32, lora_dropout=0.0)
model = apply_method(model, cfg)
n = sum(p.numel() for p in model.parameters())
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
ids = torch.randint(0, model.config.vocab_size, (2, 128), device=choice.device)
for _ in range(2):
    model(input_ids=ids, labels=ids).loss.backward(); opt.step(); opt.zero_grad()
# VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child of a big parent reports the parent's size
hwm = [l for l in open("/proc/self/status") if l.startswith("VmHWM:")]
cpu_peak = int(hwm[0].split()[1]) * 1024 if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
peak = torch.cuda.max_memory_allocated() if choice.device == "cuda" else cpu_peak
print(json.dumps({"peak_bytes": peak, "params": n, "device": choice.device}))
"""


def memory() -> dict:
    """Peak memory (max RSS of a fresh process on CPU; max allocated on CUDA) of LoRA and QLoRA 4-bit through
    the engine's loading and apply_method, two optimizer steps of a 2x128 batch each."""
    folder = memory_model_folder()
    out = {}
    for method in ("lora", "qlora-4bit"):
        p = subprocess.run([sys.executable, "-c", CHILD, method, str(folder)], cwd=ROOT, capture_output=True, text=True,
                           timeout=600)
        if p.returncode:
            raise RuntimeError(f"{method} child failed: {p.stderr[-800:]}")
        out[method] = json.loads(p.stdout.strip().splitlines()[-1])
    out["ratio"] = out["qlora-4bit"]["peak_bytes"] / out["lora"]["peak_bytes"]
    return out
