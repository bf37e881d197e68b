"""The Evaluate tab (studio.ui.evaluate): the held-out file, the candidates, the config, the results of an
evaluation (hand-written results.json / examples.jsonl valid per studio.engine.evaluate.results), the wiring
with the main window, the Runs list and the playground, a small window, and one real evaluation."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from tests.ui.conftest import _stop_everything
from evaluate_fixtures import (EXAMPLES, LABELS, RECOMMENDATION, classification_results, disagreements, eval_run,
                               finetune_run, labelled_file)
from PySide6.QtCore import QPoint, QRect, Qt

from studio.engine.evaluate.config import EvalConfig
from studio.engine.evaluate.heldout import read_heldout
from studio.engine.prompting import Example, load_preset

LONG = 60000


@pytest.fixture
def tab(qtbot):
    from studio.ui.evaluate.tab import EvaluateTab

    tab = EvaluateTab(grace_s=60)
    qtbot.addWidget(tab)
    tab.resize(1300, 850)
    tab.show()
    yield tab
    _stop_everything(tab, qtbot)


def load(tab, path, qtbot) -> None:
    with qtbot.waitSignal(tab.heldout.read_finished, timeout=LONG):
        tab.load_heldout(str(path))
    qtbot.waitUntil(lambda: not tab.heldout.busy(), timeout=LONG)


def shown_whole(widget, ancestor) -> bool:
    rect = QRect(widget.mapTo(ancestor, QPoint(0, 0)), widget.size())
    return not widget.visibleRegion().isEmpty() and ancestor.rect().contains(rect)


# -- the held-out file ---------------------------------------------------------------------------------
def test_opening_a_heldout_file_shows_its_description_and_first_rows(tab, tmp_path, qtbot):
    path = labelled_file(tmp_path)
    assert "Open a held-out file first" in tab.start_button.toolTip()
    load(tab, path, qtbot)
    expected = read_heldout(path).describe()
    assert expected in tab.heldout.summary.text() and tab.heldout.summary.isVisible()
    assert "classification" in tab.heldout.summary.text()
    assert tab.panel.tabs.currentWidget() is tab.heldout.preview  # the preview comes to the front
    assert expected in tab.heldout.preview.details.text()
    assert tab.heldout.preview.table.rowCount() == len(EXAMPLES)
    assert tab.heldout.preview.row(0) == ("line 1", EXAMPLES[0][0], EXAMPLES[0][1])
    assert not tab.heldout.error_panel.isVisible()


def test_a_bad_heldout_file_is_explained_in_words_naming_the_file(tab, tmp_path, qtbot):
    odd = tmp_path / "odd-columns.jsonl"
    odd.write_text(json.dumps({"foo": "a", "bar": "b"}) + "\n")
    load(tab, odd, qtbot)
    panel = tab.heldout.error_panel
    assert panel.isVisible() and str(odd) in panel.text() and "foo" in panel.text()
    assert "Traceback" not in panel.text()
    assert not tab.start_button.isEnabled() and str(odd) in tab.start_button.toolTip()

    broken = tmp_path / "broken.jsonl"
    broken.write_text(json.dumps({"text": "fine", "label": "a"}) + "\n{not json\n")
    load(tab, broken, qtbot)
    assert str(broken) in panel.text() and "line 2" in panel.text()
    assert "Traceback" not in panel.text() and tab.heldout.preview.table.rowCount() == 0

    load(tab, labelled_file(tmp_path), qtbot)  # a good file: the error goes
    assert not panel.isVisible() and tab.heldout.error is None


def test_the_form_format_and_mapping_read_the_file_again(tab, tmp_path, qtbot):
    path = tmp_path / "reviews.csv"
    path.write_text("review,stars\nGreat,5\nAwful,1\nMeh,3\n")
    load(tab, path, qtbot)
    assert tab.heldout.error is not None  # no column says which is the text
    with qtbot.waitSignal(tab.heldout.read_finished, timeout=LONG):
        tab.data_form.set_value("column_mapping", {"review": "text", "stars": "label"})
        tab.data_form.changed.emit()
    qtbot.waitUntil(lambda: not tab.heldout.busy(), timeout=LONG)
    assert tab.heldout.error is None and "3 labels (1, 3, 5)" in tab.heldout.summary.text()
    assert tab.config().column_mapping == {"review": "text", "stars": "label"}


# -- candidates ----------------------------------------------------------------------------------------
def test_finished_runs_of_the_workspace_are_offered_as_candidates(qtbot, workspace, tmp_path):
    from studio.ui.evaluate.tab import EvaluateTab

    run = finetune_run(workspace)
    eval_run(workspace)  # an evaluation is not a candidate
    tab = EvaluateTab()
    qtbot.addWidget(tab)
    try:
        tab.show()  # the runs are listed when the tab is shown
        items = [tab.candidates.list.item(i) for i in range(tab.candidates.list.count())]
        assert [i.text() for i in items] == ["reviews — fine-tune (LoRA adapter)"]
        assert not tab.candidates.empty_label.isVisibleTo(tab)
        items[0].setCheckState(Qt.CheckState.Checked)
        assert tab.config().tuned_paths() == [str(run / "adapter")]
        other = tmp_path / "elsewhere" / "adapter"
        other.mkdir(parents=True)
        (other / "adapter_config.json").write_text("{}")
        tab.candidates.add_folder(str(other))
        assert tab.config().tuned_paths() == [str(run / "adapter"), str(other)]
        tab.hide()
        later = finetune_run(workspace, "2024-03-06-090000-later", "later")  # finished while the tab was hidden
        tab.show()  # listed again; what is ticked, and the folder added by hand, stay
        assert tab.candidates.list.item(0).text() == "later — fine-tune (LoRA adapter)"
        assert tab.config().tuned_paths() == [str(run / "adapter"), str(other)]
        tab.add_candidate(str(later / "adapter"), "/models/other")
        assert tab.config().tuned_paths() == [str(later / "adapter"), str(run / "adapter"), str(other)]
        assert tab.model_picker.model() == "/models/other"
        shutil.rmtree(later)  # a ticked run deleted: it stays ticked, and the check says what is wrong
        tab.candidates.refresh()
        assert str(later / "adapter") in tab.config().tuned_paths()
    finally:
        tab.shutdown()


def test_an_empty_workspace_says_what_to_do(tab):
    assert tab.candidates.list.count() == 0 and tab.candidates.empty_label.isVisible()
    assert "Train one" in tab.candidates.empty_label.text()


def test_k_sweep_needs_a_shot_pool_and_says_so(tab, tmp_path, qtbot):
    load(tab, labelled_file(tmp_path), qtbot)
    qtbot.mouseClick(tab.candidates.sweep_button, Qt.MouseButton.LeftButton)
    assert tab.candidates.shots.text() == "0, 1, 3, 5, 8"
    assert not tab.start_button.isEnabled() and "shot pool is empty" in tab.start_button.toolTip()
    assert tab.candidates.pool.styleSheet()  # the field to fix is marked
    tab.candidates.set_pool(str(labelled_file(tmp_path, "train.jsonl")))
    assert tab.config().shot_counts() == [0, 1, 3, 5, 8] and not tab.candidates.pool.styleSheet()


def test_start_is_allowed_once_the_checks_pass(tab, tmp_path, qtbot):
    from studio.ui.widgets.model_picker import starter_model

    if starter_model() is None:
        pytest.skip("the starter model is not built")
    tab.model_picker.set_model(str(starter_model()))
    load(tab, labelled_file(tmp_path), qtbot)
    qtbot.waitUntil(tab.start_button.isEnabled, timeout=LONG)
    tab.candidates.set_shots("0, many")
    assert not tab.start_button.isEnabled() and "many" in tab.start_button.toolTip()


# -- the config ------------------------------------------------------------------------------------------
def test_the_config_round_trips_and_is_remembered(tab, tmp_path, workspace, qtbot):
    from studio.ui.evaluate.tab import EvaluateTab

    run = finetune_run(workspace)
    tab.candidates.refresh()
    pool = labelled_file(tmp_path, "train.jsonl")
    path = tmp_path / "reviews.csv"
    path.write_text("review,stars\nGreat,5\nAwful,1\n")
    cfg = EvalConfig(name="my-eval", model=str(tmp_path), dataset=str(path), format="labelled",
                     column_mapping={"review": "text", "stars": "label"}, kind="classification", max_examples=50,
                     shots="0, 2", shot_pool=str(pool), shot_selection="similar", tuned=str(run / "adapter"),
                     mode="completion", system="Answer with one word.", label_instruction=False,
                     completion_template="Q: {input}\nA: {output}", generate=False, max_new_tokens=16,
                     batch_size=4, max_length=256, window=128, stride=64, seed=7, device="cpu", precision="fp32")
    with qtbot.waitSignal(tab.heldout.read_finished, timeout=LONG):
        tab.set_config(cfg)
    assert tab.config() == cfg
    tab.set_config(tab.config())
    assert tab.config() == cfg
    tab.shutdown()  # remembers the settings

    again = EvaluateTab()
    qtbot.addWidget(again)
    try:
        assert again.config() == cfg
    finally:
        again.shutdown()


# -- results ---------------------------------------------------------------------------------------------
def test_a_saved_evaluation_shows_recommendation_table_plots_and_confusion(tab, workspace, qtbot):
    run = eval_run(workspace)
    with qtbot.waitSignal(tab.results_shown, timeout=LONG):
        tab.open_run(run)
    view = tab.results_view
    assert tab.panel.tabs.currentWidget() is view
    assert RECOMMENDATION in view.recommendation.text() and "accuracy" in view.recommendation.text()
    assert view.row_count() == 3
    assert [view.table.item(r, 0).text() for r in range(3)] == ["tiny, 0-shot", "tiny, 3-shot",
                                                                 "reviews (LoRA adapter)"]
    assert view.table.item(2, 1).text() == "83.3%"
    assert "reviews-eval" in view.source_label.text()
    # The best candidate is selected: its confusion matrix shows, rows true and columns predicted.
    confusion = view.confusion
    assert confusion.current() == "tuned-1"
    tuned = classification_results()["candidates"][2]["confusion"]["matrix"]
    assert confusion.shown_labels == LABELS and confusion.shown_counts == tuned
    assert confusion.shown_text() == [[str(n) for n in row] for row in tuned]
    assert confusion.plot.getAxis("left").labelText == "true label"
    assert confusion.plot.getAxis("bottom").labelText == "predicted label"
    view.table.selectRow(0)  # another candidate's matrix
    zero_shot = classification_results()["candidates"][0]["confusion"]["matrix"]
    assert confusion.current() == "prompt-0" and confusion.shown_counts == zero_shot
    # The plots: accuracy against k for the prompts, the fine-tuned model as a level; and against the cost.
    assert [(k, round(v, 1)) for k, v in view.shots_plot.points] == [(0, 50.0), (3, 66.7)]
    assert {k: round(v, 1) for k, v in view.shots_plot.levels.items()} == {"reviews (LoRA adapter)": 83.3}
    assert view.cost_plot.points["tiny, 3-shot"][0] == 160.0
    # The per-example answers, the disagreements first.
    examples = tab.examples_view
    shown = examples.shown_rows()
    assert len(shown) == len(EXAMPLES)
    differ = disagreements()
    assert {r.index for r in shown[:len(differ)]} == differ
    assert all(not r.disagree for r in shown[len(differ):])
    assert examples.cell_text(0, 1) == "disagree"
    first = shown[0]
    assert examples.cell_text(0, 2) == first.input
    marks = [examples.cell_text(0, c)[0] for c in range(4, 7)]
    assert set(marks) == {"✔", "✘"}
    examples.only_disagreements.setChecked(True)
    assert {r.index for r in examples.shown_rows()} == differ
    examples.only_disagreements.setChecked(False)
    examples.find.setText("pizza")
    assert [r.input for r in examples.shown_rows()] == ["Best pizza in town!"]
    examples.find.clear()
    header = examples.table.horizontalHeader()  # sortable: a click on "#" puts them in file order
    qtbot.mouseClick(header.viewport(), Qt.MouseButton.LeftButton, pos=QPoint(header.sectionViewportPosition(0) + 5,
                                                                                header.height() // 2))
    order = [r.index for r in examples.shown_rows()]
    assert order in (sorted(order), sorted(order, reverse=True)) and header.sortIndicatorSection() == 0
    with qtbot.waitSignal(tab.results_shown, timeout=LONG):
        tab.open_run(run)  # shown again (a refresh after `scored`): the order chosen stays
    assert [r.index for r in examples.shown_rows()] == order


def test_partial_results_say_they_are_partial(tab, workspace, qtbot):
    run = eval_run(workspace, results=classification_results(complete=False, count=1))
    with qtbot.waitSignal(tab.results_shown, timeout=LONG):
        tab.open_run(run)
    text = tab.results_view.recommendation.text()
    assert "1 candidate scored so far" in text and tab.results_view.row_count() == 1


def test_an_evaluation_without_results_says_so(tab, workspace):
    run = eval_run(workspace)
    (run / "results.json").unlink()
    tab.open_run(run)
    assert "has no results" in tab.results_view.recommendation.text() and tab.results_view.row_count() == 0


def test_the_tab_fits_a_small_window(tab, workspace, qtbot):
    tab.resize(800, 600)
    qtbot.waitUntil(lambda: tab.size().width() == 800 and tab.size().height() == 600)
    assert tab.minimumSizeHint().width() <= 800 and tab.minimumSizeHint().height() <= 600
    assert tab.left.horizontalScrollBar().maximum() == 0  # the settings scroll up and down only
    for widget in (tab.start_button, tab.stop_button, tab.panel.progress):
        assert shown_whole(widget, tab), widget
    with qtbot.waitSignal(tab.results_shown, timeout=LONG):
        tab.open_run(eval_run(workspace))
    view = tab.results_view
    qtbot.waitUntil(lambda: shown_whole(view.recommendation, tab))
    assert view.recommendation_fits()  # the whole recommendation is in view, nothing cut off
    for widget in (view.table, view.views):
        assert shown_whole(widget, tab) and widget.height() >= 60, widget


def test_the_window_with_results_fits_a_small_screen(main_window, workspace, qtbot):
    w = main_window
    w.resize(800, 600)
    w.tabs.setCurrentWidget(w.evaluate_tab)
    with qtbot.waitSignal(w.evaluate_tab.results_shown, timeout=LONG):
        w.evaluate_tab.open_run(eval_run(workspace))
    hint = w.minimumSizeHint()
    assert hint.width() <= 800 and hint.height() <= 600, hint
    qtbot.waitUntil(lambda: not w.evaluate_tab.start_button.visibleRegion().isEmpty())
    assert not w.evaluate_tab.results_view.table.visibleRegion().isEmpty()


# -- the window, the Runs list and the playground ------------------------------------------------------------
def test_the_window_has_an_evaluate_tab_that_ctrl_o_serves(main_window, monkeypatch):
    w = main_window
    assert w.tabs.tabText(w.tabs.indexOf(w.evaluate_tab)) == "Evaluate"
    assert w.tabs.indexOf(w.evaluate_tab) == w.tabs.indexOf(w.playground_tab) + 1 == w.tabs.indexOf(w.runs_view) - 1
    opened = []
    monkeypatch.setattr(w.evaluate_tab, "open_heldout_dialog", lambda: opened.append(True))
    w.tabs.setCurrentWidget(w.evaluate_tab)
    w.open_dataset_action.trigger()
    assert opened == [True] and w.tabs.currentWidget() is w.evaluate_tab


def test_the_runs_list_evaluates_a_finished_run_and_shows_an_evaluation(main_window, workspace, qtbot):
    w = main_window
    trained = finetune_run(workspace)
    evaluation = eval_run(workspace)
    view = w.runs_view
    view.refresh_now()
    assert view.table.item(view.row_of(evaluation), view.column("Kind")).text() == "Evaluation"
    view.select_run(trained)
    assert view.evaluate_action.text() == "Evaluate" and view.evaluate_action.isEnabled()
    view.evaluate_button.click()
    assert w.tabs.currentWidget() is w.evaluate_tab
    assert w.evaluate_tab.candidates.tuned_paths() == [str(trained / "adapter")]
    assert w.evaluate_tab.model_picker.model() == "/models/tiny"  # the model it was trained from

    w.tabs.setCurrentWidget(view)
    view.select_run(evaluation)
    assert view.evaluate_action.text() == "Show results" and view.evaluate_action.isEnabled()
    with qtbot.waitSignal(w.evaluate_tab.results_shown, timeout=LONG):
        view.evaluate_button.click()
    assert w.tabs.currentWidget() is w.evaluate_tab and w.evaluate_tab.results_view.row_count() == 3
    assert w.evaluate_tab.config().name == "reviews-eval"  # its settings, to run it again
    w.tabs.setCurrentWidget(view)
    view.load_selected_config()  # Load config of an evaluation goes to the Evaluate tab too
    assert w.tabs.currentWidget() is w.evaluate_tab


def test_a_finished_fine_tune_offers_evaluate(main_window, workspace, qtbot):
    w = main_window
    run = finetune_run(workspace)
    tab = w.finetune_tab
    with qtbot.waitSignal(tab.run_ended, timeout=LONG):
        tab.panel.attach(run)  # its events replayed: the result panel shows, with its buttons
    button = next(b for b in tab.panel.result_panel.output_buttons if b.text() == "Evaluate")
    qtbot.waitUntil(button.isVisible)
    button.click()
    assert w.tabs.currentWidget() is w.evaluate_tab
    assert w.evaluate_tab.candidates.tuned_paths() == [str(run / "adapter")]
    assert w.evaluate_tab.model_picker.model() == "/models/tiny"


def test_the_playground_evaluate_button_carries_its_prompt_and_examples(main_window, workspace, tmp_path):
    w = main_window
    play = w.playground_tab
    adapter = tmp_path / "run" / "adapter"
    adapter.mkdir(parents=True)
    (adapter / "adapter_config.json").write_text("{}")
    play.model_picker.set_model(str(tmp_path), remember=False)
    play.tuned_edit.setText(str(adapter))
    play.mode.setCurrentIndex(play.mode.findData("completion"))
    play.system.setPlainText("Classify the review.")
    play.examples.set_examples([Example("Great!", "positive"), Example("Awful.", "negative")])
    play.template.setText("Review: {input}\\nSentiment: {output}")
    play.evaluate_button.click()
    tab = w.evaluate_tab
    assert w.tabs.currentWidget() is tab
    cfg = tab.form.config()
    assert cfg.system == "Classify the review." and cfg.mode == "completion"
    assert cfg.completion_template == "Review: {input}\nSentiment: {output}"
    values = tab.candidates.values()
    assert values["shots"] == "0, 2" and values["tuned"] == str(adapter)
    pool = Path(values["shot_pool"])
    assert pool.parent == workspace / "presets" and pool.suffix == ".json"
    preset = load_preset(pool)
    assert [(e.input, e.output) for e in preset.examples] == [("Great!", "positive"), ("Awful.", "negative")]
    assert tab.model_picker.model() == str(tmp_path)

    play.examples.set_examples([])  # no examples: only the prompt as it is, no pool
    play.evaluate_button.click()
    assert tab.candidates.values()["shots"] == "0"


# -- a real evaluation ---------------------------------------------------------------------------------------
def test_a_real_evaluation_shows_its_results(tab, tiny_llama, qa_dataset, workspace, qtbot):
    tab.model_picker.set_model(str(tiny_llama), remember=False)
    tab.form.set_value("max_new_tokens", 16)
    tab.form.set_value("name", "ui-eval")
    tab.form.changed.emit()
    load(tab, qa_dataset, qtbot)
    assert tab.candidates.values()["shots"] == "0"
    qtbot.waitUntil(tab.start_button.isEnabled, timeout=LONG)
    shown_while = []  # the run's status each time the results were shown
    tab.results_shown.connect(lambda: shown_while.append(tab.panel.state.status))
    with qtbot.waitSignal(tab.run_ended, timeout=600000) as ended:
        qtbot.mouseClick(tab.start_button, Qt.MouseButton.LeftButton)
    assert ended.args[0]["status"] == "completed", tab.error_panel.text()
    qtbot.waitUntil(lambda: tab.results_view.row_count() == 1, timeout=LONG)
    assert tab.panel.tabs.currentWidget() is tab.results_view
    assert "Recommendation" in tab.results_view.recommendation.text()
    assert tab.results_view.results["complete"] is True
    assert shown_while[0] == "running" and shown_while[-1] == "completed"  # after `scored`, then at the end
    assert len(tab.examples_view.shown_rows()) == 4
    assert tab.panel.progress.value() == tab.panel.progress.maximum() > 0
    assert "scored" in tab.panel.progress.text()
    assert tab.shown_run is not None and tab.shown_run.parent == workspace / "runs"


def test_a_fine_tuning_config_is_refused_by_the_evaluate_tab(tab, tmp_path):
    path = tmp_path / "finetune.yaml"
    path.write_text("task: sft\nmodel: some-model\ndataset: data.json\n")
    assert not tab.load_config_file(path)
    assert "is a 'sft' run, not an evaluation" in tab.error_panel.message.text()


def test_preference_pairs_show_both_replies_and_their_preference_accuracy(tab, workspace, tmp_path, qtbot):
    from studio.engine.evaluate.recommend import recommend
    from studio.engine.evaluate.results import write_examples, write_results

    pairs = tmp_path / "pairs.jsonl"
    pairs.write_text(json.dumps({"prompt": "Capital of Zorbia?", "chosen": "Quillton.", "rejected": "Kelp."}) + "\n")
    load(tab, pairs, qtbot)
    assert "preference pairs (prompt pairs)" in tab.heldout.summary.text()
    assert "Scored as preference accuracy" in tab.heldout.summary.text()
    preview = tab.heldout.preview
    assert preview.table.horizontalHeaderItem(2).text() == "Chosen and rejected replies"
    assert preview.row(0) == ("line 1", "Capital of Zorbia?", "Chosen: Quillton.\nRejected: Kelp.")

    def candidate(cid, label, kind, accuracy):
        return {"id": cid, "label": label, "kind": kind, "shots": 0 if kind == "prompt" else None, "scored": 1,
                "metrics": {"preference_accuracy": accuracy, "logprob_margin": accuracy - 0.5},
                "cost": {"prompt_tokens": 12.0}, "fit": {"shots_dropped": 0, "skipped": 0}}

    results = {"version": 1, "complete": True, "kind": "preference", "dataset": str(pairs), "examples": 1,
               "labels": [], "primary": {"metric": "preference_accuracy", "higher_is_better": True},
               "candidates": [candidate("prompt-0", "tiny, 0-shot", "prompt", 0.0),
                              candidate("tuned-1", "zorbia (LoRA adapter)", "tuned", 1.0)], "warnings": []}
    results["recommendation"] = recommend(results)
    run = eval_run(workspace, results=results, heldout=pairs)
    write_results(run, results)
    write_examples(run, [{"index": 0, "where": "line 1", "input": "Capital of Zorbia?", "reference": "Quillton.",
                          "rejected": "Kelp.", "answers": {
                              "prompt-0": {"answer": "rejected", "correct": False, "score": -0.4,
                                           "chosen_logprob": -2.4, "rejected_logprob": -2.0},
                              "tuned-1": {"answer": "chosen", "correct": True, "score": 1.5,
                                          "chosen_logprob": -0.1, "rejected_logprob": -1.6}}}])
    with qtbot.waitSignal(tab.results_shown, timeout=LONG):
        tab.open_run(run)
    view = tab.results_view
    headers = [view.table.horizontalHeaderItem(c).text() for c in range(view.table.columnCount())]
    assert headers[1:3] == ["preference accuracy", "margin per token"]
    assert [view.table.item(r, 1).text() for r in range(2)] == ["0.0%", "100.0%"]
    assert "Highest preference accuracy: zorbia (LoRA adapter)" in view.recommendation.text()
    assert "preference pairs" in view.confusion.note.text()
    examples = tab.examples_view
    assert examples.cell_text(0, 3) == "Quillton."
    tip = examples.proxy.index(0, 3).data(Qt.ItemDataRole.ToolTipRole)
    assert tip == "Chosen: Quillton.\n\nRejected: Kelp."
    marks = {examples.cell_text(0, c) for c in (4, 5)}
    assert marks == {"✘ rejected", "✔ chosen"}
    answer_tip = examples.proxy.index(0, 5).data(Qt.ItemDataRole.ToolTipRole)
    assert "chosen -0.100, rejected -1.600" in answer_tip
