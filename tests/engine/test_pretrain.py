"""Pre-training runs, in-process (the worker path is covered by the GUI test): from scratch on real web
text, and masked-LM continued pre-training of a real pre-trained encoder."""

import json
import threading
from pathlib import Path

import pytest

from studio.engine.config import from_dict
from studio.engine.events import EventWriter, read_events
from tests.conftest import shared_dataset, minilm_path


def _subset(src: Path, dst: Path, n: int) -> Path:
    lines = src.read_text(encoding="utf-8").splitlines()[:n]
    dst.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return dst


def _run(cfg_dict: dict, run_dir: Path):
    from studio.engine.pretrain.recipe import run_pretrain

    cfg = from_dict({"task": "pretrain", "save_every": 0, "log_every": 5, **cfg_dict})
    run_dir.mkdir(parents=True, exist_ok=True)
    events = EventWriter(run_dir / "events.jsonl", None)
    try:
        summary = run_pretrain(cfg, run_dir, events, threading.Event())
    finally:
        events.close()
    return summary, read_events(run_dir / "events.jsonl")


@pytest.fixture(scope="module")
def scratch_run(tmp_path_factory):
    corpus = _subset(shared_dataset("c4_demo.jsonl"), tmp_path_factory.mktemp("c4") / "c4_120.jsonl", 120)
    run_dir = tmp_path_factory.mktemp("scratch-run")
    cfg = dict(mode="scratch", objective="clm", architecture="custom-llama", hidden_size=64, num_layers=2,
               num_heads=4, vocab_size=512, corpus=str(corpus), block_size=32, batch_size=8, max_steps=120,
               eval_every=60, learning_rate=5e-3, validation_fraction=0.02, probe_prompts="The best way to | I")
    summary, events = _run(cfg, run_dir)
    return corpus, run_dir, summary, events


def test_scratch_run_lowers_held_out_perplexity(scratch_run):
    _, run_dir, summary, events = scratch_run
    evals = [e for e in events if e["type"] == "eval"]
    assert [e["step"] for e in evals] == [0, 60, 120]  # step 0 is the untrained model
    untrained, trained = evals[0]["perplexity"], evals[-1]["perplexity"]
    assert untrained > 300  # about the vocabulary size: a uniform guess
    assert trained < untrained / 2, (untrained, trained)  # well below: less than half
    finished = events[-1]
    assert finished["type"] == "finished" and finished["status"] == "completed"
    # packed blocks: every token of every block is trained (no padding)
    assert summary["tokens_seen"] == 120 * 8 * 32
    started = next(e for e in events if e["type"] == "started")
    assert started["corpus"]["blocks"] == started["corpus"]["train_blocks"] + started["corpus"]["validation_blocks"]
    assert started["estimated_parameters"] == started["parameters"]
    samples = [e for e in events if e["type"] == "sample"]
    assert [s["step"] for s in samples] == [0, 60, 120]
    assert [p["prompt"] for p in samples[-1]["samples"]] == ["The best way to", "I"]
    assert all(isinstance(p["completion"], str) and p["completion"] for p in samples[-1]["samples"])
    assert json.loads((run_dir / "corpus_summary.json").read_text())["documents"] == 120


def test_packed_batches_contain_no_padding(tmp_path):
    from studio.engine.data.corpus import load_corpus, pack
    from studio.engine.pretrain.blocks import make_datasets
    from studio.engine.pretrain.masking import BlockCollator
    from studio.engine.scratch import train_bpe_tokenizer

    corpus_path = _subset(shared_dataset("c4_demo.jsonl"), tmp_path / "c4_120.jsonl", 120)
    cfg = from_dict(dict(task="pretrain", corpus=str(corpus_path), block_size=32, vocab_size=512,
                         validation_fraction=0.02))
    corpus = load_corpus(cfg.corpus_paths())
    tok = train_bpe_tokenizer(corpus.documents[:40], 512)
    packed = pack(corpus, tok, 32)
    collator = BlockCollator("clm")
    train, val = make_datasets(cfg, packed, collator)
    batch = collator([train[i] for i in range(8)])
    assert batch["input_ids"].shape == (8, 32) and "attention_mask" not in batch
    assert (batch["input_ids"] != tok.pad_token_id).all()
    assert (batch["labels"] == batch["input_ids"]).all()  # every position is learned
    # documents are joined with end-of-text
    rows = list(train["input_ids"]) + list(val["input_ids"])
    assert sum(row.count(tok.eos_token_id) for row in rows) in (119, 120)  # the tail may be dropped
    assert len(train) + len(val) == packed.summary.blocks


