"""An Ollama Modelfile for an exported GGUF file: the chat template translated by hand into Ollama's Go template
for the families the app knows, the end-of-turn stop tokens, sampling settings from a playground preset and an
optional system prompt. Light module (no torch)."""

from __future__ import annotations

import os
from pathlib import Path

from studio.engine.errors import BadConfig

MODELFILE = "Modelfile"
# Each template is written for Ollama's `.Messages` mode (the SYSTEM prompt arrives as the first message) and ends
# with what the Jinja template adds for the generation prompt. The test renders a conversation both ways.
GO_TEMPLATES = {
    "chatml": ('{{- range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}'
               '<|im_start|>assistant\n'),
    "llama3": ('{{- range .Messages }}<|start_header_id|>{{ .Role }}<|end_header_id|>\n\n{{ .Content }}<|eot_id|>'
               '{{ end }}<|start_header_id|>assistant<|end_header_id|>\n\n'),
    "gemma": ('{{- range .Messages }}<start_of_turn>{{ if eq .Role "assistant" }}model{{ else }}{{ .Role }}{{ end }}'
              '\n{{ .Content }}<end_of_turn>\n{{ end }}<start_of_turn>model\n'),
    "mistral": ('{{- range .Messages }}{{ if eq .Role "user" }}[INST] {{ .Content }}[/INST]'
                '{{ else if eq .Role "assistant" }}{{ .Content }}EOS{{ else }}{{ .Content }}\n\n{{ end }}{{ end }}'),
    "fallback": '{{- range .Messages }}<|{{ .Role }}|>\n{{ .Content }}EOS{{ end }}<|assistant|>\n',
}
FAMILY_MARKERS = (("<|im_start|>", "chatml"), ("<|start_header_id|>", "llama3"), ("<start_of_turn>", "gemma"),
                  ("[INST]", "mistral"))


def template_family(chat_template: str | None) -> str | None:
    """The family of a Jinja chat template, told by the special tokens it writes; None when unknown."""
    from studio.engine.data.render import FALLBACK_CHAT_TEMPLATE

    if not chat_template:
        return None
    if chat_template.strip() == FALLBACK_CHAT_TEMPLATE.strip():
        return "fallback"
    for marker, family in FAMILY_MARKERS:
        if marker in chat_template:
            return family
    return None


def go_template(chat_template: str | None, eos_token: str | None) -> tuple[str | None, str | None]:
    """(the Ollama template, its family), or (None, None) for a template the app cannot translate."""
    family = template_family(chat_template)
    if family is None:
        return None, None
    return GO_TEMPLATES[family].replace("EOS", eos_token or ""), family


def preset_parameters(preset_path: str) -> dict:
    """temperature, top_p and top_k of a playground preset (greedy becomes temperature 0)."""
    if not str(preset_path or "").strip():
        return {}
    from studio.engine.prompting.presets import load_preset

    sampling = load_preset(preset_path).sampling
    if sampling.greedy:
        return {"temperature": 0}
    return {"temperature": sampling.temperature, "top_p": sampling.top_p, "top_k": sampling.top_k}


def _quoted(text: str, what: str) -> str:
    if '"""' in text:
        raise BadConfig(f"The {what} contains three double quotes in a row (\"\"\"), which end a Modelfile block.",
                        "Write it without \"\"\".", field="system_prompt" if what == "system prompt" else None)
    return f'"""{text}"""'


def modelfile_text(gguf_file: str, template: str | None, stops: list[str], parameters: dict, system: str) -> str:
    lines = [f"FROM ./{gguf_file}"]
    if template is not None:
        lines.append(f"TEMPLATE {_quoted(template, 'chat template')}")
    for stop in dict.fromkeys(s for s in stops if s):
        lines.append(f'PARAMETER stop "{stop}"')
    for key, value in parameters.items():
        lines.append(f"PARAMETER {key} {value}")
    if system.strip():
        lines.append(f"SYSTEM {_quoted(system, 'system prompt')}")
    return "\n".join(lines) + "\n"


def write_modelfile(out_dir: Path, name: str, gguf_file: str, *, chat_template: str | None, eos_token: str | None,
                    stops: list[str], system: str = "", preset: str = "") -> dict:
    """Write out_dir/Modelfile; what was written, the `ollama create` command and a warning if any."""
    template, family = go_template(chat_template, eos_token)
    text = modelfile_text(gguf_file, template, stops, preset_parameters(preset), system)
    path = Path(out_dir) / MODELFILE
    tmp = path.with_name(f".{MODELFILE}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
    result = {"path": str(path), "template": family, "command": f"ollama create {ollama_name(name)} -f {path}"}
    if template is None:
        result["warning"] = ("The chat template is not one the app can translate for Ollama (ChatML, Llama 3, "
                             "Gemma, Mistral or the app's own): the Modelfile has no TEMPLATE line, so Ollama uses "
                             "the template stored in the GGUF file. Check a reply with `ollama run` before use.")
    return result


def ollama_name(name: str) -> str:
    """A model name Ollama accepts: lower-case letters, digits, '.', '_' and '-'."""
    import re

    cleaned = re.sub(r"[^a-z0-9._-]+", "-", name.strip().lower()).strip("-._")
    return cleaned or "model"
