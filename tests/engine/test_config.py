import dataclasses
import importlib
import math

import pytest

from studio.engine.config import (TASK_MODULES, TASKS, FineTuneConfig, _type_of, from_dict, load_config, save_config,
                                  to_dict, validate)
from studio.engine.errors import BadConfig

for _module in TASK_MODULES.values():  # every task registers its config class when its module is imported
    importlib.import_module(_module)
# What a task needs beyond its defaults to be a run at all (its cross-field check asks for it).
REQUIRED = {"pretrain": {"corpus": "book.txt"}, "export": {"source": "runs/one"}}
# `task` chooses the config class itself: its bad values are tested with the other refusals above.
FIELDS = [(task, f) for task, cls in sorted(TASKS.items()) for f in dataclasses.fields(cls) if f.name != "task"]


def field_id(item) -> str:
    return f"{item[0]}.{item[1].name}"


def bad_values(cls, f) -> list[tuple[object, str]]:
    """Values of the wrong kind, or out of the field's bounds or choices, with the words the refusal must use."""
    typ, meta = _type_of(cls, f), f.metadata
    bad = {bool: [("yes", "true or false"), (1, "true or false")],
           int: [("four", "a whole number"), (2.5, "a whole number"), (True, "a whole number")],
           float: [("lots", "a number"), (math.nan, "a number"), (False, "a number")],
           # A list is not wrong everywhere (corpus, shots or probe prompts may be written as a YAML list): a
           # mapping is; a field that reads its own text may word the refusal its own way.
           str: [({"a": "b"}, "")],
           dict: [(["not", "a", "mapping"], "a mapping of")]}[typ]
    if meta.get("choices"):
        bad.append(("surely-not-a-choice", "expected one of"))
    if meta.get("min") is not None:
        bad.append((meta["min"] - 1, f"expected a value from {meta['min']} to {meta['max']}"))
    if meta.get("max") is not None:
        bad.append((meta["max"] + 1, f"expected a value from {meta['min']} to {meta['max']}"))
    return bad


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


@pytest.mark.parametrize("task", sorted(TASKS))
def test_every_task_validates_with_its_defaults(task):
    cfg = from_dict({"task": task, **REQUIRED.get(task, {})})
    assert to_dict(cfg) == to_dict(from_dict(to_dict(cfg)))  # and reads back the same


@pytest.mark.parametrize("item", FIELDS, ids=field_id)
def test_every_default_lies_within_its_bounds_and_choices_and_has_help(item):
    task, f = item
    cls = TASKS[task]
    default = getattr(cls(), f.name)
    meta = f.metadata
    assert meta.get("help"), f"{task}.{f.name} has no help text"
    assert isinstance(default, _type_of(cls, f)), (default, _type_of(cls, f))
    if meta.get("choices"):
        assert default in meta["choices"]
        assert set(meta.get("choice_labels") or {}) <= set(meta["choices"])
    if meta.get("min") is not None:
        assert meta["min"] <= default, (default, meta["min"])
    if meta.get("max") is not None:
        assert default <= meta["max"], (default, meta["max"])


@pytest.mark.parametrize("item", FIELDS, ids=field_id)
def test_a_bad_value_of_every_field_is_refused_naming_the_field(item):
    task, f = item
    for value, words in bad_values(TASKS[task], f):
        with pytest.raises(BadConfig) as info:
            from_dict({"task": task, **REQUIRED.get(task, {}), f.name: value})
        assert info.value.field == f.name, (value, info.value.message)
        assert f"'{f.name}'" in info.value.message and words in info.value.message, (value, info.value.message)