def test_scratch_output_loads_with_plain_transformers(scratch_run):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, run_dir, *_ = scratch_run
    model = AutoModelForCausalLM.from_pretrained(run_dir / "model")
    tok = AutoTokenizer.from_pretrained(run_dir / "model")
    assert model.config.model_type == "llama" and model.config.vocab_size == len(tok)
    assert any(p.name.endswith(".safetensors") for p in (run_dir / "model").iterdir())
    ids = tok("The best way to", return_tensors="pt")["input_ids"]
    with torch.no_grad():
        out = model.generate(ids, max_new_tokens=5, do_sample=False)
    assert out.shape[1] == ids.shape[1] + 5 or out[0, -1] == tok.eos_token_id


# ---- masked-LM batches: transformers' DataCollatorForLanguageModeling behind the block collator -------------

@pytest.fixture(scope="module")
def mask_tokenizer():
    from studio.engine.scratch import train_bpe_tokenizer

    return train_bpe_tokenizer(["the quick brown fox jumps over the lazy dog, again and again"] * 20, 300,
                               with_mask=True)


def _blocks(tokenizer, rows=64, length=32):
    import torch

    ids = torch.randint(5, len(tokenizer), (rows, length), generator=torch.Generator().manual_seed(0))
    ids[:, 0] = tokenizer.eos_token_id  # a special token: never chosen
    return ids


def test_masking_chooses_the_declared_fraction_with_the_80_10_10_split(mask_tokenizer):
    import torch
    from transformers import DataCollatorForLanguageModeling

    from studio.engine.pretrain.masking import BlockCollator

    collator = BlockCollator("mlm", mask_tokenizer, probability=0.3)
    assert isinstance(collator.masker, DataCollatorForLanguageModeling)
    ids = _blocks(mask_tokenizer, rows=256)
    torch.manual_seed(0)
    out = collator([{"input_ids": row} for row in ids.tolist()])
    chosen = out["labels"] != -100
    assert not chosen[:, 0].any()
    assert 0.27 < chosen.float().mean() < 0.33
    assert (out["labels"][chosen] == ids[chosen]).all() and (out["input_ids"][~chosen] == ids[~chosen]).all()
    masked = (out["input_ids"][chosen] == mask_tokenizer.mask_token_id).float().mean()
    kept = (out["input_ids"][chosen] == ids[chosen]).float().mean()
    assert 0.76 < masked < 0.84 and 0.07 < kept < 0.14
    assert set(out) == {"input_ids", "labels"}  # blocks need no attention mask


def test_whole_word_masking_hides_every_piece_of_a_chosen_word(mask_tokenizer):
    import torch

    from studio.engine.pretrain.masking import BlockCollator

    collator = BlockCollator("mlm", mask_tokenizer, probability=0.3, whole_words=True)
    ids = _blocks(mask_tokenizer)
    words = torch.arange(32).div(4, rounding_mode="floor").repeat(64, 1)  # words of 4 pieces
    words[:, 0] = -1  # the special token
    torch.manual_seed(0)
    out = collator([{"input_ids": i, "word_ids": w} for i, w in zip(ids.tolist(), words.tolist())])
    chosen = (out["labels"] != -100).view(64, 8, 4)[:, 1:, :]  # skip the word holding the special token
    assert ((chosen.all(-1)) | (~chosen.any(-1))).all()  # a word is masked whole or not at all
    assert 0.2 < chosen.all(-1).float().mean() < 0.4  # the fraction applies to words
    assert (out["input_ids"][out["labels"] != -100] == mask_tokenizer.mask_token_id).all()


