"""Corpus reading, packing and the pre-training config: fast tests, no training."""

import json

import pytest

from studio.engine.config import from_dict
from studio.engine.data.corpus import estimate_summary, load_corpus, pack, split
from studio.engine.errors import BadConfig, BadDataset
from studio.engine.scratch import train_bpe_tokenizer

TEXTS = [
    "The quick brown fox jumps over the lazy dog.",
    "Grüße aus Köln — naïve café, résumé; ½ + ¼ = ¾.",
    "日本語のテキストも大丈夫です。中文也可以。",
    "Emoji 🦊🔥👩‍👩‍👧 and a flag 🇩🇪 survive.",
    "tabs\tand  double  spaces\n\n\nand trailing spaces   \r\nwindows line",
]


@pytest.fixture(scope="module")
def tokenizer():
    return train_bpe_tokenizer(TEXTS * 20, vocab_size=400)


@pytest.mark.parametrize("text", TEXTS + ["  leading spaces", "", "\u0301combining first", "Ω≈ç√∫˜µ≤≥÷ \x7f"])
def test_tokenizer_round_trips_text_exactly(tokenizer, text):
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tokenizer.decode(ids) == text
    if text in TEXTS:
        assert len(ids) < len(text.encode("utf-8"))  # merges were learned and used


def test_tokenizer_round_trips_unseen_text(tokenizer):
    unseen = "Ünïcödé never seen: 🐙 ∮ E⋅da = Q,  n → ∞ \t ok"
    assert tokenizer.decode(tokenizer(unseen, add_special_tokens=False)["input_ids"]) == unseen


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_folder_and_tables_documents_dedupe(tmp_path):
    folder = tmp_path / "texts"
    (folder / "sub").mkdir(parents=True)
    _write(folder / "a.txt", "first document")
    _write(folder / "sub" / "b.md", "second document")
    _write(folder / "dup.txt", "first document")  # exact duplicate
    (folder / "image.png").write_bytes(b"\x89PNG\x00\x00")  # ignored inside folders
    table = tmp_path / "rows.jsonl"
    _write(table, "\n".join(json.dumps({"text": t, "id": i}) for i, t in enumerate(["row one", "row two", ""])))
    csv = _write(tmp_path / "rows.csv", "body,label\nfrom csv,1\n")
    corpus = load_corpus([str(folder), str(table)], "text", dedupe=True)
    assert corpus.documents == ["first document", "second document", "row one", "row two"]
    assert corpus.duplicates_removed == 1
    assert len(load_corpus([str(folder)], dedupe=False).documents) == 3
    assert load_corpus(str(csv), "body").documents == ["from csv"]
    with pytest.raises(BadDataset, match=r"rows\.csv has no column 'text'"):
        load_corpus(str(csv), "text")
    summary = estimate_summary(corpus, block_size=4)
    assert summary.documents == 4 and summary.estimated and summary.blocks == summary.tokens // 4


PARAGRAPHS = ("First paragraph, line one.\nline two of the first.\n\n\n \t \nSecond paragraph.\r\nwith CRLF\r\n"
              "\r\n  indented third\n\nFirst paragraph, line one.\nline two of the first.\n")


@pytest.mark.parametrize("how, expected", [
    ("blank_line", ["First paragraph, line one.\nline two of the first.", "Second paragraph.\r\nwith CRLF",
                    "  indented third"]),
    ("file", [PARAGRAPHS]),
    ("line", ["First paragraph, line one.", "line two of the first.", "Second paragraph.", "with CRLF",
              "  indented third"]),
])
def test_plain_text_document_splits(tmp_path, how, expected):
    text = _write(tmp_path / "a.txt", PARAGRAPHS)
    (tmp_path / "b.md").write_bytes(b"one\ntwo\n\nthree")  # no final line break
    table = _write(tmp_path / "rows.jsonl", json.dumps({"text": "a row\n\nstays whole"}))
    corpus = load_corpus([str(text), str(tmp_path / "b.md"), str(table)], document_split=how)
    from_b = {"blank_line": ["one\ntwo", "three"], "file": ["one\ntwo\n\nthree"], "line": ["one", "two", "three"]}
    # the repeated paragraph / lines of a.txt are exact duplicates, removed as such
    assert corpus.documents == expected + from_b[how] + ["a row\n\nstays whole"]
    assert corpus.duplicates_removed == {"blank_line": 1, "file": 0, "line": 2}[how]
    assert (corpus.document_split, corpus.text_files) == (how, 2)
    kept = load_corpus([str(text)], dedupe=False, document_split=how)
    assert len(kept.documents) == len(expected) + corpus.duplicates_removed
    described = estimate_summary(corpus, block_size=4).describe()
    words = {"blank_line": "text split at blank lines", "file": "one per text file", "line": "one per line of text"}
    assert described.startswith(f"{len(corpus.documents)} documents ({words[how]}) from 3 file(s)")


