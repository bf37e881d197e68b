"""Scores for an evaluation: answer matching (exact match, token F1, chrF), label matching and classification
figures, and the small statistics used for latency. Pure Python, no torch.

`normalize`, `exact_match` and `token_f1` follow the SQuAD evaluation script; `chrf` and `corpus_chrf` give the
same numbers as sacrebleu's default `CHRF()`; `classification_report` gives the same numbers as scikit-learn's
accuracy, precision/recall/F1 (zero_division=0) and confusion matrix.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Iterable, Sequence

NONE_LABEL = "(none)"
_ARTICLES = re.compile(r"\b(a|an|the)\b")


def _require_text(value, what: str) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{what} must be text, not {type(value).__name__} ({value!r}).")
    return value


def normalize(text: str) -> str:
    """Lowercase, drop punctuation and the articles a/an/the, collapse whitespace (as SQuAD does)."""
    text = _require_text(text, "The text to normalise").lower()
    # Every Unicode punctuation category (Pc, Pd, Ps, Pe, Pi, Pf, Po), so « » and ¿ go as well as ASCII marks.
    text = "".join(ch for ch in text if not unicodedata.category(ch).startswith("P"))
    text = _ARTICLES.sub(" ", text)
    return " ".join(text.split())


def exact_match(prediction: str, reference: str) -> float:
    """1.0 when the normalised texts are equal, else 0.0."""
    return float(normalize(prediction) == normalize(reference))


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD token F1 between the normalised texts' words."""
    predicted, expected = normalize(prediction).split(), normalize(reference).split()
    if not predicted or not expected:
        # Nothing to overlap: right only when both are empty (as SQuAD v2 scores "no answer").
        return float(predicted == expected)
    same = sum((Counter(predicted) & Counter(expected)).values())
    if same == 0:
        return 0.0
    precision, recall = same / len(predicted), same / len(expected)
    return 2 * precision * recall / (precision + recall)


# --- chrF (sacrebleu's defaults: character n-grams 1..6, no word n-grams, beta 2, whitespace removed) ---

def _char_ngrams(text: str, char_order: int) -> list[Counter]:
    text = "".join(text.split())
    return [Counter(text[i:i + n] for i in range(len(text) - n + 1)) for n in range(1, char_order + 1)]


def _chrf_statistics(prediction: str, reference: str, char_order: int) -> list[int]:
    """[predicted, reference, matched] n-gram counts for each order, flattened."""
    statistics: list[int] = []
    for predicted, expected in zip(_char_ngrams(prediction, char_order), _char_ngrams(reference, char_order)):
        matched = sum(min(count, expected[gram]) for gram, count in predicted.items() if gram in expected)
        # sacrebleu counts no predicted n-grams for an order the reference is too short to have.
        statistics += [sum(predicted.values()) if expected else 0, sum(expected.values()), matched]
    return statistics


def _chrf_from_statistics(statistics: Sequence[int], char_order: int, beta: float) -> float:
    # Precision and recall are averaged over the orders both sides have (sacrebleu's "effective order").
    factor = beta ** 2
    precision_sum = recall_sum = 0.0
    effective_order = 0
    for i in range(char_order):
        n_predicted, n_reference, n_matched = statistics[3 * i:3 * i + 3]
        if n_predicted > 0 and n_reference > 0:
            precision_sum += n_matched / n_predicted
            recall_sum += n_matched / n_reference
            effective_order += 1
    if effective_order == 0:
        return 0.0
    precision, recall = precision_sum / effective_order, recall_sum / effective_order
    if precision + recall == 0:
        return 0.0
    return 100 * (1 + factor) * precision * recall / (factor * precision + recall)


def _check_chrf_knobs(char_order: int, beta: float) -> None:
    if not isinstance(char_order, int) or char_order < 1:
        raise ValueError(f"char_order must be a whole number of at least 1, not {char_order!r}.")
    if not isinstance(beta, (int, float)) or beta <= 0:
        raise ValueError(f"beta must be a positive number, not {beta!r}.")


def chrf(prediction: str, reference: str, *, char_order: int = 6, beta: float = 2) -> float:
    """Sentence-level chrF from 0 to 100, as sacrebleu's `CHRF().sentence_score`."""
    _check_chrf_knobs(char_order, beta)
    statistics = _chrf_statistics(_require_text(prediction, "The prediction"),
                                  _require_text(reference, "The reference"), char_order)
    return _chrf_from_statistics(statistics, char_order, beta)


def corpus_chrf(predictions: Sequence[str], references: Sequence[str], *, char_order: int = 6,
                beta: float = 2) -> float:
    """Corpus chrF from 0 to 100: n-gram counts summed over all pairs before the F-score (sacrebleu's
    `corpus_score`), so it is not the mean of the sentence scores."""
    _check_chrf_knobs(char_order, beta)
    if len(predictions) != len(references):
        raise ValueError(f"corpus_chrf needs one reference per prediction; got {len(predictions)} predictions "
                         f"and {len(references)} references.")
    totals = [0] * (3 * char_order)
    for prediction, reference in zip(predictions, references):
        statistics = _chrf_statistics(_require_text(prediction, "A prediction"),
                                      _require_text(reference, "A reference"), char_order)
        totals = [a + b for a, b in zip(totals, statistics)]
    return _chrf_from_statistics(totals, char_order, beta)


