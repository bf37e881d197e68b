"""A classifier with its own head as an Evaluate candidate: scored on labelled held-out text beside the prompted
base model, its classes matched to the held-out labels by name, refused on files it cannot score."""

import json
from pathlib import Path

import pytest

from tests.conftest import minilm_path

from studio.engine.evaluate.config import EvalConfig
from tests.engine.test_evaluate import LABELLED, by_id, evaluate




def biased_classifier(folder: Path, labels: list[str], favourite: str) -> Path:
    """A tiny real BERT classifier whose head always picks `favourite` (a large bias on that class)."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, num_labels=len(labels), id2label=dict(enumerate(labels)),
                        label2id={n: i for i, n in enumerate(labels)})
    torch.manual_seed(0)
    model = BertForSequenceClassification(config)
    with torch.no_grad():
        model.classifier.weight.zero_()
        model.classifier.bias.zero_()
        model.classifier.bias[labels.index(favourite)] = 10.0
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(minilm_path()).save_pretrained(folder)
    return folder


@pytest.fixture()
def labelled_file(tmp_path):
    path = tmp_path / "held-out.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in LABELLED))
    return path


def test_a_classifier_is_scored_beside_the_prompted_base_model(tiny_llama, labelled_file, tmp_path):
    # Its classes are named in another case than the held-out labels, and it lacks "colour".
    head = biased_classifier(tmp_path / "clf", ["Place", "Person", "Number"], favourite="Place")
    cfg = EvalConfig(model=str(tiny_llama), dataset=str(labelled_file), shots="0", tuned=str(head), batch_size=4,
                     device="cpu")
    events, results, examples = evaluate(cfg, tmp_path / "eval")
    clf = by_id(results)["tuned-1"]
    assert clf["classifier"] and clf["label"].endswith("(classifier)")
    assert clf["scored"] == len(LABELLED)
    places = sum(label == "place" for _, label in LABELLED)
    assert clf["metrics"]["accuracy"] == pytest.approx(places / len(LABELLED))
    assert clf["unseen_labels"] == ["colour"]
    # Every prediction is "Place", matched to the held-out label "place".
    assert {row["answers"]["tuned-1"]["answer"] for row in examples} == {"Place"}
    assert [row["answers"]["tuned-1"]["correct"] for row in examples] == [y == "place" for _, y in LABELLED]
    assert "prompt-0" in by_id(results)  # the prompted base model is compared in the same file
    assert any("colour" in w and "its classes" in w for w in results["warnings"])


def test_the_check_refuses_a_classifier_on_answers_and_warns_of_missing_classes(labelled_file, qa_dataset,
                                                                                tmp_path):
    from studio.engine.preflight import preflight

    head = biased_classifier(tmp_path / "clf", ["place", "person"], favourite="person")
    on_answers = preflight(EvalConfig(dataset=str(qa_dataset), shots="", tuned=str(head), device="cpu"))
    assert any("classifier" in f.message and "labelled text" in f.message for f in on_answers.errors)
    on_labels = preflight(EvalConfig(dataset=str(labelled_file), shots="", tuned=str(head), device="cpu"))
    assert on_labels.ok, on_labels.describe()
    assert any("number" in f.message and "colour" in f.message for f in on_labels.warnings)
