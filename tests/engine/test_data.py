import json

import pytest

from tests.conftest import FIXTURES, shared_dataset
from studio.engine.data.files import read_records
from studio.engine.data.formats import to_conversations
from studio.engine.data.render import IGNORE_INDEX, tokenize_all, tokenize_conversation
from studio.engine.errors import BadDataset

QWEN_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + message['content'] + "
    "'<|im_end|>' + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}")


@pytest.fixture(scope="module")
def tokenizer(tiny_llama):
    from studio.engine.data.render import ensure_chat_template
    from studio.engine.models import load_tokenizer

    tok = load_tokenizer(tiny_llama)
    assert ensure_chat_template(tok)  # the tiny model has none: the fallback is used
    return tok


@pytest.mark.parametrize("name, fmt, rows", [
    ("alpaca.jsonl", "alpaca", 3),
    ("messages.jsonl", "messages", 2),
    ("prompt_completion.csv", "prompt_completion", 2),
])
def test_fixture_formats_are_detected(name, fmt, rows):
    convs = to_conversations(read_records(FIXTURES / name))
    assert convs.format == fmt and len(convs.conversations) == rows
    for messages in convs.conversations:
        assert messages[-1]["role"] == "assistant" and messages[-1]["content"]


def test_alpaca_system_and_history_become_turns():
    convs = to_conversations(read_records(FIXTURES / "alpaca.jsonl"))
    assert convs.conversations[1][0] == {"role": "system", "content": "You are a translator."}
    assert convs.conversations[1][1]["content"] == "Translate to French.\n\nGood morning"
    assert [m["role"] for m in convs.conversations[2]] == ["user", "assistant", "user", "assistant"]


def test_sharegpt_custom_role_tags_through_the_mapping():
    records = read_records(FIXTURES / "sharegpt_custom_tags.json")
    with pytest.raises(BadDataset, match="unknown role 'asker'"):
        to_conversations(records)
    convs = to_conversations(records, mapping={"role:asker": "user", "role:oracle": "assistant"})
    assert convs.format == "sharegpt"
    assert convs.conversations[1][0] == {"role": "system", "content": "Astronomy helper."}


def test_column_mapping_renames_columns(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text(json.dumps({"question": "Why?", "answer": "Because."}) + "\n")
    with pytest.raises(BadDataset) as info:
        to_conversations(read_records(path))
    assert "question, answer" in info.value.message and "instruction, output" in info.value.message
    convs = to_conversations(read_records(path), mapping={"question": "prompt", "answer": "completion"})
    assert convs.format == "prompt_completion"


def test_parquet_loads(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "d.parquet"
    pq.write_table(pa.table({"instruction": ["a", "b"], "output": ["x", None]}), path)
    convs = to_conversations(read_records(path))
    assert len(convs.conversations) == 1
    assert convs.dropped == {"field 'output' is empty (null)": ["row 2"]}


def test_shared_alpaca_demo_loads():
    convs = to_conversations(read_records(shared_dataset("alpaca_en_demo.json")))
    assert convs.format == "alpaca" and len(convs.conversations) + convs.dropped_count == 999
    assert len(convs.conversations) > 990


def test_shared_preference_pairs_load_as_sharegpt_with_the_chosen_reply():
    path = shared_dataset("dpo_en_demo.json")
    raw = json.loads(path.read_text())
    convs = to_conversations(read_records(path))
    assert convs.format == "sharegpt" and len(convs.conversations) == len(raw)
    assert convs.conversations[0][-1] == {"role": "assistant", "content": raw[0]["chosen"]["value"]}


def _labelled_runs(tok, ids, labels):
    runs, current = [], []
    for i, label in zip(ids, labels):
        if label != IGNORE_INDEX:
            assert label == i
            current.append(i)
        elif current:
            runs.append(tok.decode(current))
            current = []
    if current:
        runs.append(tok.decode(current))
    return runs


CONVERSATION = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "What is 2+2?"},
                {"role": "assistant", "content": "It is 4."}, {"role": "user", "content": "And 3+3?"},
                {"role": "assistant", "content": "Six."}]


