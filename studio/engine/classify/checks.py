"""The pre-flight check of a classification run: the model (a head can be put on it), the labelled data (columns,
labels, problem kind, validation labels the training file lacks), the lengths in tokens, resume, schedule and disk,
all before any worker starts. Reads files and the tokenizer only, never a torch model."""

from __future__ import annotations

import threading
from collections import OrderedDict
from pathlib import Path

from studio.engine.errors import StudioError

# A label this many times rarer than the commonest one is worth a warning (class weights help).
IMBALANCE_WARNING = 10.0
# Rows tokenized to count truncated texts: enough to be sure, few enough to be instant.
TOKENIZE_SAMPLE = 2000
KEEP = 4
_lock = threading.Lock()
_read: OrderedDict = OrderedDict()


def cached_run_data(cfg):
    """read_run_data, kept for the last few (files, settings): the live check runs on every edit of the form."""
    from studio.engine.classify.data import read_run_data
    from studio.engine.preflight_cache import file_identity

    key = tuple(file_identity(Path(p)) if str(p).strip() else "" for p in (cfg.dataset, cfg.validation_file)) + (
        cfg.text_column, cfg.text_pair_column, cfg.label_column, cfg.problem, cfg.label_separator,
        cfg.validation_fraction, cfg.seed)
    with _lock:
        if key in _read:
            _read.move_to_end(key)
            return _read[key]
    value = read_run_data(cfg)
    with _lock:
        _read[key] = value
        while len(_read) > KEEP:
            _read.popitem(last=False)
    return value


def classification_problem(config: dict, *, trusted_code: bool = False) -> str | None:
    """Why this transformers cannot put a sequence-classification head on a model of this config.json, or None."""
    from transformers import __version__
    from transformers.models.auto.modeling_auto import MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES as known

    if trusted_code and config.get("auto_map"):
        return None
    model_type = config.get("model_type")
    if not model_type:
        return "config.json has no 'model_type', so the architecture is unknown."
    if model_type in known:
        return None
    examples = ", ".join(t for t in ("bert", "roberta", "deberta-v2", "modernbert", "llama", "qwen2", "mistral")
                         if t in known)
    return (f"the architecture '{model_type}' has no sequence-classification head in transformers {__version__} "
            f"(it knows {len(known)} such architectures, e.g. {examples}).")


def _check_model(cfg, report):
    """The tokenizer, or None when the model cannot be used (each problem becomes a finding)."""
    from studio.engine.classify.model import load_classifier_tokenizer
    from studio.engine.data.analysis import context_problem, model_context_length
    from studio.engine.preflight import model_folder_and_config
    from studio.engine.preflight_cache import cached_tokenizer

    found = model_folder_and_config(cfg, report)
    if found is None:
        return None
    path, config = found
    problem = classification_problem(config, trusted_code=cfg.trust_remote_code)
    if problem:
        report.add("error", "model", f"{path}: {problem}", "Choose another model (an encoder such as BERT, or a "
                   "decoder such as Llama or Qwen), or update transformers.", field="model", kind="bad_model")
        return None
    try:
        tokenizer = cached_tokenizer(path, cfg.trust_remote_code)
    except StudioError:
        try:  # a slow tokenizer is fine for classification (chat fine-tuning needs a fast one)
            tokenizer = load_classifier_tokenizer(path, cfg.trust_remote_code)
        except StudioError as err:
            report.error("model", err)
            return None
    problem = context_problem(int(cfg.max_length), model_context_length(path))
    if problem:
        report.add("error", "context", problem, "A longer sequence than the model was built for gives it positions "
                   "it never learned.", field="max_length")
    return tokenizer


