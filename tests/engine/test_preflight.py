"""The pre-flight check: problems found before any worker starts, and no run folder left behind."""

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from studio.engine import preflight as preflight_module
from studio.engine.config import FineTuneConfig, load_config, save_config
from studio.engine.errors import BadConfig, BadDataset, BadModel, DiskFull
from studio.engine.pretrain_config import PretrainConfig
from studio.engine.preflight import preflight
from studio.engine.supervisor import prepare_run


def finetune(model, dataset, **kw) -> FineTuneConfig:
    return FineTuneConfig(model=str(model), dataset=str(dataset), max_length=64, **kw)


def runs_in(workspace: Path) -> list[Path]:
    runs = workspace / "runs"
    return sorted(runs.iterdir()) if runs.is_dir() else []


def test_a_good_run_passes_with_a_data_summary(tiny_llama, qa_dataset, tmp_path):
    report = preflight(finetune(tiny_llama, qa_dataset, validation_fraction=0.0), tmp_path)
    assert report.ok, report.describe()
    assert any("4 of 4 rows usable" in n.message for n in report.notes)


@pytest.mark.parametrize("change, field, words", [
    (dict(dataset=""), "dataset", "Field 'dataset' is empty"),
    (dict(max_length=100000), "max_length", "above this model's context"),
    (dict(learning_rate=5.0), "learning_rate", "expected a value from"),
])
def test_each_problem_names_its_field(tiny_llama, qa_dataset, tmp_path, change, field, words):
    cfg = finetune(tiny_llama, qa_dataset)
    for k, v in change.items():
        setattr(cfg, k, v)
    report = preflight(cfg, tmp_path)
    assert not report.ok
    assert report.errors[0].field == field and words in report.errors[0].message


