"""In-context learning: prompts built from a system prompt and few-shot examples, presets, and few-shot
examples saved as a fine-tuning dataset (what fits in the context window is in prompt_fit).

Light module (no torch): the playground's widgets import it directly. Functions that need a
tokenizer take one that the caller already loaded.

Few-shot examples are rendered
- in **chat** mode as prior user/assistant turns through the model's chat template
  (system prompt first, then the examples, then the conversation);
- in **completion** mode as a text block: the system prompt, a blank line, each example through a
  template such as ``Input: {input}\\nOutput: {output}`` separated by blank lines, then the prompt
  through the template up to ``{output}``. Without examples and without a system prompt the prompt
  is continued as it is (raw completion).
"""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from studio.engine.errors import StudioError

MODES = ("chat", "completion")
DEFAULT_COMPLETION_TEMPLATE = "Input: {input}\nOutput: {output}"
EXAMPLE_SEPARATOR = "\n\n"
DATASET_FORMATS = ("alpaca", "messages", "sharegpt")
PRESET_VERSION = 1


class BadPrompt(StudioError):
    kind = "bad_prompt"
    default_hint = "Change the prompt, the examples or the settings and try again."


class BadPreset(StudioError):
    kind = "bad_preset"
    default_hint = "Choose a preset file saved by the playground (JSON with system, examples and sampling)."


@dataclass
class SamplingSettings:
    greedy: bool = True
    temperature: float = 0.7
    top_p: float = 0.9
    top_k: int = 50  # 0 = off
    repetition_penalty: float = 1.0
    max_new_tokens: int = 128
    min_new_tokens: int = 0  # the end token is held off until the reply is this long (0 = off)
    stop_strings: list[str] = field(default_factory=list)
    seed: int | None = 0

    BOUNDS = {"temperature": (0.01, 5.0), "top_p": (0.01, 1.0), "top_k": (0, 100_000),
              "repetition_penalty": (0.5, 3.0), "max_new_tokens": (1, 1_000_000),
              "min_new_tokens": (0, 1_000_000)}

    def validate(self) -> "SamplingSettings":
        for name, (lo, hi) in self.BOUNDS.items():
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
                raise BadPrompt(f"Sampling setting '{name}' is {value!r}; expected a number from {lo} to {hi}.",
                                field=name)
        if self.min_new_tokens > self.max_new_tokens:
            raise BadPrompt(f"Sampling setting 'min_new_tokens' ({self.min_new_tokens}) is more than 'max_new_tokens' "
                            f"({self.max_new_tokens}).", "Lower the min new tokens or raise the max new tokens.",
                            field="min_new_tokens")
        if not isinstance(self.stop_strings, list) or not all(isinstance(s, str) for s in self.stop_strings):
            raise BadPrompt("Sampling setting 'stop_strings' must be a list of texts.", field="stop_strings")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise BadPrompt(f"Sampling setting 'seed' is {self.seed!r}; expected a whole number or empty.",
                            field="seed")
        return self

    @classmethod
    def from_dict(cls, data: dict, source: str = "the settings") -> "SamplingSettings":
        if not isinstance(data, dict):
            raise BadPreset(f"{source}: 'sampling' must be an object, not {type(data).__name__}.", field="sampling")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise BadPreset(f"{source}: unknown sampling setting(s) {', '.join(unknown)}; expected some of "
                            f"{', '.join(sorted(known))}.", field="sampling")
        settings = cls(**data)
        try:
            settings.validate()
        except BadPrompt as exc:
            raise BadPreset(f"{source}: {exc.message}", field=exc.field) from None
        return settings

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Example:
    input: str
    output: str


@dataclass
class Preset:
    """What the playground saves and loads: the in-context part of a prompt and the sampling settings."""

    mode: str = "chat"
    system: str = ""
    examples: list[Example] = field(default_factory=list)
    completion_template: str = DEFAULT_COMPLETION_TEMPLATE
    sampling: SamplingSettings = field(default_factory=SamplingSettings)

    def as_dict(self) -> dict:
        return {"studio_preset": PRESET_VERSION, "mode": self.mode, "system": self.system,
                "examples": [asdict(e) for e in self.examples], "completion_template": self.completion_template,
                "sampling": self.sampling.as_dict()}


