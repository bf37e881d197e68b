"""Data people actually bring (issue 12): typed content parts, tool calls, good/bad marks, files mixing
formats, turns in an order nothing can be learned from, duplicate keys, control characters, template
placeholders, and raw text offered for fine-tuning. Each test writes a small file and reads it through the
same loader a run uses."""

import json

import pytest

from studio.engine.data.analysis import parse_dataset, render_dataset
from studio.engine.data.files import read_records
from studio.engine.data.formats import to_conversations
from studio.engine.data.render import IGNORE_INDEX, ensure_chat_template, tokenize_all, tokenize_conversation
from studio.engine.data.tools import TOOLS_PREAMBLE, TOOLS_ROLE, template_support
from studio.engine.errors import BadDataset

# A ChatML template that knows tools the way Qwen2.5's does: descriptions in the system block, calls in
# <tool_call> tags, results in a user block.
TOOLS_TEMPLATE = (
    "{%- if tools %}<|im_start|>system\n{% if messages[0].role == 'system' %}{{ messages[0].content }}\n\n"
    "{% endif %}<tools>\n{% for tool in tools %}{{ tool | tojson }}\n{% endfor %}</tools><|im_end|>\n"
    "{%- elif messages[0].role == 'system' %}<|im_start|>system\n{{ messages[0].content }}<|im_end|>\n{% endif %}"
    "{%- for message in messages %}"
    "{%- if message.role == 'system' %}"
    "{%- elif message.role == 'assistant' %}<|im_start|>assistant\n{{ message.content }}"
    "{%- for call in message.tool_calls or [] %}<tool_call>{{ {'name': call.function.name, "
    "'arguments': call.function.arguments} | tojson }}</tool_call>{% endfor %}<|im_end|>\n"
    "{%- elif message.role == 'tool' %}<|im_start|>user\n<tool_response>{{ message.content }}</tool_response>"
    "<|im_end|>\n"
    "{%- else %}<|im_start|>{{ message.role }}\n{{ message.content }}<|im_end|>\n{% endif %}"
    "{%- endfor %}{%- if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
# A template that knows only user and assistant turns, as many older models' do.
STRICT_TEMPLATE = (
    "{% for message in messages %}{% if message.role not in ['system', 'user', 'assistant'] %}"
    "{{ raise_exception('Only user and assistant roles are supported') }}{% endif %}"
    "{{ '[' + message.role + '] ' + message.content + eos_token }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '[assistant] ' }}{% endif %}")
WEATHER_TOOL = {"name": "get_weather", "description": "The weather now in a city",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


def write_jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def load(path, fmt="auto", mapping=None, **kw):
    return to_conversations(read_records(path), fmt, mapping, **kw)


@pytest.fixture
def tokenizer_with(tiny_llama):
    """A fresh copy of the tiny model's real tokenizer with the given chat template (None: the fallback)."""
    from studio.engine.models import load_tokenizer

    def make(template=None):
        tok = load_tokenizer(tiny_llama)
        if template is None:
            assert ensure_chat_template(tok)
        else:
            tok.chat_template = template
        return tok
    return make


def trained_and_masked(tok, messages):
    t = tokenize_conversation(tok, messages, max_length=1024)
    trained = tok.decode([i for i, label in zip(t.input_ids, t.labels) if label != IGNORE_INDEX])
    masked = tok.decode([i for i, label in zip(t.input_ids, t.labels) if label == IGNORE_INDEX])
    return trained, masked


# ---- 1. content as typed parts ---------------------------------------------------------------------------

def test_typed_text_parts_are_joined_and_other_parts_drop_the_row_naming_the_type(tmp_path):
    rows = [
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "Name a red fruit."},
                                                   {"type": "text", "text": "One word."}]},
                      {"role": "assistant", "content": [{"type": "text", "text": "Cherry."}]}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": "What is this?"},
                                                   {"type": "image_url", "image_url": {"url": "cat.png"}}]},
                      {"role": "assistant", "content": "A cat."}]},
        {"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "…"}}]},
                      {"role": "assistant", "content": "Hello."}]},
    ]
    convs = load(write_jsonl(tmp_path / "parts.jsonl", rows))
    assert convs.format == "messages" and convs.where == ["line 1"]
    assert convs.conversations[0] == [{"role": "user", "content": "Name a red fruit.\nOne word."},
                                      {"role": "assistant", "content": "Cherry."}]
    assert convs.dropped == {
        "a content part of type 'image_url' in 'messages': only text parts can be trained on, so the row is left "
        "out": ["line 2"],
        "a content part of type 'input_audio' in 'messages': only text parts can be trained on, so the row is "
        "left out": ["line 3"]}


