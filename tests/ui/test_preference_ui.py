"""Preference tuning in the GUI: the Fine-tune tab's Preference task (data box, form, remembered settings, the
playground's hand-over), the Preference view of a run, and a real DPO run started from the tab."""

import json
from pathlib import Path

from PySide6.QtCore import Qt

from studio.engine.preference.config import PreferenceConfig
from studio.engine.run_state import fold
from tests.conftest import QA_PAIRS, shared_dataset

WRONG = ["The capital of Zorbia is Kelp.", "Nobody painted the blue fox.", "Kelp has two moons.",
         "A glimmerfish is green."]


def _pair_file(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "pairs.jsonl"
    path.write_text("\n".join(json.dumps({"prompt": q, "chosen": a, "rejected": b})
                              for (q, a), b in zip(QA_PAIRS, WRONG)) + "\n", encoding="utf-8")
    return path


def _load(tab, path, qtbot) -> None:
    with qtbot.waitSignal(tab.preference.data_box.analysis_finished, timeout=60000):
        tab.preference.data_box.load(str(path))


def test_preference_task_reads_pairs_and_builds_the_config(finetune_tab, tiny_llama, qtbot):
    tab = finetune_tab
    tab.set_task("preference")
    assert tab.task_pages.currentWidget() is tab.preference
    tabs = tab.panel.tabs
    assert tabs.isTabVisible(tabs.indexOf(tab.preference.data_box.preview_widget))
    assert not tabs.isTabVisible(tabs.indexOf(tab.dataset_panel.preview_widget))
    assert tabs.isTabVisible(tabs.indexOf(tab.preference_metrics))
    assert tab.start_problem() in ("Pick a model first.",) or "preference data" in tab.start_problem()
    tab.set_model(str(tiny_llama))
    _load(tab, shared_dataset("dpo_en_demo.json"), qtbot)
    box = tab.preference.data_box
    assert "300 pairs" in box.summary_label.text()
    assert box.preview_widget.rowCount() == 50 and box.preview_widget.item(0, 0).text() == "pair"
    tab.preference.form.set_value("objective", "orpo")
    tab.preference.form.set_value("beta", 0.25)
    tab.preference.form.changed.emit()
    cfg = tab.config()
    assert isinstance(cfg, PreferenceConfig)
    assert (cfg.task, cfg.objective, cfg.beta, cfg.model) == ("preference", "orpo", 0.25, str(tiny_llama))
    assert cfg.dataset.endswith("dpo_en_demo.json")


def test_an_unreadable_file_is_named_and_blocks_start(finetune_tab, tiny_llama, tmp_path, qtbot):
    tab = finetune_tab
    tab.set_task("preference")
    tab.set_model(str(tiny_llama))
    bad = tmp_path / "notes.jsonl"
    bad.write_text('{"question": "a", "answer": "b"}\n', encoding="utf-8")
    _load(tab, bad, qtbot)
    box = tab.preference.data_box
    assert box.error_panel.isVisible() and "notes.jsonl" in box.error_panel.message.text()
    assert not tab.start_button.isEnabled()


def test_the_playground_hands_over_its_feedback(finetune_tab, tiny_llama, memorised_adapter, tmp_path, qtbot):
    tab = finetune_tab
    path = _pair_file(tmp_path / "feedback")
    with qtbot.waitSignal(tab.preference.data_box.analysis_finished, timeout=60000):
        tab.open_preference({"dataset": str(path), "objective": "dpo", "model": str(tiny_llama),
                             "adapter": str(memorised_adapter)})
    assert tab.task() == "preference"
    cfg = tab.config()
    assert (cfg.dataset, cfg.objective, cfg.adapter) == (str(path), "dpo", str(memorised_adapter))
    assert cfg.model == str(tiny_llama)


def test_preference_view_draws_margin_and_accuracy(qtbot):
    from studio.ui.widgets.preference_metrics import PreferenceMetrics

    view = PreferenceMetrics()
    qtbot.addWidget(view)
    events = [{"type": "started", "time": 1, "task": "preference", "objective": "dpo", "total_steps": 4}]
    for step in (1, 2, 3, 4):
        events.append({"type": "log", "time": 1 + step, "step": step, "loss": 0.7 - 0.1 * step,
                       "reward_margin": 0.1 * step, "preference_accuracy": 0.5 + 0.1 * step,
                       "logp_chosen": -20.0, "logp_rejected": -20.0 - step})
    events.append({"type": "eval", "time": 9, "step": 4, "eval_loss": 0.4, "reward_margin": 0.5,
                   "preference_accuracy": 0.875})
    view.show_state(fold(events))
    assert view.plots["reward_margin"].series_data("train")[1] == [0.1, 0.2, 0.30000000000000004, 0.4]
    assert view.plots["preference_accuracy"].series_data("eval") == ([4.0], [0.875])
    assert view.plots["logp_chosen"].series_data("rejected")[1] == [-21.0, -22.0, -23.0, -24.0]
    assert "87.5%" in view.headline.text() and "+0.500" in view.headline.text()


def test_a_dpo_run_from_the_tab_shows_its_preference_figures(finetune_tab, tiny_llama, workspace, tmp_path, qtbot):
    tab = finetune_tab
    tab.set_task("preference")
    tab.set_model(str(tiny_llama))
    _load(tab, _pair_file(tmp_path / "data"), qtbot)
    for name, value in dict(max_steps=8, batch_size=4, eval_every=4, save_every=4, max_length=64, log_every=1,
                            lora_r=4, lora_alpha=8, learning_rate=5e-3, validation_fraction=0.0,
                            name="pref-ui").items():
        tab.preference.form.set_value(name, value)
    tab.preference.form.changed.emit()
    qtbot.waitUntil(lambda: tab.start_button.isEnabled(), timeout=60000)
    qtbot.mouseClick(tab.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: tab.engine is None and tab.panel.state.done, timeout=240000)
    state = tab.panel.state
    assert state.status == "completed", (state.error_message, state.error_hint)
    assert state.output.endswith("adapter") and Path(state.output, "adapter_config.json").is_file()
    margins = tab.preference_metrics.plots["reward_margin"].series_data("train")[1]
    assert len(margins) == 8 and margins[-1] > margins[0]
    assert tab.panel.tabs.isTabVisible(tab.panel.tabs.indexOf(tab.preference_metrics))
    with qtbot.waitSignal(tab.open_in_playground) as opened:
        qtbot.mouseClick(tab.playground_button, Qt.MouseButton.LeftButton)
    assert opened.args == [str(tiny_llama), state.output]


def test_feedback_from_the_playground_trains_an_adapter_that_loads_back(main_window, tiny_llama, workspace, qtbot):
    """The loop of the README: judge replies in the playground, Train on my feedback, watch the preference
    figures rise, open the new adapter in the playground."""
    from studio.engine.preference.feedback import count_feedback, feedback_path
    from studio.engine.prompting.sampling import SamplingSettings

    window, playground, finetune = main_window, main_window.playground_tab, main_window.finetune_tab
    window.tabs.setCurrentWidget(playground)
    playground.load_pair(str(tiny_llama))
    playground.two_replies.setChecked(True)
    questions = [q for q, _ in QA_PAIRS] * 3
    for n, question in enumerate(questions[:10]):  # ten judgements: the second reply preferred each time
        playground.clear_conversation()
        playground.sampling.set_settings(SamplingSettings(temperature=1.5, max_new_tokens=6, seed=n))
        playground.prompt.setPlainText(question)
        qtbot.mouseClick(playground.send_button, Qt.MouseButton.LeftButton)
        qtbot.waitUntil(lambda: not playground.is_busy(), timeout=120000)
        if playground.panes["base"].text() == playground.panes["tuned"].text():
            continue  # the same reply twice is no preference; the next question
        qtbot.mouseClick(playground.pick_bar.right, Qt.MouseButton.LeftButton)
    assert count_feedback(feedback_path(workspace)).pairs >= 8

    with qtbot.waitSignal(finetune.preference.data_box.analysis_finished, timeout=60000):
        qtbot.mouseClick(playground.feedback_line.train_button, Qt.MouseButton.LeftButton)
    assert window.tabs.currentWidget() is finetune and finetune.task() == "preference"
    for name, value in dict(max_steps=12, batch_size=4, eval_every=0, save_every=0, max_length=64, log_every=1,
                            lora_r=8, lora_alpha=16, learning_rate=5e-3, validation_fraction=0.0).items():
        finetune.preference.form.set_value(name, value)
    finetune.preference.form.changed.emit()
    qtbot.waitUntil(lambda: finetune.start_button.isEnabled(), timeout=60000)
    qtbot.mouseClick(finetune.start_button, Qt.MouseButton.LeftButton)
    qtbot.waitUntil(lambda: finetune.engine is None and finetune.panel.state.done, timeout=240000)
    state = finetune.panel.state
    assert state.status == "completed", (state.error_message, state.error_hint)
    margins = [v for _, v in state.train_metrics["reward_margin"]]
    accuracy = [v for _, v in state.train_metrics["preference_accuracy"]]
    assert margins[-1] > margins[0] and sum(accuracy[-3:]) / 3 > 0.5

    qtbot.mouseClick(finetune.playground_button, Qt.MouseButton.LeftButton)
    assert window.tabs.currentWidget() is playground
    assert playground.tuned_edit.text() == state.output
    playground.two_replies.setChecked(False)
    playground.compare.setChecked(False)
    playground.clear_conversation()
    playground.send(QA_PAIRS[0][0])
    qtbot.waitUntil(lambda: not playground.is_busy(), timeout=120000)
    assert not playground.error_panel.isVisible() and playground.panes["tuned"].text()