def test_labels_cover_exactly_the_assistant_turns_with_the_fallback_template(tokenizer):
    tok = tokenize_conversation(tokenizer, CONVERSATION, max_length=512)
    assert _labelled_runs(tokenizer, tok.input_ids, tok.labels) == ["It is 4.<|endoftext|>",
                                                                    "Six.<|endoftext|>"]
    masked = tokenizer.decode([i for i, l in zip(tok.input_ids, tok.labels) if l == IGNORE_INDEX])
    assert masked == "<|system|>\nBe brief.<|endoftext|><|user|>\nWhat is 2+2?<|endoftext|><|assistant|>\n" \
                     "<|user|>\nAnd 3+3?<|endoftext|><|assistant|>\n"


def test_labels_with_a_chatml_template(tokenizer):
    tokenizer = tokenizer.__class__.from_pretrained(tokenizer.name_or_path)
    tokenizer.chat_template = QWEN_TEMPLATE
    tok = tokenize_conversation(tokenizer, CONVERSATION, max_length=512)
    assert _labelled_runs(tokenizer, tok.input_ids, tok.labels) == ["It is 4.<|im_end|>\n", "Six.<|im_end|>\n"]


def test_train_on_prompt_labels_everything(tokenizer):
    tok = tokenize_conversation(tokenizer, CONVERSATION, max_length=512, train_on_prompt=True)
    assert tok.labels == tok.input_ids


def test_summary_counts_truncation_and_drops(tokenizer, tmp_path):
    rows = [{"instruction": "Hi", "output": "Hello there."},
            {"instruction": "word " * 100, "output": "ok"},  # prompt alone longer than the limit
            {"instruction": "Tell", "output": "a " * 30},  # reply truncated
            {"instruction": "Empty", "output": ""}]
    path = tmp_path / "d.json"
    path.write_text(json.dumps(rows))
    train, summary = tokenize_all(tokenizer, to_conversations(read_records(path)), max_length=40)
    assert summary.rows == 4 and summary.used == 2 and len(train) == 2
    assert summary.truncated == 1
    assert set(summary.dropped) == {"the assistant reply is empty",
                                    "the prompt alone is longer than the max length (40 tokens)"}
    assert summary.dropped["the assistant reply is empty"] == ["item 4"]
    assert summary.min_tokens <= summary.median_tokens <= summary.p95_tokens <= summary.max_tokens
    assert all(len(t.input_ids) <= 40 for t in train)


@pytest.mark.parametrize("content, suffix, words", [
    (b"", ".json", "is empty"),
    (b"   \n\n ", ".json", "only whitespace"),
    (b'{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": \n{"instruction": "e", "output": "f"}\n',
     ".jsonl", "line 2, column"),
    (b'[{"instruction": "a", "output": "b"}, {"instruction": ', ".json", "line 1, column"),
    (b'"just a string"', ".json", "top level is a str"),
    ("instruction,output\ncaf\xe9,ok\n".encode("latin-1"), ".csv", "line 2: byte 0xe9 is not UTF-8"),
    ("[]".encode("utf-16"), ".json", "UTF-16"),
    (b"\x89PNG\r\n\x1a\n\x00\x00\x00", ".json", "binary"),
    (b"instruction,output\na,b\nc,d,e\n", ".csv", "line 3: 3 fields; expected 2"),
    (b'{"prompt": "x"}\n', ".jsonl", "missing column(s) completion"),
])
def test_bad_files_get_a_clear_error(tmp_path, content, suffix, words):
    path = tmp_path / f"data{suffix}"
    path.write_bytes(content)
    with pytest.raises(BadDataset) as info:
        to_conversations(read_records(path))
    assert words in info.value.message
    assert str(path) in info.value.message
    assert info.value.kind == "bad_dataset"


def test_a_folder_is_not_a_dataset(tmp_path):
    with pytest.raises(BadDataset, match="is a folder"):
        read_records(tmp_path)


def test_unknown_columns_list_found_and_expected(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text('{"foo": 1, "bar": 2}\n')
    with pytest.raises(BadDataset) as info:
        to_conversations(read_records(path))
    assert "foo, bar" in info.value.message and "instruction, output" in info.value.message
