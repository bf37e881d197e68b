"""The playground's feedback file: pairs and marks in TRL's conversational layouts, appended safely, counted,
and the preference objective they suggest."""

import json

import pytest

from studio.engine.errors import BadDataset
from studio.engine.preference.feedback import (FeedbackCounts, count_feedback, describe_sample, feedback_path,
                                               make_source, read_feedback, record_mark, record_pair, suggest,
                                               suggested_objective, two_samples)
from studio.engine.prompting.sampling import SamplingSettings

PROMPT = [{"role": "system", "content": "Answer briefly."},
          {"role": "user", "content": "What is the capital of Zorbia?"}]


def lines(path):
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_the_file_lives_in_the_workspace_feedback_folder(tmp_path):
    assert feedback_path(tmp_path) == tmp_path / "feedback" / "feedback.jsonl"


def test_a_pair_and_a_mark_are_written_in_the_exact_layout(tmp_path):
    path = feedback_path(tmp_path)  # its folder does not exist yet
    source = make_source("/models/tiny", "/runs/a/adapter", ["sample 2", "sample 1"], edited=True)
    record_pair(path, PROMPT, "Quillton.", "Zorbia City.", source)
    record_mark(path, [{"role": "user", "content": "Once upon"}], " a time", False,
                make_source("/models/tiny", None, ["base"]))
    pair, mark = lines(path)
    assert pair == {"prompt": PROMPT, "chosen": [{"role": "assistant", "content": "Quillton."}],
                    "rejected": [{"role": "assistant", "content": "Zorbia City."}], "source": source}
    assert set(source) == {"model", "adapter", "time", "sides", "edited"} and source["edited"] is True
    assert source["time"][:4].isdigit() and "T" in source["time"]
    assert mark == {"prompt": [{"role": "user", "content": "Once upon"}],
                    "completion": [{"role": "assistant", "content": " a time"}], "label": False,
                    "source": {**mark["source"], "adapter": None, "sides": ["base"], "edited": False}}
    assert path.read_text(encoding="utf-8").endswith("\n")


def test_counts_and_a_partial_last_line_from_a_crash_is_ignored_then_cut_off(tmp_path):
    path = feedback_path(tmp_path)
    assert count_feedback(path) == FeedbackCounts(0, 0, 0)  # no file yet
    source = make_source("m", None, ["base", "tuned"])
    record_pair(path, PROMPT, "a", "b", source)
    record_mark(path, PROMPT, "good one", True, source)
    record_mark(path, PROMPT, "bad one", False, source)
    record_mark(path, PROMPT, "bad two", False, source)
    with open(path, "a", encoding="utf-8") as f:
        f.write('{"prompt": [{"role": "user", "content": "cut sh')  # the line being written when the app died
    assert count_feedback(path) == FeedbackCounts(pairs=1, good=1, bad=2)
    assert len(read_feedback(path)) == 4
    assert str(count_feedback(path)) == "1 pair, 1 good, 2 bad"
    # The next mark starts on a line of its own: the remnant is gone, every line reads.
    record_mark(path, PROMPT, "another", True, source)
    assert count_feedback(path) == FeedbackCounts(1, 2, 2)
    assert len(lines(path)) == 5


def test_a_last_line_without_its_newline_is_kept(tmp_path):
    path = feedback_path(tmp_path)
    record_mark(path, PROMPT, "one", True, make_source("m", None, ["base"]))
    path.write_text(path.read_text(encoding="utf-8").rstrip("\n"), encoding="utf-8")  # edited by hand
    assert count_feedback(path) == FeedbackCounts(0, 1, 0)
    record_mark(path, PROMPT, "two", False, make_source("m", None, ["base"]))
    assert [r["label"] for r in lines(path)] == [True, False]


def test_a_broken_line_in_the_middle_is_named(tmp_path):
    path = feedback_path(tmp_path)
    record_mark(path, PROMPT, "one", True, make_source("m", None, ["base"]))
    with open(path, "a", encoding="utf-8") as f:
        f.write("not json\n")
    record_mark(path, PROMPT, "two", True, make_source("m", None, ["base"]))
    with pytest.raises(BadDataset, match=r"feedback.jsonl, line 2: not a JSON object"):
        count_feedback(path)


@pytest.mark.parametrize("chosen, rejected, message", [
    ("Quillton.", "Quillton.", "the same text"),
    ("Quillton. ", "Quillton.", "the same text"),
    ("", "Quillton.", "chosen reply is empty"),
    ("Quillton.", "  \n", "rejected reply is empty"),
])
def test_empty_or_identical_pairs_are_refused_and_nothing_is_written(tmp_path, chosen, rejected, message):
    path = feedback_path(tmp_path)
    with pytest.raises(BadDataset, match=message):
        record_pair(path, PROMPT, chosen, rejected, make_source("m", None, ["sample 1", "sample 2"]))
    assert not path.exists()


def test_an_empty_reply_or_a_prompt_that_does_not_end_with_the_user_message_is_refused(tmp_path):
    path = feedback_path(tmp_path)
    with pytest.raises(BadDataset, match="reply is empty"):
        record_mark(path, PROMPT, " ", True, make_source("m", None, ["base"]))
    with pytest.raises(BadDataset, match="last message has the role 'assistant'"):
        record_mark(path, PROMPT + [{"role": "assistant", "content": "x"}], "y", True, {})
    with pytest.raises(BadDataset, match="no prompt"):
        record_mark(path, [], "y", True, {})
    assert not path.exists()


@pytest.mark.parametrize("counts, objective, why", [
    (FeedbackCounts(0, 0, 0), None, "No feedback yet"),
    (FeedbackCounts(0, 5, 0), None, "KTO needs some marked bad"),
    (FeedbackCounts(0, 0, 3), None, "KTO needs some marked good"),
    (FeedbackCounts(0, 2, 1), "kto", "KTO on 3 single replies"),
    (FeedbackCounts(1, 0, 0), "dpo", "DPO on 1 pair"),
    (FeedbackCounts(7, 3, 2), "dpo", "DPO on 7 pairs"),
    (FeedbackCounts(2, 8, 0), "dpo", "DPO"),  # 8 marks: not far more than 2 pairs
    (FeedbackCounts(2, 5, 4), "kto", "outnumber"),  # 9 marks
])
def test_the_suggested_objective_and_its_reason(counts, objective, why):
    assert suggested_objective(counts) == objective
    assert why in suggest(counts).reason


def test_two_samples_of_one_model_differ_in_seed_and_a_greedy_second_one_is_sampled():
    sampled = SamplingSettings(greedy=False, temperature=0.8, seed=41, max_new_tokens=9)
    first, second = two_samples(sampled)
    assert first == sampled and second.seed == 42 and not second.greedy
    assert (second.temperature, second.max_new_tokens) == (0.8, 9)
    greedy = SamplingSettings(greedy=True, seed=0)
    first, second = two_samples(greedy)
    assert first.greedy and not second.greedy and second.seed == 1
    assert describe_sample(first, False) == "greedy"
    assert describe_sample(second, True) == "sampled (greedy is off for it), temperature 0.7, seed 1"
    assert two_samples(SamplingSettings(greedy=False, seed=None))[1].seed is None
