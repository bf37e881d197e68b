"""Large fine-tuning files: rows/s and peak memory of the engine's loader against `datasets` on the same file.

    python -m bench.data_loading [--rows 200000] [--num-proc N] [--trials 1] [--threshold-sizes 1000,2000,5000,20000]
                                 [--write]

The file is alpaca_en_demo.json's rows repeated to `--rows` lines of JSONL. Each variant runs in a fresh
child process (so peak memory is its own) and its time runs from reading the file to a `Dataset` of
input_ids and labels ready for the trainer (tokenizer loading and imports excluded):

* ours: `studio.engine.sft.prepare_data` (read_records, to_conversations, then tokenize_rows: above
  MAP_ABOVE_ROWS rows, `Dataset.map` in `--num-proc` processes into Arrow files) and `to_dataset`.
* loop: the loader before tokenize_map: read_records, to_conversations, render.tokenize_all (a Python
  loop keeping Python lists), `Dataset.from_dict`.
* datasets: `datasets.load_dataset("json", ...)` and `.map(batched, num_proc=--num-proc)` of a function that
  builds the same messages and calls the same `render.tokenize_conversation`, with its default caching.

All three give the same rows and trained tokens (checked). Ratios are rows/s against `datasets`,
measured in the same invocation. With --write the section "Large fine-tuning files" of
docs/benchmarks.md is replaced (or added before "## Raw results").
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import ALPACA, ROOT, machine, median  # noqa: E402

SECTION = "## Large fine-tuning files"
MAX_LENGTH = 512
VARIANTS = ("ours", "datasets", "loop")


def make_file(path: Path, rows: int) -> Path:
    source = json.loads(ALPACA.read_text(encoding="utf-8"))
    with path.open("w", encoding="utf-8") as f:
        for i in range(rows):
            f.write(json.dumps(source[i % len(source)], ensure_ascii=False) + "\n")
    return path


def _status(key: str) -> int:
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec (see bench/others.py)
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) * 1024
    return 0


def _alpaca_batch(batch, tokenizer, max_length):
    """The baseline's map function: alpaca columns to the messages formats._alpaca builds, then the engine's
    tokenize_conversation (so the two paths do the same tokenizing work)."""
    from studio.engine.data.render import IGNORE_INDEX, tokenize_conversation

    out = {"input_ids": [], "labels": [], "trained": []}
    for instruction, extra, output in zip(batch["instruction"], batch["input"], batch["output"]):
        prompt = f"{instruction}\n\n{extra}" if extra and extra.strip() else instruction
        tok = tokenize_conversation(tokenizer, [{"role": "user", "content": prompt},
                                                {"role": "assistant", "content": output}], max_length)
        out["input_ids"].append(tok.input_ids)
        out["labels"].append(tok.labels)
        out["trained"].append(sum(1 for x in tok.labels if x != IGNORE_INDEX))
    return out


def child(variant: str, data: str, work: str, num_proc: int) -> dict:
    from studio.engine.data.render import ensure_chat_template
    from studio.engine.models import load_tokenizer

    from bench.common import sft_model_folder

    # Every import before the clock starts (studio.engine.sft pulls in transformers' trainer: seconds).
    from datasets import Dataset, load_dataset

    from studio.engine.config import FineTuneConfig
    from studio.engine.data import tokenize_map
    from studio.engine.data.files import read_records
    from studio.engine.data.formats import to_conversations
    from studio.engine.data.render import tokenize_all
    from studio.engine.sft import prepare_data, to_dataset

    tokenizer = load_tokenizer(sft_model_folder(), False)
    ensure_chat_template(tokenizer)
    first_progress = []
    progress = lambda f: first_progress or first_progress.append(time.perf_counter())  # noqa: E731
    rss_before = _status("VmRSS")
    t0 = time.perf_counter()
    if variant == "ours":
        tokenize_map.default_processes = lambda rows: num_proc  # the same process count as the baseline
        cfg = FineTuneConfig(model="unused", dataset=data, max_length=MAX_LENGTH, validation_fraction=0.0)
        train, _, summary = prepare_data(cfg, tokenizer, progress, cache_dir=Path(work) / "tokenized")
        ds = to_dataset(train)
        rows, trained = len(ds), summary.trained_tokens
    elif variant == "loop":
        out, summary = tokenize_all(tokenizer, to_conversations(read_records(data)), MAX_LENGTH, False, progress)
        ds = Dataset.from_dict({"input_ids": [r.input_ids for r in out], "labels": [r.labels for r in out]})
        rows, trained = len(ds), summary.trained_tokens
    else:
        raw = load_dataset("json", data_files=data, split="train", cache_dir=str(Path(work) / "hf-cache"))
        progress(0.0)
        ds = raw.map(_alpaca_batch, batched=True, batch_size=100, num_proc=num_proc if num_proc > 1 else None,
                     fn_kwargs=dict(tokenizer=tokenizer, max_length=MAX_LENGTH), remove_columns=raw.column_names)
        ds = ds.filter(lambda n: n > 0, input_columns="trained")
        rows, trained = len(ds), sum(ds["trained"][:])
    seconds = time.perf_counter() - t0
    return {"seconds": seconds, "rows": rows, "trained_tokens": trained, "peak_rss": _status("VmHWM"),
            "rss_before": rss_before,
            "read_seconds": (first_progress[0] - t0) if first_progress else None}


def threshold(sizes=(1000, 2000, 5000, 20000), repeats: int = 5, num_proc: int = 2) -> dict:
    """Tokenizing alone (conversations already built), at the sizes around MAP_ABOVE_ROWS: the loop against
    the map path in one process and in `num_proc`; the three take turns, best of `repeats` (other jobs on a
    shared machine only ever add time, and two processes suffer most when a core is taken)."""
    from studio.engine.data.files import read_records
    from studio.engine.data.formats import Conversations, to_conversations
    from studio.engine.data.render import ensure_chat_template, tokenize_all
    from studio.engine.data.tokenize_map import tokenize_mapped
    from studio.engine.models import load_tokenizer

    from bench.common import sft_model_folder

    tokenizer = load_tokenizer(sft_model_folder(), False)
    ensure_chat_template(tokenizer)
    folder = Path(tempfile.mkdtemp(prefix="bench-data-threshold-"))
    out = {}
    try:
        for n in sizes:
            base = to_conversations(read_records(make_file(folder / f"t{n}.jsonl", n)))
            times = {"loop": [], "map, 1 process": [], f"map, {num_proc} processes": []}
            for _ in range(repeats):
                for name in times:
                    convs = Conversations(format=base.format, conversations=list(base.conversations),
                                          where=base.where, source=base.source)
                    t = time.perf_counter()
                    if name == "loop":
                        tokenize_all(tokenizer, convs, MAX_LENGTH)
                    else:
                        tokenize_mapped(tokenizer, convs, MAX_LENGTH, num_proc=1 if "1 process" in name else num_proc)
                    times[name].append(time.perf_counter() - t)
            out[n] = {name: min(ts) for name, ts in times.items()}
            print(f"[bench] threshold {n}: {out[n]}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return out


def run_variant(variant: str, data: Path, num_proc: int) -> dict:
    work = tempfile.mkdtemp(prefix=f"bench-data-{variant}-")
    try:
        p = subprocess.run([sys.executable, "-m", "bench.data_loading", "--child", variant, str(data), work,
                            str(num_proc)], cwd=ROOT, capture_output=True, text=True, timeout=3600)
        if p.returncode:
            raise RuntimeError(f"{variant} child failed: {p.stderr[-1500:]}")
        return json.loads(p.stdout.strip().splitlines()[-1])
    finally:
        shutil.rmtree(work, ignore_errors=True)


def run(rows: int = 200_000, num_proc: int | None = None, trials: int = 1,
        threshold_sizes=(1000, 2000, 5000, 20000)) -> dict:
    from studio.engine.data.tokenize_map import default_processes

    num_proc = num_proc or default_processes(rows)
    folder = Path(tempfile.mkdtemp(prefix="bench-data-file-"))
    try:
        data = make_file(folder / f"alpaca_{rows}.jsonl", rows)
        size = data.stat().st_size
        results = {v: [] for v in VARIANTS}
        for trial in range(trials):
            order = VARIANTS[trial % len(VARIANTS):] + VARIANTS[:trial % len(VARIANTS)]  # rotate the order
            for v in order:
                results[v].append(run_variant(v, data, num_proc))
                print(f"[bench] {v} trial {trial + 1}: {results[v][-1]}", file=sys.stderr, flush=True)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    return {"rows": rows, "file_bytes": size, "num_proc": num_proc, "trials": trials, "machine": machine(),
            **summarise(results),
            "threshold": threshold(threshold_sizes, num_proc=max(2, num_proc)) if threshold_sizes else {}}


def summarise(results: dict) -> dict:
    summary = {}
    for v, runs in results.items():
        # Best run: on a shared machine other jobs only ever add time (a core taken halves two processes).
        s = min(r["seconds"] for r in runs)
        summary[v] = {"rows_per_s": runs[0]["rows"] / s, "seconds": s, "rows": runs[0]["rows"],
                      "median_seconds": median([r["seconds"] for r in runs]),
                      "trained_tokens": runs[0]["trained_tokens"], "peak_rss": max(r["peak_rss"] for r in runs),
                      "peak_growth": max(r["peak_rss"] - r["rss_before"] for r in runs),
                      "read_seconds": median([r["read_seconds"] for r in runs if r["read_seconds"] is not None]),
                      "trials": runs}
    same = len({(s["rows"], s["trained_tokens"]) for s in summary.values()}) == 1
    return {"same_output": same, "variants": summary}


def render(r: dict) -> str:
    o, d, lp = (r["variants"][v] for v in VARIANTS)
    mib = lambda b: f"{b / 2**20:,.0f} MiB"  # noqa: E731
    lines = [SECTION, "",
             f"Written by `python -m bench.data_loading --rows {r['rows']} --num-proc {r['num_proc']} --trials "
             f"{r['trials']} --write`: a {r['rows']:,}-row JSONL ({r['file_bytes'] / 2**20:.0f} MiB, alpaca_en_demo "
             f"rows repeated), the 8k-vocabulary tokenizer of rows 1-2 with the fallback chat template, max length "
             f"{MAX_LENGTH}, {r['num_proc']} process(es) for both map paths. Each variant runs in a fresh process "
             f"({r['trials']} run(s) each, order rotated, the best one counted); time runs from reading the file to a "
             f"trainer-ready `Dataset`. Peak = VmHWM of that process (the map workers are not included); growth = "
             f"peak less the process's size before reading (imports, tokenizer). Machine: {r['machine']}; no GPU on "
             f"the machine that ran this (none is used here). Same rows and trained tokens from all three: "
             f"{'yes' if r['same_output'] else '**no**'} ({o['rows']:,} rows, {o['trained_tokens']:,} trained "
             f"tokens).", "",
             "| loader | rows/s | vs datasets | best time (each run) | reading + converting | peak memory | growth |",
             "|---|---|---|---|---|---|---|"]
    for name, v in (("ours: `prepare_data` (tokenize_map, Arrow files)", o),
                    ("`datasets.load_dataset(\"json\")` + `map`", d),
                    ("before: `tokenize_all` loop + `Dataset.from_dict`", lp)):
        read = f"{v['read_seconds']:.1f} s" if v["read_seconds"] == v["read_seconds"] else "-"
        each = ", ".join(f"{t['seconds']:.0f}" for t in v["trials"])
        lines.append(f"| {name} | {v['rows_per_s']:,.0f} | {v['rows_per_s'] / d['rows_per_s']:.2f}x | "
                     f"{v['seconds']:.0f} s ({each}) | {read} | {mib(v['peak_rss'])} | {mib(v['peak_growth'])} |")
    if r.get("threshold"):
        names = list(next(iter(r["threshold"].values())))
        lines += ["", "Tokenizing alone (conversations already built; the three take turns, best of 5), which "
                      "sets `MAP_ABOVE_ROWS`:", "",
                  "| rows | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
        for n, t in r["threshold"].items():
            lines.append(f"| {int(n):,} | " + " | ".join(f"{t[k]:.2f} s" for k in names) + " |")
    lines += ["", NOTES]
    return "\n".join(lines) + "\n"


NOTES = """\
* Where the time goes: rendering the chat template (1 + 2 per assistant turn) and tokenizing, row by row,
  in Python, the same in both map paths. What `datasets` does not do: reading into Python rows
  (`files.read_records`, so that errors name the line) and `to_conversations` (the reading column), then,
  per chunk, the conversations pickled into a table in the main process while the workers wait, and new
  worker processes; a chunk is about 5% of the rows (at least 5,000), so that progress can be
  reported between chunks (`map` reports only to its own tqdm bar, from the workers). One chunk of 20,000
  rows instead of four saved about 0.2 s a chunk in a separate measurement.
