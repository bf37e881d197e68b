"""Shared pieces of the benchmarks: the machine, the matmul peak, the SFT model and data, timing helpers."""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATASETS = Path(os.environ.get("STUDIO_BENCH_DATASETS", ROOT.parent / "shared" / "datasets"))
ALPACA = DATASETS / "alpaca_en_demo.json"
C4 = DATASETS / "c4_demo.jsonl"
CACHE = Path(os.environ.get("STUDIO_BENCH_CACHE", ROOT / "bench" / ".cache"))


def device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() and os.environ.get("STUDIO_BENCH_DEVICE", "") != "cpu" else "cpu"


def machine() -> str:
    import torch

    if device() == "cuda":
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        flags = Path("/proc/cpuinfo").read_text()
        isa = "AMX" if " amx_tile" in flags else "AVX-512" if " avx512f" in flags else "AVX2" if " avx2" in flags else ""
    except OSError:
        isa = ""
    return f"{cpu} ({isa}), {os.cpu_count()} cores, {torch.get_num_threads()} torch threads, torch {torch.__version__}"


def matmul_flops(n: int = 2048, repeats: int = 3, dtype=None) -> float:
    """FLOP/s of one n x n x n matrix multiply (best of `repeats`, after one warm-up)."""
    import torch

    dev = device()
    dtype = dtype or torch.float32
    a = torch.randn(n, n, device=dev, dtype=dtype)
    b = torch.randn(n, n, device=dev, dtype=dtype)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(repeats):
        if dev == "cuda":
            torch.cuda.synchronize()
        t = time.perf_counter()
        torch.mm(a, b)
        if dev == "cuda":
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return 2 * n ** 3 / best


def median(xs):
    return statistics.median(xs) if xs else float("nan")


def alpaca_texts(limit: int | None = None) -> list[str]:
    rows = json.loads(ALPACA.read_text(encoding="utf-8"))
    return [" ".join(str(r.get(k, "")) for k in ("instruction", "input", "output")) for r in rows[:limit]]


def sft_model_folder(hidden: int = 384, layers: int = 6, vocab: int = 8000, context: int = 512,
                     heads: int = 6) -> Path:
    """The ~17M-parameter Llama of target 1, with an 8k BPE vocabulary trained on the alpaca data (cached)."""
    from studio.engine.scratch import build_model, llama_config, train_bpe_tokenizer

    folder = CACHE / f"llama-h{hidden}-l{layers}-v{vocab}"
    if (folder / "config.json").is_file():
        return folder
    tok = train_bpe_tokenizer(alpaca_texts(), vocab, model_max_length=context)
    config = llama_config(len(tok), hidden=hidden, layers=layers, heads=heads, context=context, tokenizer=tok)
    model = build_model(config, seed=0)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder
