"""Pre-training: from scratch (a new tokenizer and model) or continued (an existing model), with causal
(decoders) or masked (encoders) language modelling, on packed blocks of raw text.

Held-out loss and perplexity come with every evaluation; masked LM adds masked-token accuracy on a
fixed masking of the held-out blocks, and decoders complete a few fixed probe prompts greedily at each
evaluation (a `sample` event) so a person sees the model learn.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

from studio.engine.callbacks import EventCallback
from studio.engine.data.corpus import Corpus, Packed, load_corpus, pack, split
from studio.engine.errors import BadConfig, BadModel
from studio.engine.events import EventWriter
from studio.engine.models import (check_model_safety, choose_device, load_causal_lm, load_tokenizer,
                                  read_model_config, resolve_model_path)
from studio.engine.presets import parameter_count, resolve_arch
from studio.engine.pretrain_config import PretrainConfig
from studio.engine.scratch import build_model, llama_config, train_bpe_tokenizer
from studio.engine.training import train_and_save, training_arguments

IGNORE_INDEX = -100
ENCODER_TYPES = ("bert", "roberta", "distilbert", "modernbert", "electra", "xlm-roberta", "deberta", "deberta-v2")


# ---------------------------------------------------------------------------------------------- models
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


def load_continued(cfg: PretrainConfig, choice):
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


# ---------------------------------------------------------------------------------------------- data
class BlockCollator:
    """Stacks packed blocks (all the same length: no padding). For causal LM the labels are the inputs
    (the model shifts them). For masked LM, a fraction of the tokens (or whole words) is chosen; of those
    80% become the mask token, 10% a random token and 10% stay; only they carry labels. Rows that already
    carry labels (the fixed held-out masking) pass through unchanged."""

    def __init__(self, objective: str, *, mask_id: int | None = None, vocab_size: int = 0,
                 probability: float = 0.15, special_ids=(), generator=None):
        self.objective = objective
        self.mask_id = mask_id
        self.vocab_size = vocab_size
        self.probability = probability
        self.special_ids = sorted(set(special_ids))
        self.generator = generator

    def __call__(self, features: list[dict]) -> dict:
        import torch

        ids = torch.tensor([f["input_ids"] for f in features], dtype=torch.long)
        if "labels" in features[0]:
            return {"input_ids": ids, "labels": torch.tensor([f["labels"] for f in features], dtype=torch.long)}
        if self.objective == "clm":
            return {"input_ids": ids, "labels": ids.clone()}
        words = torch.tensor([f["word_ids"] for f in features], dtype=torch.long) if "word_ids" in features[0] \
            else None
        return self.mask(ids, words)

    def mask(self, ids, words=None) -> dict:
        import torch

        g = self.generator
        special = torch.isin(ids, torch.tensor(self.special_ids, dtype=torch.long)) if self.special_ids else \
            torch.zeros_like(ids, dtype=torch.bool)
        if words is None:
            chosen = torch.rand(ids.shape, generator=g) < self.probability
        else:  # one draw per word, shared by its pieces
            per_word = torch.rand(ids.shape, generator=g) < self.probability
            chosen = per_word.gather(1, words.clamp(min=0)) & (words >= 0)
        chosen &= ~special
        labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE_INDEX))
        action = torch.rand(ids.shape, generator=g)
        inputs = ids.clone()
        inputs[chosen & (action < 0.8)] = self.mask_id
        randomize = chosen & (action >= 0.8) & (action < 0.9)
        inputs[randomize] = torch.randint(self.vocab_size, ids.shape, generator=g, dtype=torch.long)[randomize]
        return {"input_ids": inputs, "labels": labels}


def make_datasets(cfg: PretrainConfig, packed: Packed, collator: BlockCollator):
    """Training and held-out datasets. Held-out masked-LM blocks are masked once, with a fixed seed, so
    every evaluation scores the same positions."""
    import torch
    from datasets import Dataset

    train_idx, val_idx = split(packed, cfg.validation_fraction, cfg.seed)
    cols = {"input_ids": [packed.input_ids[i] for i in train_idx]}
    if packed.word_ids is not None:
        cols["word_ids"] = [packed.word_ids[i] for i in train_idx]
    train = Dataset.from_dict(cols)
    if not val_idx:
        return train, None
    val_ids = [packed.input_ids[i] for i in val_idx]
    if cfg.objective == "clm":
        return train, Dataset.from_dict({"input_ids": val_ids, "labels": val_ids})
    fixed = BlockCollator("mlm", mask_id=collator.mask_id, vocab_size=collator.vocab_size,
                          probability=collator.probability, special_ids=collator.special_ids,
                          generator=torch.Generator().manual_seed(cfg.seed + 1))
    words = torch.tensor([packed.word_ids[i] for i in val_idx]) if packed.word_ids is not None else None
    masked = fixed.mask(torch.tensor(val_ids, dtype=torch.long), words)
    return train, Dataset.from_dict({"input_ids": masked["input_ids"].tolist(), "labels": masked["labels"].tolist()})


def masked_accuracy_metrics():
    """compute_metrics and preprocess_logits_for_metrics for masked-token accuracy (argmax kept, not logits)."""

    def preprocess(logits, labels):
        if isinstance(logits, tuple):
            logits = logits[0]
        return logits.argmax(dim=-1)

    def compute(eval_pred):
        import numpy as np

        preds, labels = eval_pred.predictions, eval_pred.label_ids
        preds = preds[0] if isinstance(preds, tuple) else preds
        scored = labels != IGNORE_INDEX
        total = int(scored.sum())
        correct = int(np.sum(preds[scored] == labels[scored]))
        return {"masked_accuracy": correct / total if total else 0.0, "masked_tokens": total}

    return compute, preprocess


def default_probes(corpus: Corpus, n: int = 3, words: int = 4) -> list[str]:
    probes = []
    step = max(1, len(corpus.documents) // n)
    for doc in corpus.documents[::step]:
        start = " ".join(doc.split()[:words])
        if start and start not in probes:
            probes.append(start)
        if len(probes) == n:
            break
    return probes


def complete_probes(model, tokenizer, prompts: list[str], max_new_tokens: int) -> list[dict]:
    """Greedy completions of each prompt (the model's mode is restored afterwards)."""
    import torch

    was_training = model.training
    model.eval()
    device = next(model.parameters()).device
    out = []
    try:
        with torch.no_grad():
            for prompt in prompts:
                ids = tokenizer(prompt, add_special_tokens=False, return_tensors="pt")["input_ids"].to(device)
                if ids.shape[1] == 0:
                    ids = torch.tensor([[tokenizer.eos_token_id]], device=device)
                gen = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), max_new_tokens=max_new_tokens,
                                     do_sample=False, use_cache=True, pad_token_id=tokenizer.pad_token_id,
                                     eos_token_id=tokenizer.eos_token_id)
                text = tokenizer.decode(gen[0, ids.shape[1]:], skip_special_tokens=True)
                out.append({"prompt": prompt, "completion": text})
    finally:
        model.train(was_training)
    return out


# ---------------------------------------------------------------------------------------------- recipe
def run_pretrain(cfg: PretrainConfig, run_dir: Path, events: EventWriter, stop_requested: threading.Event) -> dict:
    from transformers import EarlyStoppingCallback, Trainer

    run_dir = Path(run_dir)
    events.emit("progress", phase="reading the corpus", fraction=0.0)
    corpus = load_corpus(cfg.corpus_paths(), cfg.text_column, cfg.dedupe, cfg.document_split)
    choice = choose_device(cfg.device, cfg.precision)

    if cfg.mode == "scratch":
        events.emit("progress", phase="training the tokenizer", fraction=0.0, documents=len(corpus.documents))
        tokenizer = new_tokenizer(cfg, corpus)
        events.emit("progress", phase="building the model", fraction=None)
        model_config, arch = new_model_config(cfg, tokenizer)
        model = build_model(model_config, seed=cfg.seed)
        model_source = f"new {cfg.architecture}"
        if choice.device != "cpu":
            model.to(choice.device)
    else:
        events.emit("progress", phase="loading the model", fraction=0.0)
        path, tokenizer, model = load_continued(cfg, choice)
        model_source = str(path)
        limit = getattr(model.config, "max_position_embeddings", None)
        if limit and cfg.block_size > limit:
            raise BadConfig(f"Field 'block_size' has the value {cfg.block_size}; the model in {path} handles at "
                            f"most {limit} positions.", field="block_size")
    if cfg.objective == "clm":
        model.config.use_cache = False  # training needs no cache; generation asks for one explicitly

    events.emit("progress", phase="tokenizing", fraction=0.0)
    packed = pack(corpus, tokenizer, cfg.block_size, whole_words=cfg.objective == "mlm" and cfg.whole_word_masking,
                  wrap_specials=cfg.objective == "mlm",
                  progress=lambda f: events.emit("progress", phase="tokenizing", fraction=round(f, 3)))
    collator = BlockCollator(cfg.objective, mask_id=tokenizer.mask_token_id, vocab_size=len(tokenizer),
                             probability=cfg.mlm_probability, special_ids=tokenizer.all_special_ids)
    train_ds, val_ds = make_datasets(cfg, packed, collator)
    summary = packed.summary.as_dict()
    (run_dir / "corpus_summary.json").write_text(json.dumps(summary, indent=1))
    events.emit("progress", phase="tokenizing", fraction=1.0, corpus=summary)

    if cfg.method == "lora":
        model = apply_lora(model, cfg)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())

    has_eval = val_ds is not None
    args = training_arguments(cfg, run_dir, choice, has_eval=has_eval, tokens_counting="all")
    probes = (cfg.probes() or default_probes(corpus)) if cfg.objective == "clm" else []
    holder: dict = {}

    def extra_eval(step: int) -> dict:
        if probes and "trainer" in holder:
            samples = complete_probes(holder["trainer"].model, tokenizer, probes, cfg.probe_tokens)
            events.emit("sample", step=step, samples=samples)
        return {}

    started = dict(task="pretrain", mode=cfg.mode, objective=cfg.objective, method=cfg.method,
                   architecture=cfg.architecture if cfg.mode == "scratch" else model.config.model_type,
                   device=choice.device, device_name=choice.name, precision=choice.precision, model=model_source,
                   trainable_parameters=trainable, parameters=total, vocab_size=len(tokenizer),
                   block_size=cfg.block_size, corpus=summary, probe_prompts=probes)
    if cfg.mode == "scratch":
        started["estimated_parameters"] = parameter_count(arch, len(tokenizer), cfg.block_size)
    callback = EventCallback(events, stop_requested, started_fields=started, extra_eval=extra_eval)
    callbacks = [callback]
    if has_eval and cfg.early_stopping_patience and args.load_best_model_at_end:
        callbacks.append(EarlyStoppingCallback(early_stopping_patience=cfg.early_stopping_patience))
    compute, preprocess = masked_accuracy_metrics() if cfg.objective == "mlm" and has_eval else (None, None)
    trainer = Trainer(model=model, args=args, train_dataset=train_ds, eval_dataset=val_ds, data_collator=collator,
                      processing_class=tokenizer, callbacks=callbacks, compute_metrics=compute,
                      preprocess_logits_for_metrics=preprocess)
    holder["trainer"] = trainer
    if has_eval and not cfg.resume_from:
        events.emit("progress", phase="evaluating", fraction=None)
        trainer.evaluate()  # the untrained (or starting) model's held-out numbers: step 0 of the curves

    def save_output(folder: Path):
        out = trainer.model
        if cfg.method == "lora":
            out = out.merge_and_unload()  # a plain model folder that transformers loads without peft
        if cfg.objective == "clm":
            out.config.use_cache = True
        out.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
        (folder / "corpus_summary.json").write_text(json.dumps(summary, indent=1))

    return train_and_save(trainer, callback, cfg, events, run_dir, output_name="model", save_output=save_output,
                          has_eval=has_eval)
