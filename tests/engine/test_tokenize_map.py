"""Tokenizing through datasets.map: the same rows, labels, drops and summary as the Python loop."""

import json

import pytest

from tests.conftest import FIXTURES, shared_dataset
from studio.engine.data.files import read_records
from studio.engine.data.formats import to_conversations
from studio.engine.data.render import ensure_chat_template, tokenize_all
from studio.engine.data.tokenize_map import (MAP_ABOVE_ROWS, TokenizedRows, select_rows, to_train_dataset,
                                             tokenize_mapped, tokenize_rows)
from studio.engine.errors import BadDataset


@pytest.fixture(scope="module")
def tokenizer(tiny_llama):
    from studio.engine.models import load_tokenizer

    tok = load_tokenizer(tiny_llama, False)
    ensure_chat_template(tok)
    return tok


@pytest.fixture(scope="module")
def alpaca_60(tmp_path_factory):
    rows = json.loads(shared_dataset("alpaca_en_demo.json").read_text(encoding="utf-8"))[:60]
    path = tmp_path_factory.mktemp("alpaca") / "alpaca_60.jsonl"
    path.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    return path


def _same(mapped, looped):
    assert len(mapped) == len(looped)
    for m, t in zip(mapped, looped):
        assert (m.input_ids, m.labels, m.full_length) == (t.input_ids, t.labels, t.full_length)


@pytest.mark.parametrize("max_length, train_on_prompt", [(512, False), (48, False), (48, True)])
def test_map_gives_the_loops_tokens_labels_and_summary(tokenizer, alpaca_60, max_length, train_on_prompt):
    looped, summary = tokenize_all(tokenizer, to_conversations(read_records(alpaca_60)), max_length,
                                   train_on_prompt)
    convs = to_conversations(read_records(alpaca_60))
    seen = []
    # two processes: the tokenizer and the chat template must survive pickling into the workers
    mapped, mapped_summary = tokenize_mapped(tokenizer, convs, max_length, train_on_prompt, seen.append,
                                             num_proc=2, chunk_rows=16)
    _same(mapped, looped)
    assert mapped_summary.as_dict() == summary.as_dict() and mapped_summary.lengths == summary.lengths
    assert seen == [0.0, 16 / 60, 32 / 60, 48 / 60, 1.0]  # after each chunk of 16 rows
    assert convs.conversations == [] and len(convs.where) == 60  # the texts were let go, the places kept
    if max_length == 48 and not train_on_prompt:
        assert summary.dropped  # long prompts were dropped, and named, the same way