def test_a_bad_dataset_creates_no_run_folder(tiny_llama, tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "hi", "output": "there"}\n{"instruction": \n', encoding="utf-8")
    workspace = tmp_path / "ws"
    with pytest.raises(BadDataset) as info:
        prepare_run(finetune(tiny_llama, bad), workspace)
    assert str(bad) in info.value.message and "line 2" in info.value.message
    assert runs_in(workspace) == []


def test_a_model_of_an_unknown_architecture_is_named_as_such(tiny_llama, qa_dataset, tmp_path):
    model = tmp_path / "future-model"
    shutil.copytree(tiny_llama, model)
    config = json.loads((model / "config.json").read_text())
    config["model_type"], config["architectures"] = "zorbiaformer", ["ZorbiaformerForCausalLM"]
    (model / "config.json").write_text(json.dumps(config))
    workspace = tmp_path / "ws"
    with pytest.raises(BadModel) as info:
        prepare_run(finetune(model, qa_dataset), workspace)
    message = info.value.message
    assert "zorbiaformer" in message and "transformers" in message and "llama" in message
    assert "tokenizer" not in message.lower()
    assert runs_in(workspace) == []


def test_an_encoder_is_refused_for_a_causal_run(tiny_llama, qa_dataset, tmp_path):
    model = tmp_path / "encoder"
    shutil.copytree(tiny_llama, model)
    config = json.loads((model / "config.json").read_text())
    config["model_type"] = "distilbert"
    (model / "config.json").write_text(json.dumps(config))
    report = preflight(finetune(model, qa_dataset), tmp_path)
    assert "'distilbert'" in report.errors[0].message and "causal" in report.errors[0].message


def test_rows_dropped_by_the_max_length_are_a_warning_with_locations(tiny_llama, tmp_path):
    data = tmp_path / "mixed.json"
    long_prompt = "word " * 300
    data.write_text(json.dumps([{"instruction": "Say hi", "output": "hi"},
                                {"instruction": long_prompt, "output": "ok"}]))
    report = preflight(finetune(tiny_llama, data, validation_fraction=0.0), tmp_path)
    assert report.ok
    warning = report.warnings[0]
    assert "1 of 2 rows dropped" in warning.message and "item 2" in warning.message


def test_a_save_interval_that_will_be_rounded_is_said(tiny_llama, qa_dataset, tmp_path):
    report = preflight(finetune(tiny_llama, qa_dataset, save_every=5, eval_every=50), tmp_path)
    assert report.ok
    assert any(w.field == "save_every" and "every 50 steps, not 5" in w.message for w in report.warnings)
    quiet = preflight(finetune(tiny_llama, qa_dataset, save_every=100, eval_every=50), tmp_path)
    assert not [w for w in quiet.warnings if w.field == "save_every"]


def test_not_enough_disk_is_an_error_before_the_run(tiny_llama, qa_dataset, tmp_path, monkeypatch):
    monkeypatch.setattr(preflight_module.shutil, "disk_usage", lambda _p: shutil._ntuple_diskusage(100, 99, 1))
    workspace = tmp_path / "ws"
    with pytest.raises(DiskFull) as info:
        prepare_run(finetune(tiny_llama, qa_dataset, method="full"), workspace)
    assert "GB free" in info.value.message
    assert runs_in(workspace) == []


def test_a_pretrain_corpus_that_does_not_exist_is_refused(tmp_path):
    cfg = PretrainConfig(corpus=str(tmp_path / "missing.txt"))
    report = preflight(cfg, tmp_path)
    assert "does not exist" in report.errors[0].message and report.errors[0].field == "corpus"


def test_a_scratch_pretrain_needs_no_model(tmp_path):
    corpus = tmp_path / "text.txt"
    corpus.write_text("Some text to learn from.\n" * 50, encoding="utf-8")
    report = preflight(PretrainConfig(corpus=str(corpus)), tmp_path)
    assert report.ok, report.describe()


def test_a_config_without_a_dataset_is_not_read_as_the_current_folder(tiny_llama, tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(f"model: {tiny_llama}\nmethod: lora\n", encoding="utf-8")
    report = preflight(load_config(path), tmp_path)
    assert "Field 'dataset' is empty" in report.errors[0].message


def test_an_empty_config_file_says_it_is_empty(tmp_path):
    path = tmp_path / "empty.yaml"
    path.write_text("# nothing yet\n", encoding="utf-8")
    with pytest.raises(BadConfig) as info:
        load_config(path)
    assert f"Config file {path} is empty" in info.value.message


def test_a_second_check_of_the_same_files_reuses_what_it_read(tiny_llama, qa_dataset, tmp_path, monkeypatch):
    cfg = finetune(tiny_llama, qa_dataset)
    preflight(cfg, tmp_path)
    import studio.engine.data.files as files

    def fail(*_a, **_k):
        raise AssertionError("the dataset was read again")

    monkeypatch.setattr(files, "read_records", fail)
    assert preflight(cfg, tmp_path).ok
    qa_dataset.touch()  # a changed file is read again
    with pytest.raises(AssertionError, match="read again"):
        preflight(cfg, tmp_path)


def test_cli_train_refuses_a_bad_dataset_without_a_worker_or_folder(tiny_llama, tmp_path, capsys):
    from studio.cli import main

    data = tmp_path / "data.json"
    data.write_text(json.dumps([{"instruction": "x" * 10, "output": ""}]), encoding="utf-8")
    cfg_path = tmp_path / "run.yaml"
    save_config(finetune(tiny_llama, data), cfg_path)
    code = main(["train", str(cfg_path), "--workspace", str(tmp_path / "ws"), "--quiet"])
    err = capsys.readouterr().err
    assert code == 2 and "error (bad_dataset)" in err and str(data) in err and "Traceback" not in err
    assert runs_in(tmp_path / "ws") == []


def test_cli_runs_into_a_closed_pipe_ends_quietly(tiny_llama, qa_dataset, tmp_path):
    workspace = tmp_path / "ws"
    for _ in range(3):
        prepare_run(finetune(tiny_llama, qa_dataset), workspace)
    proc = subprocess.Popen([sys.executable, "-m", "studio.cli", "runs", "--workspace", str(workspace)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()  # the reader is gone before the first line, as with `| head -0`
    err = proc.stderr.read().decode()
    assert proc.wait() == 0 and "Traceback" not in err and "BrokenPipeError" not in err


def test_the_saved_run_config_holds_absolute_paths(tiny_llama, qa_dataset, tmp_path, monkeypatch):
    monkeypatch.chdir(qa_dataset.parent)
    run_dir = prepare_run(finetune(tiny_llama, qa_dataset.name), tmp_path / "ws")
    assert load_config(run_dir / "config.yaml").dataset == str(qa_dataset.resolve())


def test_the_run_fills_the_placeholders_of_its_config(tiny_llama, tmp_path):
    from studio.engine.data.render import ensure_chat_template
    from studio.engine.models import load_tokenizer
    from studio.engine.sft import prepare_data

    data = tmp_path / "templated.json"
    data.write_text(json.dumps([{"instruction": "Who are you?", "output": "I am {{name}}."}] * 2), encoding="utf-8")
    cfg = finetune(tiny_llama, data, validation_fraction=0.0, placeholders={"name": "Quill"})
    assert preflight(cfg, tmp_path).ok
    tokenizer = load_tokenizer(tiny_llama)
    ensure_chat_template(tokenizer)
    train, _, _ = prepare_data(cfg, tokenizer)
    text = tokenizer.decode(train[0].input_ids)
    assert "I am Quill." in text and "{{" not in text
