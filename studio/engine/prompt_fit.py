"""What fits in a model's context window: a chat whose oldest turns are dropped to leave room for the reply,
the context length read from a model's config, and the prompt inspector's token facts.

Light module (no torch): functions that need a tokenizer take one the caller already loaded.
"""

from __future__ import annotations

from dataclasses import dataclass

from studio.engine.prompting.errors import BadPrompt
from studio.engine.prompting.presets import Preset
from studio.engine.prompting.render import check_conversation, render_chat
from studio.engine.prompting.sampling import SamplingSettings


@dataclass
class FittedChat:
    """The chat prompt the model receives once it fits its context window, and what was left out of it."""

    text: str
    tokens: int
    context_window: int
    dropped_turns: int = 0  # the oldest messages of the conversation
    dropped_examples: int = 0  # the first few-shot examples
    dropped_system: bool = False

    def note(self) -> str:
        """What was left out, in words (empty when nothing was)."""
        parts = [f"{n} {word}{'' if n == 1 else 's'}" for n, word in
                 ((self.dropped_turns, "oldest turn"), (self.dropped_examples, "few-shot example")) if n]
        parts += ["the system prompt"] if self.dropped_system else []
        if not parts:
            return ""
        listed = parts[0] if len(parts) == 1 else f"{', '.join(parts[:-1])} and {parts[-1]}"
        return f"{listed} left out to fit the {self.context_window}-token context"


def reply_room(sampling: SamplingSettings, context: int) -> int:
    """Tokens kept free for the reply: the max new tokens, but at most a quarter of the context, so that
    a long max does not throw away the whole conversation."""
    return max(1, min(sampling.max_new_tokens, context // 4))


def fit_chat(tokenizer, preset: Preset, conversation: list[dict], context: int,
             room: int | None = None) -> FittedChat:
    """Render a chat so that it leaves `room` tokens for the reply: the oldest turns go first (cut before a
    user turn, so the turns stay paired), then, if the last message alone is still too long with them, the
    few-shot examples (the first first) and then the system prompt.

    If even the last message alone leaves less room, it is sent anyway while it leaves any room at all
    (the reply is shorter); a message longer than the context is a BadPrompt.
    """
    check_conversation(conversation)
    room = reply_room(preset.sampling, context) if room is None else room
    budget = context - room

    def measure(system, examples, turns):
        text = render_chat(tokenizer, system, examples, turns)
        # verbose=False: a too-long chat is expected here, no need for the tokenizer's warning about it.
        return text, len(tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"])

    # Dropping turns only shortens the prompt, so the first cut that fits is found by bisection.
    cuts = [0] + [i for i, m in enumerate(conversation) if i and m.get("role") == "user"]
    lo, hi = 0, len(cuts) - 1
    while lo < hi:
        mid = (lo + hi) // 2
        if measure(preset.system, preset.examples, conversation[cuts[mid]:])[1] <= budget:
            hi = mid
        else:
            lo = mid + 1
    cut = cuts[lo]
    turns = conversation[cut:]
    text, n = measure(preset.system, preset.examples, turns)
    dropped_examples, system = 0, preset.system
    while n > budget and (dropped_examples < len(preset.examples) or system.strip()):
        if dropped_examples < len(preset.examples):
            dropped_examples += 1
        else:
            system = ""
        text, n = measure(system, preset.examples[dropped_examples:], turns)
    if n >= context:
        raise BadPrompt(f"The last message is {n} tokens long in the chat template, but the model's context window "
                        f"is {context} tokens, so there is no room for a reply.", "Shorten the message.",
                        field="prompt")
    return FittedChat(text, n, context, dropped_turns=cut, dropped_examples=dropped_examples,
                      dropped_system=bool(preset.system.strip()) and not system)


# ---- inspection ----------------------------------------------------------------------------------------

CONTEXT_KEYS = ("max_position_embeddings", "n_positions", "max_seq_len", "seq_length", "n_ctx", "max_sequence_length")


def context_window(config, tokenizer=None, default: int = 2048) -> int:
    """The model's context length from its config (a dict or a transformers config), else the tokenizer's."""
    get = config.get if isinstance(config, dict) else (lambda k: getattr(config, k, None))
    for key in CONTEXT_KEYS:
        value = get(key)
        if isinstance(value, int) and value > 0:
            return value
    text_config = get("text_config")
    if text_config is not None:
        return context_window(text_config, tokenizer, default)
    limit = getattr(tokenizer, "model_max_length", None)
    if isinstance(limit, int) and 0 < limit < 10_000_000:
        return limit
    return default


@dataclass
class PromptInfo:
    text: str
    tokens: int
    context_window: int
    token_pieces: list[str]

    @property
    def fits(self) -> bool:
        return self.tokens < self.context_window

    def describe(self) -> str:
        return f"{self.tokens} prompt tokens / {self.context_window} context"


def inspect_prompt(tokenizer, text: str, context: int, add_special_tokens: bool = False) -> PromptInfo:
    ids = tokenizer(text, add_special_tokens=add_special_tokens)["input_ids"]
    pieces = [tokenizer.decode([i]) for i in ids[:2000]]
    return PromptInfo(text=text, tokens=len(ids), context_window=context, token_pieces=pieces)


# ---- examples -> dataset ------------------------------------------------------------------------------
