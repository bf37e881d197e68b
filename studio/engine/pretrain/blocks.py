"""Training and held-out datasets of packed blocks."""

from __future__ import annotations

from studio.engine.data.corpus import Packed, split
from studio.engine.pretrain.masking import BlockCollator
from studio.engine.pretrain_config import PretrainConfig


def make_datasets(cfg: PretrainConfig, packed: Packed, collator: BlockCollator):
    """Training and held-out datasets (None when nothing is held out). Held-out masked-LM blocks are masked
    once, with a fixed seed, so every evaluation scores the same positions."""
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
    words = [packed.word_ids[i] for i in val_idx] if packed.word_ids is not None else None
    return train, Dataset.from_dict(collator.masked_once(val_ids, words, seed=cfg.seed + 1))
