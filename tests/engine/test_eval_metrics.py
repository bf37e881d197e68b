"""Evaluation metrics, checked against the reference implementations (sacrebleu, scikit-learn, numpy)."""

from __future__ import annotations

import random

import numpy as np
import pytest
from sacrebleu.metrics import CHRF
from sklearn.metrics import accuracy_score, confusion_matrix, f1_score, precision_recall_fscore_support

from studio.engine.evaluate.metrics import (NONE_LABEL, chrf, classification_report, corpus_chrf, exact_match,
                                            match_label, mean_or_none, normalize, percentile, token_f1)

CHRF_PAIRS = [
    ("The cat sat on the mat.", "The cat sat on the mat."),
    ("", "The capital of Zorbia is Quillton."),
    ("Quillton", ""),
    ("", ""),
    ("The capital is Quillton.", "The capital of Zorbia is Quillton."),
    ("Kelp has 7 moons", "Kelp has seven moons."),
    ("a", "ab"),
    ("Über den Wolken muss die Freiheit wohl grenzenlos sein", "Über den Wolken ist die Freiheit grenzenlos."),
    ("東京は日本の首都です", "日本の首都は東京です"),
    ("Hello, world!!!", "hello world"),
    ("«Bonjour» — dit-il ; ça va ?", "Bonjour, dit-il. Ça va ?"),
    ("   spaced    out   text ", "spacedout text"),
    ("aaaaaa aaaaaa", "aaa"),
    ("completely different", "nothing in common xyz"),
]


def test_normalize_lowercases_drops_punctuation_and_articles():
    assert normalize("  The Cat,   an owl & A dog!  ") == "cat owl dog"
    # Unicode punctuation (guillemets, inverted question mark, em dash) goes too; other symbols (&) stay.
    assert normalize("¿Qué? «Hola» — theatre") == "qué hola theatre"
    assert normalize("Don't") == "dont"


def test_normalize_rejects_what_is_not_text():
    with pytest.raises(TypeError, match="must be text"):
        normalize(None)


def test_exact_match_and_token_f1_follow_squad():
    assert exact_match("The Quillton!", "quillton") == 1.0
    assert exact_match("Quillton city", "Quillton") == 0.0
    # precision 2/3, recall 2/4 -> F1 = 4/7
    assert token_f1("seven moons orbit", "Kelp has seven moons") == pytest.approx(4 / 7)
    assert token_f1("moons moons", "moons") == pytest.approx(2 * 0.5 * 1 / 1.5)
    assert token_f1("", "") == 1.0
    assert token_f1("the", "") == 1.0  # both normalise to nothing
    assert token_f1("", "Quillton") == 0.0
    assert token_f1("Quillton", "") == 0.0
    assert token_f1("red", "blue") == 0.0


@pytest.mark.parametrize("prediction, reference", CHRF_PAIRS)
def test_chrf_matches_sacrebleu_sentence_score(prediction, reference):
    expected = CHRF().sentence_score(prediction, [reference]).score
    assert chrf(prediction, reference) == pytest.approx(expected, abs=1e-6)


def test_chrf_with_other_order_and_beta_matches_sacrebleu():
    for prediction, reference in CHRF_PAIRS:
        expected = CHRF(char_order=4, beta=1).sentence_score(prediction, [reference]).score
        assert chrf(prediction, reference, char_order=4, beta=1) == pytest.approx(expected, abs=1e-6)


def test_chrf_identical_is_100_and_disjoint_is_0():
    assert chrf("Quillton", "Quillton") == pytest.approx(100.0)
    assert chrf("xyz", "abc") == 0.0


def test_corpus_chrf_matches_sacrebleu_and_is_not_the_sentence_mean():
    predictions = [p for p, _ in CHRF_PAIRS]
    references = [r for _, r in CHRF_PAIRS]
    expected = CHRF().corpus_score(predictions, [references]).score
    got = corpus_chrf(predictions, references)
    assert got == pytest.approx(expected, abs=1e-6)
    sentence_mean = sum(chrf(p, r) for p, r in CHRF_PAIRS) / len(CHRF_PAIRS)
    assert abs(got - sentence_mean) > 1


def test_chrf_bad_input_has_clear_messages():
    with pytest.raises(ValueError, match="one reference per prediction"):
        corpus_chrf(["a", "b"], ["a"])
    with pytest.raises(ValueError, match="char_order"):
        chrf("a", "a", char_order=0)
    with pytest.raises(TypeError, match="reference must be text"):
        chrf("a", None)


LABELS = ["positive", "very positive", "negative", "neutral"]


