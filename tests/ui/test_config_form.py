"""ConfigForm shows choices in words while configs, files and the CLI keep their keys."""

import dataclasses

import pytest
import yaml
from PySide6.QtCore import Qt

from studio.engine.config import FineTuneConfig, knob, load_config, save_config
from studio.engine.pretrain_config import PretrainConfig
from studio.ui.widgets.config_form import ConfigForm


@pytest.fixture
def make_form(qtbot):
    def make(config_cls, **kwargs):
        form = ConfigForm(config_cls, **kwargs)
        qtbot.addWidget(form)
        return form

    return make


def combo_items(form: ConfigForm, name: str) -> list[tuple[str, str]]:
    combo = form.editor(name)
    return [(combo.itemText(i), combo.itemData(i)) for i in range(combo.count())]


def test_pretrain_choices_read_as_words_and_keep_their_keys(make_form):
    form = make_form(PretrainConfig)
    assert combo_items(form, "mode") == [("From scratch", "scratch"), ("Continue pre-training a model", "continue")]
    assert combo_items(form, "objective") == [("Causal LM (GPT-style, predicts the next token)", "clm"),
                                              ("Masked LM (BERT-style, fills in blanks)", "mlm")]
    form.set_value("objective", "mlm")
    assert form.editor("objective").currentText() == "Masked LM (BERT-style, fills in blanks)"
    assert form.value("objective") == "mlm"
    arch = dict((key, text) for text, key in combo_items(form, "architecture"))
    assert arch["llama-5m"].startswith("Llama-style decoder") and "llama-5m" in arch["llama-5m"]
    assert arch["custom-bert"] == "BERT-style encoder, custom size"
    assert form.editor("mode").itemData(1, Qt.ItemDataRole.ToolTipRole) == "In a config file: continue"


def test_finetune_choices_read_as_words(make_form):
    form = make_form(FineTuneConfig)
    assert ("Automatic", "auto") in combo_items(form, "format")
    assert ("Prompt / completion", "prompt_completion") in combo_items(form, "format")
    assert ("Automatic", "auto") in combo_items(form, "precision")
    assert ("Cosine decay", "cosine") in combo_items(form, "scheduler")
    form.set_value("format", "prompt_completion")
    assert form.editor("format").currentText() == "Prompt / completion"
    assert form.values()["format"] == "prompt_completion"


@pytest.mark.parametrize("config_cls", [FineTuneConfig, PretrainConfig])
def test_every_choice_has_words(config_cls):
    for f in dataclasses.fields(config_cls):
        if f.metadata.get("choices"):
            assert set(f.metadata["choice_labels"]) == set(f.metadata["choices"]), f.name


def test_choice_labels_must_name_choices():
    with pytest.raises(ValueError, match="bf17"):
        knob("a", "help", choices=("a", "b"), choice_labels={"a": "A", "bf17": "?"})
    assert knob("a", "help", choices=("a", "b")).metadata["choice_labels"] == {}


def test_a_finetune_config_round_trips_through_the_form(make_form, tmp_path):
    cfg = FineTuneConfig(model="some/model", dataset="data.jsonl", format="prompt_completion", method="qlora-4bit",
                         scheduler="constant_with_warmup", precision="fp32", device="cpu", learning_rate=3e-5,
                         column_mapping={"question": "prompt"}, max_steps=12, name="round-trip")
    form = make_form(FineTuneConfig)
    form.set_config(cfg)
    assert form.config() == cfg
    save_config(form.config(), tmp_path / "config.yaml")
    saved = yaml.safe_load((tmp_path / "config.yaml").read_text())
    assert (saved["format"], saved["scheduler"], saved["precision"]) == ("prompt_completion",
                                                                         "constant_with_warmup", "fp32")
    assert load_config(tmp_path / "config.yaml") == cfg


def test_a_pretrain_config_round_trips_through_the_form(make_form):
    cfg = PretrainConfig(mode="continue", model="some/model", objective="mlm", architecture="bert-30m",
                         method="lora", corpus="a.txt;b.txt", scheduler="linear", device="cpu", precision="bf16",
                         mlm_probability=0.2, learning_rate=5e-5)
    form = make_form(PretrainConfig, exclude=("task", "corpus", "max_length"))  # as the Pre-train tab
    form.set_config(cfg)
    assert form.value("architecture") == "bert-30m"
    assert form.config() == cfg