def _describe(full, train, val) -> str:
    labels = ", ".join(f"{name} {count}" for name, count in
                       sorted(full.counts.items(), key=lambda kv: -kv[1])[:8])
    more = f", … ({len(full.counts)} labels)" if len(full.counts) > 8 else ""
    what = {"single_label": "one label per text", "multi_label": "several labels per text",
            "regression": "a number per text"}[full.problem]
    pair = f" + {full.pair_column!r}" if full.pair_column else ""
    split = f"{len(train.texts)} training, {len(val.texts)} validation rows" if val else \
        f"{len(train.texts)} training rows, no validation"
    return (f"{full.path.name}: {len(full.texts)} rows, {what} (text {full.text_column!r}{pair}, label "
            f"{full.label_column!r}){': ' + labels + more if labels else ''}; {split}.")


def _check_lengths(cfg, full, tokenizer, report) -> None:
    texts = full.texts[:TOKENIZE_SAMPLE]
    pairs = full.pairs[:TOKENIZE_SAMPLE] if full.pairs is not None else None
    lengths = [len(ids) for ids in tokenizer(texts, pairs)["input_ids"]]
    truncated = sum(n > cfg.max_length for n in lengths)
    ordered = sorted(lengths)
    sampled = "" if len(texts) == len(full.texts) else f" (the first {len(texts)} rows)"
    report.add("note", "data", f"Tokens per text: median {ordered[len(ordered) // 2]}, max {ordered[-1]}; "
               f"{truncated} truncated at {cfg.max_length}{sampled}.")
    if truncated > len(lengths) / 10:
        report.add("warning", "data", f"{truncated} of {len(lengths)} texts are longer than max length "
                   f"{cfg.max_length} tokens and lose their end.", "Raise 'max length' if the end of a text can "
                   "decide its label.", field="max_length")


def _check_data(cfg, tokenizer, report) -> None:
    from studio.engine.classify.data import imbalance

    if not str(cfg.dataset).strip():
        report.add("error", "data", "Field 'dataset' is empty: no training file was chosen.",
                   "Choose a CSV, TSV, JSON, JSONL or Parquet file with a text and a label column.",
                   field="dataset", kind="bad_dataset")
        return
    try:
        full, train, val = cached_run_data(cfg)
    except StudioError as err:
        report.error("data", err)
        return
    report.add("note", "data", _describe(full, train, val))
    for source in (full, val) if val is not None and val is not full else (full,):
        for warning in source.warnings:
            report.add("warning", "data", warning, "Fix those rows, or check the text and label columns.",
                       field="dataset" if source is full else "validation_file", kind="bad_dataset")
    ratio = imbalance(full.counts)
    if full.problem != "regression" and ratio and ratio >= IMBALANCE_WARNING:
        rare = min(full.counts, key=full.counts.get)
        report.add("warning", "data", f"The labels are imbalanced: {rare!r} has {full.counts[rare]} rows, the "
                   f"commonest {max(full.counts.values())}.", "Turn on 'class weights' so rare labels count as much, "
                   "and judge the run by macro-F1 rather than accuracy.", field="class_weights")
    if cfg.class_weights and full.problem == "regression":
        report.add("warning", "config", "Class weights do nothing for a regression (there are no classes).",
                   field="class_weights")
    if val is not None and full.problem != "regression":
        missing = [n for n in full.label_names if not val.counts.get(n)]
        if missing:
            report.add("warning", "data", f"The validation rows have no example of {', '.join(map(repr, missing[:8]))}"
                       f"{' …' if len(missing) > 8 else ''}: the scores say nothing about those labels.",
                       "Use a larger validation fraction or a validation file with every label.",
                       field="validation_fraction")
    if tokenizer is not None:
        _check_lengths(cfg, full, tokenizer, report)


def check_classify(cfg, report, workspace: Path | None = None) -> None:
    from studio.engine.preflight import _check_disk, _check_resume, _check_schedule

    tokenizer = _check_model(cfg, report)
    _check_data(cfg, tokenizer, report)
    _check_resume(cfg, report)
    _check_schedule(cfg, "classify", report)
    if workspace is not None:
        # Sized like pre-training's: a LoRA run also writes the merged model, not only the adapter.
        _check_disk(cfg, "pretrain", Path(workspace), report)
