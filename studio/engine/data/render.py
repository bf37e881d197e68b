"""Chat conversations to token ids and labels, through the model's own chat template.

Only assistant tokens count towards the loss by default: each assistant turn's span is found
as the text between the conversation rendered up to the turn (with the generation prompt) and
the conversation rendered through it, so the turn's end-of-turn marker is learned as well.

Conversations with tool calls carry them in the message list (see `tools`): a template that knows tools
gets them as `apply_chat_template(..., tools=…)`, others the documented text fallback. Tool calls are
assistant turns (trained); tool results are `tool` turns (masked, like user turns).
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass, field

from studio.engine.data.formats import describe_drops
from studio.engine.data.tools import TOOLS_ROLE, for_template
from studio.engine.errors import BadDataset

IGNORE_INDEX = -100

# Used for models that ship no chat template (base models, fresh pre-trained ones). Each turn is
# "<|role|>\n" + text + the end-of-sequence token, so a fine-tuned model learns where to stop
# (nothing follows the EOS token: a newline there would be a target no base model can predict).
FALLBACK_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{{ '<|' + message['role'] + '|>\n' + message['content'] + eos_token }}"
    "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|assistant|>\n' }}{% endif %}"
)


def ensure_chat_template(tokenizer) -> bool:
    """Give the tokenizer the fallback template if it has none; True if it was added."""
    if getattr(tokenizer, "chat_template", None):
        return False
    tokenizer.chat_template = FALLBACK_CHAT_TEMPLATE
    return True


def render(tokenizer, messages: list[dict], add_generation_prompt: bool = False, tools: list[dict] | None = None
           ) -> str:
    return tokenizer.apply_chat_template(messages, tools=tools, tokenize=False,
                                         add_generation_prompt=add_generation_prompt)


def assistant_spans(tokenizer, messages: list[dict]) -> tuple[str, list[tuple[int, int]]]:
    """The full rendered text and the character spans of the assistant turns."""
    messages, tools = for_template(tokenizer, messages)
    full = render(tokenizer, messages, tools=tools)
    spans = []
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        start_text = render(tokenizer, messages[:i], add_generation_prompt=True, tools=tools) if i else ""
        end_text = render(tokenizer, messages[: i + 1], tools=tools)
        if full.startswith(start_text) and full.startswith(end_text) and len(end_text) > len(start_text):
            spans.append((len(start_text), len(end_text)))
        else:
            # Templates that rewrite earlier turns (e.g. dropping reasoning) break the prefix rule:
            # fall back to the reply's own text, searched after the previous span.
            after = spans[-1][1] if spans else 0
            at = full.find(message["content"], after) if message["content"] else -1
            if at >= 0:
                spans.append((at, at + len(message["content"])))
    return full, spans


@dataclass
class Tokenized:
    input_ids: list[int]
    labels: list[int]
    full_length: int  # before truncation


# No tokenizer makes tokens longer than this many characters on average, so cutting a message
# there never changes the first max_length tokens; it keeps a 50 MB cell from stalling tokenization.
MAX_CHARS_PER_TOKEN = 32


def tokenize_conversation(tokenizer, messages: list[dict], max_length: int,
                          train_on_prompt: bool = False) -> Tokenized:
    limit = max_length * MAX_CHARS_PER_TOKEN
    # The tool descriptions are JSON read back when rendering: cut, they would not parse. (Longer than the
    # limit, they alone exceed max_length, so the row is dropped as too long anyway.)
    if any(len(m["content"]) > limit and m["role"] != TOOLS_ROLE for m in messages):
        messages = [{**m, "content": m["content"][:limit]} if m["role"] != TOOLS_ROLE else m for m in messages]
    text, spans = assistant_spans(tokenizer, messages)
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    ids, offsets = enc["input_ids"], enc["offset_mapping"]
    if train_on_prompt:
        labels = list(ids)
    else:
        labels = [IGNORE_INDEX] * len(ids)
        k = 0
        for j, (start, end) in enumerate(offsets):
            while k < len(spans) and spans[k][1] <= start:
                k += 1
            if k < len(spans) and start >= spans[k][0] and end <= spans[k][1] and end > start:
                labels[j] = ids[j]
    return Tokenized(input_ids=ids[:max_length], labels=labels[:max_length], full_length=len(ids))


@dataclass
class DatasetSummary:
    rows: int
    format: str
    used: int
    min_tokens: int
    median_tokens: float
    p95_tokens: int
    max_tokens: int
    truncated: int
    trained_tokens: int
    dropped: dict[str, list[str]] = field(default_factory=dict)
    lengths: list[int] = field(default_factory=list, repr=False)

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "lengths"}
        d["dropped"] = {reason: {"count": len(locs), "examples": locs[:5]} for reason, locs in self.dropped.items()}
        return d

    def describe(self) -> str:
        lines = [f"{self.used} of {self.rows} rows used ({self.format} format); tokens per example "
                 f"min {self.min_tokens}, median {self.median_tokens:.0f}, p95 {self.p95_tokens}, max "
                 f"{self.max_tokens}; {self.truncated} truncated to the max length; "
                 f"{self.trained_tokens} trained tokens."]
        for reason, locs in self.dropped.items():
            lines.append(f"Dropped {len(locs)}: {describe_drops({reason: locs})}.")
        return "\n".join(lines)


def tokenize_all(tokenizer, convs, max_length: int, train_on_prompt: bool = False,
                 progress=None) -> tuple[list[Tokenized], DatasetSummary]:
    """Tokenize every conversation (formats.Conversations); rows with nothing left to learn after
    truncation are dropped and counted."""
    out: list[Tokenized] = []
    dropped = {k: list(v) for k, v in convs.dropped.items()}
    total = len(convs.conversations)
    for i, (messages, where) in enumerate(zip(convs.conversations, convs.where)):
        tok = tokenize_conversation(tokenizer, messages, max_length, train_on_prompt)
        if not any(label != IGNORE_INDEX for label in tok.labels):
            dropped.setdefault(f"the prompt alone is longer than the max length ({max_length} tokens)",
                               []).append(where)
        else:
            out.append(tok)
        if progress and (i % 200 == 0 or i == total - 1):
            progress((i + 1) / total)
    rows = total + convs.dropped_count
    if not out:
        raise BadDataset(f"{convs.source}: no example is left to train on in {rows} rows — "
                         f"{describe_drops(dropped)}.", "Raise the max length, or shorten the prompts.")
    lengths = sorted(t.full_length for t in out)
    summary = DatasetSummary(
        rows=rows, format=convs.format, used=len(out), min_tokens=lengths[0],
        median_tokens=statistics.median(lengths), p95_tokens=lengths[min(len(lengths) - 1, int(0.95 * len(lengths)))],
        max_tokens=lengths[-1], truncated=sum(1 for n in lengths if n > max_length),
        trained_tokens=sum(sum(1 for x in t.labels if x != IGNORE_INDEX) for t in out), dropped=dropped,
        lengths=lengths)
    return out, summary