def test_sharegpt_values_as_typed_parts(tmp_path):
    path = tmp_path / "parts.json"
    path.write_text(json.dumps([{"conversations": [
        {"from": "human", "value": [{"type": "text", "text": "Hi"}]},
        {"from": "gpt", "value": [{"type": "text", "text": "Hello"}, {"type": "text", "text": "there"}]}]}]))
    assert load(path).conversations == [[{"role": "user", "content": "Hi"},
                                         {"role": "assistant", "content": "Hello\nthere"}]]


# ---- 2. tool calls ---------------------------------------------------------------------------------------

def sharegpt_tool_row(tools_as_text=True):
    return {"conversations": [
        {"from": "human", "value": "Is it raining in Oslo?"},
        {"from": "function_call", "value": json.dumps({"name": "get_weather", "arguments": {"city": "Oslo"}})},
        {"from": "observation", "value": json.dumps({"rain_mm": 7})},
        {"from": "gpt", "value": "Yes, 7 mm of rain."}],
        "tools": json.dumps([WEATHER_TOOL]) if tools_as_text else [WEATHER_TOOL]}


def openai_tool_row():
    return {"messages": [
        {"role": "system", "content": "You check the weather."},
        {"role": "user", "content": "Is it raining in Oslo?"},
        {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "{\"rain_mm\": 7}"},
        {"role": "assistant", "content": "Yes, 7 mm of rain."}],
        "tools": [{"type": "function", "function": WEATHER_TOOL}]}


def test_sharegpt_function_call_and_observation_turns_with_a_tools_column(tmp_path):
    convs = load(write_jsonl(tmp_path / "tools.jsonl", [sharegpt_tool_row(), sharegpt_tool_row(False)]))
    assert convs.format == "sharegpt" and len(convs.conversations) == 2 and not convs.dropped
    tools, user, call, result, reply = convs.conversations[0]
    assert tools["role"] == TOOLS_ROLE and json.loads(tools["content"]) == [{"type": "function",
                                                                              "function": WEATHER_TOOL}]
    assert user == {"role": "user", "content": "Is it raining in Oslo?"}
    assert call == {"role": "assistant", "content": "", "tool_calls": [
        {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}]}
    assert result == {"role": "tool", "content": "{\"rain_mm\": 7}"}
    assert reply == {"role": "assistant", "content": "Yes, 7 mm of rain."}
    assert convs.conversations[1] == convs.conversations[0]  # tools as a JSON string or as a list


def test_openai_tool_calls_and_tool_messages(tmp_path):
    convs = load(write_jsonl(tmp_path / "tools.jsonl", [openai_tool_row()]))
    messages = convs.conversations[0]
    assert [m["role"] for m in messages] == [TOOLS_ROLE, "system", "user", "assistant", "tool", "assistant"]
    assert messages[3]["tool_calls"] == [{"type": "function", "id": "call_1", "function": {
        "name": "get_weather", "arguments": "{\"city\": \"Oslo\"}"}}]
    assert messages[4] == {"role": "tool", "content": "{\"rain_mm\": 7}", "tool_call_id": "call_1"}


def test_a_template_with_tools_renders_them_and_trains_the_call_but_not_the_result(tmp_path, tokenizer_with):
    tok = tokenizer_with(TOOLS_TEMPLATE)
    assert template_support(tok) == (True, True)
    for row in (sharegpt_tool_row(), openai_tool_row()):
        messages = load(write_jsonl(tmp_path / "t.jsonl", [row])).conversations[0]
        trained, masked = trained_and_masked(tok, messages)
        assert '<tool_call>{"name": "get_weather", "arguments": {"city": "Oslo"}}</tool_call>' in trained
        assert "Yes, 7 mm of rain." in trained
        assert "rain_mm" not in trained and "Is it raining" not in trained
        assert '<tools>\n{"type": "function", "function": {"name": "get_weather"' in masked
        assert '<tool_response>{"rain_mm": 7}</tool_response>' in masked


