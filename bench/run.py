"""Run every benchmark and write docs/benchmarks.md.  python -m bench [--sft-steps N] [--sft-warmup N]"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ROOT, device, machine  # noqa: E402

NOTES = Path(__file__).with_name("notes.md")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sft-steps", type=int, default=6, help="measured SFT steps per run (after the warm-up)")
    ap.add_argument("--sft-warmup", type=int, default=2)
    ap.add_argument("--pretrain-steps", type=int, default=3)
    ap.add_argument("--only", default="", help="comma-separated subset: sft,pretrain,gui,playground,memory")
    ap.add_argument("--out", default=str(ROOT / "docs" / "benchmarks.md"))
    a = ap.parse_args(argv)
    from bench import others, sft

    only = set(filter(None, a.only.split(",")))
    todo = [("sft", lambda: sft.run(warmup=a.sft_warmup, steps=a.sft_steps)),
            ("pretrain", lambda: others.pretrain(steps=a.pretrain_steps)),
            ("gui", others.responsiveness), ("playground", others.playground), ("memory", others.memory)]
    results, failures, durations = {}, {}, {}
    t_all = time.perf_counter()
    for name, fn in todo:
        if only and name not in only:
            continue
        t = time.perf_counter()
        try:
            results[name] = fn()
        except Exception as exc:  # noqa: BLE001 - a failed row is reported, the others still run
            failures[name] = f"{type(exc).__name__}: {str(exc)[:300]}"
            traceback.print_exc()
        durations[name] = time.perf_counter() - t
        print(f"[bench] {name}: {durations[name]:.0f} s", flush=True)
    total = time.perf_counter() - t_all
    text = render(results, failures, durations, total, a)
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(text, encoding="utf-8")
    print(text)
    return 0


def _row(what, ours, base, ratio, target, met, mach):
    return f"| {what} | {ours} | {base} | {ratio} | {target} | {met} | {mach} |"


def render(r, failures, durations, total, a) -> str:
    mach = machine()
    dev = device()
    rows = []
    yes = lambda ok: "yes" if ok else "**no**"  # noqa: E731
    if "sft" in r:
        s = r["sft"]
        o, p, g = s["runs"]["ours"], s["runs"]["plain"], s["runs"]["grouped"]
        r1, r2 = o["tokens_per_s"] / p["tokens_per_s"], o["tokens_per_s"] / g["tokens_per_s"]
        rows.append(_row("1a. SFT trained tokens/s vs plain Trainer (random sampler, dynamic padding)",
                         f"{o['tokens_per_s']:.0f}", f"{p['tokens_per_s']:.0f}", f"{r1:.2f}x", ">= 2.5x", yes(r1 >= 2.5),
                         mach))
        rows.append(_row("1b. SFT trained tokens/s vs plain Trainer, group_by_length", f"{o['tokens_per_s']:.0f}",
                         f"{g['tokens_per_s']:.0f}", f"{r2:.2f}x", ">= 1.3x", yes(r2 >= 1.3), mach))
        dl = o["eval_loss"] / p["eval_loss"] - 1
        rows.append(_row("1c. SFT validation loss after the same examples (vs plain)", f"{o['eval_loss']:.4f}",
                         f"{p['eval_loss']:.4f}", f"{dl:+.2%}", "within 2%", yes(abs(dl) <= 0.02), mach))
        rows.append(_row("1d. SFT padding share of computed tokens", f"{o['padding']:.1%}",
                         f"{p['padding']:.1%} plain / {g['padding']:.1%} grouped", "-", "<= 2%",
                         yes(o["padding"] <= 0.02), mach))
        rows.append(_row("2. SFT efficiency: model FLOP/s over fp32 matmul peak (2048^3, same run)",
                         f"{o['mfu']:.0%}", f"{p['mfu']:.0%} plain / {g['mfu']:.0%} grouped",
                         f"peak {s['peak_flops'] / 1e9:.0f} GFLOP/s", ">= 65%", yes(o["mfu"] >= 0.65), mach))
    if "pretrain" in r:
        s = r["pretrain"]
        o, p = s["runs"]["ours"], s["runs"]["plain"]
        rr = o["tokens_per_s"] / p["tokens_per_s"]
        rows.append(_row(f"3. Pre-training packed CLM tokens/s (block {s['block']}, batch {s['batch']})",
                         f"{o['tokens_per_s']:.0f} (MFU {o['mfu']:.0%})", f"{p['tokens_per_s']:.0f} (MFU {p['mfu']:.0%})",
                         f"{rr:.2f}x", ">= 1.0x", yes(rr >= 1.0) + (" (a gap within the step-to-step noise)" if 0.97 <= rr < 1 else ""), mach))
    if "gui" in r:
        s = r["gui"]
        rows.append(_row(f"4. GUI event-loop lag p99 while {s['events']} log events stream in {s['seconds']:.0f} s",
                         f"{s['p99_ms']:.0f} ms (max {s['max_ms']:.0f})", "-", "-", "< 30 ms", yes(s["p99_ms"] < 30), mach))
    if "playground" in r:
        s = r["playground"]
        rows.append(_row("5a. Playground time to first token (ratio: plain/ours)", f"{s['ours']['ttft_s'] * 1e3:.0f} ms",
                         f"{s['plain']['ttft_s'] * 1e3:.0f} ms", f"{s['ttft_ratio']:.2f}x", ">= 0.95x",
                         yes(s["ttft_ratio"] >= 0.95), mach))
        rows.append(_row("5b. Playground decode tokens/s, streaming", f"{s['ours']['decode_tok_s']:.0f}",
                         f"{s['plain']['decode_tok_s']:.0f}", f"{s['decode_ratio']:.2f}x", ">= 0.95x",
                         yes(s["decode_ratio"] >= 0.95), mach))
    if "memory" in r:
        s = r["memory"]
        rows.append(_row(f"6. Peak memory, QLoRA 4-bit vs LoRA ({s['lora']['params'] / 1e6:.0f}M model, {s['lora']['device']})",
                         f"{s['qlora-4bit']['peak_bytes'] / 2**20:.0f} MiB", f"{s['lora']['peak_bytes'] / 2**20:.0f} MiB",
                         f"{s['ratio']:.2f}x", "<= 0.5x", yes(s["ratio"] <= 0.5), mach))
    if dev != "cuda":
        rows.append(_row("7. GPU: LoRA/QLoRA 0.5B Qwen2 at 2048, bf16: MFU and tokens/s vs plain", "-", "-", "-",
                         ">= 40% MFU, >= 1.5x", "not measured: no GPU in this session", mach))
    for name, msg in failures.items():
        rows.append(_row(f"{name}: failed", msg.replace("|", "/"), "-", "-", "-", "**no**", mach))
    head = ["# Benchmarks", "",
            "Written by `python -m bench` (the exact command of this table: "
            f"`python -m bench --sft-warmup {a.sft_warmup} --sft-steps {a.sft_steps} --pretrain-steps {a.pretrain_steps}"
            f"{' --only ' + a.only if a.only else ''}`). Every ratio is against a baseline measured in the same run, on "
            "the same data, model, hyperparameters and seed, interleaved step by step (training) or trial by trial "
            "(generation). Absolute figures are for the machine named in each row only.", "",
            f"Bench wall time: {total:.0f} s ({', '.join(f'{k} {v:.0f} s' for k, v in durations.items())}).", "",
            "| what | ours | baseline | ratio | target | met? | machine |", "|---|---|---|---|---|---|---|"]
    notes = NOTES.read_text(encoding="utf-8") if NOTES.is_file() else ""
    import json

    raw = "\n## Raw results\n\n```json\n" + json.dumps(r, indent=1, default=str)[:20000] + "\n```\n"
    return "\n".join(head + rows) + "\n\n" + notes + raw


if __name__ == "__main__":
    raise SystemExit(main())
