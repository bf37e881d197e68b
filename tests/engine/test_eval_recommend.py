"""The plain-words recommendation follows from the figures: each case checks the numbers it must state, and that
other numbers give other words."""

from __future__ import annotations

import re

import pytest

from studio.engine.evaluate.recommend import recommend

PRIMARY = {"classification": ("accuracy", True), "generation": ("token_f1", True), "perplexity": ("perplexity", False)}


def prompt(shots, value, tokens, *, scored=200, metric="accuracy", **metrics):
    return {"id": f"prompt-{shots}", "label": f"starter-model, {shots}-shot", "kind": "prompt", "shots": shots,
            "metrics": {metric: value, **metrics},
            "cost": {"prompt_tokens": tokens, "latency_p50_s": 0.1, "latency_p95_s": 0.2, "tokens_per_s": None,
                     "train_seconds": None, "train_tokens": None},
            "scored": scored}


def tuned(value, tokens, *, label="my-adapter", scored=200, metric="accuracy", **metrics):
    return {"id": f"tuned-{label}", "label": label, "kind": "tuned", "shots": None,
            "metrics": {metric: value, **metrics},
            "cost": {"prompt_tokens": tokens, "latency_p50_s": 0.1, "latency_p95_s": 0.2, "tokens_per_s": 40.0,
                     "train_seconds": 600.0, "train_tokens": 120000},
            "scored": scored}


def results(*candidates, kind="classification", examples=200):
    metric, higher = PRIMARY[kind]
    return {"version": 1, "kind": kind, "examples": examples,
            "primary": {"metric": metric, "higher_is_better": higher}, "candidates": list(candidates)}


def sentences(text: str) -> int:
    return len(re.findall(r"[.!?](?:\s|$)", text))


def test_fine_tuned_clearly_wins():
    text = recommend(results(prompt(0, 0.55, 40), prompt(3, 0.62, 360), tuned(0.85, 40)))
    assert "Highest accuracy: my-adapter, 85% on 200 examples." in text
    assert "beats the best prompt (the 3-shot prompt) by 23 points" in text
    assert "uses 9× fewer prompt tokens per request" in text
    assert "the 3-shot prompt reaches 73% of its accuracy with no training" in text  # 0.62 / 0.85
    assert sentences(text) <= 4

    other = recommend(results(prompt(0, 0.55, 40), prompt(3, 0.62, 120), tuned(0.90, 40)))
    assert "by 28 points" in other and "3× fewer prompt tokens" in other and "reaches 69% of its" in other


def test_prompting_wins():
    text = recommend(results(prompt(0, 0.60, 40), prompt(5, 0.88, 360), tuned(0.70, 40)))
    assert "Highest accuracy: starter-model, 5-shot, 88% on 200 examples." in text
    assert "The 5-shot prompt beats the best fine-tuned model (my-adapter) by 18 points with no training" in text
    assert "though it uses 9× more prompt tokens per request" in text
    assert "reaches" not in text  # no share of the fine-tuned score when prompting is ahead

    same_length = recommend(results(prompt(0, 0.88, 41), tuned(0.70, 40)))
    assert "by 18 points with no training at about the same cost per request" in same_length


def test_difference_within_noise_names_no_winner_and_prefers_the_cheaper():
    # 85% vs 82% on 200 examples: 3 points is less than 2 standard errors (about 7.5 points).
    text = recommend(results(prompt(3, 0.82, 360), tuned(0.85, 40)))
    assert "The difference (3 points) is within what chance explains on 200 examples" in text
    assert "prefer the cheaper one: the fine-tuned one needs a 9× shorter prompt" in text
    assert "beats" not in text

    # Prompts of about the same length: the fine-tuned model's training is the extra cost.
    same_length = recommend(results(prompt(0, 0.82, 50), tuned(0.85, 40)))
    assert "prefer the cheaper one: prompting needs no training" in same_length

    # The same 3 points on 5,000 examples is no longer chance.
    many = recommend(results(prompt(3, 0.82, 360, scored=5000), tuned(0.85, 40, scored=5000), examples=5000))
    assert "within what chance explains" not in many
    assert "beats the best prompt (the 3-shot prompt) by 3 points" in many


def test_perplexity_compares_ratios_and_uses_a_five_percent_threshold():
    def ppl(prompt_value, tuned_value):
        return recommend(results(prompt(0, prompt_value, 40, metric="perplexity"),
                                 tuned(tuned_value, 40, metric="perplexity"), kind="perplexity"))

    text = ppl(22.10, 12.34)
    assert "Lowest perplexity: my-adapter, 12.34 on 200 examples." in text
    assert "1.8× lower perplexity than the best prompt (the 0-shot prompt, 22.10)" in text
    assert "at about the same cost per request" in text

    close = ppl(12.90, 12.34)
    assert "4.5% apart, within the 5% that counts as the same" in close
    assert "prefer the cheaper one: prompting needs no training" in close

    prompt_ahead = ppl(10.00, 25.00)
    assert "Lowest perplexity: starter-model, 0-shot, 10.00" in prompt_ahead
    assert "2.5× lower perplexity than the best fine-tuned model (my-adapter, 25.00) with no training" in prompt_ahead


