"""The model a pre-training run trains: a new tokenizer and model built from the config, or an existing model
(and its tokenizer) to continue, optionally with LoRA adapters that are merged into the saved model."""

from __future__ import annotations

from dataclasses import dataclass

from studio.engine.data.corpus import Corpus
from studio.engine.errors import BadConfig, BadModel
from studio.engine.models import (DeviceChoice, check_model_safety, load_causal_lm, load_tokenizer, read_model_config,
                                  resolve_model_path)
from studio.engine.presets import resolve_arch
from studio.engine.pretrain_config import PretrainConfig
from studio.engine.scratch import build_model, llama_config, train_bpe_tokenizer

ENCODER_TYPES = ("bert", "roberta", "distilbert", "modernbert", "electra", "xlm-roberta", "deberta", "deberta-v2")


@dataclass
class StartingModel:
    tokenizer: object
    model: object
    source: str  # "new <architecture>" or the folder continued from
    arch: object = None  # the resolved architecture of a new model (None when continuing)


def new_tokenizer(cfg: PretrainConfig, corpus: Corpus):
    return train_bpe_tokenizer(corpus.documents, cfg.vocab_size, with_mask=cfg.objective == "mlm",
                               model_max_length=cfg.block_size)


def new_model_config(cfg: PretrainConfig, tokenizer):
    arch = resolve_arch(cfg.architecture, cfg.hidden_size, cfg.num_layers, cfg.num_heads, cfg.intermediate_size)
    if arch.hidden % arch.heads:
        raise BadConfig(f"Field 'num_heads' ({arch.heads}) must divide the hidden size ({arch.hidden}).",
                        field="num_heads")
    if arch.family == "llama":
        config = llama_config(len(tokenizer), hidden=arch.hidden, layers=arch.layers, heads=arch.heads,
                              kv_heads=arch.kv_heads, intermediate=arch.intermediate, context=cfg.block_size,
                              tokenizer=tokenizer)
    else:
        from transformers import BertConfig

        config = BertConfig(vocab_size=len(tokenizer), hidden_size=arch.hidden, num_hidden_layers=arch.layers,
                            num_attention_heads=arch.heads, intermediate_size=arch.intermediate,
                            max_position_embeddings=cfg.block_size, pad_token_id=tokenizer.pad_token_id,
                            tie_word_embeddings=True)
    return config, arch


def load_continued(cfg: PretrainConfig, choice: DeviceChoice):
    path = resolve_model_path(cfg.model, cfg.allow_download)
    check_model_safety(path, cfg.trust_remote_code, cfg.allow_pickle)
    model_type = read_model_config(path).get("model_type", "")
    is_encoder = model_type in ENCODER_TYPES
    if cfg.objective == "mlm" and not is_encoder:
        raise BadConfig(f"Field 'objective' is mlm but {path} is a {model_type or 'unknown'} model, a decoder; "
                        f"continue it with objective clm.", field="objective")
    if cfg.objective == "clm" and is_encoder:
        raise BadConfig(f"Field 'objective' is clm but {path} is a {model_type} encoder; continue it with "
                        f"objective mlm.", field="objective")
    tokenizer = load_tokenizer(path, cfg.trust_remote_code)
    if cfg.objective == "clm":
        return path, tokenizer, load_causal_lm(path, choice, trust_remote_code=cfg.trust_remote_code,
                                               allow_pickle=cfg.allow_pickle)
    if tokenizer.mask_token_id is None:
        raise BadModel(f"The tokenizer in {path} has no mask token, so it cannot do masked LM.", field="model")
    from transformers import AutoModelForMaskedLM

    try:
        model = AutoModelForMaskedLM.from_pretrained(path, dtype=choice.torch_dtype,
                                                     trust_remote_code=cfg.trust_remote_code,
                                                     use_safetensors=None if cfg.allow_pickle else True)
    except Exception as exc:  # noqa: BLE001 - reported to the user with the folder
        raise BadModel(f"Could not load {path} as a masked language model: {str(exc).splitlines()[0]}",
                       field="model") from None
    if choice.device != "cpu":
        model.to(choice.device)
    return path, tokenizer, model


def starting_model(cfg: PretrainConfig, corpus: Corpus, choice: DeviceChoice, progress) -> StartingModel:
    """A new tokenizer and model (mode scratch) or the model to continue; `progress(phase, **fields)` reports."""
    if cfg.mode == "scratch":
        progress("training the tokenizer", fraction=0.0, documents=len(corpus.documents))
        tokenizer = new_tokenizer(cfg, corpus)
        progress("building the model", fraction=None)
        model_config, arch = new_model_config(cfg, tokenizer)
        model = build_model(model_config, seed=cfg.seed)
        if choice.device != "cpu":
            model.to(choice.device)
        start = StartingModel(tokenizer, model, f"new {cfg.architecture}", arch)
    else:
        progress("loading the model", fraction=0.0)
        path, tokenizer, model = load_continued(cfg, choice)
        limit = getattr(model.config, "max_position_embeddings", None)
        if limit and cfg.block_size > limit:
            raise BadConfig(f"Field 'block_size' has the value {cfg.block_size}; the model in {path} handles at "
                            f"most {limit} positions.", field="block_size")
        start = StartingModel(tokenizer, model, str(path))
    if cfg.objective == "clm":
        start.model.config.use_cache = False  # training needs no cache; generation asks for one explicitly
    return start


def apply_lora(model, cfg: PretrainConfig):
    from peft import LoraConfig, get_peft_model

    targets = cfg.target_modules.strip()
    targets = targets if targets == "all-linear" else [t.strip() for t in targets.split(",") if t.strip()]
    lora = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, lora_dropout=cfg.lora_dropout, target_modules=targets,
                      task_type="CAUSAL_LM" if cfg.objective == "clm" else None)
    try:
        return get_peft_model(model, lora)
    except ValueError as exc:
        raise BadConfig(f"Field 'target_modules' ({cfg.target_modules!r}) does not fit this model: {exc}",
                        field="target_modules") from None
