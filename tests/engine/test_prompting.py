"""Few-shot rendering, chats fitted to the context, presets, the inspector's facts, examples saved as a
dataset, batch files."""

import json

import pytest

from studio.engine.data.files import read_records
from studio.engine.data.formats import to_conversations
from studio.engine.errors import BadDataset, StudioError
from studio.engine.prompt_fit import FittedChat, context_window, fit_chat, inspect_prompt, reply_room
from studio.engine.prompting.batch_files import read_prompt_file, save_batch_results
from studio.engine.prompting.dataset_export import example_conversations, save_dataset
from studio.engine.prompting.errors import BadPreset, BadPrompt
from studio.engine.prompting.presets import Example, Preset, load_preset, save_preset
from studio.engine.prompting.render import chat_messages, render, render_chat, render_completion
from studio.engine.prompting.sampling import SamplingSettings

EXAMPLES = [Example("2+2", "4"), Example("3+3", "6"), Example("a {output} b", "{input}")]


@pytest.fixture(scope="module")
def tokenizer():
    """A small real tokenizer (no model needed here) with the fallback chat template."""
    from studio.engine.data.render import ensure_chat_template
    from studio.engine.scratch import train_bpe_tokenizer

    tok = train_bpe_tokenizer(["What is two plus two? Four. Be brief, hello."] * 5, vocab_size=300)
    ensure_chat_template(tok)
    return tok


def test_chat_few_shot_examples_become_prior_turns(tokenizer):
    preset = Preset(mode="chat", system="Be brief.", examples=EXAMPLES[:2])
    text = render(tokenizer, preset, prompt="4+4")
    expected = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "2+2"},
                {"role": "assistant", "content": "4"}, {"role": "user", "content": "3+3"},
                {"role": "assistant", "content": "6"}, {"role": "user", "content": "4+4"}]
    assert text == tokenizer.apply_chat_template(expected, tokenize=False, add_generation_prompt=True)
    positions = [text.index(s) for s in ("<|system|>\nBe brief.", "<|user|>\n2+2", "<|assistant|>\n4",
                                         "<|user|>\n3+3", "<|assistant|>\n6", "<|user|>\n4+4")]
    assert positions == sorted(positions) and text.endswith("<|assistant|>\n")
    # The conversation continues after the examples.
    conv = [{"role": "user", "content": "4+4"}, {"role": "assistant", "content": "8"},
            {"role": "user", "content": "5+5"}]
    assert [m["role"] for m in chat_messages("", EXAMPLES[:1], conv)] == ["user", "assistant"] * 2 + ["user"]
    assert render(tokenizer, preset, conversation=conv).endswith(
        tokenizer.apply_chat_template([{"role": "user", "content": "5+5"}], tokenize=False,
                                      add_generation_prompt=True))


def test_completion_few_shot_block():
    text = render_completion("Add the numbers.", EXAMPLES, "5+5")
    assert text == ("Add the numbers.\n\nInput: 2+2\nOutput: 4\n\nInput: 3+3\nOutput: 6\n\n"
                    "Input: a {output} b\nOutput: {input}\n\nInput: 5+5\nOutput: ")
    assert render_completion("", [], "Once upon") == "Once upon"  # raw continuation
    assert render_completion("", EXAMPLES[:1], "x", "Q: {input} A: {output}") == "Q: 2+2 A: 4\n\nQ: x A: "
    with pytest.raises(BadPrompt, match=r"\{output\}"):
        render_completion("", EXAMPLES[:1], "x", "Q: {input}")
    with pytest.raises(BadPrompt, match="empty"):
        render_completion("sys", EXAMPLES, " ")


def test_preset_round_trip(tmp_path):
    preset = Preset(mode="completion", system="Sys", examples=EXAMPLES, completion_template="Q: {input}\nA: {output}",
                    sampling=SamplingSettings(greedy=False, temperature=0.3, top_p=0.8, top_k=7,
                                              repetition_penalty=1.3, max_new_tokens=99, stop_strings=["\n\n", "Q:"],
                                              seed=None))
    path = save_preset(preset, tmp_path / "p.json")
    assert load_preset(path) == preset


