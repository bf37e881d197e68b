"""The dataset analysis the Fine-tune tab's panel shows (engine.data.analysis), without Qt."""

import json
import shutil

import pytest

from studio.engine.data.analysis import (NOT_USED, AnalysisCancelled, analyse_dataset, context_problem,
                                         mapping_targets, model_context_length, one_line_summary, parse_dataset,
                                         render_dataset)
from studio.engine.errors import BadDataset
from studio.resources import starter_model_dir
from tests.conftest import QA_PAIRS


def write_alpaca(path, rows=None):
    rows = rows if rows is not None else [{"instruction": q, "input": "", "output": a} for q, a in QA_PAIRS]
    path.write_text(json.dumps(rows))
    return path


def test_parse_detects_the_format_and_previews_the_rows(tmp_path):
    parsed = parse_dataset(write_alpaca(tmp_path / "qa.json"))
    assert parsed.error is None
    assert parsed.columns == ["instruction", "input", "output"]
    assert parsed.rows == len(QA_PAIRS) and parsed.detected == "alpaca" and parsed.format == "alpaca"
    where, messages = parsed.preview[0]
    assert where == "item 1"
    assert messages == [{"role": "user", "content": QA_PAIRS[0][0]}, {"role": "assistant", "content": QA_PAIRS[0][1]}]


def test_mapping_renames_columns_and_leaves_out_unused_ones(tmp_path):
    data = tmp_path / "qa.csv"
    data.write_text("question,input,answer\nWhat is red?,SECRET NOTE,A colour.\n")
    mapping = {"question": "instruction", "answer": "output", "input": NOT_USED}
    parsed = parse_dataset(data, "auto", mapping)
    assert parsed.error is None and parsed.detected == "alpaca"
    assert parsed.preview[0][1][0] == {"role": "user", "content": "What is red?"}  # the note is not in the prompt


def test_columns_no_format_reads_are_named_with_the_file(tmp_path):
    data = tmp_path / "qa.csv"
    data.write_text("question,answer\nWhat is red?,A colour.\n")
    parsed = parse_dataset(data)
    assert parsed.columns == ["question", "answer"] and parsed.detected is None
    assert isinstance(parsed.error, BadDataset) and str(data) in parsed.error.message
    assert "column mapping" in parsed.error.message


