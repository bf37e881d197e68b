"""The tokenizer part of a GGUF file: a byte-level BPE vocabulary from an HF `tokenizer.json`.

llama.cpp re-implements the tokenizer, so the file must say which pre-tokenizer (the regex that splits text
before BPE) the model was trained with; a wrong name silently changes the token ids llama.cpp produces.
"""

from __future__ import annotations

import json
from pathlib import Path

from studio.engine.errors import BadModel

# The split patterns of well-known byte-level BPE tokenizers (as written in their tokenizer.json) and the
# `tokenizer.ggml.pre` name under which llama.cpp implements the same split.
LLAMA3_SPLIT = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}{1,3}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
                "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
QWEN2_SPLIT = ("(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\\r\\n\\p{L}\\p{N}]?\\p{L}+|\\p{N}| ?[^\\s\\p{L}\\p{N}]+[\\r\\n]*"
               "|\\s*[\\r\\n]+|\\s+(?!\\S)|\\s+")
KNOWN_SPLITS = {LLAMA3_SPLIT: "llama-bpe", QWEN2_SPLIT: "qwen2"}
# llama.cpp's GPT-2 pre-tokenizer is the regex that `ByteLevel(use_regex=True)` applies, the pre-tokenizer of
# tokenizers trained by studio.engine.scratch.train_bpe_tokenizer.
GPT2_PRE = "gpt-2"

TOKEN_NORMAL, TOKEN_CONTROL, TOKEN_USER_DEFINED, TOKEN_UNUSED = 1, 3, 4, 5
SUPPORTED_TOKENIZERS = ("byte-level BPE with the GPT-2 split (as trained by Adapt Studio)", "the Llama 3 split",
                        "the Qwen2 split")


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise BadModel(f"{path} is missing; GGUF export needs the model's fast tokenizer (tokenizer.json).",
                       "Save the tokenizer with the model (tokenizer.save_pretrained) and export again.") from None
    except (OSError, ValueError) as exc:
        raise BadModel(f"{path} cannot be read as JSON: {exc}") from None


def pre_tokenizer_name(pre: dict | None) -> str | None:
    """llama.cpp's name for this tokenizer.json pre-tokenizer, or None when llama.cpp has no matching one."""
    if not pre:
        return None
    if pre.get("type") == "ByteLevel":
        return GPT2_PRE if pre.get("use_regex", True) and not pre.get("add_prefix_space", False) else None
    if pre.get("type") != "Sequence":
        return None
    steps = pre.get("pretokenizers", [])
    splits = [s for s in steps if s.get("type") == "Split"]
    byte_level = [s for s in steps if s.get("type") == "ByteLevel"]
    if len(splits) != 1 or len(byte_level) != 1 or byte_level[0].get("use_regex", True):
        return None
    return KNOWN_SPLITS.get(splits[0].get("pattern", {}).get("Regex"))


def _token_list(tokenizer: dict, vocab_size: int, path: Path) -> tuple[list[str], list[int]]:
    vocab: dict[str, int] = dict(tokenizer["model"].get("vocab", {}))
    added = {t["id"]: t for t in tokenizer.get("added_tokens", [])}
    by_id = {i: text for text, i in vocab.items()} | {i: t["content"] for i, t in added.items()}
    if by_id and max(by_id) >= vocab_size:
        raise BadModel(f"{path} has a token with id {max(by_id)}, but config.json says vocab_size {vocab_size}; "
                       "the embedding has no row for it.")
    tokens, types = [], []
    for i in range(vocab_size):
        if i not in by_id:
            # Rows the embedding has beyond the tokenizer (padding for speed) still need a name in GGUF.
            tokens.append(f"[PAD{i}]")
            types.append(TOKEN_UNUSED)
        elif i in added:
            tokens.append(by_id[i])
            looks_special = by_id[i].startswith("<|") and by_id[i].endswith("|>")
            types.append(TOKEN_CONTROL if added[i].get("special") or looks_special else TOKEN_USER_DEFINED)
        else:
            tokens.append(by_id[i])
            types.append(TOKEN_NORMAL)
    return tokens, types


def _adds_special(model_dir: Path) -> tuple[bool, bool]:
    """Whether the HF tokenizer puts BOS before / EOS after plain text; llama.cpp must do the same."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(str(model_dir / "tokenizer.json"))
    plain = tok.encode("a b", add_special_tokens=False).ids
    full = tok.encode("a b", add_special_tokens=True).ids
    return len(full) > len(plain) and full[:1] != plain[:1], len(full) > len(plain) and full[-1:] != plain[-1:]


def end_of_turn_id(model_dir: Path, eos_id: int | None) -> int | None:
    """The special token that the chat template puts after an assistant reply, when it is not the EOS token.

    llama.cpp stops generating at it (tokenizer.ggml.eot_token_id), as transformers stops at EOS.
    """
    from transformers import AutoTokenizer

    marker = "Zq7marker"
    try:
        tokenizer = AutoTokenizer.from_pretrained(model_dir)
        if not tokenizer.chat_template:
            return None
        text = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"},
                                              {"role": "assistant", "content": marker}], tokenize=False)
    except Exception:  # a template that rejects this short conversation says nothing about its end of turn
        return None
    tail = text[text.rfind(marker) + len(marker):].lstrip()
    for content, token_id in sorted(tokenizer.get_added_vocab().items(), key=lambda kv: -len(kv[0])):
        if tail.startswith(content):
            return None if token_id == eos_id else token_id
    return None


def add_vocab(writer, model_dir: Path, config: dict) -> dict:
    """Write the tokenizer keys; returns what the export report needs (chat template present, stop ids)."""
    import gguf

    path = model_dir / "tokenizer.json"
    tokenizer = _read_json(path)
    model_type = tokenizer.get("model", {}).get("type")
    pre = pre_tokenizer_name(tokenizer.get("pre_tokenizer"))
    if model_type != "BPE" or pre is None or tokenizer["model"].get("byte_fallback"):
        raise BadModel(f"{path}: this tokenizer ({model_type}, pre-tokenizer "
                       f"{(tokenizer.get('pre_tokenizer') or {}).get('type')}) cannot be written to GGUF here; "
                       f"supported: {'; '.join(SUPPORTED_TOKENIZERS)}.",
                       "Use llama.cpp's convert_hf_to_gguf.py on the merged model folder for other tokenizers.")
    vocab_size = int(config["vocab_size"])
    tokens, types = _token_list(tokenizer, vocab_size, path)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre)
    writer.add_token_list(tokens)
    writer.add_token_types(types)

    special = gguf.SpecialVocab(model_dir, load_merges=True, n_vocab=vocab_size)
    add_bos, add_eos = _adds_special(model_dir)
    special.add_special_token["bos"] = add_bos
    special.add_special_token["eos"] = add_eos
    special.add_to_gguf(writer, quiet=True)

    eos_id = special.special_token_ids.get("eos")
    eot_id = end_of_turn_id(model_dir, eos_id)
    if eot_id is not None:
        writer.add_eot_token_id(eot_id)
    stop_ids = [i for i in (eos_id, eot_id) if i is not None]
    generation = model_dir / "generation_config.json"
    if generation.is_file():
        extra = _read_json(generation).get("eos_token_id")
        stop_ids += [i for i in (extra if isinstance(extra, list) else [extra]) if isinstance(i, int)]
    return {"chat_template": bool(special.chat_template), "eos_token_ids": sorted(set(stop_ids)),
            "add_bos": add_bos}
