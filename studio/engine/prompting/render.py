"""The exact text a model receives for a preset and a conversation.

Few-shot examples are rendered
- in **chat** mode as prior user/assistant turns through the model's chat template
  (system prompt first, then the examples, then the conversation);
- in **completion** mode as a text block: the system prompt, a blank line, each example through a
  template such as ``Input: {input}\\nOutput: {output}`` separated by blank lines, then the prompt
  through the template up to ``{output}``. Without examples and without a system prompt the prompt
  is continued as it is (raw completion).

Functions that need a tokenizer take one the caller already loaded (no torch here).
"""

from __future__ import annotations

from studio.engine.prompting.errors import BadPrompt
from studio.engine.prompting.presets import Example, Preset
from studio.engine.prompting.templates import (DEFAULT_COMPLETION_TEMPLATE, EXAMPLE_SEPARATOR, check_template,
                                               fill_template)


def chat_messages(system: str, examples: list[Example], conversation: list[dict]) -> list[dict]:
    """System prompt, then each example as a user/assistant pair, then the conversation."""
    messages = [{"role": "system", "content": system}] if system.strip() else []
    for ex in examples:
        messages += [{"role": "user", "content": ex.input}, {"role": "assistant", "content": ex.output}]
    return messages + [dict(m) for m in conversation]


def check_conversation(conversation: list[dict]) -> None:
    if not conversation or conversation[-1].get("role") != "user" or not conversation[-1].get("content", "").strip():
        raise BadPrompt("The prompt is empty.", "Type a message for the model first.", field="prompt")


def render_chat(tokenizer, system: str, examples: list[Example], conversation: list[dict]) -> str:
    """The exact text the model receives in chat mode (ending with the assistant's generation prompt)."""
    check_conversation(conversation)
    messages = chat_messages(system, examples, conversation)
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except Exception as exc:  # jinja errors: templates that refuse system turns, strict alternation, ...
        raise BadPrompt(f"The model's chat template refused this conversation: {str(exc).splitlines()[0]}",
                        "Some templates allow no system prompt or need strictly alternating user and assistant "
                        "turns; change the conversation or use completion mode.") from None


def render_completion(system: str, examples: list[Example], prompt: str,
                      template: str = DEFAULT_COMPLETION_TEMPLATE) -> str:
    """The exact text the model continues in completion mode."""
    if not prompt.strip():
        raise BadPrompt("The prompt is empty.", "Type the text the model should continue first.", field="prompt")
    if not examples and not system.strip():
        return prompt
    check_template(template)
    parts = [system.strip()] if system.strip() else []
    parts += [fill_template(template, ex.input, ex.output) for ex in examples]
    if examples:
        head = template[: template.index("{output}")]
        parts.append(fill_template(head, prompt, ""))
    else:
        parts.append(prompt)
    return EXAMPLE_SEPARATOR.join(parts)


def render(tokenizer, preset: Preset, *, conversation: list[dict] | None = None, prompt: str = "") -> str:
    """Chat mode renders `conversation` (or `prompt` as a single user turn); completion mode `prompt`."""
    if preset.mode == "chat":
        conv = conversation if conversation is not None else [{"role": "user", "content": prompt}]
        return render_chat(tokenizer, preset.system, preset.examples, conv)
    return render_completion(preset.system, preset.examples, prompt, preset.completion_template)
