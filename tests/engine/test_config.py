import pytest

from studio.engine.config import FineTuneConfig, from_dict, load_config, save_config, to_dict, validate
from studio.engine.errors import BadConfig


def test_defaults_validate_and_yaml_round_trip(tmp_path):
    cfg = FineTuneConfig(model="m", dataset="d.json", learning_rate=1e-4, column_mapping={"q": "instruction"})
    validate(cfg)
    save_config(cfg, tmp_path / "c.yaml")
    again = load_config(tmp_path / "c.yaml")
    assert again == cfg


def test_every_field_has_help():
    import dataclasses

    for f in dataclasses.fields(FineTuneConfig):
        assert f.metadata.get("help"), f.name


@pytest.mark.parametrize("data, field, words", [
    ({"learning_rate": 5.0}, "learning_rate", "from 1e-08 to 1.0"),
    ({"batch_size": 0}, "batch_size", "from 1 to 4096"),
    ({"batch_size": "four"}, "batch_size", "a whole number"),
    ({"epochs": "lots"}, "epochs", "a number"),
    ({"method": "magic"}, "method", "one of lora, qlora-4bit"),
    ({"gradient_checkpointing": "yes"}, "gradient_checkpointing", "true or false"),
    ({"lora_rank": 8}, "lora_rank", "unknown field"),
    ({"task": "dance"}, "task", "one of"),
])
def test_bad_values_name_the_field_and_what_is_allowed(data, field, words):
    with pytest.raises(BadConfig) as info:
        from_dict({"model": "m", "dataset": "d", **data})
    assert info.value.field == field
    assert field in info.value.message and words in info.value.message


def test_yaml_syntax_error_names_the_line(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: m\ndataset: [unclosed\nbatch_size: 2\n")
    with pytest.raises(BadConfig, match=r"c.yaml is not valid YAML at line \d"):
        load_config(path)


def test_yaml_scientific_notation_reads_as_a_number(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model: m\ndataset: d\nlearning_rate: 2e-4\n")
    assert load_config(path).learning_rate == pytest.approx(2e-4)


def test_to_dict_is_plain_data():
    d = to_dict(FineTuneConfig())
    assert d["task"] == "sft" and d["target_modules"] == "all-linear"