@pytest.mark.parametrize("content, match", [
    ("{not json", "line 1, column 2: invalid JSON"),
    ("[1, 2]", "top level is a list"),
    ('{"mode": "poetry"}', "'mode' is 'poetry'"),
    ('{"examples": [{"input": "a"}]}', "example 1 must be an object"),
    ('{"sampling": {"temperature": 99}}', "'temperature' is 99"),
    ('{"sampling": {"warmth": 1}}', "unknown sampling setting"),
    ('{"colour": 1}', "unknown field"),
    ('{"completion_template": "no fields"}', "needs both"),
])
def test_bad_preset_files_are_named_clearly(tmp_path, content, match):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(BadPreset, match=match) as info:
        load_preset(path)
    assert str(path) in info.value.message and info.value.hint


def test_missing_preset_file(tmp_path):
    with pytest.raises(BadPreset, match="does not exist"):
        load_preset(tmp_path / "none.json")


@pytest.mark.parametrize("fmt", ["alpaca", "messages", "sharegpt"])
@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_examples_saved_as_dataset_load_back(tmp_path, fmt, suffix):
    convs = example_conversations(EXAMPLES, "Be brief.")
    good = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "hi"},
            {"role": "assistant", "content": "hello"}, {"role": "user", "content": "7+7"},
            {"role": "assistant", "content": "14"}]
    path = save_dataset(convs + [good], tmp_path / f"ds{suffix}", fmt)
    loaded = to_conversations(read_records(path))
    assert loaded.format == fmt
    assert loaded.conversations == convs + [good]


def test_empty_or_malformed_dataset_is_refused(tmp_path):
    with pytest.raises(BadPrompt, match="nothing to save"):
        save_dataset([], tmp_path / "x.json")
    with pytest.raises(BadPrompt, match="user/assistant pairs"):
        save_dataset([[{"role": "user", "content": "hi"}]], tmp_path / "x.json")


def test_inspector_counts_tokens_and_context(tokenizer):
    from studio.engine.scratch import llama_config

    text = render(tokenizer, Preset(examples=EXAMPLES[:1]), prompt="hello")
    info = inspect_prompt(tokenizer, text, context_window(llama_config(300, context=512).to_dict()))
    assert info.tokens == len(tokenizer(text, add_special_tokens=False)["input_ids"]) > 5
    assert info.context_window == 512 and info.fits
    assert "".join(info.token_pieces) == text
    assert context_window({"n_positions": 1024}) == 1024
    assert context_window({"text_config": {"max_position_embeddings": 4096}}) == 4096


def test_sampling_settings_are_checked():
    with pytest.raises(BadPrompt, match="top_p"):
        SamplingSettings(top_p=0).validate()
    with pytest.raises(BadPrompt, match="'min_new_tokens' \\(20\\) is more than 'max_new_tokens' \\(10\\)"):
        SamplingSettings(max_new_tokens=10, min_new_tokens=20).validate()
    SamplingSettings(max_new_tokens=10, min_new_tokens=10).validate()
    with pytest.raises(BadPrompt, match="stop_strings"):
        SamplingSettings(stop_strings="x").validate()
    assert issubclass(BadPrompt, StudioError)


def test_prompt_files_and_batch_results(tmp_path):
    txt = tmp_path / "p.txt"
    txt.write_text("first\n\nsecond\n")
    assert read_prompt_file(txt) == ["first", "second"]
    jl = tmp_path / "p.jsonl"
    jl.write_text('{"prompt": "a"}\n{"prompt": "b"}\n')
    assert read_prompt_file(jl) == ["a", "b"]
    jl.write_text('{"prompt": "a"}\n{"text": "b"}\n')
    with pytest.raises(BadDataset, match="line 2"):
        read_prompt_file(jl)
    rows = [{"prompt": "a", "base": "x, y", "tuned": "z\n"}]
    import csv

    with save_batch_results(rows, tmp_path / "r.csv").open(newline="") as f:
        assert list(csv.DictReader(f)) == rows
    assert [json.loads(line) for line in save_batch_results(rows, tmp_path / "r.jsonl").read_text().splitlines()] \
        == rows


