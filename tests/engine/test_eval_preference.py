"""Preference pairs as an Evaluate kind: read from any layout preference tuning reads, scored by preference
accuracy (which reply each candidate finds likelier per token) with real tiny models and adapters."""

import json

import pytest

from studio.engine.errors import BadConfig, BadDataset
from studio.engine.evaluate.config import EvalConfig
from studio.engine.evaluate.heldout import read_heldout
from tests.conftest import QA_PAIRS, shared_dataset
from tests.engine.test_evaluate import by_id, evaluate


def wrong_answer_pairs() -> list[dict]:
    """Each question with its right answer chosen and each other question's answer rejected."""
    return [{"prompt": question, "chosen": answer, "rejected": other}
            for question, answer in QA_PAIRS for _, other in QA_PAIRS if other != answer]


@pytest.fixture()
def pair_file(tmp_path):
    path = tmp_path / "pairs.jsonl"
    path.write_text("".join(json.dumps(pair) + "\n" for pair in wrong_answer_pairs()))
    return path


def test_the_dpo_demo_file_is_read_as_preference_pairs():
    demo = shared_dataset("dpo_en_demo.json")
    heldout = read_heldout(demo)
    assert heldout.kind == "preference" and heldout.format == "ShareGPT pairs"
    assert len(heldout.examples) == heldout.rows == 300
    first = json.loads(demo.read_text(encoding="utf-8"))[0]
    example = heldout.examples[0]
    assert example.reference == first["chosen"]["value"]  # the chosen reply, never read as an answer to copy
    assert example.pair["rejected"][-1]["content"] == first["rejected"]["value"]
    assert example.input == first["conversations"][-1]["value"]
    assert "preference pairs (ShareGPT pairs)" in heldout.describe()
    assert len(read_heldout(demo, kind="preference").sample(5, seed=1).examples) == 5
    with pytest.raises(BadDataset, match="holds preference pairs.*not as the kind 'generation'") as err:
        read_heldout(demo, kind="generation")
    assert "kind to preference" in err.value.hint


def test_the_memorised_adapter_prefers_the_right_answers_more_often_than_the_base_model(
        tiny_llama, memorised_adapter, pair_file, tmp_path):
    cfg = EvalConfig(model=str(tiny_llama), dataset=str(pair_file), shots="0, 2", shot_pool=str(pair_file),
                     tuned=str(memorised_adapter), batch_size=4, device="cpu")
    events, results, examples = evaluate(cfg, tmp_path / "eval")
    assert results["kind"] == "preference" and results["complete"]
    assert results["primary"] == {"metric": "preference_accuracy", "higher_is_better": True}
    # Shots cannot help to judge a given reply: the 2-shot candidate is left out, saying so.
    assert list(by_id(results)) == ["prompt-0", "tuned-1"]
    assert any("only the 0-shot base model" in w for w in results["warnings"])
    base, tuned = by_id(results)["prompt-0"], by_id(results)["tuned-1"]
    pairs = wrong_answer_pairs()
    assert base["scored"] == tuned["scored"] == len(pairs)
    assert tuned["metrics"]["preference_accuracy"] > base["metrics"]["preference_accuracy"]
    assert tuned["metrics"]["preference_accuracy"] == 1.0  # it learned every right answer by heart
    assert tuned["metrics"]["logprob_margin"] > base["metrics"]["logprob_margin"]
    assert "Highest preference accuracy" in results["recommendation"] and tuned["label"] in results["recommendation"]
    # Per example: the reply each candidate preferred, and whether it was the chosen one.
    assert [row["reference"] for row in examples] == [p["chosen"] for p in pairs]
    assert [row["rejected"] for row in examples] == [p["rejected"] for p in pairs]
    for row in examples:
        for answer in row["answers"].values():
            assert answer["correct"] == (answer["answer"] == "chosen")
            assert answer["score"] == pytest.approx(answer["chosen_logprob"] - answer["rejected_logprob"])
    base_right = sum(row["answers"]["prompt-0"]["correct"] for row in examples)
    assert base["metrics"]["preference_accuracy"] == pytest.approx(base_right / len(pairs))
    scored = [e for e in events if e["type"] == "scored"]
    assert [e["candidate"]["id"] for e in scored] == ["prompt-0", "tuned-1"]
    logs = [e for e in events if e["type"] == "log"]
    assert logs[-1]["step"] == logs[-1]["total_steps"] == 2 * len(pairs)
    assert events[-1]["type"] == "finished" and events[-1]["status"] == "completed"


def test_a_stop_request_ends_the_scoring_of_pairs(tiny_llama, pair_file, tmp_path):
    cfg = EvalConfig(model=str(tiny_llama), dataset=str(pair_file), shots="0", batch_size=2, device="cpu")
    events, results, examples = evaluate(cfg, tmp_path / "eval", stop_when=lambda e: e.get("phase") == "loading "
                                         "the model")
    assert events[-1]["type"] == "finished" and events[-1]["status"] == "stopped"
    assert results["complete"] is False and results["candidates"] == []
    assert all(row["answers"] == {} for row in examples)


