"""Batched scoring for the evaluator: the log-likelihood of continuations (multiple choice, the reference's
loss) and sliding-window perplexity (batched greedy generation is in `generating`, on the same helpers).

Everything works on token ids the caller already made (chat templates, special tokens and fitting the context
window are the caller's business), runs under `torch.inference_mode()` in eval mode, reports progress through
`on_batch(items_just_finished)` and stops between batches when `stop_event` is set (raising `Stopped`).

Log-likelihoods are computed the way lm-evaluation-harness does it: the model reads context + continuation
minus its last token, and the log-probability of each continuation token is read at the position before it.
Only those positions go through the output layer (`logits_to_keep` as a boolean mask where the model takes
it) and only they are turned into float32 log-probabilities, so a batch never holds a (batch, length, vocab)
float32 tensor.

Shared prefix: in k-shot prompting every context starts with the same system prompt and examples. When the
contexts of one call share at least MIN_SHARED_PREFIX tokens, the prefix runs once and each batch continues
from a copy of its key/value cache. This needs a transformers `DynamicCache` of plain or sliding-window
attention layers (what decoder-only models return in transformers 5); anything else (no cache, recurrent or
compressed layers, remote code returning tuples) is scored without reuse, which gives the same numbers slower.

Imports torch at load: only the worker imports this module.
"""

from __future__ import annotations

import copy
import inspect
import math
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from dataclasses import dataclass

import torch

MIN_SHARED_PREFIX = 32
LOGSUMEXP_ROWS = 2048  # positions converted to float32 at a time: bounds the extra memory for large vocabularies

OnBatch = Callable[[int], None] | None


class Stopped(Exception):
    """The stop event was set; the work stopped between two batches (or within a generation batch)."""


@dataclass
class Scored:
    logprob: float  # sum over the continuation of log P(token | everything before it), natural log
    tokens: int  # continuation length
    greedy: bool  # every continuation token is the model's argmax
    seconds: float  # wall time of the batch that scored it (the first batch also carries the shared prefix's pass)


@dataclass
class PerplexityResult:
    nll: float  # total negative log-likelihood in nats
    tokens: int  # tokens scored
    perplexity: float  # exp(nll / tokens); nan when no token was scored
    per_document: list[tuple[float, int]]  # (nll, tokens) of each document, in the input order
    seconds: float  # wall time of the whole call


@dataclass
class _Row:
    """One sequence to score: the model reads tokens[:-1]; tokens[start:] are scored (start >= 1)."""

    tokens: list[int]
    start: int


def common_prefix_length(sequences: Sequence[Sequence[int]]) -> int:
    """The length of the longest prefix all sequences share (0 for none; a single sequence's own length)."""
    if not sequences:
        return 0
    first, length = sequences[0], min(len(s) for s in sequences)
    for other in sequences[1:]:
        length = next((i for i, (a, b) in enumerate(zip(first[:length], other[:length])) if a != b), length)
    return length


# ---- shared helpers ------------------------------------------------------------------------------------

@contextmanager
def _evaluating(model):
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            yield
    finally:
        if was_training:
            model.train()


def _check_stop(stop_event: threading.Event | None) -> None:
    if stop_event is not None and stop_event.is_set():
        raise Stopped("Stopped.")


def _inner_model(model):
    """The transformers model under a PEFT wrapper (whose forward passes keyword arguments through)."""
    return model.get_base_model() if hasattr(model, "get_base_model") else model


def _forward_parameters(model) -> set[str]:
    return set(inspect.signature(_inner_model(model).forward).parameters)


def _takes_logit_mask(model) -> bool:
    """Whether `logits_to_keep` may be a boolean (batch, length) mask: transformers' own models slice it with
    `slice_logits_to_keep`, which takes masks in recent 5.x; remote code may slice its own way."""
    from transformers import modeling_utils

    return ("logits_to_keep" in _forward_parameters(model) and hasattr(modeling_utils, "slice_logits_to_keep")
            and type(_inner_model(model)).__module__.startswith("transformers."))


