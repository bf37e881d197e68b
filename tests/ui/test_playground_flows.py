"""Everyday flows of the Prompt playground: compare only with a fine-tuned side, finished runs to pick,
a long chat fitted to the context, a failed message taken back, live tokens/s, which reply continues."""

import re
import shutil

import pytest
import yaml
from PySide6.QtCore import Qt

from studio.engine.prompt_fit import fit_chat
from studio.engine.prompting.presets import Preset
from studio.engine.prompting.sampling import SamplingSettings
from tests.conftest import QA_PAIRS
from tests.engine.generation_helpers import plain_generate

LONG_WAIT = 120_000


@pytest.fixture
def tab(playground_tab):
    return playground_tab


def wait_ready(tab, qtbot):
    qtbot.waitUntil(lambda: not tab.is_busy(), timeout=LONG_WAIT)


def click(qtbot, widget):
    qtbot.mouseClick(widget, Qt.MouseButton.LeftButton)


def test_compare_is_off_and_disabled_until_there_is_a_fine_tuned_side(tab, qtbot, tiny_llama, random_adapter):
    assert not tab.compare.isChecked() and not tab.compare.isEnabled()
    tab.load_pair(str(tiny_llama), None)
    click(qtbot, tab.compare)
    assert not tab.compare.isChecked() and not tab.compare.isEnabled()
    assert tab.panes["base"].isVisible() and not tab.panes["tuned"].isVisible()
    qtbot.keyClicks(tab.tuned_edit, str(random_adapter))
    assert tab.compare.isEnabled() and tab.compare.isChecked()
    assert tab.panes["tuned"].isVisible() and tab.continue_with.isVisible()
    click(qtbot, tab.load_button)
    wait_ready(tab, qtbot)
    assert tab.generation.pair.sides == ["base", "tuned"] and tab.compare.isEnabled()
    click(qtbot, tab.compare)
    assert not tab.compare.isChecked() and not tab.continue_with.isVisible()
    tab.tuned_edit.clear()
    assert not tab.compare.isChecked() and not tab.compare.isEnabled()
    assert not tab.panes["tuned"].isVisible()


# ---- the run picker ----------------------------------------------------------------------------------------

def write_run(workspace, name, *, task="sft", model="", status="completed", output=None):
    """A run folder as the worker leaves it: the resolved config and the event stream."""
    from studio.engine.events import EventWriter
    from studio.engine.runs import create_run_dir

    run = create_run_dir(workspace, name)
    (run / "config.yaml").write_text(yaml.safe_dump({"name": name, "task": task, "model": model}))
    events = EventWriter(run / "events.jsonl")
    events.emit("started", total_steps=1)
    if status == "failed":
        events.emit("failed", kind="internal", message="It broke.")
    else:
        events.emit("finished", status=status, output=str(run / output) if output else None)
    events.close()
    return run


def choose_in_popup(qtbot, qtlog, picker, text):
    """Open the combo's list (which refreshes it) and click the item whose label holds `text`."""
    # The offscreen platform says it can neither raise a popup nor grab the keyboard for it; the popup
    # works all the same, so those platform messages are not captured here.
    with qtlog.disabled():
        picker.showPopup()
        view = picker.view()
        qtbot.waitUntil(view.isVisible)
        index = next(i for i in range(picker.count()) if text in picker.itemText(i))
        rect = view.visualRect(picker.model().index(index, 0))
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
        qtbot.waitUntil(lambda: not view.isVisible())


