"""How a reply is generated: greedy or sampled, its length, stop strings, the seed.

Each setting is declared once with `knob()` (help, bounds, label, group), as the training configs are:
the playground's sampling panel, the `studio generate` arguments and `validate` all read these
declarations. Settings in the SAMPLED group only matter when the reply is sampled (not greedy).
"""

from __future__ import annotations

import types
import typing
from dataclasses import asdict, dataclass, fields

from studio.engine.config import knob
from studio.engine.prompting.errors import BadPreset, BadPrompt

SAMPLED = "Sampling"
REPLY = "Reply"
STOP_SEPARATOR = "|"


@dataclass
class SamplingSettings:
    greedy: bool = knob(True, "Pick the most likely token each time: the same prompt always gives the same reply.",
                        group=REPLY, label="Greedy (no sampling)")
    temperature: float = knob(0.7, "Higher is more varied, lower more focused (sampling only).", min=0.01, max=5.0,
                              group=SAMPLED)
    top_p: float = knob(0.9, "Sample only from the smallest set of tokens whose probabilities add up to this.",
                        min=0.01, max=1.0, group=SAMPLED, label="Top-p")
    top_k: int = knob(50, "Sample only from the k most likely tokens (0 = off).", min=0, max=100_000, group=SAMPLED,
                      label="Top-k")
    repetition_penalty: float = knob(1.0, "Above 1 makes repeating earlier tokens less likely (1 = off).", min=0.5,
                                     max=3.0, group=REPLY)
    max_new_tokens: int = knob(128, "The longest reply, in tokens (also limited by the context window).", min=1,
                               max=1_000_000, group=REPLY)
    min_new_tokens: int = knob(0, "The shortest reply, in tokens: the model cannot end its reply before (0 = off).",
                               min=0, max=1_000_000, group=REPLY)
    stop_strings: list[str] = knob([], "Stop the reply at any of these texts, separated by |; \\n is a new line.",
                                   group=REPLY)
    # None (a preset's null, the panel's "random") draws a different reply each time.
    seed: int | None = knob(0, "The random seed for sampling; both sides of a comparison use the same one.", min=0,
                            max=2**31 - 1, group=SAMPLED)

    def validate(self) -> "SamplingSettings":
        hints = typing.get_type_hints(type(self))
        for f in fields(self):
            _check(f.name, getattr(self, f.name), hints[f.name], f.metadata)
        if self.min_new_tokens > self.max_new_tokens:
            raise BadPrompt(f"Sampling setting 'min_new_tokens' ({self.min_new_tokens}) is more than 'max_new_tokens' "
                            f"({self.max_new_tokens}).", "Lower the min new tokens or raise the max new tokens.",
                            field="min_new_tokens")
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


def _check(name: str, value, typ, meta) -> None:
    optional = typing.get_origin(typ) in (typing.Union, types.UnionType) and type(None) in typing.get_args(typ)
    if optional and value is None:
        return
    base = next((t for t in typing.get_args(typ) if t is not type(None)), typ) if optional else typ
    if base is bool:
        if not isinstance(value, bool):
            raise BadPrompt(f"Sampling setting '{name}' is {value!r}; expected true or false.", field=name)
    elif typing.get_origin(base) is list:
        if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
            raise BadPrompt(f"Sampling setting '{name}' must be a list of texts.", field=name)
    elif base in (int, float):
        lo, hi = meta.get("min"), meta.get("max")
        whole = base is int
        number = not isinstance(value, bool) and isinstance(value, int if whole else (int, float))
        if not number or not lo <= value <= hi:
            empty = " or empty" if optional else ""
            raise BadPrompt(f"Sampling setting '{name}' is {value!r}; expected a {'whole ' if whole else ''}number "
                            f"from {lo} to {hi}{empty}.", field=name)


def sampled_only() -> list[str]:
    """The settings that matter only when the reply is sampled (a form disables them for greedy replies)."""
    return [f.name for f in fields(SamplingSettings) if f.metadata.get("group") == SAMPLED]


def stop_strings_from_text(text: str) -> list[str]:
    """Stop strings from their one-line form: separated by |, with \\n and \\t for a new line and a tab."""
    parts = [s.replace("\\n", "\n").replace("\\t", "\t") for s in text.split(STOP_SEPARATOR)]
    return [s for s in parts if s]


def stop_strings_to_text(stop_strings: list[str]) -> str:
    return STOP_SEPARATOR.join(s.replace("\n", "\\n").replace("\t", "\\t") for s in stop_strings)