def _context_limit(model) -> int | None:
    config = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    return getattr(config, "max_position_embeddings", None)


def _token_logprobs(logits, targets):
    """log P(target) and whether the target is the argmax, for each row of (positions, vocab) logits."""
    logprobs, greedy = [], []
    for at in range(0, logits.shape[0], LOGSUMEXP_ROWS):
        part = logits[at:at + LOGSUMEXP_ROWS].float()
        wanted = targets[at:at + LOGSUMEXP_ROWS]
        logprobs.append(part.gather(-1, wanted[:, None]).squeeze(-1) - torch.logsumexp(part, dim=-1))
        greedy.append(part.argmax(dim=-1) == wanted)
    return torch.cat(logprobs), torch.cat(greedy)


# ---- the log-likelihood core ---------------------------------------------------------------------------

class _Scorer:
    """Right-padded batches of rows through the model, optionally after a shared prefix's cached pass."""

    def __init__(self, model, device, pad_id: int):
        self.model = model
        self.device = torch.device(device)
        self.pad_id = pad_id
        parameters = _forward_parameters(model)
        self.keeps_logits = _takes_logit_mask(model)
        # transformers renamed `past_key_values` to `cache` during 5.x; both spellings are in use.
        self.cache_keyword = "cache" if "cache" in parameters else "past_key_values"
        self.prefix: list[int] = []
        self.prefix_cache = None

    def prepare_prefix(self, prefix: list[int]) -> float:
        """Run the shared prefix once and keep its cache; returns the seconds it took (0 if not reused)."""
        from transformers.cache_utils import DynamicCache, DynamicLayer, DynamicSlidingWindowLayer

        started = time.perf_counter()
        ids = torch.tensor([prefix], device=self.device)
        kwargs = {"logits_to_keep": 1} if "logits_to_keep" in _forward_parameters(self.model) else {}
        out = self.model(input_ids=ids, attention_mask=torch.ones_like(ids), use_cache=True, **kwargs)
        cache = out.get("cache")
        if cache is None:  # transformers before the rename; asking 5.24 for the old name logs a deprecation
            cache = out.get("past_key_values")
        # Only caches whose layers simply hold each position's keys and values can be copied and extended.
        if isinstance(cache, DynamicCache) and cache.layers and all(
                type(layer) in (DynamicLayer, DynamicSlidingWindowLayer) for layer in cache.layers):
            self.prefix, self.prefix_cache = list(prefix), cache
            return time.perf_counter() - started
        return 0.0

    def score(self, rows: list[_Row]) -> list[tuple[float, int, bool]]:
        """(sum of log-probabilities, scored tokens, all greedy) of each row, in the order given."""
        skip = len(self.prefix)
        inputs = [row.tokens[skip:-1] for row in rows]
        width = max(len(x) for x in inputs)
        ids = torch.tensor([x + [self.pad_id] * (width - len(x)) for x in inputs], device=self.device)
        mask = torch.tensor([[1] * len(x) + [0] * (width - len(x)) for x in inputs], device=self.device)
        # Position p (in what the model reads) predicts token p + 1: keep the positions before scored tokens.
        keep = torch.zeros_like(mask, dtype=torch.bool)
        for r, row in enumerate(rows):
            keep[r, row.start - 1 - skip:len(row.tokens) - 1 - skip] = True
        targets = torch.tensor([t for row in rows for t in row.tokens[row.start:]], device=self.device)
        kwargs = {"use_cache": self.prefix_cache is not None}
        if self.prefix_cache is not None:
            cache = copy.deepcopy(self.prefix_cache)  # a forward extends its cache in place
            cache.batch_repeat_interleave(len(rows))
            kwargs[self.cache_keyword] = cache
            mask = torch.cat([torch.ones(len(rows), skip, dtype=mask.dtype, device=self.device), mask], dim=1)
        positions = torch.arange(skip, skip + width, device=self.device).expand(len(rows), -1)
        if self.keeps_logits:
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, logits_to_keep=keep,
                                **kwargs).logits
        else:
            logits = self.model(input_ids=ids, attention_mask=mask, position_ids=positions, **kwargs).logits[keep]
        logprobs, greedy = _token_logprobs(logits, targets)
        # Sums in float64 on the CPU (MPS has no float64); hidden_states[keep] is row-major, like `targets`.
        owner = keep.nonzero()[:, 0].cpu()
        sums = torch.zeros(len(rows), dtype=torch.float64).index_add_(0, owner, logprobs.cpu().double())
        misses = torch.zeros(len(rows), dtype=torch.long).index_add_(0, owner, (~greedy).cpu().long())
        return [(s, len(row.tokens) - row.start, m == 0) for s, m, row in zip(sums.tolist(), misses.tolist(), rows)]