def test_without_tool_support_the_documented_fallback_is_used(tmp_path, tokenizer_with):
    tok = tokenizer_with(None)  # the studio's fallback template: any role, no tools
    assert template_support(tok) == (False, True)
    messages = load(write_jsonl(tmp_path / "t.jsonl", [sharegpt_tool_row()])).conversations[0]
    trained, masked = trained_and_masked(tok, messages)
    assert masked.startswith(f"<|system|>\n{TOOLS_PREAMBLE}\n{json.dumps(WEATHER_TOOL)}")
    assert '{"name": "get_weather", "arguments": {"city": "Oslo"}}' in trained
    assert '<|tool|>\n{"rain_mm": 7}' in masked and "rain_mm" not in trained


def test_a_template_without_a_tool_role_gets_the_result_as_a_user_turn(tmp_path, tokenizer_with):
    tok = tokenizer_with(STRICT_TEMPLATE)
    assert template_support(tok) == (False, False)
    messages = load(write_jsonl(tmp_path / "t.jsonl", [openai_tool_row()])).conversations[0]
    trained, masked = trained_and_masked(tok, messages)
    assert '[user] Tool result:\n{"rain_mm": 7}' in masked and "rain_mm" not in trained
    assert '{"name": "get_weather", "arguments": {"city": "Oslo"}}' in trained


def test_a_tools_column_is_never_ignored(tmp_path, tokenizer_with):
    rows = [{"instruction": "Weather in Oslo?", "output": "Let me check.", "tools": json.dumps([WEATHER_TOOL])},
            {"instruction": "Weather in Rome?", "output": "Sunny.", "tools": "[{\"name\": broken"},
            {"instruction": "Weather in Bern?", "output": "Cold.", "tools": json.dumps([{"description": "x"}])}]
    convs = load(write_jsonl(tmp_path / "t.jsonl", rows))
    assert convs.conversations[0][0]["role"] == TOOLS_ROLE
    assert set(convs.dropped) == {
        "column 'tools' is not valid JSON (Expecting value); expected a list of tool descriptions",
        "a tool in column 'tools' has no 'name'; expected {\"name\": …, \"description\": …, \"parameters\": {…}}"}
    _, masked = trained_and_masked(tokenizer_with(None), convs.conversations[0])
    assert "get_weather" in masked


def test_a_malformed_call_drops_the_row_with_the_reason(tmp_path):
    bad_call = sharegpt_tool_row()
    bad_call["conversations"][1]["value"] = "get_weather(Oslo)"
    bad_args = openai_tool_row()
    bad_args["messages"][2]["tool_calls"][0]["function"]["arguments"] = "{city: Oslo"
    rows = [sharegpt_tool_row(), bad_call]
    assert list(load(write_jsonl(tmp_path / "a.jsonl", rows)).dropped) == [
        "a 'function_call' turn in 'conversations' is not JSON with a 'name' and 'arguments'; expected "
        "{\"name\": …, \"arguments\": {…}}"]
    assert load(write_jsonl(tmp_path / "b.jsonl", [openai_tool_row(), bad_args])).dropped == {
        "the arguments of a tool call in 'messages' are not valid JSON": ["line 2"]}


def test_tool_descriptions_longer_than_the_limit_drop_the_row_as_too_long(tmp_path, tokenizer_with):
    row = sharegpt_tool_row()
    row["tools"] = json.dumps([{**WEATHER_TOOL, "description": "very long " * 400}])
    convs = load(write_jsonl(tmp_path / "t.jsonl", [row, MIXED[0]]))
    assert len(convs.conversations[0][0]["content"]) > 64 * 32  # past the cut made before tokenizing
    train, summary = tokenize_all(tokenizer_with(None), convs, max_length=64)
    assert len(train) == 1 and summary.dropped == {
        "the prompt alone is longer than the max length (64 tokens)": ["line 1"]}


def test_the_preview_shows_the_calls_and_the_rendering_marks_them(tmp_path, tiny_llama):
    path = write_jsonl(tmp_path / "t.jsonl", [sharegpt_tool_row()])
    parsed = parse_dataset(path)
    assert parsed.error is None
    assert parsed.preview[0][1][2]["content"] == '[tool call] {"name": "get_weather", "arguments": {"city": "Oslo"}}'
    rendered = render_dataset(parsed, str(tiny_llama), max_length=512)
    assert rendered.error is None and rendered.summary.used == 1
    _, text, spans = rendered.previews[0]
    assert [text[a:b] for a, b in spans] == ['{"name": "get_weather", "arguments": {"city": "Oslo"}}<|endoftext|>',
                                             "Yes, 7 mm of rain.<|endoftext|>"]


