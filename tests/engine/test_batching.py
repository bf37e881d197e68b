"""The packing collator: packed sequences behave exactly as if each were alone (design notes, "Packed rows")."""

import pytest

from studio.engine.batching import IGNORE_INDEX, PackingCollator, plan_rows


def _features(tokenizer, texts, prompt_tokens=3):
    feats = []
    for t in texts:
        ids = tokenizer(t, add_special_tokens=False)["input_ids"]
        labels = [IGNORE_INDEX] * prompt_tokens + ids[prompt_tokens:]
        feats.append({"input_ids": ids, "labels": labels})
    return feats


TEXTS = ["What is the capital of Zorbia? The capital of Zorbia is Quillton.",
         "Kelp has seven moons.",
         "Who painted the blue fox? Mira Telsen painted the blue fox, long ago, in a small town.",
         "A glimmerfish is bright orange.",
         "How many moons does Kelp have?"]


def test_plan_rows_respects_capacity_and_places_every_sequence():
    lengths = [50, 40, 30, 30, 20, 10, 5]
    rows = plan_rows(lengths, capacity=64)
    assert sorted(i for r in rows for i in r) == list(range(len(lengths)))
    assert all(sum(lengths[i] for i in r) <= 64 for r in rows)
    with pytest.raises(ValueError):
        plan_rows([65], capacity=64)


def test_rows_positions_and_labels(tiny_llama):
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    feats = _features(tok, TEXTS)
    lengths = [len(f["input_ids"]) for f in feats]
    batch = PackingCollator(tok.pad_token_id, max_length=max(lengths) + 8, row_factor=1)(feats)
    ids, pos, labels = batch["input_ids"], batch["position_ids"], batch["labels"]
    assert "attention_mask" not in batch
    assert ids.shape[0] > 1  # several rows: the multi-row case is the one exercised
    assert ids.shape[1] <= max(lengths) + 8
    # every sequence appears exactly once, contiguous, with positions 0..n-1 and its own labels
    found = 0
    for r in range(ids.shape[0]):
        starts = (pos[r] == 0).nonzero().flatten().tolist() + [ids.shape[1]]
        for a, b in zip(starts, starts[1:]):
            seg = ids[r, a:b].tolist()
            assert pos[r, a:b].tolist() == list(range(b - a))
            if seg in [f["input_ids"] for f in feats]:
                f = feats[[x["input_ids"] for x in feats].index(seg)]
                found += 1
                assert labels[r, a].item() == IGNORE_INDEX  # never predicted across the boundary
                assert labels[r, a + 1:b].tolist() == f["labels"][1:]
            else:  # the padding tail: its own segment, no labels
                assert set(seg) == {tok.pad_token_id} and (labels[r, a:b] == IGNORE_INDEX).all()
    assert found == len(feats)
    # the head-on-labels mask selects exactly the positions whose next token is labelled
    nxt = labels[:, 1:]
    assert batch["logits_to_keep"][:, :-1].equal(nxt != IGNORE_INDEX)
    assert not batch["logits_to_keep"][:, -1].any()
    assert batch["shift_labels"].tolist() == nxt[nxt != IGNORE_INDEX].tolist()


def test_packed_logits_and_loss_equal_each_sequence_alone(tiny_llama):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    model.config.use_cache = False
    model.eval()
    feats = _features(tok, TEXTS)
    lengths = [len(f["input_ids"]) for f in feats]
    collator = PackingCollator(tok.pad_token_id, max_length=max(lengths) + 8, head_on_labels_only=False,
                               row_factor=1)
    batch = collator(feats)
    assert batch["input_ids"].shape[0] > 1
    with torch.no_grad():
        packed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
        # each sequence alone, and the loss over all of them (mean over label tokens, as a padded batch gives)
        total, count = 0.0, 0
        for f in feats:
            ids = torch.tensor([f["input_ids"]])
            alone = model(input_ids=ids, use_cache=False).logits[0]
            r, a = _locate(batch, f["input_ids"])
            torch.testing.assert_close(packed[r, a:a + ids.shape[1]], alone, atol=1e-5, rtol=1e-4)
            lab = torch.tensor(f["labels"][1:])
            keep = lab != IGNORE_INDEX
            total += torch.nn.functional.cross_entropy(alone[:-1][keep], lab[keep], reduction="sum").item()
            count += int(keep.sum())
        packed_loss = model(**{k: v for k, v in batch.items()}, use_cache=False).loss.item()
        head_only = PackingCollator(tok.pad_token_id, max_length=max(lengths) + 8, row_factor=1)(feats)
        head_only_loss = model(**head_only, use_cache=False).loss.item()
    assert packed_loss == pytest.approx(total / count, rel=1e-5)
    assert head_only_loss == pytest.approx(total / count, rel=1e-5)


def _locate(batch, ids):
    rows = batch["input_ids"]
    pos = batch["position_ids"]
    n = len(ids)
    for r in range(rows.shape[0]):
        for a in (pos[r] == 0).nonzero().flatten().tolist():
            if rows[r, a:a + n].tolist() == ids and (a + n == rows.shape[1] or pos[r, a + n].item() == 0):
                return r, a
    raise AssertionError("sequence not found in the packed batch")


def test_with_a_cache_the_sequences_would_mix(tiny_llama):
    """Why the engine sets use_cache=False: the pitfall this collator relies on avoiding."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, DynamicCache

    tok = AutoTokenizer.from_pretrained(tiny_llama)
    model = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    feats = _features(tok, TEXTS[:2])
    batch = PackingCollator(tok.pad_token_id, max_length=10_000, head_on_labels_only=False)(feats)
    assert batch["input_ids"].shape[0] == 1
    with torch.no_grad():
        clean = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"], use_cache=False).logits
        mixed = model(input_ids=batch["input_ids"], position_ids=batch["position_ids"],
                      past_key_values=DynamicCache(config=model.config), use_cache=True).logits
    n0 = len(feats[0]["input_ids"]) if batch["input_ids"][0, :len(feats[0]["input_ids"])].tolist() == \
        feats[0]["input_ids"] else len(feats[1]["input_ids"])
    assert not torch.allclose(clean[0, n0:], mixed[0, n0:], atol=1e-4)


def test_sft_recipe_uses_the_packing_collator():
    from studio.engine.config import FineTuneConfig
    from studio.engine.sft import collator_for

    class Tok:
        pad_token_id = 1

    assert isinstance(collator_for(FineTuneConfig(padding_free=True), Tok()), PackingCollator)