# ---- a chat fitted to the context window ------------------------------------------------------------------

def _tokens(tokenizer, text):
    return len(tokenizer(text, add_special_tokens=False)["input_ids"])


def _long_chat(turns=6):
    """Alternating user/assistant turns, each long enough that a few of them fill a small context."""
    chat = []
    for i in range(turns):
        chat.append({"role": "user" if i % 2 == 0 else "assistant", "content": f"turn {i}: " + "hello four " * 12})
    return chat + [{"role": "user", "content": "What is two plus two?"}]


def test_a_chat_that_fits_is_left_whole(tokenizer):
    preset = Preset(system="Be brief.", examples=EXAMPLES[:2])
    chat = _long_chat()
    fitted = fit_chat(tokenizer, preset, chat, context=10_000, room=100)
    assert fitted.text == render(tokenizer, preset, conversation=chat)
    assert fitted.tokens == _tokens(tokenizer, fitted.text)
    assert (fitted.dropped_turns, fitted.dropped_examples, fitted.dropped_system) == (0, 0, False)
    assert fitted.note() == ""


def test_a_long_chat_leaves_out_its_oldest_turns_and_keeps_the_system_prompt_and_examples(tokenizer):
    preset = Preset(system="Be brief.", examples=EXAMPLES[:2])
    chat = _long_chat()
    # Room for the prompt without the first two turns, but not with them.
    without_two = _tokens(tokenizer, render(tokenizer, preset, conversation=chat[2:]))
    context, room = without_two + 30, 30
    assert _tokens(tokenizer, render(tokenizer, preset, conversation=chat)) > context - room
    fitted = fit_chat(tokenizer, preset, chat, context=context, room=room)
    assert fitted.dropped_turns == 2 and fitted.dropped_examples == 0 and not fitted.dropped_system
    assert fitted.text == render(tokenizer, preset, conversation=chat[2:])
    assert fitted.tokens == without_two <= context - room
    assert fitted.note() == f"2 oldest turns left out to fit the {context}-token context"
    # Cuts fall before a user turn, so the kept conversation still starts with one.
    fitted = fit_chat(tokenizer, preset, chat, context=without_two + 29, room=30)
    assert fitted.dropped_turns == 4 and fitted.text == render(tokenizer, preset, conversation=chat[4:])


def test_when_the_last_message_alone_is_too_long_examples_and_then_the_system_prompt_go(tokenizer):
    preset = Preset(system="Be brief. " * 5, examples=EXAMPLES[:2])
    chat = _long_chat()
    last = chat[-1:]
    no_examples = _tokens(tokenizer, render_chat(tokenizer, preset.system, [], last))
    fitted = fit_chat(tokenizer, preset, chat, context=no_examples + 10, room=10)
    assert (fitted.dropped_turns, fitted.dropped_examples, fitted.dropped_system) == (6, 2, False)
    assert fitted.text == render_chat(tokenizer, preset.system, [], last)
    assert fitted.note().startswith("6 oldest turns and 2 few-shot examples left out to fit the ")
    bare = _tokens(tokenizer, render_chat(tokenizer, "", [], last))
    fitted = fit_chat(tokenizer, preset, chat, context=bare + 10, room=10)
    assert fitted.dropped_system and fitted.text == render_chat(tokenizer, "", [], last)
    assert "6 oldest turns, 2 few-shot examples and the system prompt left out" in fitted.note()
    # Less room than asked for is still a reply; no room at all is a clear error, not a traceback.
    fitted = fit_chat(tokenizer, preset, chat, context=bare + 1, room=10)
    assert fitted.tokens == bare and fitted.dropped_system
    with pytest.raises(BadPrompt, match=f"context window is {bare} tokens, so there is no room") as info:
        fit_chat(tokenizer, preset, chat, context=bare, room=10)
    assert info.value.hint


