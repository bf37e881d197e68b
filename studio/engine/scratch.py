"""Building models from nothing: a byte-level BPE tokenizer trained on text, and small architectures.

Used by pre-training from scratch, by the starter model's build, and by the tests (which need
real models without any download).
"""

from __future__ import annotations

from typing import Iterable

EOS = "<|endoftext|>"
PAD = "<|pad|>"
MASK = "<|mask|>"
MIN_VOCAB, MAX_VOCAB = 300, 262_144


def train_bpe_tokenizer(texts: Iterable[str], vocab_size: int = 8000, *, with_mask: bool = False,
                        model_max_length: int = 2048):
    """A byte-level BPE tokenizer (exact round trip for any text) as a transformers fast tokenizer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    from studio.engine.errors import BadConfig

    if not MIN_VOCAB <= vocab_size <= MAX_VOCAB:
        raise BadConfig(f"Field 'vocab_size' has the value {vocab_size}; expected a value from {MIN_VOCAB} to "
                        f"{MAX_VOCAB} (byte-level BPE needs 256 byte tokens plus merges).", field="vocab_size")
    specials = [EOS, PAD] + ([MASK] if with_mask else [])
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=specials, show_progress=False,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tok.train_from_iterator(texts, trainer=trainer)
    extra = {"mask_token": MASK} if with_mask else {}
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token=EOS, bos_token=EOS, pad_token=PAD,
                                   unk_token=None, model_max_length=model_max_length, **extra)


def llama_config(vocab_size: int, hidden: int = 64, layers: int = 2, heads: int = 4, kv_heads: int | None = None,
                 intermediate: int | None = None, context: int = 512, tokenizer=None):
    from transformers import LlamaConfig

    ids = {}
    if tokenizer is not None:
        ids = dict(bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                   pad_token_id=tokenizer.pad_token_id)
    return LlamaConfig(vocab_size=vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                       num_attention_heads=heads, num_key_value_heads=kv_heads or heads,
                       intermediate_size=intermediate or 4 * hidden, max_position_embeddings=context,
                       tie_word_embeddings=True, **ids)


def build_model(config, seed: int = 0):
    """A freshly initialised model for `config` (causal LM, or masked LM for encoder configs)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForMaskedLM

    torch.manual_seed(seed)
    if getattr(config, "model_type", "") in ("bert", "roberta", "distilbert", "modernbert"):
        return AutoModelForMaskedLM.from_config(config)
    return AutoModelForCausalLM.from_config(config)


def count_parameters(model) -> int:
    return sum(p.numel() for p in model.parameters())


def save_new_causal_lm(folder, texts: Iterable[str], *, vocab_size: int = 512, hidden: int = 64, layers: int = 2,
                       heads: int = 4, context: int = 512, seed: int = 0, chat_template: str | None = None):
    """Train a tokenizer on `texts`, build a fresh Llama-style decoder and save both to `folder`."""
    from pathlib import Path

    texts = list(texts)
    tokenizer = train_bpe_tokenizer(texts, vocab_size, model_max_length=context)
    if chat_template:
        tokenizer.chat_template = chat_template
    config = llama_config(len(tokenizer), hidden=hidden, layers=layers, heads=heads, context=context,
                          tokenizer=tokenizer)
    model = build_model(config, seed=seed)
    Path(folder).mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return Path(folder)
