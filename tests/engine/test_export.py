"""The export core: source resolution, the merged model, the Modelfile's chat template, the export run."""

import json
import re
import shutil
import sys
import threading
import types

import pytest

from studio.engine.config import from_dict
from studio.engine.errors import BadConfig, BadModel, StudioError
from studio.engine.events import EventWriter, read_events
from studio.engine.export.checks import base_mismatch, resolve_source
from studio.engine.export.config import ExportConfig
from studio.engine.export.ollama import go_template, write_modelfile

CHATML = ("{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\n' + message['content'] + "
          "'<|im_end|>' + '\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}")
CHAT = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi there"},
        {"role": "assistant", "content": "Hello."}, {"role": "user", "content": "What is 2+2?"}]


def render_go(template: str, messages: list[dict]) -> str:
    """Ollama's Go template rendered for the subset the Modelfile uses: range .Messages, if/else if/else with
    eq .Role "x", .Role, .Content, and the {{- -}} whitespace trims."""
    parts = re.split(r"(\{\{-?\s*.*?\s*-?\}\})", template)
    tokens = []
    for part in parts:
        if part.startswith("{{"):
            if part.startswith("{{-") and tokens and tokens[-1][0] == "text":
                tokens[-1] = ("text", tokens[-1][1].rstrip())
            tokens.append(("action", part.strip("{}-").strip(), part.endswith("-}}")))
        elif part:
            if tokens and tokens[-1][0] == "action" and tokens[-1][2]:
                part = part.lstrip()
            tokens.append(("text", part))

    def block(i, scope, out, stop=("end",)):
        while i < len(tokens):
            tok = tokens[i]
            if tok[0] == "text":
                out.append(tok[1])
                i += 1
                continue
            act = tok[1]
            if act.split(" ")[0] in stop or act.startswith("else"):
                return i
            if act == "range .Messages":
                end = None
                for message in messages:
                    end = block(i + 1, message, out)
                i = (end if end is not None else skip(i + 1)) + 1
            elif act.startswith("if "):
                i = conditional(i, act[3:], scope, out)
            else:
                out.append(scope[act.lstrip(".").lower()])
                i += 1
        return i

    def skip(i):
        return block(i, {}, [])

    def conditional(i, cond, scope, out):
        taken = False
        while True:
            holds = cond is None or scope["role"] == re.fullmatch(r'eq \.Role "(\w+)"', cond).group(1)
            sink = out if holds and not taken else []
            taken = taken or holds
            i = block(i + 1, scope, sink)
            act = tokens[i][1]
            if act == "end":
                return i + 1
            cond = act[len("else if "):] if act.startswith("else if") else None

    out: list[str] = []
    block(0, {}, out)
    return "".join(out)


def _tokenizer(tiny_llama, template=None):
    from studio.engine.models import load_tokenizer

    tokenizer = load_tokenizer(tiny_llama)
    if template:
        tokenizer.add_special_tokens({"additional_special_tokens": ["<|im_start|>", "<|im_end|>"]})
        tokenizer.chat_template = template
    return tokenizer


def test_formats_are_checked_and_ollama_needs_a_gguf_format():
    cfg = from_dict({"task": "export", "source": "/x", "formats": "merged,gguf-q8_0,ollama"})
    assert cfg.format_list() == ["merged", "gguf-q8_0", "ollama"] and cfg.gguf_types() == ["q8_0"]
    for formats, words in (("merged,gguf-q4", "'gguf-q4'"), ("", "empty"), ("merged,ollama", "add gguf-q8_0")):
        with pytest.raises(BadConfig) as err:
            from_dict({"task": "export", "source": "/x", "formats": formats})
        assert err.value.field == "formats" and words in (err.value.message + " " + err.value.hint).lower()


@pytest.mark.parametrize("template", [None, CHATML])
def test_the_modelfile_template_renders_a_chat_as_the_jinja_template_does(tiny_llama, template, tmp_path):
    from studio.engine.data.render import ensure_chat_template, render
    from studio.engine.export.merge import end_of_turn_ids

    tokenizer = _tokenizer(tiny_llama, template)
    ensure_chat_template(tokenizer)
    go, family = go_template(tokenizer.chat_template, tokenizer.eos_token)
    assert family == ("chatml" if template else "fallback")
    assert render_go(go, CHAT) == render(tokenizer, CHAT, add_generation_prompt=True)
    stops = tokenizer.convert_ids_to_tokens(end_of_turn_ids(tokenizer))
    assert stops == (["<|im_end|>"] if template else [tokenizer.eos_token])
    result = write_modelfile(tmp_path, "My Model", "my-model-q8_0.gguf", chat_template=tokenizer.chat_template,
                             eos_token=tokenizer.eos_token, stops=stops, system="Answer in French.")
    text = (tmp_path / "Modelfile").read_text()
    assert text.startswith("FROM ./my-model-q8_0.gguf\nTEMPLATE \"\"\"")
    assert f'PARAMETER stop "{stops[0]}"' in text and 'SYSTEM """Answer in French."""' in text
    assert result["command"] == f"ollama create my-model -f {tmp_path / 'Modelfile'}" and "warning" not in result


