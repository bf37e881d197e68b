"""The playground asks before it loads a model that can run code on this computer (pickle weights, or Python
code shipped with the model), with the real dialog: "No" loads nothing, "Yes" loads it, and a folder is asked
about once."""

import dataclasses
import json
import shutil

from studio.ui.safety import PICKLE_TEXT
from tests.ui.conftest import DialogAnswerer

WAIT = 60_000


def answering(text: str, action) -> DialogAnswerer:
    answers = DialogAnswerer(text)
    try:
        action()
    finally:
        answers.stop()
    return answers


def test_pickle_weights_load_only_after_a_yes(playground_tab, tiny_llama, tmp_path, qtbot):
    tab = playground_tab
    import torch
    from safetensors.torch import load_file

    pickled = tmp_path / "pickled"  # the same weights, saved the older way: a pickle file
    shutil.copytree(tiny_llama, pickled)
    torch.save(load_file(pickled / "model.safetensors"), pickled / "pytorch_model.bin")
    (pickled / "model.safetensors").unlink()
    tab.load_pair(str(pickled))

    no = answering("No", tab.load_models)
    assert [title for title, _ in no.asked] == ["Load pickle weights?"]
    assert str(pickled) in no.asked[0][1] and PICKLE_TEXT.split("\n")[0] in no.asked[0][1]
    assert "Not loaded: the model needs permissions you did not give." in tab.error_panel.text()
    assert not tab.is_busy() and tab.load_button.isEnabled()
    assert not tab.generation.isRunning() and tab.generation.pair is None  # nothing was loaded

    with qtbot.waitSignal(tab.generation.model_loaded, timeout=WAIT) as loaded:
        yes = answering("Yes", tab.load_models)
    assert yes.answered == 1 and loaded.args[0]["sides"] == ["base"]
    qtbot.waitUntil(lambda: not tab.is_busy(), timeout=WAIT)
    assert not tab.error_panel.isVisible() and tab.generation.pair is not None  # loaded, pickle and all

    tab.mode.setCurrentIndex(tab.mode.findData("completion"))
    tab.sampling.set_settings(dataclasses.replace(tab.sampling.settings(), max_new_tokens=3))
    tab.prompt.setPlainText("The capital")
    with qtbot.waitSignal(tab.generation.job_done, timeout=WAIT):
        again = answering("No", tab.send)
    assert again.answered == 0  # asked once for this folder
    assert not tab.error_panel.isVisible() and tab.panes["base"].text()


def test_no_to_model_code_loads_nothing_and_gives_the_message_back(playground_tab, tiny_llama, tmp_path, qtbot):
    tab = playground_tab
    folder = tmp_path / "with-code"
    shutil.copytree(tiny_llama, folder)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**config, "auto_map": {"AutoModelForCausalLM": "evil.Model"}}))
    tab.load_pair(str(folder))
    tab.mode.setCurrentIndex(tab.mode.findData("chat"))
    tab.prompt.setPlainText("Hello there")

    no = answering("No", tab.send)
    assert [title for title, _ in no.asked] == ["Run code from this model?"]
    assert "runs that code on this computer" in no.asked[0][1]
    assert tab.conversation_turns() == [] and tab.prompt.toPlainText() == "Hello there"  # the message is back
    assert "Not loaded" in tab.error_panel.text() and not tab.is_busy()
    assert tab.generation.pair is None