@pytest.mark.parametrize("generation, expected", [
    ("Positive", "positive"),
    ("  NEGATIVE. ", "negative"),
    ("Very positive!", "very positive"),
    ("very positive, clearly", "very positive"),  # longest label first at the start
    ("positive, I would say", "positive"),
    ("I think the review is negative overall.", "negative"),
    ("The answer: very positive", "very positive"),  # "positive" inside "very positive" is not a second label
    ("It is positive, not negative.", None),  # two labels named: ambiguous
    ("negatively charged", None),  # a label only as part of a word
    ("No idea.", None),
    ("", None),
])
def test_match_label(generation, expected):
    assert match_label(generation, LABELS) == expected


def test_match_label_returns_the_original_label_string():
    assert match_label("world news", ["World News", "Sports"]) == "World News"
    assert match_label("no", ["No", "Not sure"]) == "No"
    assert match_label("not sure at all", ["No", "Not sure"]) == "Not sure"


def _sklearn_view(true, predicted, labels):
    stand_in = [NONE_LABEL if p is None else p for p in predicted]
    precision, recall, f1, support = precision_recall_fscore_support(true, stand_in, labels=labels,
                                                                     zero_division=0)
    return stand_in, precision, recall, f1, support


@pytest.mark.parametrize("seed", range(6))
def test_classification_report_matches_sklearn(seed):
    rng = random.Random(seed)
    labels = ["sports", "world", "business", "science", "arts"]
    n = rng.randint(5, 60)
    # "arts" never predicted, some answers unparseable, and a mostly-right classifier so the counts vary.
    true = [rng.choice(labels) for _ in range(n)]
    predicted = [t if rng.random() < 0.5 else rng.choice(labels[:4] + [None]) for t in true]
    predicted = [None if p == "arts" else p for p in predicted]
    report = classification_report(true, predicted, labels)

    stand_in, precision, recall, f1, support = _sklearn_view(true, predicted, labels)
    assert report["accuracy"] == pytest.approx(accuracy_score(true, stand_in))
    assert report["macro_f1"] == pytest.approx(f1_score(true, stand_in, labels=labels, average="macro",
                                                        zero_division=0))
    for i, label in enumerate(labels):
        row = report["per_class"][label]
        assert row["precision"] == pytest.approx(precision[i])
        assert row["recall"] == pytest.approx(recall[i])
        assert row["f1"] == pytest.approx(f1[i])
        assert row["support"] == support[i]
    has_none = any(p is None for p in predicted)
    columns = labels + [NONE_LABEL] if has_none else labels
    assert report["confusion"]["labels"] == columns
    assert report["confusion"]["matrix"] == confusion_matrix(true, stand_in, labels=columns).tolist()
    assert report["unparseable"] == pytest.approx(sum(p is None for p in predicted) / n)


def test_classification_report_without_unparseable_has_no_none_column():
    report = classification_report(["a", "b", "b"], ["a", "b", "a"], ["a", "b", "c"])
    assert report["confusion"] == {"labels": ["a", "b", "c"], "matrix": [[1, 0, 0], [1, 1, 0], [0, 0, 0]]}
    assert report["unparseable"] == 0.0
    assert report["per_class"]["c"] == {"precision": 0.0, "recall": 0.0, "f1": 0.0, "support": 0}
    # macro F1 averages over every label, the absent "c" included: (2/3 + 2/3 + 0) / 3
    assert report["macro_f1"] == pytest.approx(4 / 9)


def test_classification_report_bad_input():
    with pytest.raises(ValueError, match="one prediction per example"):
        classification_report(["a"], [], ["a"])
    with pytest.raises(ValueError, match="true label 'z'"):
        classification_report(["z"], ["a"], ["a"])
    with pytest.raises(ValueError, match="predicted label 'z'"):
        classification_report(["a"], ["z"], ["a"])
    with pytest.raises(ValueError, match="distinct"):
        classification_report(["a"], ["a"], ["a", "a"])


def test_classification_report_of_nothing_has_no_figures():
    report = classification_report([], [], ["a", "b"])
    assert report["accuracy"] is None and report["macro_f1"] is None and report["unparseable"] is None


@pytest.mark.parametrize("q", [0, 5, 25, 50, 95, 99.5, 100])
def test_percentile_matches_numpy(q):
    rng = random.Random(q)
    for size in (1, 2, 7, 40):
        values = [rng.uniform(0.01, 3.0) for _ in range(size)]
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)), rel=1e-12)


def test_percentile_and_mean_skip_missing_values():
    assert percentile([], 50) is None
    assert percentile([None, float("nan")], 95) is None
    assert percentile([3.0, None, 1.0], 50) == 2.0
    assert mean_or_none([]) is None
    assert mean_or_none([None]) is None
    assert mean_or_none([1, None, 2, float("nan")]) == 1.5
    with pytest.raises(ValueError, match="from 0 to 100"):
        percentile([1.0], 0.95 * 200)