def test_document_split_knob_and_tables_alone(tmp_path, tokenizer):
    from dataclasses import fields

    from studio.engine.pretrain_config import PretrainConfig

    meta = next(f for f in fields(PretrainConfig) if f.name == "document_split").metadata
    assert meta["group"] == "Data" and meta["choices"] == ("blank_line", "file", "line")
    assert set(meta["choice_labels"]) == set(meta["choices"])
    cfg = from_dict({"task": "pretrain", "corpus": "a.txt"})
    assert cfg.document_split == "blank_line"  # the default splits at blank lines
    assert from_dict({"task": "pretrain", "corpus": "a.txt", "document_split": "line"}).document_split == "line"
    with pytest.raises(BadConfig, match="Field 'document_split' has the value 'page'") as err:
        from_dict({"task": "pretrain", "corpus": "a.txt", "document_split": "page"})
    assert err.value.field == "document_split"
    # a corpus of tables only says nothing about splitting text, in the estimate and once packed
    table = _write(tmp_path / "rows.jsonl", "\n".join(json.dumps({"text": t}) for t in TEXTS))
    corpus = load_corpus(str(table), document_split="line")
    assert corpus.documents == TEXTS
    assert estimate_summary(corpus, 4).describe().startswith(f"{len(TEXTS)} documents from 1 file(s)")
    packed = pack(corpus, tokenizer, block_size=4)
    assert packed.summary.document_split == "" and packed.summary.documents == len(TEXTS)
    text = _write(tmp_path / "t.txt", "\n\n".join(TEXTS))
    assert pack(load_corpus(str(text)), tokenizer, 4).summary.document_split == "blank_line"


def test_pack_joins_with_eos_and_makes_full_blocks(tokenizer):
    from studio.engine.data.corpus import Corpus

    docs = [t for t in TEXTS] * 3
    corpus = Corpus(documents=docs, files=[])
    packed = pack(corpus, tokenizer, block_size=16)
    stream = sum((tokenizer(d, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id] for d in docs), [])
    assert packed.summary.tokens == len(stream)
    assert packed.summary.blocks == len(stream) // 16 == len(packed.input_ids)
    assert all(len(b) == 16 for b in packed.input_ids)
    assert sum(packed.input_ids, []) == stream[: 16 * len(packed.input_ids)]  # nothing lost or reordered
    assert tokenizer.pad_token_id not in sum(packed.input_ids, [])
    train, val = split(packed, 0.2, seed=1)
    assert sorted(train + val) == list(range(len(packed.input_ids))) and len(val) == round(0.2 * len(packed.input_ids))
    assert (packed.summary.train_blocks, packed.summary.validation_blocks) == (len(train), len(val))


def test_whole_word_groups(tokenizer):
    from studio.engine.data.corpus import Corpus

    packed = pack(Corpus(documents=["extraordinarily unbelievable words", "again"], files=[]), tokenizer,
                  block_size=8, whole_words=True)
    ids, words = packed.input_ids[0], packed.word_ids[0]
    assert len(words) == len(ids)
    pieces = [tokenizer.decode([i]) for i in ids]
    # pieces of one word share a number; a new word (a piece starting with a space) starts a new one
    for k in range(1, len(ids)):
        if words[k] >= 0 and words[k - 1] >= 0:
            assert (words[k] != words[k - 1]) == pieces[k].startswith(" ")


