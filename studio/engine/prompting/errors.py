"""The two kinds of mistake the playground reports: a prompt that cannot be built or run, a preset file that
cannot be read."""

from __future__ import annotations

from studio.engine.errors import StudioError


class BadPrompt(StudioError):
    kind = "bad_prompt"
    default_hint = "Change the prompt, the examples or the settings and try again."


class BadPreset(StudioError):
    kind = "bad_preset"
    default_hint = "Choose a preset file saved by the playground (JSON with system, examples and sampling)."