def _eos_ids(model, tokenizer) -> list[int]:
    """The end-of-sequence ids of the model's generation config and of the tokenizer, together."""
    configured = getattr(getattr(model, "generation_config", None), "eos_token_id", None)
    listed = list(configured) if isinstance(configured, (list, tuple)) else [configured]
    return list(dict.fromkeys(int(v) for v in listed + [tokenizer.eos_token_id] if v is not None))


def _pad_id(tokenizer, model) -> int:
    if tokenizer.pad_token_id is not None:
        return tokenizer.pad_token_id
    return next(iter(_eos_ids(model, tokenizer)), 0)  # padding is masked out, any id works


def _score_rows(scorer: _Scorer, rows: list[_Row], batch_size: int, scored_rows: Callable[[list[int]], None],
                stop_event: threading.Event | None, extra_first_seconds: float = 0.0):
    """Score rows in batches of similar length, longest first (an out-of-memory shows at once); results
    (logprob, tokens, greedy, batch seconds) in the input order. `scored_rows` gets each batch's row indices."""
    order = sorted(range(len(rows)), key=lambda i: -len(rows[i].tokens))
    results: list = [None] * len(rows)
    for number, batch in enumerate(order[at:at + batch_size] for at in range(0, len(order), batch_size)):
        _check_stop(stop_event)
        started = time.perf_counter()
        scored = scorer.score([rows[i] for i in batch])
        seconds = time.perf_counter() - started + (extra_first_seconds if number == 0 else 0.0)
        for i, (logprob, tokens, greedy) in zip(batch, scored):
            results[i] = (logprob, tokens, greedy, seconds)
        scored_rows(batch)
    return results


def score_continuations(model, tokenizer, pairs: list[tuple[list[int], list[int]]], *, device,
                        batch_size: int = 8, on_batch: OnBatch = None,
                        stop_event: threading.Event | None = None) -> list[Scored]:
    """The log-likelihood of each continuation after its context, in the order of `pairs`."""
    if batch_size < 1:
        raise ValueError(f"batch_size is {batch_size}; expected 1 or more.")
    limit = _context_limit(model)
    for i, (context, continuation) in enumerate(pairs):
        if not continuation:
            raise ValueError(f"Pair {i} has an empty continuation: there is nothing to score.")
        if not context:
            raise ValueError(f"Pair {i} has an empty context: the first continuation token needs at least one "
                             f"token before it (e.g. the BOS token).")
        if limit and len(context) + len(continuation) > limit:
            raise ValueError(f"Pair {i} is {len(context)} + {len(continuation)} tokens long, more than the model's "
                             f"context window of {limit} tokens; fit the prompt first.")
    if not pairs:
        return []
    rows = [_Row(list(context) + list(continuation), len(context)) for context, continuation in pairs]
    contexts = [context for context, _ in pairs]
    # One context token stays outside the prefix, so that every row predicts its first continuation token.
    shared = min(common_prefix_length(contexts), min(len(c) for c in contexts) - 1)
    with _evaluating(model):
        scorer = _Scorer(model, device, _pad_id(tokenizer, model))
        prefix_seconds = 0.0
        if len(pairs) > 1 and shared >= MIN_SHARED_PREFIX:
            _check_stop(stop_event)
            prefix_seconds = scorer.prepare_prefix(list(contexts[0][:shared]))
        results = _score_rows(scorer, rows, batch_size, lambda batch: on_batch(len(batch)) if on_batch else None,
                              stop_event, prefix_seconds)
    return [Scored(logprob, tokens, greedy, seconds) for logprob, tokens, greedy, seconds in results]