def test_empty_corpus_file(tmp_path):
    empty = _write(tmp_path / "empty.txt", "")
    with pytest.raises(BadDataset, match=r"empty\.txt is empty"):
        load_corpus([str(empty)])
    blank = _write(tmp_path / "blank.txt", "  \n\n ")
    with pytest.raises(BadDataset, match=r"blank\.txt\) holds no text"):
        load_corpus([str(blank)])
    (tmp_path / "nothing").mkdir()
    with pytest.raises(BadDataset, match="holds no text files"):
        load_corpus([str(tmp_path / "nothing")])
    with pytest.raises(BadDataset, match="does not exist"):
        load_corpus([str(tmp_path / "missing.txt")])


def test_corpus_smaller_than_one_block(tmp_path, tokenizer):
    small = _write(tmp_path / "small.txt", "just a few words")
    corpus = load_corpus([str(small)])
    with pytest.raises(BadDataset, match=r"small\.txt\) has \d+ tokens, fewer than one block of 512 tokens") as err:
        pack(corpus, tokenizer, block_size=512)
    assert "lower the block size" in err.value.hint


def test_binary_file(tmp_path):
    binary = tmp_path / "weights.txt"
    binary.write_bytes(bytes(range(256)) * 4)
    with pytest.raises(BadDataset, match=r"weights\.txt looks like a binary file"):
        load_corpus([str(binary)])
    latin = tmp_path / "latin.txt"
    latin.write_bytes("café\n".encode("latin-1"))
    with pytest.raises(BadDataset, match=r"latin\.txt, line 1: byte 0xe9 is not UTF-8"):
        load_corpus([str(latin)])


@pytest.mark.parametrize("vocab", [10, 299, 10_000_000])
def test_vocab_size_out_of_range(vocab):
    with pytest.raises(BadConfig, match=rf"Field 'vocab_size' has the value {vocab}; expected a value from 300 to") as err:
        from_dict({"task": "pretrain", "corpus": "x.txt", "vocab_size": vocab})
    assert err.value.field == "vocab_size"
    with pytest.raises(BadConfig, match="Field 'vocab_size'"):
        train_bpe_tokenizer(["some text"], vocab)


def test_config_checks_and_corpus_forms():
    cfg = from_dict({"task": "pretrain", "corpus": ["a.txt", "folder"], "probe_prompts": ["Once", "<|user|>\nHi"]})
    assert cfg.corpus == "a.txt;folder" and cfg.corpus_paths() == ["a.txt", "folder"]
    assert cfg.probes() == ["Once", "<|user|>\nHi"]
    with pytest.raises(BadConfig, match="Field 'corpus' is empty"):
        from_dict({"task": "pretrain"})
    with pytest.raises(BadConfig, match="objective mlm needs a bert"):
        from_dict({"task": "pretrain", "corpus": "a.txt", "objective": "mlm", "architecture": "llama-5m"})
    with pytest.raises(BadConfig, match="LoRA is for continued"):
        from_dict({"task": "pretrain", "corpus": "a.txt", "method": "lora"})
    with pytest.raises(BadConfig, match="Field 'model' is empty"):
        from_dict({"task": "pretrain", "corpus": "a.txt", "mode": "continue"})
    with pytest.raises(BadConfig, match="Field 'num_heads'"):
        from_dict({"task": "pretrain", "corpus": "a.txt", "architecture": "custom-llama", "hidden_size": 100,
                   "num_heads": 3})


@pytest.mark.parametrize("arch", ["llama-5m", "bert-5m", "custom-llama", "custom-bert"])
def test_parameter_count_matches_the_built_model(arch):
    from studio.engine.presets import parameter_count, resolve_arch
    from studio.engine.pretrain.models import new_model_config
    from studio.engine.scratch import build_model, count_parameters

    objective = "clm" if "llama" in arch else "mlm"
    cfg = from_dict({"task": "pretrain", "corpus": "a.txt", "architecture": arch, "objective": objective,
                     "hidden_size": 48, "num_layers": 2, "num_heads": 4, "block_size": 64})
    tok = train_bpe_tokenizer(TEXTS, 300, with_mask=objective == "mlm")
    config, a = new_model_config(cfg, tok)
    assert a == resolve_arch(arch, 48, 2, 4, 0)
    assert count_parameters(build_model(config)) == parameter_count(a, len(tok), 64)