def test_the_run_picker_offers_finished_runs_and_opens_their_model_and_adapter(qtbot, qtlog, workspace, tiny_llama,
                                                                              random_adapter):
    tuned = write_run(workspace, "tuned", model=str(tiny_llama), output="adapter")
    shutil.copytree(random_adapter, tuned / "adapter")
    full = write_run(workspace, "full", task="pretrain", model="scratch", status="stopped", output="model")
    shutil.copytree(tiny_llama, full / "model")
    write_run(workspace, "broken", model=str(tiny_llama), status="failed")
    write_run(workspace, "lost", model=str(tiny_llama), output="adapter")  # its output folder is gone

    from studio.ui.playground.tab import PlaygroundTab

    tab = PlaygroundTab()
    qtbot.addWidget(tab)
    picker = tab.run_picker
    assert picker.count() == 1  # the workspace is not read while the window is built...
    tab.show()  # ...but when the playground comes into view
    try:
        labels = {picker.itemText(i) for i in range(1, picker.count())}
        assert labels == {f"{full.name} · model · stopped", f"{tuned.name} · adapter · completed"}
        assert picker.itemText(0) == "Finished runs (2)…"
        # A run that finishes while the window is open is listed the next time the list opens.
        later = write_run(workspace, "later", model=str(tiny_llama), output="adapter")
        shutil.copytree(random_adapter, later / "adapter")
        choose_in_popup(qtbot, qtlog, picker, "tuned")
        assert any("later" in picker.itemText(i) for i in range(picker.count()))
        assert tab.model_picker.model() == str(tiny_llama) and tab.tuned_edit.text() == str(tuned / "adapter")
        assert tab.compare.isChecked()
        wait_ready(tab, qtbot)  # picking a run loads it
        assert not tab.error_panel.isVisible(), tab.error_panel.text()
        assert tab.generation.pair.sides == ["base", "tuned"] and tab.generation.pair.shared
        # A run that wrote a whole model opens that model alone.
        choose_in_popup(qtbot, qtlog, picker, "full")
        assert tab.model_picker.model() == str(full / "model") and tab.tuned_edit.text() == ""
        assert not tab.compare.isEnabled()
        wait_ready(tab, qtbot)
        assert tab.generation.pair.sides == ["base"] and tab.generation.pair.base.model_path == full / "model"
    finally:
        tab.shutdown()


# ---- a long chat, a failed message ----------------------------------------------------------------------

def test_a_chat_longer_than_the_context_leaves_out_its_oldest_turns_and_says_so(tab, qtbot, tiny_llama):
    tab.load_pair(str(tiny_llama))
    tab.system.setPlainText("Answer briefly.")
    tab.sampling.set_settings(SamplingSettings(greedy=True, max_new_tokens=8))
    history = []
    for i in range(10):
        question, answer = QA_PAIRS[i % len(QA_PAIRS)]
        history += [{"role": "user", "content": f"{question} " * 4}, {"role": "assistant", "content": answer * 4}]
    for turn in history:
        tab.chat.add_turn(turn["role"], turn["content"])
    tab.prompt.setPlainText("What colour is a glimmerfish?")
    click(qtbot, tab.inspect_button)  # the inspector shows what the model will receive
    wait_ready(tab, qtbot)
    assert not tab.error_panel.isVisible(), tab.error_panel.text()
    tokenizer, context = tab.generation.pair.base.tokenizer, tab.generation.pair.base.context_window
    sent = history + [{"role": "user", "content": "What colour is a glimmerfish?"}]
    fitted = fit_chat(tokenizer, Preset(system="Answer briefly.", sampling=SamplingSettings(max_new_tokens=8)),
                      sent, context)
    assert fitted.dropped_turns >= 2 and not fitted.dropped_system
    note = f"{fitted.dropped_turns} oldest turns left out to fit the 512-token context"
    assert tab.inspect_text.toPlainText() == fitted.text and note in tab.inspect_label.text()

    click(qtbot, tab.send_button)
    wait_ready(tab, qtbot)
    assert not tab.error_panel.isVisible(), tab.error_panel.text()
    assert tab.chat.context_note.isVisible() and note in tab.chat.context_note.text()
    assert tab.panes["base"].text() == plain_generate(tiny_llama, fitted.text, 8)
    # The conversation on screen keeps every turn; the model saw the ones that fit.
    assert tab.conversation_turns() == sent + [{"role": "assistant", "content": tab.panes["base"].text()}]


