"""Batches of packed blocks for the Trainer, masked for masked-LM by transformers' DataCollatorForLanguageModeling,
and masked-token accuracy for evaluations.

Blocks are all block_size long (studio.engine.data.corpus.pack): no padding and no attention mask. For causal
LM the labels are the inputs (the model shifts them). For masked LM `mlm_probability` of the tokens (or of the
words) is chosen; of those 80% become the mask token, 10% a random token and 10% stay, and only they carry
labels. With whole-word masking every piece of a chosen word becomes the mask token (the library replaces no
piece of a word by a random token).

Why a thin wrapper instead of the library's collator as it is:
- its `__call__` pads through `tokenizer.pad`, which adds an all-ones attention mask the blocks do not need,
  and with mlm=False it drops the labels at the pad token, which for tokenizers whose pad token is the
  end-of-text token (the separator between documents in a block) would stop the model learning where texts end;
  so causal LM stacks the blocks itself and masked LM calls the library's `torch_mask_tokens`;
- held-out rows are masked once (`masked_once`) and pass through unchanged, so every evaluation scores the same
  positions and eval losses compare across evaluations;
- the library finds whole words from `offset_mapping`; packed blocks carry word numbers instead, which
  `_word_offsets` turns into offsets with the same word boundaries;
- exact resume: each training batch is masked by a generator seeded with (seed, the batch's number), and the
  recipe sets the number on resume (`batches`), so a resumed run masks every batch as the uninterrupted run
  did. Neither the global RNG nor one long-lived generator (the library's `seed`) would: accelerate's data
  loader collates one batch ahead, so the RNG state a checkpoint saves is already past the next batch's masks.
"""

from __future__ import annotations

IGNORE_INDEX = -100
MASK_ROWS_AT_ONCE = 64  # whole-word masking compares every pair of positions in a row: rows x length² booleans


def _word_offsets(words):
    """Character offsets that put token k of word w at (k + w, k + w + 1): the pieces of one word touch, and a
    new word starts one past the previous token's end, which is how the library tells words apart."""
    import torch

    start = torch.arange(words.shape[1]).expand_as(words) + words
    return torch.stack([start, start + 1], dim=-1)


class BlockCollator:
    """Stacks packed blocks; masks masked-LM blocks (see the module notes). Rows with labels pass through."""

    def __init__(self, objective: str, tokenizer=None, *, probability: float = 0.15, whole_words: bool = False,
                 seed: int = 0):
        self.objective = objective
        self.seed = seed
        self.batches = 0  # training batches masked so far (set on resume to the batches the checkpoint consumed)
        self.masker = None
        self.special_ids: list[int] = []
        if objective == "mlm":
            from transformers import DataCollatorForLanguageModeling

            self.masker = DataCollatorForLanguageModeling(
                tokenizer, mlm_probability=probability, whole_word_mask=whole_words,
                mask_replace_prob=1.0 if whole_words else 0.8, random_replace_prob=0.0 if whole_words else 0.1)
            self.special_ids = sorted(set(tokenizer.all_special_ids))

    def __call__(self, features: list[dict]) -> dict:
        import torch

        ids = torch.tensor([f["input_ids"] for f in features], dtype=torch.long)
        if "labels" in features[0]:
            return {"input_ids": ids, "labels": torch.tensor([f["labels"] for f in features], dtype=torch.long)}
        if self.objective == "clm":
            return {"input_ids": ids, "labels": ids.clone()}
        words = torch.tensor([f["word_ids"] for f in features], dtype=torch.long) if "word_ids" in features[0] \
            else None
        generator = torch.Generator().manual_seed(self.seed * 2**32 + self.batches)
        self.batches += 1
        return self.mask(ids, words, generator)

    def mask(self, ids, words=None, generator=None) -> dict:
        """Masked inputs and labels for blocks `ids` (rows x length), drawn from `generator`; `words` numbers each
        token's word (-1 for special tokens) for whole-word masking."""
        import torch

        self.masker.generator = generator  # the library's own slot for it (its `seed` option fills it)
        special = torch.isin(ids, torch.tensor(self.special_ids, dtype=torch.long))
        offsets = _word_offsets(words) if words is not None else None
        inputs, labels = self.masker.torch_mask_tokens(ids.clone(), special_tokens_mask=special,
                                                       offset_mapping=offsets)
        return {"input_ids": inputs, "labels": labels}

    def masked_once(self, blocks: list[list[int]], words: list[list[int]] | None, seed: int) -> dict:
        """`blocks` masked with a generator seeded by `seed`: the same positions every time (held-out data)."""
        import torch

        generator = torch.Generator().manual_seed(seed)
        out = {"input_ids": [], "labels": []}
        for at in range(0, len(blocks), MASK_ROWS_AT_ONCE):
            rows = torch.tensor(blocks[at:at + MASK_ROWS_AT_ONCE], dtype=torch.long)
            row_words = torch.tensor(words[at:at + MASK_ROWS_AT_ONCE], dtype=torch.long) if words is not None \
                else None
            masked = self.mask(rows, row_words, generator)
            out["input_ids"] += masked["input_ids"].tolist()
            out["labels"] += masked["labels"].tolist()
        return out


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
