"""Streaming generation: text chunks through a callback, Stop through a flag, stop strings, timings.

No Qt here: the playground's generation thread passes a callback that emits a Qt signal.
This module imports torch and transformers at load: import it lazily from the UI.

Stop strings end generation through transformers' own `stop_strings` (a `StopStringCriteria` that
matches them against the token sequence, bytes included, as each token arrives); the streamer cuts
the shown text at the first stop string and holds back what may be the start of one. `generate` in
transformers 5 runs its stopping criteria on each new token *before* it hands the token to the
streamer, so the Stop flag is read by a `StoppingCriteria` too.
"""

from __future__ import annotations

import threading
import time
from dataclasses import asdict, dataclass
from typing import Callable

import torch
from transformers import StoppingCriteria, StoppingCriteriaList
from transformers.generation.streamers import BaseStreamer

from studio.engine.prompting.errors import BadPrompt
from studio.engine.prompting.sampling import SamplingSettings


@dataclass
class GenerationResult:
    text: str
    prompt_tokens: int
    new_tokens: int
    context_window: int
    time_to_first_token_s: float | None
    tokens_per_s: float | None  # decode speed: tokens after the first / time after the first token
    total_s: float
    stop_reason: str  # eos | length | stop_string | stopped
    max_new_tokens: int  # after clamping to the context window

    def as_dict(self) -> dict:
        return asdict(self)


def _held_back(text: str, stop_strings) -> int:
    """How many trailing characters might be the start of a stop string (not shown yet)."""
    hold = 0
    for s in stop_strings:
        for k in range(min(len(s) - 1, len(text)), 0, -1):
            if text.endswith(s[:k]):
                hold = max(hold, k)
                break
    return hold


class CallbackStreamer(BaseStreamer):
    """A transformers streamer (BaseStreamer protocol) that calls `on_text(chunk)` for each new piece of text
    and `on_tokens(count, seconds)` for each new token (the count so far, the time since the first).

    Decoding is incremental, so a long reply costs no more per token than a short one: the new tokens are
    decoded together with the tokens since the last clean boundary (`_prefix`), and the text they add is
    the difference to that context alone, so tokenizers that decode a token differently by its neighbours
    (a SentencePiece leading space) give the same text as decoding the whole reply. Text is held back
    while it ends in an incomplete UTF-8 character or in what may be the beginning of a stop string, and
    nothing at or after a stop string is emitted.
    """

    def __init__(self, tokenizer, on_text: Callable[[str], None] | None = None, stop_strings=(),
                 skip_prompt: bool = True, on_tokens: Callable[[int, float], None] | None = None):
        self.tokenizer = tokenizer
        self.on_text = on_text
        self.on_tokens = on_tokens
        self.stop_strings = [s for s in stop_strings if s]
        self.skip_prompt = skip_prompt
        self.ids: list[int] = []
        self.new_tokens = 0
        self.chunks = 0
        self.hit_stop = False
        self.first_token_time: float | None = None
        self.last_token_time: float | None = None
        self._prompt_seen = not skip_prompt
        self._prefix = 0  # ids[_prefix:_read] are decoded already; they give the context of the next ones
        self._read = 0
        self._emitted: list[str] = []
        self._pending = ""  # decoded, not emitted yet (held back)

    @property
    def text(self) -> str:
        return "".join(self._emitted) + self._pending

    def put(self, value) -> None:
        if value.dim() > 1:
            value = value[0]
        if not self._prompt_seen:
            self._prompt_seen = True
            return
        now = time.perf_counter()
        if self.first_token_time is None:
            self.first_token_time = now
        self.last_token_time = now
        new = [int(t) for t in value.tolist()]
        self.new_tokens += len(new)
        if self.on_tokens is not None:
            self.on_tokens(self.new_tokens, now - self.first_token_time)
        if self.hit_stop:
            return
        self.ids.extend(new)
        self._advance(final=False)

    def end(self) -> None:
        if not self.hit_stop:
            self._advance(final=True)

    def _decode_new(self, final: bool) -> str:
        """The text the tokens after `_read` add; empty while they end inside a character (until the end)."""
        context = self.tokenizer.decode(self.ids[self._prefix:self._read], skip_special_tokens=True)
        both = self.tokenizer.decode(self.ids[self._prefix:], skip_special_tokens=True)
        if len(both) <= len(context) or (both.endswith("\ufffd") and not final):
            return ""
        self._prefix, self._read = self._read, len(self.ids)
        return both[len(context):]

    def _advance(self, final: bool) -> None:
        pending = self._pending + self._decode_new(final)
        # Held-back text never ends in the start of a stop string, so a stop string lies wholly in `pending`.
        cut = min((at for at in (pending.find(s) for s in self.stop_strings) if at >= 0), default=-1)
        if cut >= 0:
            self.hit_stop = True
            pending = pending[:cut]
        safe = len(pending) if final or self.hit_stop else len(pending) - _held_back(pending, self.stop_strings)
        self._pending = pending[safe:]
        if safe > 0:
            self._emitted.append(pending[:safe])
            self.chunks += 1
            if self.on_text is not None:
                self.on_text(pending[:safe])