def save_preset(preset: Preset, path: str | Path) -> Path:
    path = Path(path)
    try:
        path.write_text(json.dumps(preset.as_dict(), indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise BadPreset(f"Could not write the preset to {path}: {exc.strerror or exc}.",
                        "Choose a folder you can write to.") from None
    return path


def load_preset(path: str | Path) -> Preset:
    path = Path(path)
    if not path.is_file():
        raise BadPreset(f"The preset file {path} does not exist." if not path.exists()
                        else f"{path} is a folder; expected a preset JSON file.")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise BadPreset(f"{path} is not UTF-8 text; expected a preset JSON file.") from None
    except json.JSONDecodeError as exc:
        raise BadPreset(f"{path}, line {exc.lineno}, column {exc.colno}: invalid JSON ({exc.msg}).") from None
    if not isinstance(data, dict):
        raise BadPreset(f"{path}: the top level is a {type(data).__name__}; expected an object with system, "
                        f"examples and sampling.")
    known = {"studio_preset", "mode", "system", "examples", "completion_template", "sampling"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise BadPreset(f"{path}: unknown field(s) {', '.join(unknown)}; expected some of {', '.join(sorted(known))}.")
    mode = data.get("mode", "chat")
    if mode not in MODES:
        raise BadPreset(f"{path}: field 'mode' is {mode!r}; expected one of {', '.join(MODES)}.", field="mode")
    system = data.get("system", "")
    template = data.get("completion_template", DEFAULT_COMPLETION_TEMPLATE)
    for name, value in (("system", system), ("completion_template", template)):
        if not isinstance(value, str):
            raise BadPreset(f"{path}: field '{name}' is a {type(value).__name__}; expected text.", field=name)
    raw_examples = data.get("examples", [])
    if not isinstance(raw_examples, list):
        raise BadPreset(f"{path}: field 'examples' must be a list of {{input, output}} objects.", field="examples")
    examples = []
    for i, item in enumerate(raw_examples, start=1):
        if not (isinstance(item, dict) and isinstance(item.get("input"), str) and isinstance(item.get("output"), str)):
            raise BadPreset(f"{path}: example {i} must be an object with text fields 'input' and 'output'.",
                            field="examples")
        examples.append(Example(item["input"], item["output"]))
    try:
        check_template(template)
    except BadPrompt as exc:
        raise BadPreset(f"{path}: {exc.message}", field="completion_template") from None
    sampling = SamplingSettings.from_dict(data.get("sampling", {}), str(path))
    return Preset(mode=mode, system=system, examples=examples, completion_template=template, sampling=sampling)


# ---- rendering --------------------------------------------------------------------------------------------

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


_FIELD = re.compile(r"\{(input|output)\}")


def check_template(template: str) -> None:
    if "{input}" not in template or "{output}" not in template:
        raise BadPrompt(f"The completion template {template!r} needs both {{input}} and {{output}}.",
                        "For example: Input: {input}\\nOutput: {output}", field="completion_template")
    if template.index("{output}") < template.index("{input}"):
        raise BadPrompt("The completion template must put {input} before {output}.", field="completion_template")


def fill_template(template: str, input: str, output: str) -> str:
    """One pass, so braces in the user's text are never read as fields."""
    values = {"input": input, "output": output}
    return _FIELD.sub(lambda m: values[m.group(1)], template)


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


# ---- fitting a chat into the context window --------------------------------------------------------------

def example_conversations(examples: list[Example], system: str = "") -> list[list[dict]]:
    sys = [{"role": "system", "content": system}] if system.strip() else []
    return [sys + [{"role": "user", "content": e.input}, {"role": "assistant", "content": e.output}]
            for e in examples]


def _alpaca_row(conv: list[dict]) -> dict:
    system = conv[0]["content"] if conv and conv[0]["role"] == "system" else ""
    turns = conv[1:] if system else conv
    pairs = [(turns[i], turns[i + 1]) for i in range(0, len(turns) - 1, 2)]
    row = {"instruction": pairs[-1][0]["content"], "input": "", "output": pairs[-1][1]["content"]}
    if system:
        row["system"] = system
    if len(pairs) > 1:
        row["history"] = [[u["content"], a["content"]] for u, a in pairs[:-1]]
    return row


def _sharegpt_row(conv: list[dict]) -> dict:
    tags = {"user": "human", "assistant": "gpt"}
    system = conv[0]["content"] if conv and conv[0]["role"] == "system" else ""
    turns = conv[1:] if system else conv
    row = {"conversations": [{"from": tags[m["role"]], "value": m["content"]} for m in turns]}
    if system:
        row["system"] = system
    return row


def _check_dataset_conversation(conv: list[dict], number: int) -> None:
    turns = conv[1:] if conv and conv[0]["role"] == "system" else conv
    roles = [m["role"] for m in turns]
    expected = ["user", "assistant"] * (len(turns) // 2)
    if not turns or len(turns) % 2 or roles != expected:
        raise BadPrompt(f"Example {number} is not a sequence of user/assistant pairs ending in a reply "
                        f"(roles: {', '.join(roles) or 'none'}).", field="examples")
    if not turns[-1]["content"].strip():
        raise BadPrompt(f"Example {number} has an empty reply.", field="examples")


def save_dataset(conversations: list[list[dict]], path: str | Path, fmt: str = "alpaca") -> Path:
    """Write conversations (few-shot examples, replies marked good) as a fine-tuning dataset.

    The format is alpaca, messages or sharegpt; the file is JSON Lines if the name ends in .jsonl,
    else a JSON list. The Fine-tune tab's loader (files.read_records + formats.to_conversations) reads it.
    """
    path = Path(path)
    if fmt not in DATASET_FORMATS:
        raise BadPrompt(f"Unknown dataset format {fmt!r}; expected one of {', '.join(DATASET_FORMATS)}.",
                        field="format")
    if not conversations:
        raise BadPrompt("There is nothing to save: add few-shot examples or mark replies as good first.",
                        field="examples")
    rows = []
    for number, conv in enumerate(conversations, start=1):
        _check_dataset_conversation(conv, number)
        if fmt == "alpaca":
            rows.append(_alpaca_row(conv))
        elif fmt == "sharegpt":
            rows.append(_sharegpt_row(conv))
        else:
            rows.append({"messages": [dict(role=m["role"], content=m["content"]) for m in conv]})
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)
    else:
        text = json.dumps(rows, indent=1, ensure_ascii=False) + "\n"
    try:
        path.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise BadPrompt(f"Could not write {path}: {exc.strerror or exc}.",
                        "Choose a folder you can write to.") from None
    return path
