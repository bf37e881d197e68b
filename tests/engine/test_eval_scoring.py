"""The evaluator's batched scoring against plain, one-at-a-time transformers code on real tiny models."""

from __future__ import annotations

import threading

import pytest
import torch

from studio.engine.evaluate.generating import generate_batch
from studio.engine.evaluate.scoring import (MIN_SHARED_PREFIX, Stopped, common_prefix_length, perplexity,
                                            score_continuations)
from tests.conftest import QA_PAIRS, plain_text

ATOL = 1e-4


@pytest.fixture(scope="module")
def llama(tiny_llama):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(tiny_llama).eval(), AutoTokenizer.from_pretrained(tiny_llama)


def encode(tokenizer, text: str) -> list[int]:
    return tokenizer(text, add_special_tokens=False)["input_ids"]


def plain_logprob(model, context: list[int], continuation: list[int]) -> tuple[float, bool]:
    """One unbatched forward of the whole pair, log_softmax, gather: what a person would write."""
    ids = torch.tensor([context + continuation])
    with torch.no_grad():
        logits = model(input_ids=ids[:, :-1]).logits[0].float()
    positions = torch.arange(len(context) - 1, len(context) + len(continuation) - 1)
    wanted = torch.tensor(continuation)
    logprob = torch.log_softmax(logits, dim=-1)[positions, wanted].sum().item()
    return logprob, bool((logits[positions].argmax(-1) == wanted).all())


def qa_pairs(tokenizer, prefix: str = "") -> list[tuple[list[int], list[int]]]:
    """Questions as contexts and answers as continuations, of different lengths on both sides."""
    pairs = [(encode(tokenizer, prefix + q), encode(tokenizer, " " + a)) for q, a in QA_PAIRS]
    return pairs + [(encode(tokenizer, prefix + "The"), encode(tokenizer, " cat sat on the mat."))]


def long_prefix(tokenizer) -> str:
    text = plain_text()[:300]
    assert len(encode(tokenizer, text)) >= MIN_SHARED_PREFIX + 20
    return text


def tokens_read(model, run) -> int:
    """How many token positions the model's input embedding looked up while `run()` ran."""
    read: list[int] = []
    hook = model.get_input_embeddings().register_forward_hook(lambda module, args, output: read.append(args[0].numel()))
    try:
        run()
    finally:
        hook.remove()
    return sum(read)


def assert_prefix_read_once(model, tokenizer, pairs, batch_size: int) -> None:
    """Without reuse every row is read whole (padding only adds); with it the prefix is read once, so about
    (rows - 1) prefixes fewer are read (one prefix's length is left as slack for the padding)."""
    whole_rows = sum(len(c) + len(a) - 1 for c, a in pairs)
    shared = common_prefix_length([c for c, _ in pairs])
    assert shared >= MIN_SHARED_PREFIX
    read = tokens_read(model, lambda: score_continuations(model, tokenizer, pairs, device="cpu",
                                                          batch_size=batch_size))
    assert read <= whole_rows - shared * (len(pairs) - 2)


def assert_matches_plain(model, tokenizer, pairs, **kwargs):
    scored = score_continuations(model, tokenizer, pairs, device="cpu", **kwargs)
    expected = [plain_logprob(model, c, a) for c, a in pairs]
    assert [s.tokens for s in scored] == [len(a) for _, a in pairs]
    assert max(abs(s.logprob - e[0]) for s, e in zip(scored, expected)) < ATOL
    assert [s.greedy for s in scored] == [e[1] for e in expected]
    return scored, expected


def test_common_prefix_length():
    assert common_prefix_length([[1, 2, 3, 4], [1, 2, 3], [1, 2, 9, 4]]) == 2
    assert common_prefix_length([[5, 6], [7, 6]]) == 0
    assert common_prefix_length([[1, 2, 3]]) == 3
    assert common_prefix_length([]) == 0


def test_scores_equal_one_forward_per_pair(llama):
    model, tokenizer = llama
    pairs = qa_pairs(tokenizer)
    _, expected = assert_matches_plain(model, tokenizer, pairs, batch_size=3)
    assert {e[1] for e in expected} == {True, False}  # both outcomes occur, so `greedy` is really compared
    assert len({len(c) + len(a) for c, a in pairs}) > 2  # rows of different lengths share a padded batch


def test_shared_prefix_is_reused_and_scores_the_same(llama):
    model, tokenizer = llama
    pairs = qa_pairs(tokenizer, long_prefix(tokenizer))
    assert_prefix_read_once(model, tokenizer, pairs, batch_size=2)
    assert_matches_plain(model, tokenizer, pairs, batch_size=2)
    # The prefix's cache must come out of each batch untouched: scoring twice gives the same numbers.
    first = score_continuations(model, tokenizer, pairs, device="cpu", batch_size=2)
    again = score_continuations(model, tokenizer, pairs, device="cpu", batch_size=2)
    assert [s.logprob for s in first] == [s.logprob for s in again]