* Noise: other jobs shared the two cores during these runs, and a job on one core makes both map paths
  about twice as slow (two processes on one core), so each run's time is listed and the best counts.
  Two processes pay only while both cores are free, which is also why the small-size table takes the best
  of 5.
* Memory: the ids are kept as int32 Arrow columns in files under the run folder (`tokenized/`),
  memory-mapped, instead of Python lists (about 36 bytes a token); the conversations are let go chunk by
  chunk. What remains above `datasets` is the reading step (`files.py`, `formats.py`): `read_text` decodes
  the whole file into one `str`, and one character beyond the BMP (this file has a U+1F680 emoji) makes
  CPython store every character of it in 4 bytes (~4x the file), next to the bytes and the Python rows and
  conversations.
* Nothing is cached between runs: every run folder is new, and an in-memory table has a random fingerprint.
  The Arrow files stay in the run folder (about 8 bytes a token of the data set).
"""


def write_section(text: str, doc: Path = ROOT / "docs" / "benchmarks.md") -> None:
    current = doc.read_text(encoding="utf-8") if doc.is_file() else "# Benchmarks\n"
    if SECTION in current:
        start = current.index(SECTION)
        nxt = current.find("\n## ", start + len(SECTION))
        current = current[:start] + text + (current[nxt:] if nxt >= 0 else "")
    elif "\n## Raw results" in current:
        at = current.index("\n## Raw results")
        current = current[:at] + "\n" + text + current[at:]
    else:
        current = current.rstrip("\n") + "\n\n" + text
    doc.write_text(current, encoding="utf-8")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--num-proc", type=int, default=0, help="map processes (0: the engine's default_processes)")
    ap.add_argument("--trials", type=int, default=1, help="runs of each variant, order rotated; medians")
    ap.add_argument("--write", action="store_true", help="put the section into docs/benchmarks.md")
    ap.add_argument("--threshold-sizes", default="1000,2000,5000,20000",
                    help="row counts of the tokenizing-alone table (empty: skip it)")
    ap.add_argument("--child", nargs=4, metavar=("VARIANT", "FILE", "WORKDIR", "NUM_PROC"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.child:
        variant, data, work, num_proc = a.child
        print(json.dumps(child(variant, data, work, int(num_proc))))
        return 0
    sizes = tuple(int(x) for x in a.threshold_sizes.split(",") if x.strip())
    r = run(a.rows, a.num_proc or None, a.trials, sizes)
    text = render(r)
    print(text)
    print(json.dumps({k: v for k, v in r.items() if k != "variants"} |
                     {"variants": {n: {k: x for k, x in v.items() if k != "trials"} for n, v in r["variants"].items()}},
                     indent=1))
    if a.write:
        write_section(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
