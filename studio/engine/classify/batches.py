"""Tokenized examples, batches padded to their longest text, a seeded length-grouped order, and the Trainer that
computes the (optionally class-weighted) loss of each problem kind."""

from __future__ import annotations

import random

import torch
from torch.utils.data import Dataset, Sampler
from transformers import Trainer

from studio.engine.classify.data import LabelledData

# Texts are grouped by length within windows of this many batches: similar lengths share a batch while the
# order over the whole epoch stays random.
GROUP_WINDOW = 50


class Examples(Dataset):
    """Tokenized rows as plain lists: indexing a list costs far less than an Arrow table row."""

    def __init__(self, rows: list[dict]):
        self.rows = rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, i: int) -> dict:
        return self.rows[i]

    def lengths(self) -> list[int]:
        return [len(r["input_ids"]) for r in self.rows]


def tokenize(data: LabelledData, tokenizer, max_length: int, chunk: int = 1000, progress=None) -> Examples:
    labels = data.label_ids()
    rows: list[dict] = []
    for start in range(0, len(data.texts), chunk):
        end = min(start + chunk, len(data.texts))
        enc = tokenizer(data.texts[start:end], data.pairs[start:end] if data.pairs is not None else None,
                        truncation=True, max_length=max_length)
        keys = [k for k in ("input_ids", "attention_mask", "token_type_ids") if k in enc]
        for i in range(end - start):
            row = {k: enc[k][i] for k in keys}
            row["labels"] = labels[start + i]
            rows.append(row)
        if progress:
            progress(end / len(data.texts))
    return Examples(rows)


class PadCollator:
    """Right-pads a batch to its longest row (to a multiple of `multiple` on GPUs, where aligned shapes are
    faster). A decoder's head reads the last non-pad token, so right padding suits encoders and decoders alike."""

    def __init__(self, pad_token_id: int, problem: str, multiple: int = 1):
        self.pad_token_id = pad_token_id
        self.label_dtype = torch.long if problem == "single_label" else torch.float
        self.multiple = multiple

    def __call__(self, features: list[dict]) -> dict:
        longest = max(len(f["input_ids"]) for f in features)
        longest = -(-longest // self.multiple) * self.multiple
        batch = {}
        pads = {"input_ids": self.pad_token_id, "attention_mask": 0, "token_type_ids": 0}
        for key, pad in pads.items():
            if key in features[0]:
                batch[key] = torch.tensor([f[key] + [pad] * (longest - len(f[key])) for f in features],
                                          dtype=torch.long)
        batch["labels"] = torch.tensor([f["labels"] for f in features], dtype=self.label_dtype)
        return batch


class LengthGroupedOrder(Sampler):
    """Shuffles, sorts each window of GROUP_WINDOW batches by length, cuts it into batches and shuffles those
    batches (a last, shorter batch stays last). The order depends only on the seed and the epoch (Trainer calls
    set_epoch), so a resumed run skips exactly the batches it had trained on."""

    def __init__(self, lengths: list[int], batch_size: int, seed: int):
        self.lengths = lengths
        self.batch_size = batch_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        rng = random.Random(self.seed * 1_000_003 + self.epoch)
        order = list(range(len(self.lengths)))
        rng.shuffle(order)
        window = self.batch_size * GROUP_WINDOW
        batches = []
        for start in range(0, len(order), window):
            part = sorted(order[start:start + window], key=lambda i: self.lengths[i])
            batches += [part[i:i + self.batch_size] for i in range(0, len(part), self.batch_size)]
        # The DataLoader cuts this stream into batches again: a short batch anywhere but last would shift all
        # the batches after it across length groups.
        short = [b for b in batches if len(b) < self.batch_size]
        batches = [b for b in batches if len(b) == self.batch_size]
        rng.shuffle(batches)
        return iter([i for b in batches + short for i in b])


class ClassifyTrainer(Trainer):
    """The loss is computed here for every problem kind: the models' own losses differ in how they scale with
    gradient accumulation, and class weights need it anyway. Each batch's loss is a mean, so the Trainer divides
    it by the accumulation steps (loss_is_scaled_for_ga = False)."""

    loss_is_scaled_for_ga = False

    def __init__(self, *args, problem: str, class_weights: list[float] | None = None,
                 train_lengths: list[int] | None = None, **kwargs):
        super().__init__(*args, **kwargs)
        self.problem = problem
        self.class_weights = torch.tensor(class_weights, dtype=torch.float) if class_weights else None
        self.train_lengths = train_lengths

    def _get_train_sampler(self, train_dataset=None):
        if self.train_lengths is None:
            return super()._get_train_sampler(train_dataset)
        group = self.args.train_batch_size * self.args.gradient_accumulation_steps
        return LengthGroupedOrder(self.train_lengths, group,
                                  self.args.data_seed if self.args.data_seed is not None else self.args.seed)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        import torch.nn.functional as F

        labels = inputs.pop("labels")
        outputs = model(**inputs)
        logits = outputs.logits.float()
        weight = self.class_weights.to(logits.device) if self.class_weights is not None else None
        if self.problem == "regression":
            loss = F.mse_loss(logits.view(-1), labels.view(-1).float())
        elif self.problem == "multi_label":
            loss = F.binary_cross_entropy_with_logits(logits, labels.float(), pos_weight=weight)
        else:
            loss = F.cross_entropy(logits, labels, weight=weight)
        return (loss, outputs) if return_outputs else loss


def class_weights(data: LabelledData) -> list[float] | None:
    """Single label: n / (k × count) per class, so each class weighs as much in total. Multi label: each label's
    negatives over its positives (BCE's pos_weight). None for regression."""
    if data.problem == "regression":
        return None
    counts = [max(data.counts.get(n, 0), 1) for n in data.label_names]
    if data.problem == "multi_label":
        return [max(len(data.labels) - c, 1) / c for c in counts]
    return [len(data.labels) / (len(counts) * c) for c in counts]
