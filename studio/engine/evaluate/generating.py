"""Batched greedy generation for the evaluator: prompts given as token ids, left-padded batches of similar
lengths, each reply cut at its own limit and at the first end-of-sequence token. Shares scoring's helpers
(eval mode, stop between batches, the context limit, the pad id). Imports torch at load: the worker only."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import torch

from studio.engine.evaluate.scoring import (OnBatch, Stopped, _check_stop, _context_limit, _eos_ids, _evaluating,
                                            _pad_id)


@dataclass
class Generated:
    text: str  # the new tokens up to the first end-of-sequence, without special tokens, stripped
    tokens: int  # new tokens before the first end-of-sequence
    seconds: float  # wall time of the `generate` call of its batch


def _generation_batches(prompts: list[list[int]], limits: list[int], batch_size: int,
                        window: int | None) -> list[list[int]]:
    """Batches of similar-length prompts, longest first. Every row of a batch runs for the batch's largest
    limit, so a batch closes before a row would run past the context window (learned position embeddings
    would fail there; results past a row's own limit are cut anyway)."""
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    batches: list[list[int]] = []
    for i in order:
        last = batches[-1] if batches else None
        fits = last is not None and len(last) < batch_size and (
            window is None or len(prompts[last[0]]) + max(limits[i], max(limits[j] for j in last)) <= window)
        if fits:
            last.append(i)
        else:
            batches.append([i])
    return batches


def generate_batch(model, tokenizer, prompts: list[list[int]], *, device, max_new_tokens: int | list[int],
                   batch_size: int = 8, on_batch: OnBatch = None,
                   stop_event: threading.Event | None = None) -> list[Generated]:
    """Greedy replies to prompts given as token ids, batched with left padding; results in the input order.
    A prompt's limit is cut to the room its context window leaves."""
    from transformers import StoppingCriteriaList

    from studio.engine.streaming import StopFlagCriteria

    limits = [max_new_tokens] * len(prompts) if isinstance(max_new_tokens, int) else list(max_new_tokens)
    if len(limits) != len(prompts):
        raise ValueError(f"max_new_tokens has {len(limits)} values for {len(prompts)} prompts.")
    if batch_size < 1:
        raise ValueError(f"batch_size is {batch_size}; expected 1 or more.")
    window = _context_limit(model)
    for i, prompt in enumerate(prompts):
        if not prompt:
            raise ValueError(f"Prompt {i} is empty.")
        if limits[i] < 1:
            raise ValueError(f"Prompt {i} may generate {limits[i]} tokens; expected 1 or more.")
        if window and len(prompt) >= window:
            raise ValueError(f"Prompt {i} is {len(prompt)} tokens long, leaving no room for a reply in the "
                             f"model's context window of {window} tokens; fit the prompt first.")
        limits[i] = min(limits[i], window - len(prompt)) if window else limits[i]
    eos = _eos_ids(model, tokenizer)
    pad = _pad_id(tokenizer, model)
    results: list = [None] * len(prompts)
    with _evaluating(model):
        for batch in _generation_batches(prompts, limits, batch_size, window):
            _check_stop(stop_event)
            width = max(len(prompts[i]) for i in batch)
            ids = torch.tensor([[pad] * (width - len(prompts[i])) + list(prompts[i]) for i in batch], device=device)
            mask = torch.tensor([[0] * (width - len(prompts[i])) + [1] * len(prompts[i]) for i in batch],
                                device=device)
            # Stops a long batch within one token of the stop event, not only between batches.
            criteria = StopFlagCriteria(stop_event)
            started = time.perf_counter()
            out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=max(limits[i] for i in batch),
                                 do_sample=False, num_beams=1, eos_token_id=eos or None, pad_token_id=pad,
                                 stopping_criteria=StoppingCriteriaList([criteria]))
            seconds = time.perf_counter() - started
            if criteria.stopped_by_flag:
                raise Stopped("Stopped.")
            for row, i in enumerate(batch):
                new = out[row, width:].tolist()[:limits[i]]
                cut = next((at for at, token in enumerate(new) if token in eos), len(new))
                text = tokenizer.decode(new[:cut], skip_special_tokens=True).strip()
                results[i] = Generated(text=text, tokens=cut, seconds=seconds)
            if on_batch is not None:
                on_batch(len(batch))
    return results
