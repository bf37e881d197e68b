"""A full transformers model folder from an export source: the adapter merged into its base (loaded unquantized,
even for a QLoRA run), the tokenizer with the chat template the run used, and a generation config that stops at
the template's end-of-turn token as well as at the end-of-sequence token."""

from __future__ import annotations

import json
from pathlib import Path

from studio.engine.errors import BadModel
from studio.engine.export.checks import ExportSource, merge_precision
from studio.engine.runs import atomic_dir

MAX_SHARD_SIZE = "2GB"
REPLY_MARK = "Xq7 reply text Zv9"  # text no template adds, so what follows it is the end of the turn


def load_export_tokenizer(src: ExportSource, trust_remote_code: bool = False):
    """The tokenizer saved with the adapter or checkpoint (it carries the template the run used), else the base's;
    the app's fallback template when it has none, as in training."""
    from studio.engine.data.render import ensure_chat_template
    from studio.engine.models import load_tokenizer

    folder = src.path if any((src.path / n).is_file() for n in ("tokenizer.json", "tokenizer_config.json")) \
        else src.model_folder
    tokenizer = load_tokenizer(folder, trust_remote_code)
    ensure_chat_template(tokenizer)
    return tokenizer


def end_of_turn_ids(tokenizer) -> list[int]:
    """The special token(s) the chat template puts right after an assistant's reply (<|im_end|>, <|eot_id|>,
    <end_of_turn>, the end-of-sequence token), found by rendering a one-turn chat."""
    from studio.engine.data.render import render

    text = render(tokenizer, [{"role": "user", "content": "Hello"}, {"role": "assistant", "content": REPLY_MARK}])
    tail = text[text.rfind(REPLY_MARK) + len(REPLY_MARK):] if REPLY_MARK in text else ""
    special = set(tokenizer.all_special_ids) | {i for i, t in tokenizer.added_tokens_decoder.items() if t.special}
    found = []
    for token_id in tokenizer(tail.lstrip(), add_special_tokens=False)["input_ids"]:
        if token_id not in special:
            break
        found.append(int(token_id))
    return found


def eos_ids(tokenizer) -> list[int]:
    """End-of-turn tokens first, then the tokenizer's end-of-sequence token, without repeats."""
    ids = end_of_turn_ids(tokenizer)
    if tokenizer.eos_token_id is not None and tokenizer.eos_token_id not in ids:
        ids.append(int(tokenizer.eos_token_id))
    return ids


def load_merged(src: ExportSource, *, trust_remote_code: bool = False, allow_pickle: bool = False):
    """The model with the adapter merged in, in fp32 (bf16 for a bf16 model on a GPU)."""
    import torch

    from studio.engine.models import choose_device, load_causal_lm, read_model_config

    precision = merge_precision(read_model_config(src.model_folder), src.run_config, cuda=torch.cuda.is_available())
    choice = choose_device("cuda" if precision == "bf16" else "cpu", precision)
    # Never quantized: a QLoRA adapter is merged into the full-precision base, which is what others load.
    model = load_causal_lm(src.model_folder, choice, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
    if src.kind == "adapter":
        from peft import PeftModel

        try:
            model = PeftModel.from_pretrained(model, str(src.path)).merge_and_unload()
        except (ValueError, RuntimeError, KeyError) as exc:
            raise BadModel(f"The adapter {src.path} cannot be applied to {src.base}: {str(exc).splitlines()[0]}",
                           "Choose the base model the adapter was trained on.", field="source") from None
    return model.to("cpu") if choice.device != "cpu" else model


def _generation_config(model, src: ExportSource, ids: list[int]):
    from transformers import GenerationConfig

    try:
        config = GenerationConfig.from_pretrained(src.model_folder)
    except OSError:
        config = GenerationConfig.from_model_config(model.config)
    config.eos_token_id = ids if len(ids) > 1 else (ids[0] if ids else config.eos_token_id)
    return config


def write_merged(src: ExportSource, out: Path, *, trust_remote_code: bool = False, allow_pickle: bool = False,
                 progress=None, add_files=None) -> dict:
    """Write the merged model folder at `out` atomically; what was written (bytes, end-of-turn tokens).
    `add_files(folder)`, if given, writes more files (the model card) before the folder is moved into place."""
    report = progress or (lambda fraction: None)
    tokenizer = load_export_tokenizer(src, trust_remote_code)
    report(0.1)
    model = load_merged(src, trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
    report(0.6)
    ids = eos_ids(tokenizer)
    with atomic_dir(out) as tmp:
        model.generation_config = _generation_config(model, src, ids)
        model.save_pretrained(tmp, max_shard_size=MAX_SHARD_SIZE)
        tokenizer.save_pretrained(tmp)
        if add_files is not None:
            add_files(tmp)
    report(1.0)
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return {"path": str(out), "bytes": size, "eos_token_ids": ids,
            "end_of_turn": [tokenizer.convert_ids_to_tokens(i) for i in ids],
            "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
            "chat_template": tokenizer.chat_template, "eos_token": tokenizer.eos_token}


def read_generation_eos(folder: Path) -> list[int]:
    try:
        value = json.loads((Path(folder) / "generation_config.json").read_text(encoding="utf-8")).get("eos_token_id")
    except (OSError, ValueError):
        return []
    return value if isinstance(value, list) else [value] if value is not None else []