# ---- perplexity ----------------------------------------------------------------------------------------

def _perplexity_windows(ids: list[int], window: int, stride: int) -> list[_Row]:
    """The windows of the Hugging Face guide "Perplexity of fixed-length models": the k-th starts at k * stride,
    is `window` tokens long (shorter at the end) and scores the tokens after the previous window's end, so each
    token is scored once and earlier tokens are context only. The stride is at most window - 1, so that the
    first token of a window always has a token before it (with stride == window the guide leaves it unscored)."""
    stride = min(stride, window - 1)
    rows, scored_up_to, begin = [], 1, 0  # a document's first token has nothing before it
    while scored_up_to < len(ids):
        end = min(begin + window, len(ids))
        rows.append(_Row(ids[begin:end], scored_up_to - begin))
        scored_up_to, begin = end, begin + stride
    return rows


def perplexity(model, tokenizer, documents: list[str], *, device, window: int, stride: int, batch_size: int = 8,
               on_batch: OnBatch = None, stop_event: threading.Event | None = None) -> PerplexityResult:
    """Sliding-window perplexity over documents, each tokenized on its own with the tokenizer's special tokens.
    `on_batch` counts the documents whose last window a batch scored (documents without any, in the first)."""
    started = time.perf_counter()
    limit = _context_limit(model)
    if window < 2:
        raise ValueError(f"The perplexity window is {window} tokens; it needs at least 2.")
    if stride < 1:
        raise ValueError(f"The perplexity stride is {stride}; expected 1 or more.")
    if limit and window > limit:
        raise ValueError(f"The perplexity window of {window} tokens is longer than the model's context window "
                         f"of {limit} tokens.")
    if batch_size < 1:
        raise ValueError(f"batch_size is {batch_size}; expected 1 or more.")
    windows = [(d, row) for d, text in enumerate(documents) for row in _perplexity_windows(
        list(tokenizer(text, add_special_tokens=True, verbose=False)["input_ids"]), window, stride)]
    rows = [row for _, row in windows]
    per_document = [[0.0, 0] for _ in documents]
    unscored = Counter(owner for owner, _ in windows)
    too_short = [len(documents) - len(unscored)]  # reported with the first batch

    def scored_rows(batch: list[int]) -> None:
        finished = too_short.pop() if too_short else 0
        for owner in (windows[i][0] for i in batch):
            unscored[owner] -= 1
            finished += unscored[owner] == 0
        if on_batch is not None:
            on_batch(finished)

    with _evaluating(model):
        scorer = _Scorer(model, device, _pad_id(tokenizer, model))
        for (owner, _), (logprob, tokens, _, _) in zip(windows, _score_rows(scorer, rows, batch_size, scored_rows,
                                                                              stop_event)):
            per_document[owner][0] -= logprob
            per_document[owner][1] += tokens
    if not rows:
        scored_rows([])
    nll = sum(n for n, _ in per_document)
    tokens = sum(t for _, t in per_document)
    return PerplexityResult(nll=nll, tokens=tokens, perplexity=math.exp(nll / tokens) if tokens else math.nan,
                            per_document=[(n, t) for n, t in per_document], seconds=time.perf_counter() - started)