def test_lora_adapter_scores_like_its_own_plain_forward(tiny_llama, llama):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    base, tokenizer = llama
    tuned = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_llama),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], lora_dropout=0.0))
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, param in tuned.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.2)
    tuned.eval()
    for prefix in ("", long_prefix(tokenizer)):
        pairs = qa_pairs(tokenizer, prefix)
        scored, _ = assert_matches_plain(tuned, tokenizer, pairs, batch_size=3)
        untuned = score_continuations(base, tokenizer, pairs, device="cpu", batch_size=3)
        assert max(abs(s.logprob - u.logprob) for s, u in zip(scored, untuned)) > 1e-2  # the adapter is in use


def test_sliding_window_cache_beyond_the_window_scores_the_same(llama):
    """A Mistral with a 12-token sliding window and a 40-token shared prefix: the copied cache holds only the
    window, and the scores still equal a plain forward."""
    from transformers import AutoModelForCausalLM, MistralConfig

    _, tokenizer = llama
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(MistralConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
        num_key_value_heads=2, sliding_window=12, max_position_embeddings=256)).eval()
    generator = torch.Generator().manual_seed(1)

    def tokens(n):
        return torch.randint(3, len(tokenizer), (n,), generator=generator).tolist()

    prefix = tokens(40)
    pairs = [(prefix + tokens(n), tokens(m)) for n, m in [(1, 3), (5, 2), (9, 6), (2, 1)]]
    assert_prefix_read_once(model, tokenizer, pairs, batch_size=3)
    assert_matches_plain(model, tokenizer, pairs, batch_size=3)


def one_by_one_generation(model, tokenizer, prompt: list[int], limit: int) -> tuple[str, int]:
    eos = tokenizer.eos_token_id
    out = model.generate(torch.tensor([prompt]), attention_mask=torch.ones(1, len(prompt), dtype=torch.long),
                         max_new_tokens=limit, do_sample=False, eos_token_id=eos,
                         pad_token_id=tokenizer.pad_token_id)[0, len(prompt):].tolist()
    cut = out.index(eos) if eos in out else len(out)
    return tokenizer.decode(out[:cut], skip_special_tokens=True).strip(), cut


def test_batched_generation_equals_one_by_one(llama):
    model, tokenizer = llama
    prompts = [encode(tokenizer, q) for q, _ in QA_PAIRS] + [encode(tokenizer, "Mira"),
                                                             encode(tokenizer, plain_text()[:120])]
    limits = [20, 5, 30, 12, 20, 9]
    generated = generate_batch(model, tokenizer, prompts, device="cpu", max_new_tokens=limits, batch_size=3)
    expected = [one_by_one_generation(model, tokenizer, p, n) for p, n in zip(prompts, limits)]
    assert [(g.text, g.tokens) for g in generated] == expected
    assert any(g.tokens < n for g, n in zip(generated, limits))  # some stop at the end-of-sequence token
    assert any(g.tokens == n for g, n in zip(generated, limits))  # some at their own limit
    assert all(g.seconds > 0 for g in generated)


def test_generation_keeps_learned_positions_inside_the_window(llama):
    """GPT-2's position embeddings end at its context window: a 15-token prompt that may reply with 49 tokens
    must not share a batch with a 21-token prompt, whose row would then run past position 64."""
    from transformers import AutoModelForCausalLM, GPT2Config

    _, tokenizer = llama
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(GPT2Config(
        vocab_size=len(tokenizer), n_embd=32, n_layer=2, n_head=4, n_positions=64,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id)).eval()
    generator = torch.Generator().manual_seed(1)
    prompts = [torch.randint(3, len(tokenizer), (n,), generator=generator).tolist() for n in (21, 15)]
    generated = generate_batch(model, tokenizer, prompts, device="cpu", max_new_tokens=200)
    expected = [one_by_one_generation(model, tokenizer, p, 64 - len(p)) for p in prompts]
    assert [(g.text, g.tokens) for g in generated] == expected


def guide_perplexity(model, tokenizer, text: str, window: int, stride: int) -> tuple[float, int]:
    """The loop of the Hugging Face guide "Perplexity of fixed-length models", one window at a time."""
    ids = torch.tensor([tokenizer(text)["input_ids"]])
    n = ids.shape[1]
    nll, count, previous_end = 0.0, 0, 0
    for begin in range(0, n, stride):
        end = min(begin + window, n)
        window_ids = ids[:, begin:end]
        labels = window_ids.clone()
        labels[:, :-(end - previous_end)] = -100
        scored = int((labels[:, 1:] != -100).sum())
        if scored:
            with torch.no_grad():
                nll += model(input_ids=window_ids, labels=labels).loss.item() * scored
            count += scored
        previous_end = end
        if end == n:
            break
    return nll, count


