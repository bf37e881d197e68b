"""Writing each candidate's prompt for each held-out example, as the playground would, and fitting it into the
context window: shots are dropped (least relevant first) before anything else, and an example that does not
fit even with none is skipped and counted, never cut silently.

Chat mode: system prompt, the shots as earlier user/assistant turns, then the example's own conversation,
through the model's chat template; the answer scored is the assistant turn as the template writes it (with its
end-of-turn marker, as training learns it). Completion mode: the playground's text template.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from studio.engine.data.render import render
from studio.engine.data.tools import for_template
from studio.engine.evaluate.shots import Shot
from studio.engine.prompting import EXAMPLE_SEPARATOR, fill_template


@dataclass
class PromptStyle:
    mode: str  # chat | completion
    system: str
    template: str  # completion mode: "Input: {input}\nOutput: {output}"


@dataclass
class Prompt:
    text: str
    ids: list[int]
    messages: list[dict]  # chat mode: what was rendered (the answer is added after them)
    shots_used: int


@dataclass
class FitCounts:
    shots_dropped: int = 0  # examples whose prompt lost shots to fit
    skipped: int = 0  # examples that did not fit even with no shots (not scored)
    skipped_where: list[str] = field(default_factory=list)


def system_prompt(system: str, labels: list[str], label_instruction: bool) -> str:
    parts = [system.strip()] if system.strip() else []
    if labels and label_instruction:
        parts.append("Answer with one of: " + ", ".join(labels) + ".")
    return "\n\n".join(parts)


def _chat_messages(style: PromptStyle, shots: list[Shot], prompt: list[dict]) -> list[dict]:
    own_system = [m["content"] for m in prompt if m["role"] == "system"]
    system = "\n\n".join(s for s in [style.system] + own_system if s.strip())
    messages = [{"role": "system", "content": system}] if system else []
    for shot in shots:
        messages += [{"role": "user", "content": shot.input}, {"role": "assistant", "content": shot.output}]
    return messages + [m for m in prompt if m["role"] != "system"]


def _render_chat(tokenizer, messages: list[dict], add_generation_prompt: bool) -> str:
    msgs, tools = for_template(tokenizer, messages)
    return render(tokenizer, msgs, add_generation_prompt=add_generation_prompt, tools=tools)


def _last_user(prompt: list[dict]) -> str:
    users = [m["content"] for m in prompt if m["role"] == "user"]
    return users[-1] if users else ""


def write_prompt(tokenizer, style: PromptStyle, shots: list[Shot], prompt: list[dict]) -> Prompt:
    if style.mode == "chat":
        messages = _chat_messages(style, shots, prompt)
        text = _render_chat(tokenizer, messages, add_generation_prompt=True)
        return Prompt(text, tokenizer(text, add_special_tokens=False)["input_ids"], messages, len(shots))
    parts = [style.system.strip()] if style.system.strip() else []
    parts += [fill_template(style.template, s.input, s.output) for s in shots]
    head = style.template[: style.template.index("{output}")]
    # The space before the answer belongs to the answer's first token (" positive"), as tokenizers split words.
    parts.append(fill_template(head, _last_user(prompt), "").rstrip(" "))
    text = EXAMPLE_SEPARATOR.join(parts)
    return Prompt(text, tokenizer(text)["input_ids"], [], len(shots))


def answer_ids(tokenizer, style: PromptStyle, prompt: Prompt, answer: str) -> list[int]:
    """The tokens of `answer` as they follow the prompt: in chat mode the assistant turn with its end marker."""
    if style.mode != "chat":
        space = " " if style.template[: style.template.index("{output}")].endswith(" ") else ""
        full = tokenizer(prompt.text + space + answer)["input_ids"]
        if full[: len(prompt.ids)] == prompt.ids and len(full) > len(prompt.ids):
            return full[len(prompt.ids):]
        return tokenizer(space + answer, add_special_tokens=False)["input_ids"]
    full_text = _render_chat(tokenizer, prompt.messages + [{"role": "assistant", "content": answer}], False)
    if full_text.startswith(prompt.text):
        full = tokenizer(full_text, add_special_tokens=False)["input_ids"]
        if full[: len(prompt.ids)] == prompt.ids and len(full) > len(prompt.ids):
            return full[len(prompt.ids):]
        return tokenizer(full_text[len(prompt.text):], add_special_tokens=False)["input_ids"]
    # Templates that rewrite the last turn (reasoning tags): the answer's own tokens and the end token.
    ids = tokenizer(answer, add_special_tokens=False)["input_ids"]
    return ids + ([tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else [])


def fit_prompt(tokenizer, style: PromptStyle, shots: list[Shot], prompt: list[dict], context: int,
               room: int) -> Prompt | None:
    """The prompt with as many shots as leave `room` tokens for the answer, or None if none fits.
    Shots are dropped from the front: for similar shots the least similar come first."""
    for first in range(0, len(shots) + 1):
        written = write_prompt(tokenizer, style, shots[first:], prompt)
        if len(written.ids) + room <= context:
            return written
        if not written.ids:
            break
    return None