# --- labels ---

def _word_spans(words: list[str], phrase: list[str]) -> list[tuple[int, int]]:
    width = len(phrase)
    return [(i, i + width) for i in range(len(words) - width + 1) if words[i:i + width] == phrase]


def match_label(generation: str, labels: Sequence[str]) -> str | None:
    """The label a free generated answer names, or None when it names none (or several) of them.

    Tried in order, on normalised text: the whole answer is a label; the answer begins with a label (longest
    label first, so "very positive" wins over "positive"); exactly one label occurs as whole words in it.
    """
    answer = normalize(generation)
    # Labels that normalise to nothing ("The", "?") can never be told apart from an empty answer; skip them.
    named = [(label, normalize(_require_text(label, "A label"))) for label in labels]
    named = [(label, text) for label, text in named if text]
    for label, text in named:
        if answer == text:
            return label
    for label, text in sorted(named, key=lambda pair: -len(pair[1])):
        # A word boundary after the label, so the label "no" does not match the answer "not sure".
        if answer.startswith(text + " "):
            return label
    words = answer.split()
    spans = {label: _word_spans(words, text.split()) for label, text in named}
    found = []
    for label, text in named:
        # An occurrence inside a longer label's occurrence ("positive" in "very positive") is that longer label.
        longer = [span for other, other_text in named if len(other_text.split()) > len(text.split())
                  for span in spans[other]]
        if any(not any(a <= start and end <= b for a, b in longer) for start, end in spans[label]):
            found.append(label)
    return found[0] if len(found) == 1 else None


def classification_report(true: Sequence[str], predicted: Sequence[str | None], labels: Sequence[str]) -> dict:
    """Accuracy, macro F1, per-class precision/recall/F1/support and the confusion matrix.

    A None prediction (an answer no label could be read from) counts as wrong; when there are any, the
    confusion matrix gets a last "(none)" column (and a row of zeros, to stay square).
    """
    labels = list(labels)
    if len(set(labels)) != len(labels):
        raise ValueError(f"The labels must be distinct; got {labels!r}.")
    if len(true) != len(predicted):
        raise ValueError(f"classification_report needs one prediction per example; got {len(true)} true labels "
                         f"and {len(predicted)} predictions.")
    known = set(labels)
    for value in true:
        if value not in known:
            raise ValueError(f"The true label {value!r} is not one of the labels {labels!r}.")
    for value in predicted:
        if value is not None and value not in known:
            raise ValueError(f"The predicted label {value!r} is not one of the labels {labels!r} (use None for an "
                             f"answer that names no label).")

    has_none = any(value is None for value in predicted)
    columns = labels + [NONE_LABEL] if has_none else labels
    position = {label: i for i, label in enumerate(columns)}
    matrix = [[0] * len(columns) for _ in columns]
    for expected, got in zip(true, predicted):
        matrix[position[expected]][position[NONE_LABEL if got is None else got]] += 1

    per_class = {}
    for i, label in enumerate(labels):
        hits = matrix[i][i]
        support = sum(matrix[i])
        predicted_count = sum(row[i] for row in matrix)
        precision = hits / predicted_count if predicted_count else 0.0
        recall = hits / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        per_class[label] = {"precision": precision, "recall": recall, "f1": f1, "support": support}

    total = len(true)
    correct = sum(matrix[i][i] for i in range(len(labels)))
    return {
        "accuracy": correct / total if total else None,
        "macro_f1": sum(c["f1"] for c in per_class.values()) / len(labels) if total and labels else None,
        "per_class": per_class,
        "confusion": {"labels": columns, "matrix": matrix},
        "unparseable": sum(value is None for value in predicted) / total if total else None,
    }


# --- small statistics ---

def _present(values: Iterable[float | None]) -> list[float]:
    # A missing figure (None, NaN) is left out rather than counted as zero.
    return [float(v) for v in values if v is not None and not (isinstance(v, float) and math.isnan(v))]


def percentile(values: Iterable[float | None], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation, as numpy's default; None when there are no values.
    Missing values (None, NaN) are left out."""
    if not isinstance(q, (int, float)) or not 0 <= q <= 100:
        raise ValueError(f"The percentile must be a number from 0 to 100, not {q!r}.")
    ordered = sorted(_present(values))
    if not ordered:
        return None
    position = (len(ordered) - 1) * q / 100
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    fraction = position - below
    return ordered[below] + (ordered[above] - ordered[below]) * fraction


def mean_or_none(values: Iterable[float | None]) -> float | None:
    """The mean of the values present (None and NaN left out), or None when there are none."""
    present = _present(values)
    return sum(present) / len(present) if present else None