def test_single_candidate_has_nothing_to_compare():
    text = recommend(results(prompt(0, 0.8, 40, scored=50), examples=50))
    assert text == ("Only one candidate: starter-model, 0-shot, with 80% accuracy on 50 examples; there is nothing "
                    "to compare it with.")
    assert "87.5% accuracy" in recommend(results(tuned(0.875, 40)))

    one_scored = recommend(results(prompt(0, None, 40), tuned(0.7, 40)))
    assert "Only my-adapter could be scored (70% accuracy on 200 examples)" in one_scored
    assert "the other candidate has no figure for accuracy" in one_scored


def test_nothing_scored():
    text = recommend(results(prompt(0, None, 40), tuned(None, 40)))
    assert text == "Nothing could be scored: no candidate has a figure for accuracy."
    assert recommend(results()) == text


def test_sweep_plateau():
    def sweep(*values, scored=200):
        ks = (0, 1, 3, 5, 8)
        return recommend(results(*(prompt(k, v, 40 + 40 * k, scored=scored) for k, v in zip(ks, values))))

    plateau = sweep(0.40, 0.60, 0.75, 0.76, 0.75)
    assert "More examples stop helping after k = 3." in plateau
    # 5-shot (76%) leads, but the 3-shot (75%) and 8-shot (75%) are within chance and the 3-shot is cheaper.
    assert ("2 others, down to the 3-shot prompt (75%), are within what chance explains on 200 examples; prefer "
            "the 3-shot prompt, as its prompt is 1.5× shorter.") in plateau  # 240 vs 160 tokens

    assert "More examples keep helping up to k = 8, the largest tried." in sweep(0.40, 0.55, 0.70, 0.82, 0.94)
    assert "More examples stop helping after k = 1 (k = 8 does worse)." in sweep(0.40, 0.70, 0.72, 0.66, 0.50)
    assert "Adding examples beyond k = 0 does not help" in sweep(0.70, 0.71, 0.69, 0.70, 0.71)
    # With 5 examples each, even 40% -> 76% is within chance, so the shortest prompt is the one to use.
    few = sweep(0.40, 0.60, 0.75, 0.76, 0.75, scored=5)
    assert "Adding examples beyond k = 0 does not help" in few
    assert "4 others, down to the 0-shot prompt (40%), are within what chance explains on 5 examples" in few
    assert "prefer the 0-shot prompt, as its prompt is 6× shorter" in few  # 240 vs 40 tokens

    one_close = recommend(results(prompt(0, 0.70, 40), prompt(3, 0.72, 160)))
    assert ("The next best, the 0-shot prompt (70%), is within what chance explains on 200 examples; prefer it, "
            "as its prompt is 4× shorter.") in one_close

    two_k = recommend(results(prompt(0, 0.40, 40), prompt(3, 0.75, 160)))
    assert "helping" not in two_k and "does not help" not in two_k
    assert "It leads the next best, the 0-shot prompt, by 35 points." in two_k


def test_unparseable_generation_points_to_the_likelihood_score():
    text = recommend(results(prompt(0, 0.70, 40, gen_accuracy=0.30, unparseable=0.45),
                             tuned(0.90, 40, gen_accuracy=0.88, unparseable=0.02)))
    assert ("Generation rarely produced a label for the 0-shot prompt (45% unparseable), so the likelihood score "
            "(accuracy) is the fairer one.") in text
    assert "my-adapter (" not in text
    assert sentences(text) <= 4

    fine = recommend(results(prompt(0, 0.70, 40, unparseable=0.15), tuned(0.90, 40, unparseable=0.02)))
    assert "Generation rarely" not in fine


def test_generation_uses_token_f1_in_points():
    text = recommend(results(prompt(0, 0.41, 90, metric="token_f1", chrf=35.0),
                             tuned(0.64, 30, metric="token_f1", chrf=55.0), kind="generation"))
    assert "Highest token F1: my-adapter, 64% on 200 examples." in text
    assert "by 23 points and uses 3× fewer prompt tokens per request" in text
    assert "reaches 64% of its token F1 with no training" in text


def test_at_most_four_sentences_with_everything_present():
    text = recommend(results(prompt(0, 0.40, 40, unparseable=0.5), prompt(1, 0.60, 80), prompt(3, 0.75, 160),
                             prompt(5, 0.76, 240), tuned(0.95, 40)))
    assert sentences(text) == 4
    assert "More examples stop helping after k = 3." in text


def test_bad_results_are_named():
    with pytest.raises(TypeError, match="results dict"):
        recommend([1, 2])
    with pytest.raises(ValueError, match="primary metric"):
        recommend({"kind": "dance", "candidates": []})
    with pytest.raises(ValueError, match="'chrf' is not one of accuracy"):
        recommend({"kind": "generation", "primary": {"metric": "chrf"}, "candidates": []})
    with pytest.raises(TypeError, match="Candidate 2 in the results is str"):
        recommend(results(tuned(0.5, 40), "prompt-0"))
