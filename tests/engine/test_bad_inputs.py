"""Every case of the bad-input corpus through the loader and through the CLI's `check` command."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data" / "bad"))
from cases import CASES, write_all  # noqa: E402

from studio.engine.data.files import read_records  # noqa: E402
from studio.engine.data.formats import to_conversations  # noqa: E402
from studio.engine.data.render import ensure_chat_template, tokenize_all  # noqa: E402
from studio.engine.errors import BadDataset  # noqa: E402


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    return write_all(tmp_path_factory.mktemp("bad"))


@pytest.fixture(scope="module")
def tokenizer(tiny_llama):
    from studio.engine.models import load_tokenizer

    tok = load_tokenizer(tiny_llama)
    ensure_chat_template(tok)
    return tok


def test_the_corpus_has_at_least_30_cases():
    assert len(CASES) >= 30 and len({c.name for c in CASES}) == len(CASES)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_loader_names_the_file_and_what_was_expected(case, bad_files, tokenizer):
    path = bad_files[case.name]
    with pytest.raises(BadDataset) as info:
        tokenize_all(tokenizer, to_conversations(read_records(path)), case.max_length)
    message = info.value.message
    assert str(path) in message
    for words in case.expect:
        assert words in message
    assert len(message) < 2000  # a 50 MB line is never echoed back
    assert info.value.kind == "bad_dataset" and info.value.hint


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_cli_check_reports_without_a_traceback(case, bad_files, tiny_llama, capsys):
    from studio.cli import main

    code = main(["check", str(bad_files[case.name]), "--model", str(tiny_llama),
                 "--max-length", str(case.max_length)])
    err = capsys.readouterr().err
    assert code == 2
    assert "error (bad_dataset)" in err and case.expect[0] in err and "Traceback" not in err
