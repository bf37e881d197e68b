"""Classification in the GUI: the Fine-tune tab's task selector and labelled-data box, the metrics of a
classification run, and the playground's classify view on a real (tiny) classifier."""

import json
from pathlib import Path

import pytest

from tests.conftest import minilm_path
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QFileDialog

from studio.engine.classify.config import ClassifyConfig
from studio.engine.config import FineTuneConfig
from studio.engine.run_state import fold

ROOT = Path(__file__).resolve().parents[2]
TOPICS = ROOT / "resources" / "topics-heldout.jsonl"
LABELS = ["animal", "food", "weather"]
CONFUSION = [[18, 2, 0], [1, 20, 1], [0, 3, 10]]




@pytest.fixture(scope="session")
def tiny_classifier(tmp_path_factory) -> Path:
    """A real BertForSequenceClassification (tiny, MiniLM's tokenizer) taught that "great" is positive and
    "awful" negative, saved as a plain model folder like a classification run's model/."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification

    torch.manual_seed(0)
    tokenizer = AutoTokenizer.from_pretrained(minilm_path())
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=2,
                        id2label={0: "negative", 1: "positive"}, label2id={"negative": 0, "positive": 1},
                        problem_type="single_label_classification")
    model = BertForSequenceClassification(config)
    texts = [f"{w} {n}" for w in ("great", "awful") for n in ("film", "meal", "day", "book", "song", "trip")]
    labels = torch.tensor([1 if t.startswith("great") else 0 for t in texts])
    batch = tokenizer(texts, padding=True, return_tensors="pt")
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3)
    for _ in range(40):
        model(**batch, labels=labels).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    folder = tmp_path_factory.mktemp("classifier") / "model"
    model.config.architectures = ["BertForSequenceClassification"]
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def _eval_event(step: int, confusion, accuracy: float, macro_f1: float) -> dict:
    per_class = {label: {"precision": 0.9 - 0.1 * i, "recall": 0.8, "f1": 0.85 - 0.2 * i, "support": sum(row)}
                 for i, (label, row) in enumerate(zip(LABELS, confusion))}
    return {"type": "eval", "time": 10.0 + step, "step": step, "eval_loss": 1.0 / step, "accuracy": accuracy,
            "macro_f1": macro_f1, "per_class": per_class, "confusion": confusion, "labels": LABELS}


def _classify_events(output: str = "") -> list[dict]:
    return [{"type": "started", "time": 1.0, "task": "classify", "problem": "single_label", "labels": LABELS,
             "total_steps": 20, "device": "cpu"},
            _eval_event(10, [[10, 5, 5], [4, 14, 4], [3, 3, 7]], 0.56, 0.54),
            _eval_event(20, CONFUSION, 0.87, 0.85),
            {"type": "finished", "time": 40.0, "status": "completed", "output": output}]


def _load_labelled(tab, path, qtbot) -> None:
    with qtbot.waitSignal(tab.classify.data_box.analysis_finished, timeout=30000):
        tab.load_labelled(str(path))


# -- the Fine-tune tab ----------------------------------------------------------------------------------
def test_task_selector_swaps_the_form_and_the_config(finetune_tab, qtbot):
    tab = finetune_tab
    assert tab.task() == "sft" and tab.task_pages.currentWidget() is not tab.classify
    assert isinstance(tab.config(), FineTuneConfig)
    tabs = tab.panel.tabs
    assert not tabs.isTabVisible(tabs.indexOf(tab.metrics))

    tab.task_combo.setFocus()
    qtbot.keyClick(tab.task_combo, Qt.Key.Key_Down)  # reachable from the keyboard
    assert tab.task() == "classify"
    assert tab.task_pages.currentWidget() is tab.classify
    cfg = tab.config()
    assert isinstance(cfg, ClassifyConfig) and cfg.task == "classify"
    assert tab.panel.output_noun == "the classifier" and "the classifier" in tab.stop_button.toolTip()
    assert tabs.isTabVisible(tabs.indexOf(tab.metrics))
    assert tabs.isTabVisible(tabs.indexOf(tab.classify.data_box.preview_widget))
    assert not tabs.isTabVisible(tabs.indexOf(tab.dataset_panel.preview_widget))
    assert tab.start_problem() == "Open a labelled data file first."

    # The task is remembered: a new tab opens in classification mode.
    from studio.ui.finetune.tab import FineTuneTab

    again = FineTuneTab()
    qtbot.addWidget(again)
    try:
        assert again.task() == "classify"
    finally:
        again.shutdown()


def test_both_tasks_settings_are_remembered(finetune_tab, qtbot):
    tab = finetune_tab
    tab.form.set_value("max_steps", 17)
    tab.set_task("classify")
    _load_labelled(tab, TOPICS, qtbot)
    tab.classify.form.set_value("class_weights", True)
    tab.shutdown()  # as when the window closes

    from studio.ui.finetune.tab import FineTuneTab

    again = FineTuneTab()
    qtbot.addWidget(again)
    try:
        qtbot.waitUntil(lambda: not again.classify.data_box.busy(), timeout=30000)
        assert again.task() == "classify"
        assert again.classify.data_box.path() == str(TOPICS)
        assert again.classify.form.value("class_weights") is True
        assert again.form.value("max_steps") == 17  # the chat form kept its own settings
    finally:
        again.shutdown()


def test_labelled_file_fills_columns_and_label_counts(finetune_tab, qtbot):
    tab = finetune_tab
    tab.set_task("classify")
    _load_labelled(tab, TOPICS, qtbot)
    box = tab.classify.data_box
    assert box.problem() is None, box.error_panel.text()
    assert box.text_combo.currentData() == "text" and box.label_combo.currentData() == "label"
    assert box.pair_combo.currentData() == ""
    assert [box.text_combo.itemData(i) for i in range(box.text_combo.count())] == ["", "text", "label"]
    assert box.label_table.counts() == {"food": 57, "animal": 56, "weather": 37}  # most frequent first
    assert not box.imbalance_box.isVisibleTo(tab)  # 57 / 37 is no imbalance worth a warning
    assert "150 examples" in box.summary_label.text()
    assert box.preview_widget.rowCount() == 150
    cfg = tab.config()
    assert (cfg.dataset, cfg.text_column, cfg.label_column) == (str(TOPICS), "text", "label")


def test_wrong_label_column_is_said_in_words(finetune_tab, qtbot):
    tab = finetune_tab
    tab.set_task("classify")
    _load_labelled(tab, TOPICS, qtbot)
    box = tab.classify.data_box
    with qtbot.waitSignal(box.analysis_finished, timeout=30000):
        box.label_combo.setCurrentIndex(box.label_combo.findData("text"))
    assert box.problem() is not None and "Traceback" not in box.error_panel.text()
    assert box.error_panel.isVisibleTo(tab) and str(TOPICS) in box.error_panel.text()
    assert not tab.start_button.isEnabled()


def test_imbalanced_labels_warn_and_weigh_classes(finetune_tab, tmp_path, qtbot):
    tab = finetune_tab
    path = tmp_path / "spam.csv"
    rows = [f"win a prize now {i},spam" for i in range(5)] + [f"see you at lunch {i},ham" for i in range(30)]
    path.write_text("review,category\n" + "\n".join(rows) + "\n", encoding="utf-8")
    tab.set_task("classify")
    _load_labelled(tab, path, qtbot)
    box = tab.classify.data_box
    assert box.label_combo.currentData() == "category"
    assert box.imbalance_box.isVisibleTo(tab)
    assert "6.0×" in box.imbalance_label.text() and "'spam'" in box.imbalance_label.text()
    assert tab.config().class_weights is False
    qtbot.mouseClick(box.weigh_button, Qt.MouseButton.LeftButton)
    assert tab.classify.form.value("class_weights") is True
    assert tab.config().class_weights is True
    assert box.weigh_button.isHidden() and "Class weights are on" in box.imbalance_label.text()


def test_save_and_load_a_classify_config(finetune_tab, tmp_path, monkeypatch, qtbot):
    tab = finetune_tab
    tab.set_task("classify")
    _load_labelled(tab, TOPICS, qtbot)
    tab.classify.form.set_value("best_metric", "accuracy")
    tab.classify.form.set_value("class_weights", True)
    tab.classify.method_combo.setCurrentIndex(tab.classify.method_combo.findData("full"))
    target = tmp_path / "classifier.yaml"
    monkeypatch.setattr(QFileDialog, "getSaveFileName", lambda *a, **k: (str(target), ""))
    tab.save_config_dialog()
    from studio.engine.config import load_config

    saved = load_config(target)
    assert isinstance(saved, ClassifyConfig)
    assert (saved.best_metric, saved.class_weights, saved.method, saved.label_column) == \
        ("accuracy", True, "full", "label")

    tab.classify.form.set_value("best_metric", "loss")
    tab.set_task("sft")
    monkeypatch.setattr(QFileDialog, "getOpenFileName", lambda *a, **k: (str(target), ""))
    with qtbot.waitSignal(tab.classify.data_box.analysis_finished, timeout=30000):
        tab.load_config_dialog()
    assert tab.task() == "classify"  # the selector follows the file
    assert tab.classify.form.value("best_metric") == "accuracy"
    assert tab.classify.method_combo.currentData() == "full"
    assert not tab.classify.form.is_field_visible("lora_r")
    assert tab.config() == saved


# -- the metrics of a run -------------------------------------------------------------------------------
def test_metrics_view_draws_the_latest_confusion_matrix(qtbot):
    from studio.ui.widgets.classify_metrics import ClassifyMetrics

    view = ClassifyMetrics()
    qtbot.addWidget(view)
    view.show_state(fold(_classify_events()))
    assert view.confusion.labels == LABELS
    assert view.confusion.shown_text() == [[str(n) for n in row] for row in CONFUSION]
    assert view.scores.series_data("accuracy") == ([10.0, 20.0], [0.56, 0.87])
    assert view.scores.series_data("macro-F1")[1] == [0.54, 0.85]
    assert view.per_class.row_values("weather") == {"Label": "weather", "Precision": "0.700", "Recall": "0.800",
                                                    "F1": "0.450", "Support": "13"}
    assert "step 20" in view.headline.text() and "87.0%" in view.headline.text()

    regression = fold([{"type": "started", "time": 1, "task": "classify", "problem": "regression"},
                       {"type": "eval", "time": 2, "step": 5, "eval_loss": 0.4, "mse": 0.4, "pearson": 0.7,
                        "spearman": 0.65}])
    view.show_state(regression)
    assert view.regression and view.details.isHidden() and not view.errors.isHidden()
    assert view.scores.series_data("Pearson") == ([5.0], [0.7])
    assert view.errors.series_data("MSE") == ([5.0], [0.4])


def test_reopened_run_redraws_metrics_and_opens_the_classifier_in_the_playground(main_window, tiny_classifier,
                                                                                 workspace, qtbot):
    from studio.engine.config import save_config
    from studio.ui.playground.run_picker import playable_runs

    run_dir = workspace / "runs" / "20250101-000000-topics"
    run_dir.mkdir(parents=True)
    save_config(ClassifyConfig(model=str(tiny_classifier), dataset=str(TOPICS)), run_dir / "config.yaml")
    (run_dir / "events.jsonl").write_text("".join(json.dumps(ev) + "\n" for ev in
                                                  _classify_events(str(tiny_classifier))), encoding="utf-8")
    tab = main_window.finetune_tab
    tab.set_task("sft")
    tab.attach(run_dir)  # as the window does for a run it finds in the workspace
    qtbot.waitUntil(lambda: tab.engine is None, timeout=30000)
    assert tab.task() == "classify"
    assert tab.metrics.confusion.shown_text() == [[str(n) for n in row] for row in CONFUSION]
    assert tab.panel.tabs.isTabVisible(tab.panel.tabs.indexOf(tab.metrics))

    qtbot.mouseClick(tab.playground_button, Qt.MouseButton.LeftButton)
    playground = main_window.playground_tab
    assert main_window.tabs.currentWidget() is playground
    assert playground.classify_view.active and playground.classify_view.path == str(tiny_classifier)
    # The playground's list of finished runs offers it too.
    assert [(r.label.split(" · ")[1], r.model) for r in playable_runs(workspace)] == \
        [("classifier", str(tiny_classifier))]


# -- the playground -------------------------------------------------------------------------------------
def test_playground_classifies_with_a_real_classifier(playground_tab, tiny_classifier, qtbot):
    tab = playground_tab
    view = tab.classify_view
    assert not view.active
    tab.load_pair(str(tiny_classifier))
    assert view.active and view.isVisibleTo(tab)
    from PySide6.QtGui import QShortcut

    shortcuts = {sc.key().toString(): sc for sc in view.findChildren(QShortcut)}
    press = {"a great film": shortcuts["Ctrl+Return"].activated.emit,
             "an awful meal": lambda: qtbot.mouseClick(view.classify_button, Qt.MouseButton.LeftButton)}
    for text, label in (("a great film", "positive"), ("an awful meal", "negative")):
        view.text.setPlainText(text)
        view.last = None
        press[text]()
        qtbot.waitUntil(lambda: view.last is not None and not view.busy, timeout=60000)
        assert view.error_panel.isHidden(), view.error_panel.text()
        assert view.top_label() == label
        assert f"<b>{label}</b>" in view.answer.text()
        assert [name for name, _ in view.chart.shown][0] == label
        assert sum(p for _, p in view.chart.shown) == pytest.approx(1.0)
    assert "negative, positive" in view.about.text()

    from studio.ui.widgets.model_picker import starter_model

    if starter_model() is not None:  # a text generator again: the chat comes back
        tab.load_pair(str(starter_model()))
        assert not view.active and not view.isVisibleTo(tab)
