"""Tokenizing many conversations with `datasets.Dataset.map`: several processes, results in Arrow.

`tokenize_all` (render.py) is a Python loop that keeps every row as Python lists of ints, about 36
bytes a token; a 200,000-row file then holds gigabytes before the trainer copies it once more into a
`Dataset`. Here each conversation goes through the very same `render.tokenize_conversation` inside
`Dataset.map`, the ids are stored as int32 Arrow columns (4 bytes a token), the trainer gets that
`Dataset` as it is, and the conversations are released chunk by chunk as they are tokenized.

Work is cut into chunks (about CHUNKS of them) so progress can be reported between chunks: `map`
reports only to its own tqdm bar, and with several processes its function runs in other processes.

Cache decision: nothing is reused between runs. An in-memory table (`Dataset.from_dict`/`from_list`)
gets a random fingerprint, so `datasets`' automatic cache could never match anyway, and hashing the
function with its arguments (the whole tokenizer) to derive one would be wasted work; each chunk gets
an explicit fingerprint instead.
With `cache_dir` (the run folder's `tokenized/`), each chunk is written there as an Arrow file and
memory-mapped, so the ids stay out of the process's memory and worker processes hand back a file
name rather than pickled tables; a run folder is new for every run, so `load_from_cache_file=False`
makes sure a stale file is never read. Without `cache_dir` the tables stay in memory.
"""

from __future__ import annotations

import os
import pickle
import statistics
import uuid
from collections.abc import Sequence
from contextlib import contextmanager
from pathlib import Path

from studio.engine.data.formats import describe_drops
from studio.engine.data.render import IGNORE_INDEX, DatasetSummary, Tokenized, tokenize_all, tokenize_conversation
from studio.engine.errors import BadDataset

CHUNKS = 20  # progress steps of about 5%
MIN_CHUNK = 5000  # rows; each chunk starts its own worker processes, which costs a few tenths of a second
# Measured (docs/benchmarks.md, "Large fine-tuning files"): in one process the map path runs at the loop's
# speed; two processes break even with the loop at about 1,000 rows and are ~1.5x faster from 5,000.
MAP_ABOVE_ROWS = 2000
MAX_PROCESSES = 8


