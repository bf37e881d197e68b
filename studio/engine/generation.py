"""Loading a model (with an optional adapter) for generation, and generating text.

`load_pair` loads what the playground compares: a base model and, optionally, an adapter (one
PeftModel; the base side runs inside `model.disable_adapter()`, so the weights are in memory once)
or a fully fine-tuned model folder (a second model). Batch prompt files are read and written by
studio.engine.prompting.batch_files.

Light at import (no torch): torch and transformers load with the first model.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from studio.engine.data.render import ensure_chat_template
from studio.engine.errors import BadModel
from studio.engine.models import (DeviceChoice, check_model_safety, choose_device, load_causal_lm, load_tokenizer,
                                  resolve_model_path)
from studio.engine.prompt_fit import context_window
from studio.engine.prompting.sampling import SamplingSettings


@dataclass
class LoadedModel:
    model: object
    tokenizer: object
    choice: DeviceChoice
    model_path: Path
    adapter_path: Path | None

    @property
    def context_window(self) -> int:
        return context_window(self.model.config, self.tokenizer)


def check_adapter(adapter: Path) -> dict:
    import json

    adapter = Path(adapter)
    if not adapter.exists():
        raise BadModel(f"The adapter folder {adapter} does not exist.",
                       "Choose the adapter/ folder of a finished run, or leave the adapter empty.", field="adapter")
    cfg_file = adapter / "adapter_config.json"
    if not cfg_file.is_file():
        raise BadModel(f"{adapter} is not a PEFT adapter folder (no adapter_config.json).",
                       "Choose the adapter/ folder of a finished run, or a fine-tuned model folder "
                       "(with config.json).", field="adapter")
    try:
        return json.loads(cfg_file.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise BadModel(f"{cfg_file} is not valid JSON: {exc}.", field="adapter") from None


def load_for_generation(model: str, adapter: str | None = None, *, device: str = "auto",
                        trust_remote_code: bool = False, allow_pickle: bool = False,
                        allow_download: bool = False, precision: str = "auto") -> LoadedModel:
    model_path = resolve_model_path(model, allow_download)
    check_model_safety(model_path, trust_remote_code, allow_pickle)
    choice = choose_device(device, precision)
    adapter_path = Path(adapter).expanduser() if adapter else None
    if adapter_path:
        check_adapter(adapter_path)  # before the (slow) model load
    # A fine-tuned adapter carries the tokenizer and chat template it was trained with.
    tok_source = adapter_path if adapter_path and (adapter_path / "tokenizer_config.json").is_file() else model_path
    tokenizer = load_tokenizer(tok_source, trust_remote_code)
    ensure_chat_template(tokenizer)
    lm = load_causal_lm(model_path, choice, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
    if adapter_path:
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
                  sampling: SamplingSettings | None = None, **settings) -> str:
    """One reply, not streamed (the CLI's `studio generate`): with `sampling`, or SamplingSettings made of
    `settings` (e.g. max_new_tokens=24; greedy by default)."""
    text = build_prompt(loaded.tokenizer, prompt, system, chat)
    return stream(loaded, text, sampling or SamplingSettings(**settings), chat=chat).text


def stream(loaded: LoadedModel, prompt_text: str, sampling: SamplingSettings, *, chat: bool = True,
           on_text=None, stop_event=None, adapter_enabled: bool = True, on_tokens=None):
    """Generate from an already rendered prompt, streaming chunks to `on_text` (and the token count with the
    seconds since the first token to `on_tokens`); a streaming.GenerationResult.

    Chat prompts carry their special tokens in the template; completion prompts get the tokenizer's
    (a BOS token for Llama-style tokenizers). `adapter_enabled=False` runs a PeftModel without its adapter.
    """
    from studio.engine.streaming import stream_generate

    sampling.validate()
    kwargs = dict(context_window=loaded.context_window, add_special_tokens=not chat, on_text=on_text,
                  stop_event=stop_event, device=loaded.choice.device, on_tokens=on_tokens)
    if not adapter_enabled and hasattr(loaded.model, "disable_adapter"):
        with loaded.model.disable_adapter():
            return stream_generate(loaded.model, loaded.tokenizer, prompt_text, sampling, **kwargs)
    return stream_generate(loaded.model, loaded.tokenizer, prompt_text, sampling, **kwargs)


def is_adapter_folder(path: str | Path) -> bool:
    return (Path(path) / "adapter_config.json").is_file()


@dataclass
class ModelPair:
    """The two sides the playground compares. `tuned` is None when there is only a base model."""

    base: LoadedModel
    tuned: LoadedModel | None
    shared: bool  # tuned is the base model with an adapter: the base side disables it

    @property
    def sides(self) -> list[str]:
        return ["base", "tuned"] if self.tuned is not None else ["base"]

    def primary(self) -> str:
        return "tuned" if self.tuned is not None else "base"

    def loaded(self, side: str) -> LoadedModel:
        return self.tuned if side == "tuned" and self.tuned is not None else self.base

    def generate(self, side: str, prompt_text: str, sampling: SamplingSettings, *, chat: bool = True,
                 on_text=None, stop_event=None, on_tokens=None):
        return stream(self.loaded(side), prompt_text, sampling, chat=chat, on_text=on_text, stop_event=stop_event,
                      adapter_enabled=not (side == "base" and self.shared), on_tokens=on_tokens)


def load_pair(model: str, tuned: str | None = None, *, device: str = "auto", trust_remote_code: bool = False,
              allow_pickle: bool = False, allow_download: bool = False) -> ModelPair:
    """A base model and, optionally, an adapter folder or a fully fine-tuned model folder."""
    opts = dict(device=device, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle,
                allow_download=allow_download)
    if not tuned:
        return ModelPair(load_for_generation(model, None, **opts), None, shared=False)
    tuned_path = Path(tuned).expanduser()
    if not tuned_path.exists():
        raise BadModel(f"The adapter or fine-tuned model folder {tuned_path} does not exist.",
                       "Choose the adapter/ or model/ folder of a finished run, or leave it empty.", field="adapter")
    if is_adapter_folder(tuned_path):
        loaded = load_for_generation(model, str(tuned_path), **opts)
        return ModelPair(loaded, loaded, shared=True)
    if (tuned_path / "config.json").is_file():  # a fully fine-tuned model
        return ModelPair(load_for_generation(model, None, **opts), load_for_generation(str(tuned_path), None, **opts),
                         shared=False)
    check_adapter(tuned_path)  # raises: neither an adapter nor a model
    raise AssertionError("unreachable")
