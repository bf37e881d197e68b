"""Batches without wasted compute: "neat packing" of a batch's sequences into a few rows.

`PackingCollator` takes the examples of one batch (any sampler) and bins them into rows of at most
`row_factor x max_length` tokens (rows may hold more than one max-length sequence: with rows no
wider than the longest sequence, a random alpaca batch of 16 leaves about 8% padding, since every
row is padded to the widest). The plan with the least estimated cost (padding plus dense attention
over each row's width) among those padding at most 2% wins. Inside a row each sequence's `position_ids` restart at 0 and no attention mask
is passed, so transformers (5.x, `masking_utils.find_packed_sequence_indices`, per row) builds a
block-causal mask: a sequence attends only to itself, exactly as if it were alone (the model must
run without a KV cache: `use_cache=False`). Compared with

* dynamic padding (`DataCollatorForSeq2Seq`): no padding (a random batch of alpaca rows is about
  60% padding when padded to its longest row);
* one flattened row (`DataCollatorWithFlattening`): attention stays per row of at most
  `max_length` tokens instead of one (batch x length)-token row, whose dense masked attention
  grows with the square of the whole batch;

and, because the loss only reads positions that have a label, the output layer (hidden x vocab,
the largest single matrix of a small model) runs only on those positions (`logits_to_keep`, a
boolean mask, plus `shift_labels`): prompt tokens cost the body of the model but not the head.
The loss is unchanged: the same cross-entropy over the same label tokens, and the Trainer's
`num_items_in_batch` reads `shift_labels`.

Labels never cross a sequence boundary: the first label of each sequence is ignored (its token
would otherwise be "predicted" from the previous sequence's last token) and the tail padding of a
row carries no labels. The padding tail is its own segment (its positions restart at 0 too).

No torch at import: the GUI may import this module's name cheaply.
"""

from __future__ import annotations

IGNORE_INDEX = -100


