"""The completion-mode template: how one few-shot example is written as text (``Input: {input}\\nOutput: {output}``)."""

from __future__ import annotations

import re

from studio.engine.prompting.errors import BadPrompt

DEFAULT_COMPLETION_TEMPLATE = "Input: {input}\nOutput: {output}"
EXAMPLE_SEPARATOR = "\n\n"
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
