"""Streaming generation and the playground's model pair, against plain transformers `generate`."""

import threading

import pytest

from studio.engine.errors import BadModel, StudioError
from studio.engine.generation import load_for_generation, load_pair
from studio.engine.prompting.errors import BadPrompt
from studio.engine.prompting.presets import Example, Preset
from studio.engine.prompting.render import render
from studio.engine.prompting.sampling import SamplingSettings
from tests.conftest import QA_PAIRS
from tests.engine.generation_helpers import make_random_adapter, plain_generate

GREEDY = SamplingSettings(greedy=True, max_new_tokens=24, seed=0)


@pytest.fixture(scope="module")
def random_adapter(tiny_llama, tmp_path_factory):
    return make_random_adapter(tiny_llama, tmp_path_factory.mktemp("random-adapter"))


@pytest.fixture(scope="module")
def pair(tiny_llama, random_adapter):
    return load_pair(str(tiny_llama), str(random_adapter), device="cpu")


def test_greedy_chat_stream_equals_plain_generate_with_adapter_and_without(pair, tiny_llama, random_adapter):
    preset = Preset(mode="chat", system="Answer briefly.", examples=[Example("Who painted the blue fox?",
                                                                             "Mira Telsen painted the blue fox.")])
    text = render(pair.base.tokenizer, preset, prompt="What is the capital of Zorbia?")
    chunks = {"base": [], "tuned": []}
    results = {side: pair.generate(side, text, GREEDY, chat=True, on_text=chunks[side].append) for side in pair.sides}
    expected_tuned = plain_generate(tiny_llama, text, GREEDY.max_new_tokens, adapter=random_adapter)
    expected_base = plain_generate(tiny_llama, text, GREEDY.max_new_tokens)
    assert results["tuned"].text == expected_tuned
    assert results["base"].text == expected_base  # the adapter really is off on the base side
    assert expected_tuned != expected_base  # ...and really does something on the tuned side
    for side in pair.sides:
        assert len(chunks[side]) > 1, "streaming emits several chunks"
        assert "".join(chunks[side]) == results[side].text
        r = results[side]
        assert r.prompt_tokens > 0 and r.context_window == 512 and r.new_tokens > 0
        assert r.time_to_first_token_s is not None and r.time_to_first_token_s >= 0


def test_greedy_completion_equals_plain_generate(pair, tiny_llama):
    preset = Preset(mode="completion", examples=[Example("Kelp", "seven moons")])
    text = render(pair.base.tokenizer, preset, prompt="Zorbia")
    assert text == "Input: Kelp\nOutput: seven moons\n\nInput: Zorbia\nOutput: "
    result = pair.generate("base", text, GREEDY, chat=False)
    assert result.text == plain_generate(tiny_llama, text, GREEDY.max_new_tokens, add_special_tokens=True)


def test_full_fine_tuned_folder_loads_as_a_second_model(tiny_llama):
    pair = load_pair(str(tiny_llama), str(tiny_llama), device="cpu")
    assert pair.sides == ["base", "tuned"] and not pair.shared and pair.tuned is not pair.base
    a = pair.generate("base", "The capital", GREEDY, chat=False).text
    assert a == pair.generate("tuned", "The capital", GREEDY, chat=False).text


def test_memorised_adapter_answers_with_learned_text_and_base_does_not(tiny_llama, memorised_adapter):
    pair = load_pair(str(tiny_llama), str(memorised_adapter), device="cpu")
    settings = SamplingSettings(greedy=True, max_new_tokens=30)
    for question, answer in QA_PAIRS[:2]:
        text = render(pair.base.tokenizer, Preset(mode="chat"), prompt=question)
        tuned = pair.generate("tuned", text, settings).text
        base = pair.generate("base", text, settings).text
        assert tuned.strip() == answer
        assert answer not in base


def test_stop_flag_ends_a_long_generation_early(pair):
    stop = threading.Event()
    chunks = []

    def on_text(chunk):
        chunks.append(chunk)
        if len(chunks) == 3:
            stop.set()

    settings = SamplingSettings(greedy=False, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=400, seed=3)
    result = pair.generate("tuned", "Once upon a time", settings, chat=False, on_text=on_text, stop_event=stop)
    assert result.stop_reason == "stopped"
    assert result.new_tokens < 10
    assert result.text == "".join(chunks)


def test_stop_strings_cut_the_reply_and_nothing_after_is_streamed(pair):
    full = pair.generate("base", "The", SamplingSettings(greedy=True, max_new_tokens=30), chat=False).text
    assert len(full) > 12
    stop = full[8:11]
    expected = full[: full.find(stop)]
    chunks = []
    result = pair.generate("base", "The", SamplingSettings(greedy=True, max_new_tokens=30, stop_strings=[stop]),
                           chat=False, on_text=chunks.append)
    assert result.text == expected
    assert "".join(chunks) == expected
    assert result.stop_reason == "stop_string"
    assert result.new_tokens < 30


