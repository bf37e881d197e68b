"""Choosing in-context examples: fixed, seeded random and TF-IDF similar, with the held-out example excluded."""

from __future__ import annotations

import random

import pytest
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics.pairwise import cosine_similarity

from studio.engine.evaluate.shots import Shot, SimilarityIndex, select_shots

POOL = [
    Shot("My cat sleeps on the warm windowsill all day.", "cats"),
    Shot("The dog fetched the ball and wagged its tail.", "dogs"),
    Shot("The car engine needs an oil change and new brakes.", "cars"),
    Shot("A kitten chased the cat's tail around the sofa.", "cats"),
    Shot("Dogs bark at the mail carrier every morning.", "dogs"),
    Shot("She parked the car and checked the tyre pressure.", "cars"),
    Shot("Buy bread, milk and eggs.", "errands"),
]


def test_fixed_takes_the_first_k_in_order():
    assert select_shots(POOL, 3, "fixed") == POOL[:3]
    assert select_shots(POOL, 0, "fixed") == []


def test_random_is_deterministic_per_k_and_differs_across_k():
    first = select_shots(POOL, 3, "random", seed=7)
    again = select_shots(POOL, 3, "random", seed=7, query="anything else")
    assert first == again
    assert len(first) == 3 and len({s.input for s in first}) == 3
    draws = {k: [POOL.index(s) for s in select_shots(POOL, k, "random", seed=7)] for k in range(1, 7)}
    # Each k has its own draw, not a prefix of one shared shuffle.
    assert any(draws[k] != draws[k + 1][:k] for k in range(1, 6))
    assert select_shots(POOL, 3, "random", seed=8) != first or select_shots(POOL, 3, "random", seed=9) != first


def test_random_draw_uses_the_seed_plus_k():
    order = random.Random(42 + 4).sample(range(len(POOL)), len(POOL))
    assert select_shots(POOL, 4, "random") == [POOL[i] for i in order[:4]]


def test_similar_puts_the_closest_example_last():
    shots = select_shots(POOL, 3, "similar", query="How often does the car need an oil change?")
    assert shots[-1] == POOL[2]
    assert {s.output for s in shots[-2:]} == {"cars"}
    shots = select_shots(POOL, 2, "similar", query="Why does my kitten chase the cat?")
    assert [s.output for s in shots] == ["cats", "cats"]


def test_similar_with_no_shared_word_falls_back_to_pool_order():
    assert select_shots(POOL, 2, "similar", query="quantum chromodynamics") == [POOL[1], POOL[0]]


def test_exclude_never_chooses_the_held_out_example():
    held_out = POOL[2].input
    for how in ("fixed", "random", "similar"):
        shots = select_shots(POOL, 6, how, query=held_out, exclude="  " + held_out + "\n")
        assert POOL[2] not in shots and len(shots) == 6
    # Random: excluding one item moves the next one up and keeps the others' draw.
    plain = select_shots(POOL, 3, "random")
    without = select_shots(POOL, 3, "random", exclude=plain[1].input)
    assert without[:1] == plain[:1] and without[1] == plain[2] and plain[1] not in without


def test_k_above_the_pool_returns_the_whole_filtered_pool():
    for how in ("fixed", "random", "similar"):
        shots = select_shots(POOL, 50, how, query="cat", exclude=POOL[0].input)
        assert sorted(POOL.index(s) for s in shots) == list(range(1, len(POOL)))


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="fixed, random, similar"):
        select_shots(POOL, 2, "nearest")
    with pytest.raises(ValueError, match="at least 0"):
        select_shots(POOL, -1, "fixed")
    with pytest.raises(ValueError, match="needs the query"):
        select_shots(POOL, 2, "similar")
    with pytest.raises(ValueError, match="build it from this pool"):
        select_shots(POOL, 2, "similar", query="car", index=SimilarityIndex(POOL[:3]))


CORPUS = [
    "The quick brown fox jumps over the lazy dog",
    "A fox is quick; a dog is lazy",
    "Stock markets fell sharply on Monday",
    "Markets rallied after the central bank cut rates",
    "The bank raised rates again, and the dog barked",
    "I",
    "",
    "Rates, rates, rates: everyone talks about rates",
]
QUERIES = ["lazy dog and quick fox", "central bank rates", "markets on Monday", "a brand new word", "I rates dog"]


def test_tfidf_cosine_matches_sklearn():
    vectorizer = TfidfVectorizer(token_pattern=r"\w+")
    matrix = vectorizer.fit_transform(CORPUS)
    index = SimilarityIndex(CORPUS)
    for query in QUERIES:
        expected = cosine_similarity(vectorizer.transform([query]), matrix)[0]
        got = index.scores(query)
        for i, value in enumerate(expected):
            assert got.get(i, 0.0) == pytest.approx(value, abs=1e-12)
        # Ranking: highest cosine first, ties to the earlier item.
        ranking = sorted(range(len(CORPUS)), key=lambda i: (-round(expected[i], 12), i))
        assert index.top(query, len(CORPUS)) == ranking
        assert index.top(query, 3) == ranking[:3]


def test_similar_reuses_an_index_for_the_same_pool_and_scales():
    rng = random.Random(0)
    vocabulary = [f"w{i}" for i in range(3000)]
    pool = [Shot(" ".join(rng.choices(vocabulary, k=30)), str(i)) for i in range(1000)]
    queries = [" ".join(rng.choices(vocabulary, k=30)) for _ in range(1000)]
    index = SimilarityIndex(pool)
    for query in queries:
        assert select_shots(pool, 5, "similar", query=query) == select_shots(pool, 5, "similar", query=query,
                                                                             index=index)
    # A query that copies a pool item finds that item last (nearest the question).
    assert select_shots(pool, 5, "similar", query=pool[123].input)[-1] is pool[123]