@pytest.mark.parametrize("name, content, expected", [
    ("picture.png", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", "unsupported file type '.png'"),
    ("picture.json", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "binary"),
    ("deep.json", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ("deep.jsonl", b'{"instruction": ' + b"[" * 100_000 + b"]" * 100_000 + b', "output": "x"}\n',
     "nested too deeply"),
])
def test_odd_files_give_an_error_naming_the_file_instead_of_raising(tmp_path, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    parsed = parse_dataset(path)
    assert parsed.columns == [] and parsed.detected is None and parsed.conversations is None
    assert isinstance(parsed.error, BadDataset)
    assert str(path) in parsed.error.message and expected in parsed.error.message


def test_render_marks_the_trained_part_and_summarises_token_lengths(tmp_path):
    parsed = parse_dataset(write_alpaca(tmp_path / "qa.json"))
    rendered = render_dataset(parsed, str(starter_model_dir()), max_length=128)
    assert rendered.error is None and rendered.model_error is None
    assert rendered.context_length == 128 and not rendered.fallback_template and not rendered.sampled
    where, text, spans = rendered.previews[0]
    assert where == "item 1" and len(spans) == 1
    assert QA_PAIRS[0][1] in text[spans[0][0]:spans[0][1]]
    summary = rendered.summary
    assert summary.rows == summary.used == len(QA_PAIRS) and summary.format == "alpaca"
    line = one_line_summary(summary)
    assert "\n" not in line and f"{len(QA_PAIRS)} of {len(QA_PAIRS)} rows used" in line and "median" in line


def test_a_max_length_that_leaves_no_example_is_an_error_naming_the_file(tmp_path):
    data = write_alpaca(tmp_path / "qa.json")
    result = analyse_dataset(data, model=str(starter_model_dir()), max_length=10)
    assert result.parsed.error is None
    error = result.rendered.error
    assert isinstance(error, BadDataset) and str(data) in error.message and "no example is left" in error.message


def test_a_chat_template_that_rejects_the_rows_is_an_error_not_a_crash(tmp_path):
    model = tmp_path / "model"
    shutil.copytree(starter_model_dir(), model)
    (model / "chat_template.jinja").write_text("{{ raise_exception('Roles must alternate user/assistant') }}")
    data = write_alpaca(tmp_path / "qa.json")
    rendered = analyse_dataset(data, model=str(model), max_length=128).rendered
    assert isinstance(rendered.error, BadDataset)
    assert str(data) in rendered.error.message and "Roles must alternate" in rendered.error.message


def test_a_missing_model_is_a_model_problem_not_a_data_problem(tmp_path):
    rendered = analyse_dataset(write_alpaca(tmp_path / "qa.json"), model=str(tmp_path / "nowhere")).rendered
    assert rendered.error is None and rendered.model_error is not None and rendered.summary is None


def test_without_a_model_only_the_parse_runs_and_is_reported_first(tmp_path):
    seen = []
    result = analyse_dataset(write_alpaca(tmp_path / "qa.json"), on_parsed=seen.append)
    assert result.rendered is None and seen == [result.parsed]


def test_a_cancelled_analysis_stops(tmp_path):
    data = write_alpaca(tmp_path / "qa.json")
    with pytest.raises(AnalysisCancelled):
        analyse_dataset(data, model=str(starter_model_dir()), cancelled=lambda: True)
    calls = []

    def cancel_during_rendering():
        calls.append(1)
        return len(calls) > 2  # past the parse: the tokenizer is loaded when the flag rises
    with pytest.raises(AnalysisCancelled):
        analyse_dataset(data, model=str(starter_model_dir()), cancelled=cancel_during_rendering)


def _model_folder(tmp_path, config: dict, tokenizer_config: dict | None = None):
    folder = tmp_path / "m"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(config))
    if tokenizer_config is not None:
        (folder / "tokenizer_config.json").write_text(json.dumps(tokenizer_config))
    return folder


@pytest.mark.parametrize("config, tokenizer_config, expected", [
    ({"model_type": "llama", "max_position_embeddings": 4096}, {"model_max_length": 128}, 4096),
    ({"model_type": "gpt2", "n_positions": 1024}, None, 1024),
    ({"model_type": "mpt", "max_seq_len": 2048}, None, 2048),
    ({"model_type": "llava", "text_config": {"max_position_embeddings": 8192}}, None, 8192),
    ({"model_type": "odd"}, {"model_max_length": 2048}, 2048),
    ({"model_type": "odd"}, {"model_max_length": int(1e30)}, None),  # transformers' "no limit" placeholder
    ({"model_type": "odd", "max_position_embeddings": True}, None, None),
    ({"model_type": "odd"}, None, None),
])
def test_model_context_length_reads_the_config(tmp_path, config, tokenizer_config, expected):
    assert model_context_length(_model_folder(tmp_path, config, tokenizer_config)) == expected


def test_model_context_length_of_the_starter_model_and_of_no_model(tmp_path):
    assert model_context_length(starter_model_dir()) == 128
    assert model_context_length(tmp_path / "nowhere") is None
    (tmp_path / "config.json").write_text("{broken")
    assert model_context_length(tmp_path) is None


def test_context_problem_says_what_to_set():
    assert context_problem(512, 128) == ("Max length 512 is above this model's context of 128 tokens; "
                                         "set it to 128 or less.")
    assert context_problem(128, 128) is None and context_problem(4096, None) is None


def test_mapping_targets_follow_the_format():
    assert mapping_targets("alpaca") == ["instruction", "output", "input", "system", "history"]
    assert mapping_targets("prompt_completion") == ["prompt", "completion", "system"]
    auto = mapping_targets("auto", detected="messages")
    assert auto[:2] == ["messages", "system"] and {"instruction", "conversations", "prompt"} <= set(auto)
    assert len(auto) == len(set(auto))