# ---- 3. good/bad marks ----------------------------------------------------------------------------------

def test_rows_marked_undesirable_are_dropped_and_the_marks_kept(tmp_path):
    rows = [{"prompt": "Capital of France?", "completion": "Paris.", "label": True},
            {"prompt": "Capital of France?", "completion": "Berlin.", "label": False},
            {"prompt": "2+2?", "completion": "4", "label": None}]
    path = write_jsonl(tmp_path / "kto.jsonl", rows)
    convs = load(path)
    assert convs.where == ["line 1", "line 3"] and convs.labels == [True, None] and convs.label_column == "label"
    assert convs.dropped == {"reply marked undesirable (column 'label' is false); preference tuning can use it":
                             ["line 2"]}
    kept = load(path, keep_undesirable=True)
    assert kept.labels == [True, False, None] and kept.conversations[1][-1]["content"] == "Berlin."


def test_marks_from_a_csv_and_conversational_prompt_completion_rows(tmp_path):
    csv = tmp_path / "kto.csv"
    csv.write_text("instruction,output,kto_tag\nSay hi,Hi!,true\nSay hi,Go away.,False\n")
    convs = load(csv)
    assert convs.labels == [True] and list(convs.dropped) == [
        "reply marked undesirable (column 'kto_tag' is false); preference tuning can use it"]
    conversational = [{"prompt": [{"role": "user", "content": "Hi"}],
                       "completion": [{"role": "assistant", "content": "Hello!"}], "desirable": 0}]
    assert load(write_jsonl(tmp_path / "c.jsonl", conversational), keep_undesirable=True).labels == [False]


def test_a_label_column_that_is_not_true_false_is_not_a_mark_and_says_so(tmp_path):
    rows = [{"instruction": "Great film!", "output": "Thanks.", "label": "positive"}]
    convs = load(write_jsonl(tmp_path / "l.jsonl", rows))
    assert convs.label_column is None and convs.labels == [None] and not convs.dropped
    assert any("column 'label' holds 'positive' (line 1), not true/false" in w for w in convs.warnings)


# ---- 4. files mixing formats ----------------------------------------------------------------------------

MIXED = [{"instruction": "Say hi.", "output": "Hi!"},
         {"messages": [{"role": "user", "content": "Say bye."}, {"role": "assistant", "content": "Bye!"}]},
         {"text": "Some raw text about nothing."},
         {"instruction": "Count to two.", "input": "", "output": "1, 2."},
         {"messages": [{"role": "user", "content": "Yes?"}, {"role": "assistant", "content": "No."}]}]


def test_with_format_auto_each_row_is_read_in_its_own_format(tmp_path):
    path = write_jsonl(tmp_path / "mixed.jsonl", MIXED)
    convs = load(path)
    assert convs.format == "alpaca+messages" and convs.where == ["line 1", "line 2", "line 4", "line 5"]
    assert convs.conversations[1] == MIXED[1]["messages"]
    assert list(convs.dropped) == ["the row holds only plain text (field 'text'): that is pre-training data (the "
                                   "Pre-train tab), not a prompt with a reply"]
    assert f"{path}: the rows are in different formats — alpaca (line 1, line 4); messages (line 2, line 5); " \
           f"plain text (line 3); each row is read in its own format." in convs.warnings
    assert not any("'instruction' is empty" in reason for reason in convs.dropped)


def test_with_a_format_chosen_rows_in_another_format_say_so(tmp_path):
    convs = load(write_jsonl(tmp_path / "mixed.jsonl", MIXED), "alpaca")
    assert convs.format == "alpaca" and convs.where == ["line 1", "line 4"]
    assert convs.dropped["the row is in 'messages' format while the file is read as alpaca"] == ["line 2", "line 5"]
    assert not any("'instruction' is empty" in reason for reason in convs.dropped)