def test_perplexity_equals_the_guide_loop(llama):
    model, tokenizer = llama
    documents = [plain_text()[:2000], "a", "", " ".join(q for q, _ in QA_PAIRS)]
    result = perplexity(model, tokenizer, documents, device="cpu", window=64, stride=32, batch_size=4)
    for document, (nll, tokens) in zip(documents, result.per_document):
        expected_nll, expected_tokens = guide_perplexity(model, tokenizer, document, 64, 32)
        assert tokens == expected_tokens
        assert nll == pytest.approx(expected_nll, rel=1e-5, abs=1e-4)
    lengths = [len(tokenizer(d)["input_ids"]) for d in documents]
    assert lengths[1] == 1 and result.per_document[1] == (0.0, 0)  # a one-token document scores nothing
    assert result.tokens == sum(max(n - 1, 0) for n in lengths)  # every other token once
    assert result.perplexity == pytest.approx(torch.tensor(result.nll / result.tokens).exp().item())


def test_stride_of_a_whole_window_scores_every_token(llama):
    """With stride == window the guide leaves each window's first token unscored; here the stride is cut to
    window - 1, which is the guide's loop with that stride."""
    model, tokenizer = llama
    document = plain_text()[:1500]
    result = perplexity(model, tokenizer, [document], device="cpu", window=16, stride=16)
    expected_nll, expected_tokens = guide_perplexity(model, tokenizer, document, 16, 15)
    assert result.tokens == expected_tokens == len(tokenizer(document)["input_ids"]) - 1
    assert result.nll == pytest.approx(expected_nll, rel=1e-5)


def test_more_context_per_token_lowers_perplexity(llama):
    # A 16-token window: the tiny model makes little use of context much longer than that.
    model, tokenizer = llama
    document = plain_text()[:3000]
    disjoint = perplexity(model, tokenizer, [document], device="cpu", window=16, stride=16).perplexity
    overlapping = perplexity(model, tokenizer, [document], device="cpu", window=16, stride=4).perplexity
    assert overlapping <= disjoint


def test_progress_counts_every_item_and_stop_raises(llama):
    model, tokenizer = llama
    pairs = qa_pairs(tokenizer)
    prompts = [c for c, _ in pairs]
    documents = [plain_text()[:300], "a", plain_text()[300:500]]
    runs = {
        "score": (len(pairs), lambda **kw: score_continuations(model, tokenizer, pairs, device="cpu", batch_size=2,
                                                               **kw)),
        "generate": (len(prompts), lambda **kw: generate_batch(model, tokenizer, prompts, device="cpu",
                                                               max_new_tokens=4, batch_size=2, **kw)),
        # Counted in documents, while the batches hold windows (18 windows of 16 tokens here).
        "perplexity": (3, lambda **kw: perplexity(model, tokenizer, documents, device="cpu", window=16, stride=15,
                                                  batch_size=4, **kw)),
    }
    for name, (items, run) in runs.items():
        counts: list[int] = []
        run(on_batch=counts.append)
        assert sum(counts) == items and len(counts) > 1, name
        stop = threading.Event()
        stop.set()
        with pytest.raises(Stopped):
            run(stop_event=stop)
        stop.clear()
        counts.clear()

        def stop_after_first(n, counts=counts, stop=stop):
            counts.append(n)
            stop.set()

        with pytest.raises(Stopped):
            run(on_batch=stop_after_first, stop_event=stop)
        assert len(counts) == 1, name


def test_inputs_the_model_cannot_score_are_refused(llama):
    model, tokenizer = llama
    with pytest.raises(ValueError, match="empty continuation"):
        score_continuations(model, tokenizer, [([1, 2], [3]), ([1, 2], [])], device="cpu")
    with pytest.raises(ValueError, match="empty context"):
        score_continuations(model, tokenizer, [([], [3])], device="cpu")
    with pytest.raises(ValueError, match="context window of 512"):
        score_continuations(model, tokenizer, [([5] * 500, [6] * 13)], device="cpu")
    with pytest.raises(ValueError, match="context window"):
        perplexity(model, tokenizer, ["text"], device="cpu", window=1024, stride=512)
    with pytest.raises(ValueError, match="no room"):
        generate_batch(model, tokenizer, [[5] * 512], device="cpu", max_new_tokens=4)
    assert score_continuations(model, tokenizer, [], device="cpu") == []