def test_reply_room_is_the_max_new_tokens_but_at_most_a_quarter_of_the_context():
    assert reply_room(SamplingSettings(max_new_tokens=64), 2048) == 64
    assert reply_room(SamplingSettings(max_new_tokens=100_000), 512) == 128
    assert reply_room(SamplingSettings(max_new_tokens=5), 2) == 1
    assert FittedChat("x", 1, 128, dropped_turns=1).note() == "1 oldest turn left out to fit the 128-token context"


# ---- sampling settings: one declaration for validation, the CLI and the panel --------------------------------

def test_sampling_validation_reads_the_declared_bounds_and_types():
    from dataclasses import fields

    bounds = {f.name: (f.metadata["min"], f.metadata["max"]) for f in fields(SamplingSettings)
              if f.metadata.get("min") is not None}
    assert bounds["temperature"] == (0.01, 5.0) and bounds["max_new_tokens"] == (1, 1_000_000)
    for name, (lo, hi) in bounds.items():
        SamplingSettings(**{name: hi, "max_new_tokens": 1_000_000}).validate()
        with pytest.raises(BadPrompt, match=f"'{name}' is .*; expected a (whole )?number from {lo} to {hi}") as info:
            SamplingSettings(**{name: hi * 2 + 1}).validate()
        assert info.value.field == name
    with pytest.raises(BadPrompt, match="'max_new_tokens' is 2.5; expected a whole number"):
        SamplingSettings(max_new_tokens=2.5).validate()
    with pytest.raises(BadPrompt, match="'greedy' is 'yes'; expected true or false"):
        SamplingSettings(greedy="yes").validate()
    SamplingSettings(seed=None, temperature=1).validate()  # no seed: a new reply each time; an int is a number


def test_stop_strings_have_one_line_form():
    from studio.engine.prompting.sampling import stop_strings_from_text, stop_strings_to_text

    stops = ["\n\n", "Q:", "a\tb"]
    assert stop_strings_to_text(stops) == "\\n\\n|Q:|a\\tb"
    assert stop_strings_from_text(stop_strings_to_text(stops)) == stops
    assert stop_strings_from_text("|x||") == ["x"]


def _generate_args(*options):
    from studio.cli import _sampling_from_args, build_parser

    return _sampling_from_args(build_parser().parse_args(["generate", "--model", "m", "--prompt", "p", *options]))


def test_generate_options_are_the_sampling_settings():
    from dataclasses import fields

    from studio.cli import build_parser

    generate = build_parser()._subparsers._group_actions[0].choices["generate"]
    options = {a.dest for a in generate._actions}
    assert {f.name for f in fields(SamplingSettings)} <= options
    help_text = generate.format_help()
    assert "From 0.01 to 1.0" in help_text and "Sample only from the k most likely tokens" in help_text
    assert _generate_args() == SamplingSettings()  # greedy, the declared defaults
    sampled = _generate_args("--temperature", "0.5", "--stop-strings", "\\n|Q:", "--max-new-tokens", "7")
    assert sampled == SamplingSettings(greedy=False, temperature=0.5, stop_strings=["\n", "Q:"], max_new_tokens=7)
    assert _generate_args("--temperature", "0").greedy  # the CLI's first spelling of greedy
    assert _generate_args("--top-k", "5", "--greedy").greedy
    assert not _generate_args("--no-greedy").greedy and _generate_args("--seed", "3").greedy


def test_generate_refuses_bad_sampling_before_loading_a_model(tmp_path, capsys):
    from studio.cli import main

    code = main(["generate", "--model", str(tmp_path / "no-model"), "--prompt", "Hi", "--top-p", "3"])
    err = capsys.readouterr().err
    assert code == 2 and "Sampling setting 'top_p' is 3.0; expected a number from 0.01 to 1.0." in err
    assert "no-model" not in err  # the settings were checked first
