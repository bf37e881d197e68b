"""Choosing the in-context examples (shots) put in front of each held-out example.

"fixed" takes the first k of the pool, "random" a seeded draw per k (the same for every example, so the prompt
prefix can be shared), "similar" the k pool items closest to the example by TF-IDF cosine.
"""

from __future__ import annotations

import heapq
import math
import random
import re
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from functools import lru_cache

HOW = ("fixed", "random", "similar")
_WORD = re.compile(r"\w+")


@dataclass
class Shot:
    input: str
    output: str


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


class SimilarityIndex:
    """TF-IDF vectors of the pool's inputs, for finding the items most like a query.

    Weights follow scikit-learn's TfidfVectorizer defaults (raw counts, smoothed idf ln((1+N)/(1+df)) + 1,
    unit length), with words matched by `\\w+`; query words the pool never uses are ignored, as there.
    """

    def __init__(self, pool: Sequence[Shot] | Sequence[str]):
        texts = [item if isinstance(item, str) else item.input for item in pool]
        counts = [Counter(_words(text)) for text in texts]
        document_frequency = Counter(word for words in counts for word in words)
        total = len(texts)
        self.idf = {word: math.log((1 + total) / (1 + df)) + 1 for word, df in document_frequency.items()}
        # An inverted index (word -> [(item, weight)]) so a query only touches the items sharing a word with it.
        self.postings: dict[str, list[tuple[int, float]]] = {}
        for i, words in enumerate(counts):
            weights = {word: count * self.idf[word] for word, count in words.items()}
            length = math.sqrt(sum(w * w for w in weights.values()))
            for word, weight in weights.items():  # an item with no words has no weights, so no division by 0
                self.postings.setdefault(word, []).append((i, weight / length))
        self.size = total

    def __len__(self) -> int:
        return self.size

    def scores(self, query: str) -> dict[int, float]:
        """Cosine similarity to the query of every pool item that shares a word with it (the rest score 0)."""
        weights = {word: count * self.idf[word] for word, count in Counter(_words(query)).items() if word in self.idf}
        if not weights:
            return {}
        length = math.sqrt(sum(w * w for w in weights.values()))
        totals: dict[int, float] = {}
        for word, weight in weights.items():
            for i, item_weight in self.postings[word]:
                totals[i] = totals.get(i, 0.0) + weight / length * item_weight
        return totals

    def top(self, query: str, k: int, *, skip: Collection[int] = ()) -> list[int]:
        """Indices of the k items most similar to the query, most similar first; ties go to the earlier item."""
        if k <= 0:
            return []
        scored = [(-score, i) for i, score in self.scores(query).items() if score > 0 and i not in skip]
        chosen = [i for _, i in heapq.nsmallest(k, scored)]
        if len(chosen) < k:
            # Items sharing no word with the query all score 0: take them in pool order.
            taken = set(chosen)
            chosen += [i for i in range(self.size) if i not in taken and i not in skip][:k - len(chosen)]
        return chosen


@lru_cache(maxsize=4)
def _cached_index(inputs: tuple[str, ...]) -> SimilarityIndex:
    # Keyed by the inputs themselves, so an edited pool never meets a stale index.
    return SimilarityIndex(list(inputs))


def select_shots(pool: Sequence[Shot], k: int, how: str, *, seed: int = 42, query: str | None = None,
                 exclude: str | None = None, index: SimilarityIndex | None = None) -> list[Shot]:
    """The k shots for one held-out example.

    `exclude` is that example's input: a pool item with the same input (after strip) is never chosen. When the
    pool has fewer than k usable items they are all returned; the caller reports the shortfall. "similar" needs
    `query` and orders the shots least similar first, so the closest one sits next to the question; pass
    `index` (a SimilarityIndex of this pool) to skip the cache lookup.
    """
    if how not in HOW:
        raise ValueError(f"Unknown shot selection {how!r}; expected one of {', '.join(HOW)}.")
    if not isinstance(k, int) or isinstance(k, bool) or k < 0:
        raise ValueError(f"The number of shots must be a whole number of at least 0, not {k!r}.")
    if k == 0:
        return []
    held_out = exclude.strip() if exclude is not None else None
    skip = {i for i, shot in enumerate(pool) if held_out is not None and shot.input.strip() == held_out}

    if how == "fixed":
        return [shot for i, shot in enumerate(pool) if i not in skip][:k]
    if how == "random":
        # One shuffle of the whole pool per k: excluding an item only moves the next one up, so every other
        # example keeps the same shots (and prompt prefix).
        order = random.Random(seed + k).sample(range(len(pool)), len(pool))
        return [pool[i] for i in order if i not in skip][:k]

    if query is None:
        raise ValueError("Shot selection 'similar' needs the query (the held-out example's input).")
    if index is None:
        index = _cached_index(tuple(shot.input for shot in pool))
    elif len(index) != len(pool):
        raise ValueError(f"The similarity index covers {len(index)} items but the pool has {len(pool)}; build it "
                         f"from this pool.")
    return [pool[i] for i in reversed(index.top(query, k, skip=skip))]
