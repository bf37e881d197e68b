"""The playground's feedback loop: two replies to pick from, thumbs on single replies, the feedback file they
fill, its count, and "Train on my feedback"."""

import json
import shutil

import pytest
import yaml
from PySide6.QtCore import Qt

from studio.engine.preference.feedback import FeedbackCounts, count_feedback, feedback_path
from studio.engine.prompting.sampling import SamplingSettings
from tests.engine.generation_helpers import plain_generate

LONG_WAIT = 120_000
QUESTION = "What is the capital of Zorbia?"


@pytest.fixture
def tab(playground_tab):
    return playground_tab


def wait_ready(tab, qtbot):
    qtbot.waitUntil(lambda: not tab.is_busy(), timeout=LONG_WAIT)
    assert not tab.error_panel.isVisible(), tab.error_panel.text()


def click(qtbot, widget):
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def records(workspace):
    path = feedback_path(workspace)
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []


def send_for_two(tab, qtbot, text=QUESTION):
    tab.prompt.setPlainText(text)
    click(qtbot, tab.send_button)
    wait_ready(tab, qtbot)
    assert tab.pick_bar.left.isEnabled() and tab.pick_bar.right.isEnabled() and tab.pick_bar.both_bad.isEnabled()


def test_two_replies_of_one_model_and_right_is_better_writes_a_pair(tab, qtbot, tiny_llama, workspace):
    tab.load_pair(str(tiny_llama))
    assert not tab.pick_bar.isVisible() and not tab.panes["tuned"].isVisible()
    assert not tab.feedback_line.train_button.isEnabled()
    assert "No feedback yet" in tab.feedback_line.train_button.toolTip()
    click(qtbot, tab.two_replies)
    assert tab.pick_bar.isVisible() and tab.panes["base"].isVisible() and tab.panes["tuned"].isVisible()
    assert not tab.pick_bar.left.isEnabled()  # nothing to pick from yet
    # Greedy: the first sample is the greedy reply; the second is sampled at the preset's temperature, and says so.
    tab.sampling.set_settings(SamplingSettings(greedy=True, temperature=1.5, max_new_tokens=8, seed=0))
    tab.system.setPlainText("Answer briefly.")
    send_for_two(tab, qtbot)
    assert "greedy" in tab.panes["base"].title.text() and "sampled" in tab.panes["tuned"].title.text()
    assert "Sample 2 was sampled" in tab.status.text()
    left, right = tab.panes["base"].text(), tab.panes["tuned"].text()
    messages = [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": QUESTION}]
    rendered = tab.generation.pair.base.tokenizer.apply_chat_template(messages, tokenize=False,
                                                                      add_generation_prompt=True)
    assert left == plain_generate(tiny_llama, rendered, 8) and right and right != left
    # Neither reply joins the chat before the pick; a single reply cannot be marked meanwhile.
    assert tab.conversation_turns() == [{"role": "user", "content": QUESTION}]
    assert not tab.good_button.isEnabled() and not tab.bad_button.isEnabled()

    click(qtbot, tab.pick_bar.right)
    [pair] = records(workspace)
    assert pair["prompt"] == messages
    assert pair["chosen"] == [{"role": "assistant", "content": right}]
    assert pair["rejected"] == [{"role": "assistant", "content": left}]
    assert pair["source"]["sides"] == ["sample 2", "sample 1"] and pair["source"]["edited"] is False
    assert pair["source"]["model"] == str(tiny_llama) and pair["source"]["adapter"] is None
    # The picked reply joins the conversation; the pick is made once.
    assert tab.conversation_turns()[-1] == {"role": "assistant", "content": right}
    assert not tab.pick_bar.right.isEnabled() and tab.good_button.isEnabled()
    assert tab.feedback_line.text() == "Feedback: 1 pair, 0 good, 0 bad · feedback.jsonl"
    assert tab.feedback_line.train_button.isEnabled()


def test_an_edited_reply_is_recorded_as_the_chosen_one(tab, qtbot, tiny_llama, workspace):
    tab.load_pair(str(tiny_llama))
    tab.two_replies.setChecked(True)
    tab.mode.setCurrentIndex(tab.mode.findData("completion"))
    tab.sampling.set_settings(SamplingSettings(greedy=False, temperature=1.5, max_new_tokens=8, seed=0))
    send_for_two(tab, qtbot, "The capital of Zorbia")
    assert "seed 0" in tab.panes["base"].title.text() and "seed 1" in tab.panes["tuned"].title.text()
    right = tab.panes["tuned"].text()
    assert tab.panes["base"].output.isReadOnly()
    click(qtbot, tab.pick_bar.edit)
    assert not tab.panes["base"].output.isReadOnly()
    tab.panes["base"].output.setPlainText("")
    qtbot.keyClicks(tab.panes["base"].output, " is Quillton.")
    click(qtbot, tab.pick_bar.left)
    [pair] = records(workspace)
    assert pair["prompt"] == [{"role": "user", "content": "The capital of Zorbia"}]
    assert pair["chosen"][0]["content"] == " is Quillton." and pair["rejected"][0]["content"] == right
    assert pair["source"]["edited"] is True and pair["source"]["sides"] == ["sample 1", "sample 2"]
    assert tab.panes["base"].output.isReadOnly()  # nothing left to edit for


def test_both_bad_marks_both_and_leaves_the_message_for_regenerate(tab, qtbot, tiny_llama, workspace):
    tab.load_pair(str(tiny_llama))
    tab.two_replies.setChecked(True)
    tab.system.setPlainText("Answer briefly.")
    # With these settings the second sample ends at once: an empty reply is nothing to pick or keep.
    tab.sampling.set_settings(SamplingSettings(greedy=False, temperature=1.0, max_new_tokens=8, seed=2))
    tab.send(QUESTION)
    wait_ready(tab, qtbot)
    assert tab.panes["base"].text() and not tab.panes["tuned"].text()
    assert not tab.pick_bar.left.isEnabled() and "came back empty" in tab.status.text()
    assert tab.conversation_turns() == [{"role": "user", "content": QUESTION}] and not records(workspace)
    tab.sampling.set_settings(SamplingSettings(greedy=False, temperature=1.5, max_new_tokens=8, seed=0))
    click(qtbot, tab.regen_button)
    wait_ready(tab, qtbot)
    left, right = tab.panes["base"].text(), tab.panes["tuned"].text()
    click(qtbot, tab.pick_bar.both_bad)
    marks = records(workspace)
    assert [(m["completion"][0]["content"], m["label"], m["source"]["sides"]) for m in marks] == \
        [(left, False, ["sample 1"]), (right, False, ["sample 2"])]
    assert all(m["prompt"][1:] == [{"role": "user", "content": QUESTION}] for m in marks)
    assert tab.conversation_turns() == [{"role": "user", "content": QUESTION}]
    assert tab.feedback_line.text().startswith("Feedback: 0 pairs, 0 good, 2 bad")
    assert not tab.feedback_line.train_button.isEnabled()
    assert "needs some marked good" in tab.feedback_line.train_button.toolTip()
    # A new message waits until this one is answered; Regenerate asks again.
    tab.send("Another question")
    assert "no reply yet" in tab.error_panel.text() and tab.conversation_turns()[-1]["content"] == QUESTION
    click(qtbot, tab.regen_button)
    wait_ready(tab, qtbot)
    assert tab.pick_bar.left.isEnabled() and tab.conversation_turns() == [{"role": "user", "content": QUESTION}]
    assert (tab.panes["base"].text(), tab.panes["tuned"].text()) == (left, right)  # the same seeds


def test_thumbs_mark_single_replies_and_the_count_follows(tab, qtbot, tiny_llama, workspace):
    tab.load_pair(str(tiny_llama))
    assert not tab.two_replies.isChecked() and tab.good_button.text() == "✓ Good"
    tab.sampling.set_settings(SamplingSettings(greedy=True, max_new_tokens=6))
    tab.send(QUESTION)
    wait_ready(tab, qtbot)
    reply = tab.panes["base"].text()
    tab.activateWindow()
    qtbot.waitActive(tab)
    qtbot.keyClick(tab.prompt, Qt.Key.Key_G, Qt.KeyboardModifier.ControlModifier | Qt.KeyboardModifier.ShiftModifier)
    qtbot.waitUntil(lambda: len(records(workspace)) == 1)  # a shortcut arrives through the event queue
    [good] = records(workspace)
    assert good["label"] is True and good["completion"] == [{"role": "assistant", "content": reply}]
    assert good["prompt"] == [{"role": "user", "content": QUESTION}] and good["source"]["sides"] == ["base"]
    assert tab.good == [[{"role": "user", "content": QUESTION}, {"role": "assistant", "content": reply}]]
    assert tab.good_label.text() == "1 replies marked good"
    # A reply corrected in the conversation table is marked as it reads there.
    tab.conversation.item(1, 1).setText("Quillton.")
    click(qtbot, tab.bad_button)
    bad = records(workspace)[1]
    assert bad["label"] is False and bad["completion"][0]["content"] == "Quillton." and bad["source"]["edited"]
    assert len(tab.good) == 1
    assert tab.feedback_line.text() == "Feedback: 0 pairs, 1 good, 1 bad · feedback.jsonl"
    assert tab.feedback_line.train_button.isEnabled() and "KTO" in tab.feedback_line.train_button.toolTip()
    with qtbot.waitSignal(tab.train_on_feedback) as emitted:
        click(qtbot, tab.feedback_line.train_button)
    assert emitted.args == [{"dataset": str(feedback_path(workspace)), "objective": "kto", "model": str(tiny_llama),
                             "adapter": ""}]


def test_base_against_fine_tuned_pairs_and_train_on_my_feedback(tab, qtbot, tiny_llama, memorised_adapter, workspace):
    tab.load_pair(str(tiny_llama), str(memorised_adapter))
    tab.two_replies.setChecked(True)
    assert not tab.continue_with.isVisible()  # the pick decides which reply continues
    assert tab.panes["base"].title.text() == "<b>Base model</b>" and tab.panes["tuned"].title.text() == \
        "<b>Fine-tuned</b>"
    tab.sampling.set_settings(SamplingSettings(greedy=True, max_new_tokens=12))
    send_for_two(tab, qtbot)
    base, tuned = tab.panes["base"].text(), tab.panes["tuned"].text()
    assert "Quillton" in tuned and base != tuned  # the adapter learned the answer
    click(qtbot, tab.pick_bar.right)
    [pair] = records(workspace)
    assert pair["chosen"][0]["content"] == tuned and pair["rejected"][0]["content"] == base
    assert pair["source"]["sides"] == ["tuned", "base"] and pair["source"]["adapter"] == str(memorised_adapter)
    assert tab.conversation_turns()[-1] == {"role": "assistant", "content": tuned}
    with qtbot.waitSignal(tab.train_on_feedback) as emitted:
        click(qtbot, tab.feedback_line.train_button)
    assert emitted.args == [{"dataset": str(feedback_path(workspace)), "objective": "dpo", "model": str(tiny_llama),
                             "adapter": str(memorised_adapter)}]


def test_the_feedback_controls_fit_a_small_window(qtbot):
    from PySide6.QtCore import QPoint, QRect

    from studio.ui.playground.tab import PlaygroundTab

    tab = PlaygroundTab()
    qtbot.addWidget(tab)
    tab.two_replies.setChecked(True)
    tab.resize(800, 500)
    tab.show()
    qtbot.waitExposed(tab)
    qtbot.waitUntil(lambda: tab.size().width() == 800 and tab.size().height() == 500)
    try:
        for widget in (tab.pick_bar.left, tab.pick_bar.right, tab.pick_bar.both_bad, tab.pick_bar.edit,
                       tab.good_button, tab.bad_button, tab.two_replies, tab.feedback_line.train_button,
                       tab.panes["tuned"].output, tab.send_button):
            rect = QRect(widget.mapTo(tab, QPoint(0, 0)), widget.size())
            assert not widget.visibleRegion().isEmpty() and tab.rect().contains(rect), widget
    finally:
        tab.shutdown()


def test_the_count_follows_the_workspace_and_two_replies_is_remembered(qtbot, tmp_path, workspace, monkeypatch):
    from studio.engine.preference.feedback import make_source, record_pair
    from studio.ui.playground.tab import PlaygroundTab

    elsewhere = tmp_path / "other-workspace"
    for n in range(3):
        record_pair(feedback_path(elsewhere), [{"role": "user", "content": f"q{n}"}], "a", "b",
                    make_source("m", None, ["base", "tuned"]))
    assert count_feedback(feedback_path(elsewhere)) == FeedbackCounts(3, 0, 0)
    first = PlaygroundTab()
    qtbot.addWidget(first)
    first.show()
    assert first.feedback_line.text() == "Feedback: 0 pairs, 0 good, 0 bad · feedback.jsonl"
    first.two_replies.setChecked(True)
    # The workspace moves (Settings); the line counts the new one's file when the page comes into view again.
    monkeypatch.setenv("ADAPT_STUDIO_WORKSPACE", str(elsewhere))
    first.hide()
    first.show()
    assert first.feedback_line.text() == "Feedback: 3 pairs, 0 good, 0 bad · feedback.jsonl"
    assert str(feedback_path(elsewhere)) in first.feedback_line.label.toolTip()
    first.shutdown()
    second = PlaygroundTab()
    qtbot.addWidget(second)
    try:
        assert second.two_replies.isChecked()
    finally:
        second.shutdown()


def test_train_on_my_feedback_opens_preference_tuning_in_the_fine_tune_tab(main_window, qtbot, workspace,
                                                                           tiny_llama):
    from studio.engine.preference.feedback import make_source, record_pair

    path = feedback_path(workspace)
    for n in range(6):
        record_pair(path, [{"role": "user", "content": f"Question {n}?"}], f"A good answer {n}.", f"Bad {n}.",
                    make_source(str(tiny_llama), None, ["sample 1", "sample 2"]))
    window, playground, finetune = main_window, main_window.playground_tab, main_window.finetune_tab
    window.tabs.setCurrentWidget(playground)
    playground.load_pair(str(tiny_llama))
    with qtbot.waitSignal(finetune.preference.data_box.analysis_finished, timeout=LONG_WAIT):
        click(qtbot, playground.feedback_line.train_button)
    assert window.tabs.currentWidget() is finetune and finetune.task() == "preference"
    assert finetune.model_picker.model() == str(tiny_llama) and finetune.preference.form.value("objective") == "dpo"
    # The preference reader takes the feedback file as it is written.
    assert finetune.preference.data_box.path() == str(path) and finetune.preference.problem() is None


def test_a_finished_preference_run_is_offered_in_the_run_picker(workspace, tiny_llama, random_adapter):
    from studio.engine.events import EventWriter
    from studio.engine.runs import create_run_dir
    from studio.ui.playground.run_picker import playable_runs

    run = create_run_dir(workspace, "prefs")
    (run / "config.yaml").write_text(yaml.safe_dump({"name": "prefs", "task": "preference", "objective": "dpo",
                                                     "model": str(tiny_llama), "adapter": str(random_adapter)}))
    shutil.copytree(random_adapter, run / "adapter")
    events = EventWriter(run / "events.jsonl")
    events.emit("started", total_steps=1)
    events.emit("finished", status="completed", output=str(run / "adapter"))
    events.close()
    [found] = playable_runs(workspace)
    assert (found.model, found.adapter) == (str(tiny_llama), str(run / "adapter"))