def test_a_message_that_gets_no_reply_leaves_the_conversation(tab, qtbot, tiny_llama, tmp_path):
    tab.load_pair(str(tiny_llama), str(tmp_path / "missing-adapter"))
    tab.prompt.setPlainText("hello")
    click(qtbot, tab.send_button)
    wait_ready(tab, qtbot)
    assert "does not exist" in tab.error_panel.text()
    assert tab.conversation_turns() == [] and tab.prompt.toPlainText() == "hello"
    assert "back in the prompt box" in tab.status.text()
    # One that works, then one too long for the context: the history stays as it was.
    tab.load_pair(str(tiny_llama))
    tab.sampling.set_settings(SamplingSettings(greedy=True, max_new_tokens=4))
    click(qtbot, tab.send_button)
    wait_ready(tab, qtbot)
    before = tab.conversation_turns()
    assert [t["role"] for t in before] == ["user", "assistant"]
    tab.prompt.setPlainText("word " * 2000)
    click(qtbot, tab.send_button)
    wait_ready(tab, qtbot)
    assert "context window is 512 tokens" in tab.error_panel.text()
    assert tab.conversation_turns() == before and tab.prompt.toPlainText() == "word " * 2000
    # Regenerate that fails puts the reply it replaced back.
    tab.prompt.clear()
    tab.tuned_edit.setText(str(tmp_path / "missing-adapter"))
    click(qtbot, tab.regen_button)
    wait_ready(tab, qtbot)
    assert "does not exist" in tab.error_panel.text() and tab.conversation_turns() == before


# ---- compare: live speed, which reply continues ---------------------------------------------------------

def test_tokens_per_second_show_live_on_each_side(tab, qtbot, tiny_llama, random_adapter):
    tab.load_pair(str(tiny_llama), str(random_adapter))
    tab.sampling.set_settings(SamplingSettings(greedy=True, max_new_tokens=24, min_new_tokens=24))
    seen = {"base": [], "tuned": []}
    # Connected after the tab's own slot, so each call sees the label the tab has just set.
    tab.generation.progress.connect(lambda side, n, s: seen[side].append(tab.panes[side].stats.text()))
    tab.send("What is the capital of Zorbia?")
    wait_ready(tab, qtbot)
    assert not tab.error_panel.isVisible(), tab.error_panel.text()
    for side in ("base", "tuned"):
        assert seen[side][0] == "1 token"
        assert len(seen[side]) == 24 and seen[side][-1].startswith("24 tokens · ")
        assert all(re.fullmatch(r"\d+ tokens · \d+\.\d tokens/s", text) for text in seen[side][1:])
        assert "24 tokens (length)" in tab.panes[side].stats.text()  # the final numbers replace the live line


def test_continue_with_chooses_whose_reply_joins_the_conversation(tab, qtbot, tiny_llama, random_adapter):
    tab.load_pair(str(tiny_llama), str(random_adapter))
    tab.sampling.set_settings(SamplingSettings(greedy=True, max_new_tokens=12))
    assert tab.continue_with.isVisible() and tab.continue_with.currentData() == "tuned"
    tab.send("What is the capital of Zorbia?")
    wait_ready(tab, qtbot)
    base, tuned = tab.panes["base"].text(), tab.panes["tuned"].text()
    assert base != tuned
    assert tab.conversation_turns()[-1] == {"role": "assistant", "content": tuned}
    tab.continue_with.setCurrentIndex(tab.continue_with.findData("base"))
    click(qtbot, tab.regen_button)
    assert not tab.continue_with.isEnabled()  # the running job keeps the side it started with
    wait_ready(tab, qtbot)
    assert tab.panes["base"].text() == base
    assert [t["role"] for t in tab.conversation_turns()] == ["user", "assistant"]
    assert tab.conversation_turns()[-1] == {"role": "assistant", "content": base}
    # Without a comparison (or in completion mode) there is nothing to choose.
    click(qtbot, tab.compare)
    assert not tab.continue_with.isVisible()
    click(qtbot, tab.compare)
    tab.mode.setCurrentIndex(tab.mode.findData("completion"))
    assert not tab.continue_with.isVisible()