def test_an_unknown_template_gets_no_template_line_and_a_warning(tmp_path):
    result = write_modelfile(tmp_path, "m", "m-f16.gguf", chat_template="{{ messages[0]['content'] }}",
                             eos_token="</s>", stops=["</s>"])
    assert "TEMPLATE" not in (tmp_path / "Modelfile").read_text() and "GGUF" in result["warning"]


def test_a_run_without_output_exports_its_last_complete_checkpoint(memorised_run, tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints").mkdir(parents=True)
    for step, complete in ((4, True), (8, False)):
        shutil.copytree(memorised_run[0] / "adapter", run / "checkpoints" / f"checkpoint-{step}")
        if complete:
            (run / "checkpoints" / f"checkpoint-{step}" / ".complete").write_text("ok\n")
    (run / "events.jsonl").write_text(json.dumps({"type": "failed", "time": 1.0, "kind": "internal",
                                                  "message": "crashed"}) + "\n")
    src = resolve_source(str(run))
    assert src.kind == "adapter" and src.path.name == "checkpoint-4" and src.run == run
    assert "checkpoint-4" in src.warnings[0] and "failed" in src.warnings[0]


def test_a_missing_or_changed_base_model_is_refused_with_the_reason(memorised_adapter, tmp_path):
    from studio.engine.scratch import save_new_causal_lm

    adapter = shutil.copytree(memorised_adapter, tmp_path / "adapter")
    config = json.loads((adapter / "adapter_config.json").read_text())
    config["base_model_name_or_path"] = str(tmp_path / "gone")
    (adapter / "adapter_config.json").write_text(json.dumps(config))
    with pytest.raises(BadModel) as err:
        resolve_source(str(adapter))
    assert str(tmp_path / "gone") in err.value.message
    other = save_new_causal_lm(tmp_path / "other", ["a b c d e f g"] * 20, vocab_size=300, hidden=32, layers=2)
    problem = base_mismatch(adapter, other)
    assert problem and "[32, 128]" in problem and "not the model the adapter was trained on" in problem


def _run_export(cfg: ExportConfig, workspace):
    from studio.engine.export.recipe import run_export
    from studio.engine.runs import create_run_dir

    run_dir = create_run_dir(workspace, cfg.name)
    writer = EventWriter(run_dir / "events.jsonl", None)
    try:
        run_export(cfg, run_dir, writer, threading.Event())
    finally:
        writer.close()
    return run_dir, read_events(run_dir / "events.jsonl")


def test_the_merged_model_gives_the_logits_of_base_plus_adapter(tiny_llama, memorised_run, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from studio.engine.preflight import preflight

    cfg = ExportConfig(source=str(memorised_run[0]), formats="merged", name="qa")
    report = preflight(cfg, tmp_path)
    assert report.ok and any("merged" in n.message and "iB" in n.message for n in report.notes)
    run_dir, events = _run_export(cfg, tmp_path)
    finished = events[-1]
    assert finished["type"] == "finished" and finished["output"] == str(run_dir)
    assert [f["format"] for f in finished["summary"]["files"]] == ["merged"]
    merged = run_dir / "merged"
    model = AutoModelForCausalLM.from_pretrained(merged)
    reference = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_llama),
                                          str(memorised_run[0] / "adapter"))
    ids = AutoTokenizer.from_pretrained(merged)("What is the capital of Zorbia?", return_tensors="pt").input_ids
    with torch.no_grad():
        diff = (model(ids).logits - reference(ids).logits).abs().max().item()
    assert diff < 1e-4
    assert not any("lora" in name for name, _ in model.named_parameters())
    eos = json.loads((merged / "generation_config.json").read_text())["eos_token_id"]
    assert AutoTokenizer.from_pretrained(merged).eos_token_id in (eos if isinstance(eos, list) else [eos])
    card = (merged / "README.md").read_text()
    assert str(tiny_llama) in card and "Steps:" in card and "Final training loss: 0." in card
    record = json.loads((run_dir / "export.json").read_text())
    assert record["files"][0]["bytes"] > 0 and record["failed"] == {}


def test_a_failing_gguf_format_keeps_the_merged_model(memorised_run, tmp_path, monkeypatch):
    def write_gguf(model_dir, out_path, outtype, *, progress=None, stop=None):
        raise StudioError(f"cannot write {outtype} here")

    fake = types.ModuleType("studio.engine.export.gguf")
    fake.write_gguf = write_gguf
    monkeypatch.setitem(sys.modules, "studio.engine.export.gguf", fake)
    cfg = ExportConfig(source=str(memorised_run[0] / "adapter"), formats="merged,gguf-f16,ollama", name="qa")
    run_dir, events = _run_export(cfg, tmp_path)
    record = json.loads((run_dir / "export.json").read_text())
    assert (run_dir / "merged" / "config.json").is_file()
    assert record["failed"]["gguf-f16"] == "cannot write f16 here" and "ollama" in record["failed"]
    assert events[-1]["type"] == "finished" and events[-1]["summary"]["failed"] == record["failed"]


def test_the_model_card_names_the_training_method():
    from studio.engine.export.model_card import _method_words

    assert _method_words({"task": "preference", "objective": "dpo", "beta": 0.1, "method": "lora"}) == \
        "preference tuning (DPO, beta 0.1) with lora"
    assert _method_words({"task": "sft", "method": "qlora-4bit"}) == "supervised fine-tuning with qlora-4bit"
    assert _method_words({}) == "not recorded"