def test_seeded_sampling_repeats(pair):
    settings = SamplingSettings(greedy=False, temperature=1.2, top_p=0.95, top_k=40, repetition_penalty=1.2,
                                max_new_tokens=16, seed=7)
    a = pair.generate("tuned", "The", settings, chat=False).text
    assert a == pair.generate("tuned", "The", settings, chat=False).text


def test_empty_and_too_long_prompts_are_clear_errors(pair):
    with pytest.raises(BadPrompt, match="empty"):
        pair.generate("base", "   ", GREEDY, chat=False)
    with pytest.raises(BadPrompt, match="empty"):
        render(pair.base.tokenizer, Preset(mode="chat"), prompt="  ")
    long_text = "word " * 2000
    with pytest.raises(BadPrompt, match="context window is 512 tokens") as info:
        pair.generate("base", long_text, GREEDY, chat=False)
    assert info.value.hint


def test_missing_adapter_and_not_an_adapter(tiny_llama, tmp_path):
    with pytest.raises(BadModel, match="does not exist"):
        load_pair(str(tiny_llama), str(tmp_path / "nope"), device="cpu")
    with pytest.raises(BadModel, match="does not exist"):
        load_for_generation(str(tiny_llama), str(tmp_path / "nope"), device="cpu")
    (tmp_path / "junk").mkdir()
    with pytest.raises(BadModel, match="adapter_config.json"):
        load_pair(str(tiny_llama), str(tmp_path / "junk"), device="cpu")


def test_adapter_for_another_base_model_is_refused(tiny_llama, tmp_path):
    from studio.engine.scratch import save_new_causal_lm

    other = save_new_causal_lm(tmp_path / "other", ["some other text for a tokenizer"] * 5, vocab_size=300,
                               hidden=32, layers=1)
    adapter = make_random_adapter(other, tmp_path / "other-adapter")
    with pytest.raises(BadModel, match="does not fit") as info:
        load_pair(str(tiny_llama), str(adapter), device="cpu")
    assert isinstance(info.value, StudioError) and "base model" in info.value.hint


def test_generate_text_cli_path_still_works(tiny_llama):
    loaded = load_for_generation(str(tiny_llama), device="cpu")
    text = loaded.tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False,
                                                add_generation_prompt=True)
    from studio.engine.generation import generate_text

    assert generate_text(loaded, "Hi", max_new_tokens=10) == plain_generate(tiny_llama, text, 10)


def test_engine_stays_free_of_qt():
    import subprocess
    import sys

    code = ("import sys, studio.engine.generation, studio.engine.prompting, studio.engine.streaming; "
            "print(any(m.startswith('PySide6') for m in sys.modules))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "False"


def test_the_streamer_decodes_incrementally_and_exactly(pair):
    """Each token is decoded with a few neighbours, not with the whole reply again: the decoding work
    grows with the reply's length, not with its square, and the text equals decoding the whole reply."""
    import torch

    from studio.engine.streaming import CallbackStreamer

    tokenizer = pair.base.tokenizer
    text = "Grüße aus Zürich 🙂 — 日本語のテキスト, and plain words too. " * 12
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) > 300
    decoded_ids = []

    class CountingTokenizer:  # the real tokenizer, counting how many ids it is asked to decode
        def decode(self, token_ids, **kwargs):
            decoded_ids.append(len(token_ids))
            return tokenizer.decode(token_ids, **kwargs)

    chunks = []
    streamer = CallbackStreamer(CountingTokenizer(), chunks.append, stop_strings=["never there"])
    streamer.put(torch.tensor([[1, 2, 3]]))  # the prompt, skipped
    for token in ids:
        streamer.put(torch.tensor([token]))
    streamer.end()
    assert "".join(chunks) == streamer.text == tokenizer.decode(ids, skip_special_tokens=True)
    assert not any("\ufffd" in c for c in chunks), "a character split across tokens is never shown half"
    assert sum(decoded_ids) < 8 * len(ids)  # re-decoding the whole reply each time would be ~len(ids)**2 / 2


def test_min_new_tokens_holds_off_the_end_and_on_tokens_counts_live(tiny_llama, memorised_adapter):
    pair = load_pair(str(tiny_llama), str(memorised_adapter), device="cpu")
    question, answer = QA_PAIRS[0]
    text = render(pair.base.tokenizer, Preset(mode="chat"), prompt=question)
    ended = pair.generate("tuned", text, SamplingSettings(greedy=True, max_new_tokens=30))
    assert ended.stop_reason == "eos" and ended.new_tokens < 30
    counts = []
    held = pair.generate("tuned", text, SamplingSettings(greedy=True, max_new_tokens=30, min_new_tokens=30),
                         on_tokens=lambda n, seconds: counts.append((n, seconds)))
    assert held.stop_reason == "length" and held.new_tokens == 30
    assert held.text.startswith(answer)
    assert [n for n, _ in counts] == list(range(1, 31))
    assert counts[0][1] == 0 and all(a[1] <= b[1] for a, b in zip(counts, counts[1:]))