def default_processes(rows: int) -> int:
    """Processes for `rows` conversations: one per usable core, each with at least 1,000 rows."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        cores = os.cpu_count() or 1
    return max(1, min(cores, MAX_PROCESSES, rows // 1000))


class TokenizedRows(Sequence):
    """The tokenized rows as a read-only sequence of `Tokenized` (what `tokenize_all` returns is a list of
    them), backed by a `datasets.Dataset` with columns input_ids, labels, full_length and trained."""

    def __init__(self, table):
        self.table = table

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, i):
        if isinstance(i, slice):
            return self.select(range(len(self))[i])
        row = self.table[i]
        return Tokenized(input_ids=row["input_ids"], labels=row["labels"], full_length=row["full_length"])

    def select(self, indices) -> TokenizedRows:
        return TokenizedRows(self.table.select(list(indices)))

    @property
    def dataset(self):
        """What the trainer reads: only input_ids and labels (the collators pass any other column on)."""
        return self.table.select_columns(["input_ids", "labels"])


def _tokenize_batch(batch: dict, tokenizer, max_length: int, train_on_prompt: bool) -> dict:
    out = {"input_ids": [], "labels": [], "full_length": [], "trained": []}
    for blob in batch["messages"]:
        tok = tokenize_conversation(tokenizer, pickle.loads(blob), max_length, train_on_prompt)
        out["input_ids"].append(tok.input_ids)
        out["labels"].append(tok.labels)
        out["full_length"].append(tok.full_length)
        out["trained"].append(sum(1 for x in tok.labels if x != IGNORE_INDEX))
    return out


@contextmanager
def _bars_off():
    """Our progress callback replaces datasets' tqdm bars (one per chunk would fill the run's log)."""
    import datasets as bars

    was_off = bars.are_progress_bars_disabled()
    if not was_off:
        bars.disable_progress_bars()
    try:
        yield
    finally:
        if not was_off and bars.are_progress_bars_disabled():
            bars.enable_progress_bars()


def _features():
    from datasets import Features, List, Value

    return Features({"input_ids": List(Value("int32")), "labels": List(Value("int32")),
                     "full_length": Value("int32"), "trained": Value("int32")})


def tokenize_mapped(tokenizer, convs, max_length: int, train_on_prompt: bool = False, progress=None, *,
                    num_proc: int | None = None, cache_dir: str | Path | None = None, name: str = "train",
                    release: bool = True, chunk_rows: int | None = None) -> tuple[TokenizedRows, DatasetSummary]:
    """What `render.tokenize_all` gives (the same rows in the same order, the same summary and drops),
    tokenized through `Dataset.map` in `num_proc` processes (None: `default_processes`).

    With `release`, `convs.conversations` is emptied chunk by chunk as it is tokenized, so the texts are
    not held twice (as Python objects and in Arrow); `convs.where` is kept for naming dropped rows.
    Progress is reported after each chunk of `chunk_rows` (None: about 1/CHUNKS of the rows, at least
    MIN_CHUNK).
    """
    from datasets import Dataset, concatenate_datasets

    total = len(convs.conversations)
    num_proc = default_processes(total) if num_proc is None else max(1, num_proc)
    chunk = chunk_rows or max(MIN_CHUNK, -(-total // CHUNKS))
    if cache_dir is not None:
        cache_dir = Path(cache_dir)
        cache_dir.mkdir(parents=True, exist_ok=True)
    run_id = uuid.uuid4().hex[:16]
    kwargs = dict(tokenizer=tokenizer, max_length=max_length, train_on_prompt=train_on_prompt)
    pieces = []
    if progress:
        progress(0.0)
    with _bars_off():
        for k, start in enumerate(range(0, total, chunk)):
            part = convs.conversations[start:start + chunk]
            # Pickled, each conversation reaches the template exactly as built: as Arrow structs, messages
            # would gain every key any message has (set to None), and JSON would fail on, or change, values
            # read from Parquet. The pickles never leave this run's own processes.
            table = Dataset.from_dict({"messages": [pickle.dumps(m, pickle.HIGHEST_PROTOCOL) for m in part]})
            if release:
                convs.conversations[start:start + len(part)] = [None] * len(part)
            del part
            procs = min(num_proc, len(table))
            target = str(cache_dir / f"{name}-{k:05d}.arrow") if cache_dir is not None else None
            pieces.append(table.map(
                _tokenize_batch, batched=True, batch_size=100, fn_kwargs=kwargs, remove_columns=["messages"],
                features=_features(), num_proc=procs if procs > 1 else None, cache_file_name=target,
                load_from_cache_file=False, keep_in_memory=target is None,
                new_fingerprint=f"studio-{run_id}-{name}-{k:05d}"))
            del table
            if progress:
                progress(min(1.0, (start + chunk) / total))
    if release:
        convs.conversations.clear()
    mapped = concatenate_datasets(pieces) if len(pieces) > 1 else pieces[0]
    return _keep_and_summarise(mapped, convs, total, max_length)


def _keep_and_summarise(mapped, convs, total: int, max_length: int) -> tuple[TokenizedRows, DatasetSummary]:
    """Drop the rows with nothing left to learn, as tokenize_all does, and summarise the rest."""
    trained = mapped["trained"][:]
    full = mapped["full_length"][:]
    dropped = {k: list(v) for k, v in convs.dropped.items()}
    keep = [i for i, n in enumerate(trained) if n > 0]
    if len(keep) < total:
        reason = f"the prompt alone is longer than the max length ({max_length} tokens)"
        kept = set(keep)
        dropped.setdefault(reason, []).extend(convs.where[i] for i in range(total) if i not in kept)
        mapped = mapped.select(keep)
    rows = total + convs.dropped_count
    if not keep:
        raise BadDataset(f"{convs.source}: no example is left to train on in {rows} rows — "
                         f"{describe_drops(dropped)}.", "Raise the max length, or shorten the prompts.")
    lengths = sorted(full[i] for i in keep)
    summary = DatasetSummary(
        rows=rows, format=convs.format, used=len(keep), min_tokens=lengths[0],
        median_tokens=statistics.median(lengths), p95_tokens=lengths[min(len(lengths) - 1, int(0.95 * len(lengths)))],
        max_tokens=lengths[-1], truncated=sum(1 for n in lengths if n > max_length),
        trained_tokens=sum(trained[i] for i in keep), dropped=dropped, lengths=lengths)
    return TokenizedRows(mapped), summary


def tokenize_rows(tokenizer, convs, max_length: int, train_on_prompt: bool = False, progress=None, *,
                  cache_dir: str | Path | None = None, name: str = "train"):
    """tokenize_all for small data, tokenize_mapped above MAP_ABOVE_ROWS conversations."""
    if len(convs.conversations) <= MAP_ABOVE_ROWS:
        return tokenize_all(tokenizer, convs, max_length, train_on_prompt, progress)
    return tokenize_mapped(tokenizer, convs, max_length, train_on_prompt, progress, cache_dir=cache_dir, name=name)


def select_rows(rows, indices):
    """Rows at `indices`, from a list (tokenize_all) or TokenizedRows (without making Python lists)."""
    return rows.select(indices) if isinstance(rows, TokenizedRows) else [rows[i] for i in indices]


def to_train_dataset(rows):
    """The `Dataset` the trainer reads (input_ids, labels) from either kind of rows."""
    if isinstance(rows, TokenizedRows):
        return rows.dataset
    from datasets import Dataset

    return Dataset.from_dict({"input_ids": [r.input_ids for r in rows], "labels": [r.labels for r in rows]})