def test_the_scores_are_those_preference_tuning_reports(tiny_llama, memorised_adapter, pair_file, tmp_path):
    """The same pairs through preference scoring directly, the system prompt first: the same figures."""
    from studio.engine.evaluate.preference_scorer import with_system
    from studio.engine.generation import load_for_generation
    from studio.engine.preference.data import read_preferences
    from studio.engine.preference.scoring import pair_accuracy, pair_scores

    system = "Answer from what you learned."
    cfg = EvalConfig(model=str(tiny_llama), dataset=str(pair_file), shots="", tuned=str(memorised_adapter),
                     system=system, batch_size=3, device="cpu")
    _, results, _ = evaluate(cfg, tmp_path / "eval")
    loaded = load_for_generation(str(tiny_llama), str(memorised_adapter), device="cpu")
    pairs = [{**p, "prompt": with_system(p["prompt"], system)} for p in read_preferences(pair_file).pairs]
    assert pairs[0]["prompt"][0] == {"role": "system", "content": system}
    scores = pair_scores(loaded.model, loaded.tokenizer, pairs)
    figures = by_id(results)["tuned-1"]["metrics"]
    assert figures["preference_accuracy"] == pytest.approx(pair_accuracy(scores, per_token=True))
    margins = [c.mean - r.mean for c, r in scores]
    assert figures["logprob_margin"] == pytest.approx(sum(margins) / len(margins), rel=1e-4)


def test_a_file_of_marked_replies_is_refused(tmp_path):
    marks = tmp_path / "marks.jsonl"
    marks.write_text("".join(json.dumps({"prompt": q, "completion": a, "label": i % 2 == 0}) + "\n"
                             for i, (q, a) in enumerate(QA_PAIRS)))
    for kind in ("auto", "preference"):
        with pytest.raises(BadDataset, match="holds replies marked good/bad, not pairs; Evaluate compares models "
                                             "on pairs") as err:
            read_heldout(marks, kind=kind)
        assert str(marks) in err.value.message
    # Asked for answers, the replies marked good are the references.
    answers = read_heldout(marks, kind="generation")
    assert [e.reference for e in answers.examples] == [a for i, (_, a) in enumerate(QA_PAIRS) if i % 2 == 0]


def test_marked_replies_beside_pairs_are_left_out_saying_so(tmp_path):
    mixed = tmp_path / "feedback.jsonl"
    question, answer = QA_PAIRS[0]
    mixed.write_text(json.dumps({"prompt": question, "chosen": answer, "rejected": QA_PAIRS[1][1]}) + "\n"
                     + json.dumps({"prompt": question, "completion": answer, "label": True}) + "\n")
    heldout = read_heldout(mixed)
    assert heldout.kind == "preference" and len(heldout.examples) == 1 and heldout.rows == 2
    assert list(heldout.dropped.values()) == [["line 2"]]
    assert "not a pair" in heldout.describe()


def test_a_classifier_candidate_is_refused_on_pairs(tiny_llama, pair_file, tmp_path):
    from studio.engine.preflight import preflight
    from tests.engine.test_eval_classifier import biased_classifier

    head = biased_classifier(tmp_path / "clf", ["right", "wrong"], favourite="right")
    cfg = EvalConfig(model=str(tiny_llama), dataset=str(pair_file), shots="0", tuned=str(head), device="cpu")
    report = preflight(cfg)
    assert any("classifier" in f.message and "preference pairs" in f.message for f in report.errors), \
        report.describe()
    with pytest.raises(BadConfig, match="classifier.*holds preference pairs"):
        evaluate(cfg, tmp_path / "eval")


def test_the_check_knows_preference_pairs(tiny_llama, pair_file, tmp_path):
    from studio.engine.preflight import preflight

    fine = preflight(EvalConfig(model=str(tiny_llama), dataset=str(pair_file), shots="0, 3", shot_pool=str(pair_file),
                                device="cpu"))
    assert fine.ok, fine.describe()
    assert any("preference pairs" in f.message for f in fine.notes)
    assert any("3-shot" in f.message and "left out" in f.message for f in fine.warnings)
    # Asked for preference, no shot pool is needed, since no shot is used.
    only_shots = preflight(EvalConfig(model=str(tiny_llama), dataset=str(pair_file), kind="preference", shots="2",
                                      device="cpu"))
    assert [f.field for f in only_shots.errors] == ["shots"], only_shots.describe()
    assert "no examples in the prompt" in only_shots.errors[0].message
    empty = tmp_path / "no-pairs.jsonl"
    empty.write_text(json.dumps({"prompt": "Hi", "chosen": "Hello", "rejected": "Hello"}) + "\n")
    same = preflight(EvalConfig(model=str(tiny_llama), dataset=str(empty), shots="0", device="cpu"))
    assert any("nothing to prefer" in f.message for f in same.errors), same.describe()


def test_a_finished_preference_run_is_offered_as_a_candidate(memorised_adapter, tmp_path):
    """Its adapter can be compared with the adapter it started from."""
    import shutil

    from studio.engine.config import save_config
    from studio.engine.evaluate.candidates import finished_outputs, tuned_candidate
    from studio.engine.events import EventWriter
    from studio.engine.preference.config import PreferenceConfig
    from studio.engine.runs import CONFIG_FILE, EVENTS_FILE

    run = tmp_path / "runs" / "2024-05-01-120000-preferred"
    shutil.copytree(memorised_adapter, run / "adapter")
    save_config(PreferenceConfig(name="preferred", model="/models/tiny", dataset="pairs.jsonl",
                                 adapter=str(memorised_adapter)), run / CONFIG_FILE)
    writer = EventWriter(run / EVENTS_FILE)
    writer.emit("started", task="preference", total_steps=4)
    writer.emit("finished", status="completed", output=str(run / "adapter"))
    writer.close()
    [found] = finished_outputs(tmp_path)
    assert (found.name, found.task, found.output) == ("preferred", "preference", run / "adapter")
    cand = tuned_candidate(str(run), "", 1)
    assert cand.adapter == str(run / "adapter") and cand.label == "preferred (LoRA adapter)"
    assert cand.run == str(run)