def test_held_out_masking_is_fixed_and_training_batches_are_masked_by_their_number(mask_tokenizer):
    import torch

    from studio.engine.pretrain.masking import BlockCollator

    collator = BlockCollator("mlm", mask_tokenizer, seed=7)
    blocks = _blocks(mask_tokenizer, rows=100).tolist()  # more rows than one masking pass takes
    first = collator.masked_once(blocks, None, seed=43)
    assert first == collator.masked_once(blocks, None, seed=43)
    assert first != collator.masked_once(blocks, None, seed=44)
    held_out = [{"input_ids": i, "labels": lab} for i, lab in zip(first["input_ids"][:2], first["labels"][:2])]
    assert collator(held_out)["labels"].tolist() == first["labels"][:2]  # held-out rows pass through as masked
    features = [{"input_ids": row} for row in blocks[:8]]
    batches = [collator(features) for _ in range(3)]
    assert not torch.equal(batches[0]["labels"], batches[1]["labels"])  # each batch its own masks
    resumed = BlockCollator("mlm", mask_tokenizer, seed=7)
    resumed.batches = 2  # what a run resumed after two batches sets
    torch.manual_seed(123)  # the global generator plays no part
    again = resumed(features)
    assert torch.equal(again["input_ids"], batches[2]["input_ids"])
    assert torch.equal(again["labels"], batches[2]["labels"])


def test_a_resumed_masked_lm_run_repeats_the_uninterrupted_losses_exactly(tmp_path):
    corpus = _subset(shared_dataset("c4_demo.jsonl"), tmp_path / "c4_40.jsonl", 40)
    cfg = dict(mode="scratch", objective="mlm", architecture="custom-bert", hidden_size=32, num_layers=1,
               num_heads=2, vocab_size=400, corpus=str(corpus), block_size=32, batch_size=4, max_steps=6,
               eval_every=0, save_every=3, keep_checkpoints=5, log_every=1, validation_fraction=0.0)
    _, whole = _run(cfg, tmp_path / "whole")
    checkpoint = tmp_path / "whole" / "checkpoints" / "checkpoint-3"
    _, resumed = _run(dict(cfg, resume_from=str(checkpoint)), tmp_path / "resumed")
    losses = {e["step"]: e["loss"] for e in whole if e["type"] == "log"}
    again = {e["step"]: e["loss"] for e in resumed if e["type"] == "log"}
    assert sorted(again) == [4, 5, 6]
    assert again == {step: losses[step] for step in again}  # the same masks, bit for bit




def test_mlm_continued_pretraining_raises_masked_accuracy(tmp_path):
    import torch
    from transformers import AutoModelForMaskedLM

    model = minilm_path()
    corpus = _subset(shared_dataset("c4_demo.jsonl"), tmp_path / "c4_30.jsonl", 30)
    cfg = dict(mode="continue", objective="mlm", model=str(model), corpus=str(corpus), block_size=32, batch_size=8,
               max_steps=12, eval_every=0, learning_rate=5e-4, warmup_ratio=0.0, validation_fraction=0.05)
    summary, events = _run(cfg, tmp_path / "run")
    evals = [e for e in events if e["type"] == "eval"]
    assert [e["step"] for e in evals] == [0, 12]
    before, after = evals[0], evals[-1]
    assert before["masked_tokens"] == after["masked_tokens"] > 50  # the same fixed held-out masking
    # The MiniLM checkpoint ships no masked-LM head (it starts untrained): 12 steps teach it a few tokens.
    assert after["masked_accuracy"] >= before["masked_accuracy"] + 0.02, (before, after)
    assert after["eval_loss"] < before["eval_loss"] - 1
    out = AutoModelForMaskedLM.from_pretrained(tmp_path / "run" / "model")
    assert out.config.architectures == ["BertForMaskedLM"]
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tmp_path / "run" / "model")
    enc = tok("the cat sat on the [MASK].", return_tensors="pt")
    with torch.no_grad():
        logits = out(**enc).logits
    assert logits.shape[-1] == out.config.vocab_size
    assert not any(e["type"] == "sample" for e in events)  # probes are for decoders
