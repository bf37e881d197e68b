"""The streamed text of a long reply with multi-byte characters equals the final decode, and stop strings
end generation on the token that completes them (transformers' own stop-string matching)."""

import pytest

from studio.engine.prompting.sampling import SamplingSettings

WORDS = "Grüße aus Zürich, Ærøskøbing und Tōkyō: 日本語のテキスト 🙂 — naïve café señor. "
LENGTH = 300


@pytest.fixture(scope="module")
def multibyte_model(tmp_path_factory):
    """A tiny random Llama whose byte-level vocabulary was trained on text full of multi-byte characters:
    sampling from it gives replies where characters are split across tokens and merged in many ways."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from studio.engine.scratch import save_new_causal_lm

    folder = save_new_causal_lm(tmp_path_factory.mktemp("multibyte"), [WORDS * 3] * 20, vocab_size=420,
                                hidden=32, layers=1, heads=2)
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    return model, AutoTokenizer.from_pretrained(folder)


def _settings(**changes):
    return SamplingSettings(**{**dict(greedy=False, temperature=1.0, top_p=1.0, top_k=0, max_new_tokens=LENGTH,
                                      min_new_tokens=LENGTH, seed=11), **changes})


def _plain_sampled_ids(model, tokenizer, prompt: str, settings: SamplingSettings) -> list[int]:
    """Reference: plain transformers generate with the same seed and sampling settings."""
    import torch

    enc = tokenizer(prompt, return_tensors="pt", add_special_tokens=False)
    torch.manual_seed(settings.seed)
    with torch.inference_mode():
        out = model.generate(**enc, do_sample=True, temperature=settings.temperature, top_p=settings.top_p,
                             top_k=None, max_new_tokens=settings.max_new_tokens,
                             min_new_tokens=settings.min_new_tokens, pad_token_id=tokenizer.pad_token_id,
                             eos_token_id=tokenizer.eos_token_id)
    return out[0, enc["input_ids"].shape[1]:].tolist()


def test_a_long_multibyte_reply_streams_exactly_its_final_decode(multibyte_model):
    from studio.engine.streaming import stream_generate

    model, tokenizer = multibyte_model
    chunks = []
    result = stream_generate(model, tokenizer, "Grüße", _settings(), context_window=512, on_text=chunks.append)
    ids = _plain_sampled_ids(model, tokenizer, "Grüße", _settings())
    final = tokenizer.decode(ids, skip_special_tokens=True)
    assert result.new_tokens == len(ids) == LENGTH and result.stop_reason == "length"
    assert "".join(chunks) == result.text == final
    assert len(chunks) > 50, "streamed piece by piece, not at the end"
    multibyte = {c for c in final if len(c.encode("utf-8")) > 1 and c != "\ufffd"}
    assert len(multibyte) >= 5, multibyte  # the reply really is full of multi-byte characters
    # Some tokens hold only part of a character: the streamer waited for the rest before showing it.
    assert any("\ufffd" in tokenizer.decode([t]) for t in ids)


def test_a_multibyte_stop_string_ends_generation_on_the_token_that_completes_it(multibyte_model):
    from studio.engine.streaming import stream_generate

    model, tokenizer = multibyte_model
    ids = _plain_sampled_ids(model, tokenizer, "Grüße", _settings())
    full = tokenizer.decode(ids, skip_special_tokens=True)
    # A stop string that ends in a multi-byte character, from the middle of the reply (no bytes of a broken
    # character in it: those decode to U+FFFD, which no token sequence spells).
    at = next(i for i in range(len(full) // 3, len(full))
              if len(full[i].encode("utf-8")) > 1 and "\ufffd" not in full[i - 2:i + 1])
    stop = full[at - 2:at + 1]
    completing = next(k for k in range(1, len(ids) + 1) if stop in tokenizer.decode(ids[:k], skip_special_tokens=True))
    chunks = []
    result = stream_generate(model, tokenizer, "Grüße", _settings(stop_strings=[stop]), context_window=512,
                             on_text=chunks.append)
    assert result.text == "".join(chunks) == full[:full.find(stop)]
    assert result.stop_reason == "stop_string"
    # Generation ends on the token that completes the stop string, not one or more tokens later.
    assert result.new_tokens == completing < LENGTH
