"""Loading a model (with an optional adapter) for generation, and generating text."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.engine.data.render import ensure_chat_template
from studio.engine.errors import BadModel
from studio.engine.models import (DeviceChoice, check_model_safety, choose_device, load_causal_lm, load_tokenizer,
                                  resolve_model_path)


@dataclass
class LoadedModel:
    model: object
    tokenizer: object
    choice: DeviceChoice
    model_path: Path
    adapter_path: Path | None


def check_adapter(adapter: Path, model_path: Path) -> dict:
    import json

    cfg_file = Path(adapter) / "adapter_config.json"
    if not cfg_file.is_file():
        raise BadModel(f"{adapter} is not a PEFT adapter folder (no adapter_config.json).", field="adapter")
    return json.loads(cfg_file.read_text(encoding="utf-8"))


def load_for_generation(model: str, adapter: str | None = None, *, device: str = "auto",
                        trust_remote_code: bool = False, allow_pickle: bool = False,
                        allow_download: bool = False) -> LoadedModel:
    model_path = resolve_model_path(model, allow_download)
    check_model_safety(model_path, trust_remote_code, allow_pickle)
    choice = choose_device(device, "auto")
    adapter_path = Path(adapter) if adapter else None
    # A fine-tuned adapter carries the tokenizer and chat template it was trained with.
    tok_source = adapter_path if adapter_path and (adapter_path / "tokenizer_config.json").is_file() else model_path
    tokenizer = load_tokenizer(tok_source, trust_remote_code)
    ensure_chat_template(tokenizer)
    lm = load_causal_lm(model_path, choice, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
    if adapter_path:
        check_adapter(adapter_path, model_path)
        from peft import PeftModel

        try:
            lm = PeftModel.from_pretrained(lm, adapter_path)
        except Exception as exc:  # shape mismatches, missing modules: an adapter for another model
            raise BadModel(f"The adapter in {adapter_path} does not fit the model {model_path}: "
                           f"{str(exc).splitlines()[0][:300]}",
                           "Choose the base model the adapter was trained on.", field="adapter") from None
    lm.eval()
    return LoadedModel(lm, tokenizer, choice, model_path, adapter_path)


def build_prompt(tokenizer, prompt: str, system: str = "", chat: bool = True) -> str:
    if not chat:
        return prompt
    messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def generate_text(loaded: LoadedModel, prompt: str, *, system: str = "", chat: bool = True,
                  max_new_tokens: int = 128, do_sample: bool = False, temperature: float = 1.0,
                  top_p: float = 1.0, top_k: int = 0, seed: int | None = None) -> str:
    import torch

    text = build_prompt(loaded.tokenizer, prompt, system, chat)
    enc = loaded.tokenizer(text, return_tensors="pt", add_special_tokens=False).to(loaded.choice.device)
    if seed is not None:
        torch.manual_seed(seed)
    kwargs = dict(max_new_tokens=max_new_tokens, do_sample=do_sample,
                  pad_token_id=loaded.tokenizer.pad_token_id, eos_token_id=loaded.tokenizer.eos_token_id)
    if do_sample:
        kwargs.update(temperature=temperature, top_p=top_p, top_k=top_k or None)
    with torch.no_grad():
        out = loaded.model.generate(**enc, **kwargs)
    return loaded.tokenizer.decode(out[0, enc["input_ids"].shape[1]:], skip_special_tokens=True)