def test_the_format_is_the_one_the_rows_were_read_in(tmp_path):
    rows = [{"instruction": None, "output": None, "messages": MIXED[1]["messages"]}, MIXED[4]]
    convs = load(write_jsonl(tmp_path / "m.jsonl", rows))
    assert convs.format == "messages" and len(convs.conversations) == 2


def test_a_null_field_in_a_file_of_one_format_keeps_its_precise_reason(tmp_path):
    rows = [{"instruction": "a", "output": "b"}, {"instruction": None, "output": "c"}]
    assert load(write_jsonl(tmp_path / "a.jsonl", rows)).dropped == {"field 'instruction' is empty (null)":
                                                                     ["line 2"]}


# ---- 5. turns in an order nothing can be learned from ------------------------------------------------------

def test_turns_in_an_unlearnable_order_are_dropped_with_the_reason(tmp_path):
    def conv(*roles):
        return {"messages": [{"role": r, "content": f"{r} text"} for r in roles]}
    rows = [conv("user", "assistant"), conv("assistant", "assistant"), conv("system", "assistant", "user", "assistant"),
            conv("user", "assistant", "user"), conv("system", "user", "assistant", "user", "assistant")]
    convs = load(write_jsonl(tmp_path / "order.jsonl", rows))
    assert convs.where == ["line 1", "line 5"]
    assert convs.dropped == {
        "no user turn: only assistant turns, so there is no prompt to learn a reply to": ["line 2"],
        "the conversation starts with an assistant turn; expected a user turn first": ["line 3"],
        "the conversation ends with a user turn that has no reply, so there is nothing to learn from that turn":
            ["line 4"]}


# ---- 6. duplicate keys and control characters --------------------------------------------------------------

def test_duplicate_keys_are_warned_about_with_their_locations(tmp_path):
    jsonl = tmp_path / "dup.jsonl"
    jsonl.write_text('{"instruction": "a", "output": "b"}\n'
                     '{"instruction": "c", "output": "first", "output": "second"}\n')
    records = read_records(jsonl)
    assert records.rows[1]["output"] == "second"
    assert records.warnings == [f"{jsonl}: an object names the same key twice — 'output' (line 2). JSON keeps "
                                f"only the last value, so the earlier ones are ignored; remove the duplicates "
                                f"if they were meant to be different fields."]
    listed = tmp_path / "dup.json"
    listed.write_text('[{"instruction": "a", "output": "b"}, {"messages": [{"role": "user", "role": "assistant", '
                      '"content": "x"}]}]')
    assert "'role' (item 2)" in read_records(listed).warnings[0]
    csv = tmp_path / "dup.csv"
    csv.write_text("instruction,output,output\na,b,c\n")
    assert read_records(csv).warnings == [f"{csv}, line 1: the header names the column(s) 'output' more than "
                                          f"once; only the last column of each name is read."]


def test_control_characters_are_stripped_and_counted(tmp_path):
    path = tmp_path / "ctl.jsonl"
    rows = [{"instruction": "Colour \u001b[31mred\u001b[0m please", "output": "Red\u0007!"},
            {"instruction": "Fine", "output": "Tab\tand\nnewline stay"},
            {"instruction": "Nul\u0000here", "output": "ok"}]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    records = read_records(path)
    assert records.rows[0] == {"instruction": "Colour red please", "output": "Red!"}
    assert records.rows[1]["output"] == "Tab\tand\nnewline stay" and records.rows[2]["instruction"] == "Nulhere"
    assert records.warnings == [f"{path}: 4 control characters stripped from the text of 2 row(s) (line 1, line 3): "
                                f"ANSI escape sequence ×2, BEL ×1, NUL ×1. They are invisible in editors and only "
                                f"confuse the model."]


@pytest.mark.parametrize("text, cleaned", [
    ("Title\u001b]0;my terminal\u0007 set", "Title set"),  # a terminal title sequence goes whole
    ("A stray \u001b] keeps the rest", "A stray  keeps the rest"),  # unterminated: only ESC ] goes
    ("Bold \u001b[1mword\u001b[22m", "Bold word"),
])
def test_escape_sequences_go_whole_and_never_take_the_text_after_them(tmp_path, text, cleaned):
    path = tmp_path / "esc.jsonl"
    path.write_text(json.dumps({"instruction": text, "output": "ok"}) + "\n")
    assert read_records(path).rows[0]["instruction"] == cleaned


