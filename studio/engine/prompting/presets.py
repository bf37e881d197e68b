"""Presets: what the playground saves and loads (the in-context part of a prompt and the sampling settings),
as a JSON file whose every problem is named with the file and the field."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

from studio.engine.prompting.errors import BadPreset, BadPrompt
from studio.engine.prompting.sampling import SamplingSettings
from studio.engine.prompting.templates import DEFAULT_COMPLETION_TEMPLATE, check_template

MODES = ("chat", "completion")
PRESET_VERSION = 1
PRESET_FIELDS = {"studio_preset", "mode", "system", "examples", "completion_template", "sampling"}


@dataclass
class Example:
    input: str
    output: str


@dataclass
class Preset:
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


def _read_json(path: Path):
    if not path.is_file():
        raise BadPreset(f"The preset file {path} does not exist." if not path.exists()
                        else f"{path} is a folder; expected a preset JSON file.")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise BadPreset(f"{path} is not UTF-8 text; expected a preset JSON file.") from None
    except json.JSONDecodeError as exc:
        raise BadPreset(f"{path}, line {exc.lineno}, column {exc.colno}: invalid JSON ({exc.msg}).") from None


def _examples(path: Path, raw) -> list[Example]:
    if not isinstance(raw, list):
        raise BadPreset(f"{path}: field 'examples' must be a list of {{input, output}} objects.", field="examples")
    examples = []
    for i, item in enumerate(raw, start=1):
        if not (isinstance(item, dict) and isinstance(item.get("input"), str) and isinstance(item.get("output"), str)):
            raise BadPreset(f"{path}: example {i} must be an object with text fields 'input' and 'output'.",
                            field="examples")
        examples.append(Example(item["input"], item["output"]))
    return examples


def load_preset(path: str | Path) -> Preset:
    path = Path(path)
    data = _read_json(path)
    if not isinstance(data, dict):
        raise BadPreset(f"{path}: the top level is a {type(data).__name__}; expected an object with system, "
                        f"examples and sampling.")
    unknown = sorted(set(data) - PRESET_FIELDS)
    if unknown:
        raise BadPreset(f"{path}: unknown field(s) {', '.join(unknown)}; expected some of "
                        f"{', '.join(sorted(PRESET_FIELDS))}.")
    mode = data.get("mode", "chat")
    if mode not in MODES:
        raise BadPreset(f"{path}: field 'mode' is {mode!r}; expected one of {', '.join(MODES)}.", field="mode")
    system = data.get("system", "")
    template = data.get("completion_template", DEFAULT_COMPLETION_TEMPLATE)
    for name, value in (("system", system), ("completion_template", template)):
        if not isinstance(value, str):
            raise BadPreset(f"{path}: field '{name}' is a {type(value).__name__}; expected text.", field=name)
    examples = _examples(path, data.get("examples", []))
    try:
        check_template(template)
    except BadPrompt as exc:
        raise BadPreset(f"{path}: {exc.message}", field="completion_template") from None
    sampling = SamplingSettings.from_dict(data.get("sampling", {}), str(path))
    return Preset(mode=mode, system=system, examples=examples, completion_template=template, sampling=sampling)
