"""The Prompt playground tab: streaming through the generation thread, Stop, compare, errors, files."""

import subprocess
import sys
import threading

import pytest
from PySide6.QtCore import Qt

from studio.engine.data.files import read_records
from studio.engine.data.formats import to_conversations
from studio.engine.prompting.presets import Example
from studio.engine.prompting.sampling import SamplingSettings
from tests.engine.generation_helpers import make_random_adapter, plain_generate

LONG_WAIT = 120_000


@pytest.fixture
def tab(playground_tab):
    return playground_tab


def wait_ready(tab, qtbot):
    qtbot.waitUntil(lambda: not tab.is_busy(), timeout=LONG_WAIT)


def test_tab_opens_without_importing_torch():
    code = ("import sys; from PySide6.QtWidgets import QApplication; app = QApplication([]); "
            "from studio.ui.playground.tab import PlaygroundTab; t = PlaygroundTab(); t.load_pair('x', None); "
            "print(sorted(m for m in ('torch', 'transformers', 'peft') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"})
    assert out.stdout.strip() == "[]"


def test_greedy_chat_through_the_ui_equals_plain_generate_on_both_sides(tab, qtbot, tiny_llama, random_adapter):
    tab.load_pair(str(tiny_llama), str(random_adapter))
    assert tab.model_picker.model() == str(tiny_llama) and tab.compare.isChecked()
    tab.sampling.set_settings(SamplingSettings(greedy=True, max_new_tokens=20))
    tab.system.setPlainText("Answer briefly.")
    tab.examples.add_example("Who painted the blue fox?", "Mira Telsen painted the blue fox.")
    chunks = {"base": [], "tuned": []}
    tab.generation.chunk.connect(lambda side, text: chunks[side].append(text))
    tab.prompt.setPlainText("What is the capital of Zorbia?")
    qtbot.mouseClick(tab.send_button, Qt.MouseButton.LeftButton)
    assert tab.is_busy() and tab.stop_button.isEnabled()
    wait_ready(tab, qtbot)
    assert not tab.error_panel.isVisible(), tab.error_panel.text()

    tok = tab.generation.pair.base.tokenizer
    text = tok.apply_chat_template(
        [{"role": "system", "content": "Answer briefly."}, {"role": "user", "content": "Who painted the blue fox?"},
         {"role": "assistant", "content": "Mira Telsen painted the blue fox."},
         {"role": "user", "content": "What is the capital of Zorbia?"}], tokenize=False, add_generation_prompt=True)
    tuned, base = tab.panes["tuned"].text(), tab.panes["base"].text()
    assert tuned == plain_generate(tiny_llama, text, 20, adapter=random_adapter)
    assert base == plain_generate(tiny_llama, text, 20)
    assert len(chunks["tuned"]) > 1 and "".join(chunks["tuned"]) == tuned
    assert "/ 512 context" in tab.panes["tuned"].stats.text() and "first token" in tab.panes["tuned"].stats.text()
    # The fine-tuned reply joins the conversation, which can be continued.
    assert [t["role"] for t in tab.conversation_turns()] == ["user", "assistant"]
    assert tab.conversation_turns()[1]["content"] == tuned
    tab.mark_good()
    tab.send("And who painted the blue fox?")
    wait_ready(tab, qtbot)
    assert [t["role"] for t in tab.conversation_turns()] == ["user", "assistant"] * 2
    # Regenerate: the last reply is replaced (greedy: by the same text).
    last = tab.conversation_turns()[-1]["content"]
    tab.regenerate()
    wait_ready(tab, qtbot)
    assert [t["role"] for t in tab.conversation_turns()] == ["user", "assistant"] * 2
    assert tab.conversation_turns()[-1]["content"] == last


def test_stop_ends_a_long_generation_and_the_ui_is_ready_again(tab, qtbot, tiny_llama):
    tab.load_pair(str(tiny_llama))
    tab.mode.setCurrentIndex(tab.mode.findData("completion"))
    # min_new_tokens: the model cannot end its reply early, so Stop always arrives mid-generation.
    tab.sampling.set_settings(SamplingSettings(greedy=False, temperature=1.0, top_p=1.0, top_k=0,
                                               max_new_tokens=100_000, min_new_tokens=100_000, seed=1))
    assert tab.sampling.min_new_tokens.value() == 100_000
    replies = []
    tab.generation.reply.connect(lambda side, r: replies.append(r))
    # The generation thread waits at its first chunk until the Stop button has been clicked in the GUI
    # thread, however busy the machine is: the reply cannot run on to its end before Stop arrives.
    clicked = threading.Event()

    def click_stop(side, text):
        if tab.stop_button.isEnabled() and not clicked.is_set():
            qtbot.mouseClick(tab.stop_button, Qt.MouseButton.LeftButton)
            clicked.set()

    # Queued to the GUI thread, so connected first: a signal reaches its slots in the order they were connected.
    tab.generation.chunk.connect(click_stop)
    # Run in the generation thread; the timeout only keeps a broken test from hanging the suite.
    tab.generation.chunk.connect(lambda side, text: clicked.wait(LONG_WAIT / 1000),
                                 Qt.ConnectionType.DirectConnection)
    tab.send("Once upon a time")
    wait_ready(tab, qtbot)
    assert replies and replies[0]["stop_reason"] == "stopped"
    assert replies[0]["new_tokens"] < 50 and replies[0]["max_new_tokens"] > 400  # clamped to the context, not run
    assert "(stopped)" in tab.panes["base"].stats.text()
    assert tab.send_button.isEnabled() and not tab.stop_button.isEnabled()
    tab.generation.chunk.disconnect()
    tab.generation.chunk.connect(tab._on_chunk)
    tab.sampling.set_settings(SamplingSettings(greedy=True, max_new_tokens=5))
    tab.send("The capital")
    wait_ready(tab, qtbot)
    assert replies[-1]["stop_reason"] in ("length", "eos") and tab.panes["base"].text() == replies[-1]["text"]


