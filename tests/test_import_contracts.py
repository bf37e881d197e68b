"""The layers, enforced: import-linter reads every module of studio/ (imports inside functions too) and checks
the contracts in pyproject.toml — the engine never imports the UI, the command line or Qt; the command line never
imports the UI or Qt (the window is opened by studio.launcher)."""

from tests.conftest import ROOT


def test_the_import_contracts_hold(capsys, monkeypatch):
    from importlinter.cli import lint_imports

    monkeypatch.chdir(ROOT)  # the contracts name the package as installed from this checkout
    status = lint_imports(config_filename=str(ROOT / "pyproject.toml"), no_cache=True, no_logo=True)
    report = capsys.readouterr().out
    assert status == 0, report
    assert "2 kept, 0 broken" in report


def test_studio_opens_the_window_only_without_a_sub_command():
    from studio.launcher import opens_window

    assert opens_window([]) and opens_window(["--smoke-test"]) and opens_window(["gui"])
    assert not opens_window(["train", "x.yaml"]) and not opens_window(["--version"]) and not opens_window(["-h"])
