"""The configuration of an export (task "export"). Light module (no torch); importing it registers the task.

`formats` is comma-separated text so that one form field and one CLI flag edit it; a YAML list is accepted
and joined.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from studio.engine.config import knob, register_task
from studio.engine.errors import BadConfig

GGUF_FORMATS = ("gguf-f16", "gguf-bf16", "gguf-q8_0")
EXPORT_FORMATS = ("merged",) + GGUF_FORMATS + ("ollama",)
FORMATS_HELP = ("What to write, comma-separated: merged (a transformers model folder with the adapter merged in), "
                "gguf-f16, gguf-bf16, gguf-q8_0 (one GGUF file each, for llama.cpp, LM Studio and Ollama), "
                "ollama (a Modelfile for the smallest GGUF file written: q8_0, else f16, else bf16; needs a GGUF "
                "format).")


@dataclass
class ExportConfig:
    """Merge a run's adapter into its base model and write it in the formats other tools read."""

    task: str = knob("export", "The kind of run.", choices=("export",), choice_labels={"export": "Export"},
                     group="Run")
    source: str = knob("", "What to export: a run folder (its adapter or model, else its last complete "
                           "checkpoint), an adapter folder or a model folder.", group="Source")
    formats: str = knob("merged,gguf-q8_0,ollama", FORMATS_HELP, group="Output")
    name: str = knob("model", "The exported model's name: it names the GGUF files, the Ollama model and the "
                              "export's run folder.", group="Output")
    system_prompt: str = knob("", "A system prompt written into the Modelfile (empty = none).", group="Ollama")
    preset: str = knob("", "A playground preset (.json) whose temperature, top-p and top-k go into the Modelfile "
                           "(empty = Ollama's defaults).", group="Ollama", advanced=True)
    trust_remote_code: bool = knob(False, "Run Python code shipped in the model folder. Only for models you trust.",
                                   group="Source", advanced=True)
    allow_pickle: bool = knob(False, "Load weights stored as pickle files (.bin/.pt), which can run code when "
                                     "loaded. Only for models you trust.", group="Source", advanced=True)

    def __post_init__(self):
        if isinstance(self.formats, (list, tuple)):
            self.formats = ",".join(str(f) for f in self.formats)

    def format_list(self) -> list[str]:
        """The formats asked for, in the order they are written (merged, GGUF types, then the Modelfile)."""
        asked = [f.strip().lower() for f in re.split(r"[,\s]+", str(self.formats)) if f.strip()]
        unknown = [f for f in asked if f not in EXPORT_FORMATS]
        if unknown:
            raise BadConfig(f"Field 'formats' has {', '.join(map(repr, unknown))}; expected some of "
                            f"{', '.join(EXPORT_FORMATS)}, separated by commas.", field="formats")
        return [f for f in EXPORT_FORMATS if f in asked]

    def gguf_types(self) -> list[str]:
        return [f.removeprefix("gguf-") for f in self.format_list() if f in GGUF_FORMATS]

    def check(self) -> None:
        chosen = self.format_list()
        if not chosen:
            raise BadConfig("Field 'formats' is empty: nothing would be exported.",
                            "Choose at least one of " + ", ".join(EXPORT_FORMATS) + ".", field="formats")
        if "ollama" in chosen and not self.gguf_types():
            raise BadConfig("Field 'formats' asks for ollama without a GGUF format: an Ollama Modelfile points at "
                            "a GGUF file of the same export.", "Add gguf-q8_0 (or gguf-f16, gguf-bf16) to the "
                            "formats.", field="formats")
        if not str(self.source).strip():
            raise BadConfig("Field 'source' is empty: no run, adapter or model folder was chosen.",
                            "Choose the run to export.", field="source")
        if not str(self.name).strip():
            raise BadConfig("Field 'name' is empty; the GGUF files and the Ollama model need a name.", field="name")


register_task("export", ExportConfig)