def plan_rows(lengths: list[int], capacity: int, attention_cost: float = 1 / 2048,
              max_padding: float = 0.02) -> list[list[int]]:
    """Assign sequences (by index) to rows of at most `capacity` tokens, cheaply to compute.

    Tries row counts from the fewest that can hold the batch up to one row per sequence; for each,
    sequences go longest first to the least-filled row that has room (balanced rows mean little
    tail padding, since every row is padded to the longest). The plan with the lowest estimated
    cost wins: rows x width x (1 + attention_cost x width), where `attention_cost` is the dense
    attention cost of one extra token of width relative to the rest of the per-token work
    (about 1 / (6 x hidden size) for a standard decoder). Plans with at most `max_padding` of the
    computed positions padded are preferred over any with more (when one exists).
    """
    if not lengths:
        return []
    if max(lengths) > capacity:
        raise ValueError(f"a sequence of {max(lengths)} tokens does not fit rows of {capacity} tokens")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    total = sum(lengths)
    best, best_cost = None, float("inf")
    first = max(1, -(-total // capacity))
    for n_rows in range(first, len(lengths) + 1):
        rows: list[list[int]] = [[] for _ in range(n_rows)]
        fill = [0] * n_rows
        ok = True
        for i in order:
            fits = [r for r in range(n_rows) if fill[r] + lengths[i] <= capacity]
            if not fits:
                ok = False
                break
            r = min(fits, key=lambda k: fill[k])
            rows[r].append(i)
            fill[r] += lengths[i]
        if not ok:
            continue
        _rebalance(rows, fill, lengths, capacity)
        width = max(fill)
        cost = n_rows * width * (1 + attention_cost * width)
        if 1 - total / (n_rows * width) > max_padding:
            cost += 1e12  # only when no plan pads this little
        if cost < best_cost:
            best, best_cost = [r for r in rows if r], cost
        if width == max(lengths):  # more rows cannot be narrower than the longest sequence
            break
    return best


def _rebalance(rows: list[list[int]], fill: list[int], lengths: list[int], capacity: int, rounds: int = 64) -> None:
    """Narrow the widest row by moving or swapping one of its sequences with another row (in place)."""
    for _ in range(rounds):
        w = max(range(len(rows)), key=lambda k: fill[k])
        best = None  # (new width of the pair, row, i, j or None)
        for s in range(len(rows)):
            if s == w:
                continue
            for i in rows[w]:
                for j in [None] + rows[s]:
                    d = lengths[i] - (lengths[j] if j is not None else 0)
                    if d <= 0 or fill[s] + d > capacity:
                        continue
                    pair = max(fill[w] - d, fill[s] + d)
                    if pair < fill[w] and (best is None or pair < best[0]):
                        best = (pair, s, i, j)
        if best is None:
            return
        _, s, i, j = best
        rows[w].remove(i)
        rows[s].append(i)
        d = lengths[i]
        if j is not None:
            rows[s].remove(j)
            rows[w].append(j)
            d -= lengths[j]
        fill[w] -= d
        fill[s] += d


class PackingCollator:
    """Packs a batch of {input_ids, labels} rows into position-id-separated rows (see the module notes).

    Output keys: input_ids, labels, position_ids (long, rows x width); with `head_on_labels_only`
    also logits_to_keep (bool, rows x width: positions whose next token has a label) and
    shift_labels (the labels those positions predict, flattened). No attention_mask.
    """

    def __init__(self, pad_token_id: int, max_length: int, *, head_on_labels_only: bool = True,
                 attention_cost: float = 1 / 2048, max_padding: float = 0.02, row_factor: int = 2,
                 pad_to_multiple_of: int = 1):
        self.pad_token_id = int(pad_token_id if pad_token_id is not None else 0)
        self.max_length = max_length
        self.head_on_labels_only = head_on_labels_only
        self.attention_cost = attention_cost
        self.max_padding = max_padding
        self.row_factor = row_factor
        self.pad_to_multiple_of = max(1, pad_to_multiple_of)
        self.last_stats: dict = {}

    def __call__(self, features: list[dict]) -> dict:
        import torch

        seqs = [list(f["input_ids"]) for f in features]
        labs = [list(f["labels"]) if "labels" in f else list(f["input_ids"]) for f in features]
        lengths = [len(s) for s in seqs]
        capacity = max(self.row_factor * self.max_length, max(lengths))
        rows = plan_rows(lengths, capacity, self.attention_cost, self.max_padding)
        width = max(sum(lengths[i] for i in row) for row in rows)
        m = self.pad_to_multiple_of
        width = -(-width // m) * m
        ids = torch.full((len(rows), width), self.pad_token_id, dtype=torch.long)
        labels = torch.full((len(rows), width), IGNORE_INDEX, dtype=torch.long)
        pos = torch.empty((len(rows), width), dtype=torch.long)
        for r, row in enumerate(rows):
            at = 0
            for i in row:
                n = lengths[i]
                ids[r, at:at + n] = torch.tensor(seqs[i], dtype=torch.long)
                lab = torch.tensor(labs[i], dtype=torch.long)
                lab[0] = IGNORE_INDEX  # never predicted from the previous sequence
                labels[r, at:at + n] = lab
                pos[r, at:at + n] = torch.arange(n)
                at += n
            pos[r, at:] = torch.arange(width - at)  # the padding tail: a segment of its own
        batch = {"input_ids": ids, "labels": labels, "position_ids": pos}
        if self.head_on_labels_only:
            nxt = torch.full_like(labels, IGNORE_INDEX)
            nxt[:, :-1] = labels[:, 1:]
            keep = nxt != IGNORE_INDEX
            batch["logits_to_keep"] = keep
            batch["shift_labels"] = nxt[keep]
        self.last_stats = {"rows": len(rows), "width": width, "tokens": sum(lengths),
                           "computed": len(rows) * width}
        return batch