def test_raw_control_bytes_in_json_and_csv_are_read_and_stripped(tmp_path):
    json_path = tmp_path / "raw.json"
    json_path.write_bytes(b'[{"instruction": "bell\x07 here", "output": "ok"}]')
    assert read_records(json_path).rows[0]["instruction"] == "bell here"
    csv_path = tmp_path / "raw.csv"
    csv_path.write_bytes(b"instruction,output\n" + b"long enough text for one stray byte " * 3 + b"a\x00b,ok\n")
    records = read_records(csv_path)
    assert records.rows[0]["instruction"].endswith("ab") and "NUL ×1" in records.warnings[0]


def test_warnings_reach_the_dataset_panel_and_studio_check(tmp_path, capsys):
    from studio.cli import main

    path = tmp_path / "w.jsonl"
    path.write_text('{"instruction": "Hi {{name}}\\u0007", "output": "a", "output": "Hello!"}\n')
    parsed = parse_dataset(path)
    assert parsed.error is None and len(parsed.warnings) == 3 and parsed.placeholders == {"name": ["line 1"]}
    assert main(["check", str(path)]) == 0
    out = capsys.readouterr()
    assert "1 usable rows" in out.out
    warned = [line for line in out.err.splitlines() if line.startswith("warning: ")]
    assert [w[len("warning: "):] for w in warned] == parsed.warnings


# ---- 7. placeholders ----------------------------------------------------------------------------------------

def test_placeholders_are_warned_about_and_filled_from_the_config(tmp_path):
    from studio.engine.config import FineTuneConfig, from_dict

    path = write_jsonl(tmp_path / "p.jsonl", [
        {"instruction": "Who are you?", "output": "I am {{ assistant_name }}, made by {{company}}."},
        {"instruction": "Hello", "output": "Hi, {name}! Keep {{company}} in mind; <<x>> and {{{{ are text."}])
    convs = load(path)
    assert convs.placeholders == {"assistant_name": ["line 1"], "company": ["line 1", "line 2"]}
    assert convs.warnings == [f"{path}: template placeholders left in the text — {{{{assistant_name}}}} (line 1); "
                              f"{{{{company}}}} (line 1, line 2). Give them values in the 'placeholders' setting "
                              f"(Data), or they are trained on as written."]
    cfg = from_dict({"dataset": str(path), "placeholders": {"assistant_name": "Quill", "company": "Acme"}})
    assert FineTuneConfig().placeholders == {}
    filled = load(path, placeholders=cfg.placeholders)
    assert filled.conversations[0][-1]["content"] == "I am Quill, made by Acme."
    assert filled.conversations[1][-1]["content"] == "Hi, {name}! Keep Acme in mind; <<x>> and {{{{ are text."
    assert filled.warnings == [] and filled.placeholders == convs.placeholders
    assert read_records(path).rows[0]["output"].startswith("I am {{ assistant_name }}")  # the file as read
    partly = load(path, mapping={"{{company}}": "Acme"})  # how `studio check --map` passes values
    assert partly.conversations[0][-1]["content"] == "I am {{ assistant_name }}, made by Acme."
    assert "{{assistant_name}} (line 1)" in partly.warnings[0] and "company" not in partly.warnings[0]
    assert parse_dataset(path, placeholders=cfg.placeholders).preview[0][1][-1]["content"] == \
        "I am Quill, made by Acme."


# ---- 8. raw text offered to Fine-tune -----------------------------------------------------------------------

@pytest.mark.parametrize("name", ["notes.txt", "book.md"])
def test_raw_text_points_to_the_pretrain_tab(tmp_path, name):
    path = tmp_path / name
    path.write_text("Once upon a time there was a fox.\n\nIt ran.\n")
    with pytest.raises(BadDataset) as info:
        read_records(path)
    assert str(path) in info.value.message
    assert "raw text is pre-training data: open it in the Pre-train tab" in info.value.message


def test_the_summary_after_tokenizing_a_mixed_file(tmp_path, tokenizer_with):
    path = write_jsonl(tmp_path / "mixed.jsonl", MIXED + [sharegpt_tool_row()])
    train, summary = tokenize_all(tokenizer_with(None), load(path), max_length=1024)
    assert summary.format == "alpaca+messages+sharegpt" and summary.used == len(train) == 5 and summary.rows == 6