def test_clear_messages_and_no_crash(tab, qtbot, tiny_llama, tmp_path):
    # An empty prompt: said at once, nothing runs.
    tab.load_pair(str(tiny_llama), None)
    tab.send("   ")
    assert tab.error_panel.isVisible() and "empty" in tab.error_panel.text() and not tab.is_busy()
    # A missing adapter folder.
    tab.load_pair(str(tiny_llama), str(tmp_path / "missing-adapter"))
    tab.send("hello")
    wait_ready(tab, qtbot)
    assert "does not exist" in tab.error_panel.text()
    # An adapter for another base model.
    from studio.engine.scratch import save_new_causal_lm

    other = save_new_causal_lm(tmp_path / "other", ["another small text"] * 5, vocab_size=300, hidden=32, layers=1)
    tab.load_pair(str(tiny_llama), str(make_random_adapter(other, tmp_path / "other-adapter")))
    tab.send("hello")
    wait_ready(tab, qtbot)
    assert "does not fit" in tab.error_panel.text() and "base model the adapter" in tab.error_panel.text()
    # A prompt longer than the context window.
    tab.load_pair(str(tiny_llama), None)
    tab.mode.setCurrentIndex(tab.mode.findData("completion"))
    tab.send("word " * 2000)
    wait_ready(tab, qtbot)
    assert "context window is 512 tokens" in tab.error_panel.text()
    # ...and the tab still works.
    tab.sampling.set_settings(SamplingSettings(greedy=True, max_new_tokens=4))
    tab.send("The capital")
    wait_ready(tab, qtbot)
    assert not tab.error_panel.isVisible() and tab.panes["base"].text()


def test_examples_presets_and_dataset(tab, qtbot, tmp_path):
    tab.system.setPlainText("Be brief.")
    for i in range(3):
        tab.examples.add_example(f"question {i}", f"answer {i}")
    tab.examples.table.selectRow(2)
    tab.examples.move_selected(-1)
    assert [e.input for e in tab.examples.examples()] == ["question 0", "question 2", "question 1"]
    tab.examples.table.selectRow(0)
    tab.examples.remove_selected()
    tab.examples.set_example(0, "question 2", "edited")
    tab.sampling.set_settings(SamplingSettings(greedy=False, temperature=0.5, stop_strings=["\n\n", "Q:"], seed=4))
    preset = tab.preset()
    assert tab.save_preset_file(tmp_path / "p.json")
    tab.system.setPlainText("")
    tab.examples.set_examples([])
    tab.sampling.set_settings(SamplingSettings())
    assert tab.load_preset_file(tmp_path / "p.json")
    assert tab.preset() == preset and preset.examples == [Example("question 2", "edited"),
                                                         Example("question 1", "answer 1")]
    (tmp_path / "bad.json").write_text("{oops")
    assert not tab.load_preset_file(tmp_path / "bad.json") and "invalid JSON" in tab.error_panel.text()
    assert tab.save_dataset_file(tmp_path / "ds.jsonl", "sharegpt")
    convs = to_conversations(read_records(tmp_path / "ds.jsonl"))
    assert convs.format == "sharegpt" and len(convs.conversations) == 2
    assert convs.conversations[0] == [{"role": "system", "content": "Be brief."},
                                      {"role": "user", "content": "question 2"},
                                      {"role": "assistant", "content": "edited"}]


def test_batch_and_inspector(tab, qtbot, tiny_llama, random_adapter, tmp_path):
    tab.load_pair(str(tiny_llama), str(random_adapter))
    tab.sampling.set_settings(SamplingSettings(greedy=True, max_new_tokens=6))
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("What is the capital of Zorbia?\nHow many moons does Kelp have?\n")
    assert tab.load_batch_file(prompts)
    tab.run_batch()
    wait_ready(tab, qtbot)
    assert tab.batch_table.rowCount() == 2 and len(tab.batch_rows) == 2
    assert all(r["base"] is not None and r["tuned"] is not None for r in tab.batch_rows)
    assert tab.save_batch_file(tmp_path / "results.csv")
    assert (tmp_path / "results.csv").read_text().startswith("prompt,base,tuned,base_tokens,tuned_tokens\n")
    tab.prompt.setPlainText("hello")
    tab.inspect()
    wait_ready(tab, qtbot)
    tok = tab.generation.pair.base.tokenizer
    expected = tok.apply_chat_template([{"role": "user", "content": "hello"}], tokenize=False,
                                       add_generation_prompt=True)
    assert tab.inspect_text.toPlainText() == expected
    assert tab.inspect_label.text().startswith(f"{len(tok(expected, add_special_tokens=False)['input_ids'])} tokens "
                                               f"/ 512 context")