class StopFlagCriteria(StoppingCriteria):
    """Stops at once when `stop_event` is set. It also stops when the streamer has already cut the text at a
    stop string that transformers' token matching did not see (one spanning a special token that the shown
    text skips), so generation never runs on behind a reply that is finished on screen."""

    def __init__(self, stop_event: threading.Event | None, streamer: CallbackStreamer | None = None):
        self.stop_event = stop_event
        self.streamer = streamer
        self.stopped_by_flag = False

    def __call__(self, input_ids, scores, **kwargs):
        if self.stop_event is not None and self.stop_event.is_set():
            self.stopped_by_flag = True
        done = self.stopped_by_flag or (self.streamer is not None and self.streamer.hit_stop)
        return torch.full((input_ids.shape[0],), done, dtype=torch.bool, device=input_ids.device)


def stream_generate(model, tokenizer, prompt_text: str, sampling: SamplingSettings, *, context_window: int,
                    add_special_tokens: bool = False, on_text: Callable[[str], None] | None = None,
                    stop_event: threading.Event | None = None, device: str = "cpu",
                    on_tokens: Callable[[int, float], None] | None = None) -> GenerationResult:
    """Generate a reply to `prompt_text` (already rendered), streaming text chunks to `on_text` and the
    token count with the seconds since the first token to `on_tokens`."""
    if not prompt_text.strip():
        raise BadPrompt("The prompt is empty.", "Type a prompt (or add a system prompt or examples) first.",
                        field="prompt")
    enc = tokenizer(prompt_text, return_tensors="pt", add_special_tokens=add_special_tokens).to(device)
    n_prompt = int(enc["input_ids"].shape[1])
    if n_prompt == 0:
        raise BadPrompt("The prompt is empty after tokenization.", field="prompt")
    if n_prompt >= context_window:
        raise BadPrompt(f"The prompt is {n_prompt} tokens long, but the model's context window is "
                        f"{context_window} tokens, so there is no room for a reply.",
                        "Shorten the prompt, remove few-shot examples or clear the conversation.", field="prompt")
    max_new = max(1, min(sampling.max_new_tokens, context_window - n_prompt))
    streamer = CallbackStreamer(tokenizer, on_text, sampling.stop_strings, on_tokens=on_tokens)
    criteria = StopFlagCriteria(stop_event, streamer)
    kwargs = dict(max_new_tokens=max_new, do_sample=not sampling.greedy, streamer=streamer,
                  stopping_criteria=StoppingCriteriaList([criteria]),
                  pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id)
    if streamer.stop_strings:
        kwargs.update(stop_strings=streamer.stop_strings, tokenizer=tokenizer)
    if sampling.min_new_tokens:
        kwargs["min_new_tokens"] = min(sampling.min_new_tokens, max_new)
    if sampling.repetition_penalty != 1.0:
        kwargs["repetition_penalty"] = sampling.repetition_penalty
    if not sampling.greedy:
        kwargs.update(temperature=sampling.temperature, top_p=sampling.top_p, top_k=sampling.top_k or None)
    if sampling.seed is not None:
        torch.manual_seed(sampling.seed)
    start = time.perf_counter()
    if stop_event is not None and stop_event.is_set():
        return GenerationResult("", n_prompt, 0, context_window, None, None, 0.0, "stopped", max_new)
    with torch.inference_mode():
        out = model.generate(**enc, **kwargs)
    end = time.perf_counter()
    new_ids = out[0, n_prompt:].tolist()
    if criteria.stopped_by_flag:
        reason = "stopped"
    elif streamer.hit_stop:
        reason = "stop_string"
    elif new_ids and new_ids[-1] == tokenizer.eos_token_id:
        reason = "eos"
    elif len(new_ids) >= max_new or not streamer.stop_strings:
        reason = "length"
    else:  # a stop string matched on the tokens' text where the shown text skips a special token
        reason = "stop_string"
    ttft = streamer.first_token_time - start if streamer.first_token_time else None
    n_new = len(new_ids)
    speed = None
    if streamer.first_token_time and n_new > 1 and end > streamer.first_token_time:
        speed = (n_new - 1) / (end - streamer.first_token_time)
    elif n_new and end > start:
        speed = n_new / (end - start)
    return GenerationResult(text=streamer.text, prompt_tokens=n_prompt, new_tokens=n_new,
                            context_window=context_window, time_to_first_token_s=ttft, tokens_per_s=speed,
                            total_s=end - start, stop_reason=reason, max_new_tokens=max_new)
