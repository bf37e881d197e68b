"""How much a model prefers one reply over another: the log-probability it gives each reply after its prompt.

Used to report preference accuracy where TRL does not (KTO), by Evaluate to compare models on held-out pairs,
and by tests. Prompts and replies are chat messages rendered with the tokenizer's chat template, as the
trainers render them; a reply's tokens are those after the longest common prefix of the rendered prompt and the
rendered prompt + reply (the same rule TRL uses when a template renders the prompt alone differently).
"""

from __future__ import annotations

from dataclasses import dataclass

SCORE_BATCH = 8


@dataclass
class ReplyScore:
    logp: float  # summed log-probability of the reply's tokens
    tokens: int

    @property
    def mean(self) -> float:
        return self.logp / max(self.tokens, 1)


def common_prefix(a: list[int], b: list[int]) -> int:
    """How many leading tokens two id lists share."""
    n = 0
    for x, y in zip(a, b):
        if x != y:
            break
        n += 1
    return n


def _ids(tokenizer, messages: list[dict], *, generation_prompt: bool) -> list[int]:
    out = tokenizer.apply_chat_template(messages, tokenize=True, add_generation_prompt=generation_prompt)
    if isinstance(out, dict) or hasattr(out, "keys"):
        out = out["input_ids"]
    return list(out)


def encode(tokenizer, prompt: list[dict], reply: list[dict], max_length: int) -> tuple[list[int], int]:
    """(token ids of prompt + reply, where the reply starts), truncated at `max_length` from the end of the reply."""
    prompt_ids = _ids(tokenizer, prompt, generation_prompt=True)
    full = _ids(tokenizer, prompt + reply, generation_prompt=False)
    start = common_prefix(prompt_ids, full)
    return full[:max_length], min(start, max_length)


def reply_scores(model, tokenizer, rows: list[tuple[list[dict], list[dict]]], *, max_length: int = 1024,
                 batch_size: int = SCORE_BATCH) -> list[ReplyScore]:
    """The score of each (prompt, reply) under `model`, in order."""
    import torch

    device = next(model.parameters()).device
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    encoded = [encode(tokenizer, prompt, reply, max_length) for prompt, reply in rows]
    scores: list[ReplyScore] = []
    was_training = model.training
    model.eval()
    try:
        for i in range(0, len(encoded), batch_size):
            chunk = encoded[i:i + batch_size]
            width = max(len(ids) for ids, _ in chunk)
            input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            attention = torch.zeros((len(chunk), width), dtype=torch.long)
            reply_mask = torch.zeros((len(chunk), width), dtype=torch.bool)
            for row, (ids, start) in enumerate(chunk):
                input_ids[row, :len(ids)] = torch.tensor(ids)
                attention[row, :len(ids)] = 1
                reply_mask[row, start:len(ids)] = True
            with torch.no_grad():
                logits = model(input_ids=input_ids.to(device), attention_mask=attention.to(device)).logits
                # Only the reply positions, in float32: (reply tokens x vocabulary), not the whole batch's.
                mask = reply_mask[:, 1:].to(device)
                picked = logits[:, :-1][mask].float()
                target = input_ids[:, 1:].to(device)[mask]
                token_logps = picked.gather(-1, target.unsqueeze(-1)).squeeze(-1) - torch.logsumexp(picked, dim=-1)
            row_of = torch.arange(len(chunk), device=device).unsqueeze(1).expand_as(mask)[mask]
            sums = torch.zeros(len(chunk), device=device).index_add_(0, row_of, token_logps)
            counts = mask.sum(dim=1)
            scores += [ReplyScore(float(s), int(c)) for s, c in zip(sums, counts)]
    finally:
        model.train(was_training)
    return scores


def pair_scores(model, tokenizer, pairs: list[dict], *, max_length: int = 1024,
                batch_size: int = SCORE_BATCH) -> list[tuple[ReplyScore, ReplyScore]]:
    """(chosen, rejected) scores of each pair ({"prompt", "chosen", "rejected"} messages)."""
    rows = [(p["prompt"], p[key]) for p in pairs for key in ("chosen", "rejected")]
    flat = reply_scores(model, tokenizer, rows, max_length=max_length, batch_size=batch_size)
    return [(flat[i], flat[i + 1]) for i in range(0, len(flat), 2)]


def pair_accuracy(scores, reference=None, *, per_token: bool = False) -> float:
    """The share of pairs whose chosen reply scores higher than the rejected one. With `reference` (the same pairs
    scored by the starting model) the score is the gain over the reference, as DPO's implicit reward; without, the
    plain log-probability (per token with `per_token`, so that a longer reply is not penalised for its length)."""
    if not scores:
        return float("nan")
    wins = 0
    for i, (chosen, rejected) in enumerate(scores):
        if reference is not None:
            c = chosen.logp - reference[i][0].logp
            r = rejected.logp - reference[i][1].logp
        elif per_token:
            c, r = chosen.mean, rejected.mean
        else:
            c, r = chosen.logp, rejected.logp
        wins += c > r
    return wins / len(scores)


def mark_accuracy(scores: list[ReplyScore], reference: list[ReplyScore], labels: list[bool]) -> float:
    """KTO's counterpart of pair accuracy: the share of marked replies moved the right way from the reference
    (a good reply made more likely, a bad one less)."""
    if not scores:
        return float("nan")
    right = sum((s.logp > r.logp) == bool(good) for s, r, good in zip(scores, reference, labels))
    return right / len(scores)