def test_multi_turn_rows_and_drops_name_the_same_rows(tokenizer, tmp_path):
    rows = [{"instruction": "Hi", "output": "Hello there."},
            {"instruction": "word " * 100, "output": "ok"},  # the prompt alone is longer than the limit
            {"instruction": "Tell", "output": "a " * 30},  # the reply is truncated
            {"instruction": "Empty", "output": ""}]  # dropped before tokenizing
    path = tmp_path / "d.json"
    path.write_text(json.dumps(rows))
    weather = {"name": "get_weather", "description": "Today's weather in a city.",
               "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
    tools = tmp_path / "tools.jsonl"  # only some messages carry tool_calls / tool_call_id keys
    tools.write_text(json.dumps({"messages": [
        {"role": "user", "content": "Is it raining in Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": {
            "name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\"rain_mm\": 7}"},
        {"role": "assistant", "content": "Yes, 7 mm of rain."}],
        "tools": [{"type": "function", "function": weather}]}) + "\n" + json.dumps({"messages": [
            {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}))
    # messages.jsonl has two assistant turns a row
    for source, limit in ((path, 40), (FIXTURES / "messages.jsonl", 40), (tools, 512)):
        looped, summary = tokenize_all(tokenizer, to_conversations(read_records(source)), limit)
        mapped, mapped_summary = tokenize_mapped(tokenizer, to_conversations(read_records(source)), limit)
        _same(mapped, looped)
        assert mapped_summary.as_dict() == summary.as_dict()
    assert summary.used == 2  # the tool-call row too
    _, summary = tokenize_mapped(tokenizer, to_conversations(read_records(path)), 40)
    assert summary.dropped["the prompt alone is longer than the max length (40 tokens)"] == ["item 2"]
    assert summary.dropped["the assistant reply is empty"] == ["item 4"]
    with pytest.raises(BadDataset, match=r"no example is left to train on in 4 rows") as looped_err:
        tokenize_all(tokenizer, to_conversations(read_records(path)), 8)
    with pytest.raises(BadDataset, match=r"no example is left to train on in 4 rows") as mapped_err:
        tokenize_mapped(tokenizer, to_conversations(read_records(path)), 8)
    assert mapped_err.value.message == looped_err.value.message


def test_rows_in_arrow_files_feed_the_trainer(tokenizer, alpaca_60, tmp_path):
    mapped, _ = tokenize_mapped(tokenizer, to_conversations(read_records(alpaca_60)), 512,
                                cache_dir=tmp_path / "tokenized", chunk_rows=25)
    assert sorted(p.name for p in (tmp_path / "tokenized").glob("*.arrow")) == \
        ["train-00000.arrow", "train-00001.arrow", "train-00002.arrow"]
    assert isinstance(mapped, TokenizedRows) and mapped.table.cache_files  # memory-mapped, not in memory
    val = select_rows(mapped, [5, 2])
    assert [r.input_ids for r in val] == [mapped[5].input_ids, mapped[2].input_ids]
    ds = to_train_dataset(val)
    assert ds.column_names == ["input_ids", "labels"] and ds[0]["labels"] == mapped[5].labels
    listed = to_train_dataset(list(mapped))  # the loop's rows give the same dataset
    assert listed[:] == to_train_dataset(mapped)[:]


def test_large_files_take_the_map_path_in_prepare_data(tokenizer, tmp_path):
    from studio.engine.config import FineTuneConfig
    from studio.engine.sft import prepare_data, to_dataset

    rows = [json.loads(line) for line in (FIXTURES / "alpaca.jsonl").read_text().splitlines()]
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join(json.dumps(rows[i % len(rows)]) for i in range(MAP_ABOVE_ROWS + 1)))
    cfg = FineTuneConfig(model="unused", dataset=str(path), max_length=128, validation_fraction=0.1)
    seen = []
    train, val, summary = prepare_data(cfg, tokenizer, seen.append, cache_dir=tmp_path / "tokenized")
    assert isinstance(train, TokenizedRows) and isinstance(val, TokenizedRows)
    assert len(train) + len(val) == summary.used == MAP_ABOVE_ROWS + 1 and len(val) == round(0.1 * summary.used)
    assert seen[0] == 0.0 and seen[-1] == 1.0 and seen == sorted(seen)
    assert list((tmp_path / "tokenized").glob("train-*.arrow"))
    first = tokenize_all(tokenizer, to_conversations(read_records(FIXTURES / "alpaca.jsonl")), 128)[0]
    expected = {tuple(t.input_ids) for t in first}
    assert {tuple(r["input_ids"]) for r in to_dataset(train).select(range(50))} <= expected
    # small files keep the plain loop and its list of rows
    small, _ = tokenize_rows(tokenizer, to_conversations(read_records(FIXTURES / "alpaca.jsonl")), 128)
    assert isinstance(small, list)


def test_a_run_trains_from_the_arrow_files(tiny_llama, tmp_path):
    from sft_helpers import run_in_process, sft_config

    rows = [json.loads(line) for line in (FIXTURES / "alpaca.jsonl").read_text().splitlines()]
    path = tmp_path / "big.jsonl"
    path.write_text("\n".join(json.dumps(rows[i % len(rows)]) for i in range(MAP_ABOVE_ROWS + 1)))
    for padding_free in (True, False):  # the packing collator and the padding one
        run_dir = tmp_path / f"run-{padding_free}"
        events = run_in_process(sft_config(tiny_llama, path, max_steps=2, batch_size=4, eval_every=0, save_every=0,
                                           validation_fraction=0.01, max_length=128, padding_free=padding_free),
                                run_dir)
        assert events[-1]["type"] == "finished" and events[-1]["status"] == "completed", events[-1]
        done = [e for e in events if e.get("phase") == "tokenizing" and "train_rows" in e][0]
        assert done["train_rows"] + done["validation_rows"] == MAP_ABOVE_ROWS + 1
        assert list((run_dir / "tokenized").glob("train-*.arrow"))
