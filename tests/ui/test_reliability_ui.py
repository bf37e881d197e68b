"""Reliability in the window: the bad-input corpus in the error panel, model safety questions, re-attach."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "data" / "bad"))
from cases import CASES, write_all  # noqa: E402

from tests.engine.sft_helpers import MEMORISE, sft_config  # noqa: E402
from tests.ui.conftest import DialogAnswerer, open_window  # noqa: E402

LONG = 180_000


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory):
    return write_all(tmp_path_factory.mktemp("bad-ui"))


def test_every_bad_input_shows_a_readable_error_in_the_panel(finetune_tab, tiny_llama, bad_files, qtbot):
    tab = finetune_tab
    tab.set_model(str(tiny_llama))
    panel = tab.dataset_panel
    for case in CASES:
        tab.form.set_value("max_length", case.max_length)
        with qtbot.waitSignal(panel.analysis_finished, timeout=LONG):
            tab.load_dataset(str(bad_files[case.name]))
        shown = panel.error_panel.text()
        assert panel.last_error is not None, case.name
        assert case.expect[0] in shown, (case.name, shown)
        assert "Traceback" not in shown and panel.error_panel.isVisible()
    tab.start()  # refuses with the last error; no run is created
    assert not tab.is_running() and tab.error_panel.isVisible()


def _model_with_remote_code(tiny_llama, tmp_path) -> Path:
    import shutil

    folder = tmp_path / "remote-code-model"
    shutil.copytree(tiny_llama, folder)
    cfg = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps({**cfg, "auto_map": {"AutoModelForCausalLM": "evil.Model"}}))
    return folder


def test_remote_code_needs_a_yes_and_a_no_starts_nothing(finetune_tab, tiny_llama, qa_dataset, tmp_path, qtbot,
                                                          workspace):
    tab = finetune_tab
    model = _model_with_remote_code(tiny_llama, tmp_path)
    tab.set_model(str(model))
    with qtbot.waitSignal(tab.dataset_panel.analysis_finished, timeout=LONG):
        tab.load_dataset(str(qa_dataset))
    answers = DialogAnswerer("No")
    try:
        tab.start()
    finally:
        answers.stop()
    assert answers.asked[0][0] == "Run code from this model?"
    assert "runs that code on this computer" in answers.asked[0][1]
    assert not tab.is_running() and "Not started" in tab.error_panel.text()
    assert not (workspace / "runs").exists()


def test_confirming_sets_exactly_the_permission_asked_for(tiny_llama, tmp_path, qtbot):
    from studio.engine.config import FineTuneConfig
    from studio.ui.safety import confirm_model_safety

    pickled = tmp_path / "pickled"
    import shutil

    shutil.copytree(tiny_llama, pickled)
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    answers = DialogAnswerer("Yes")
    try:
        cfg = FineTuneConfig(model=str(pickled))
        assert confirm_model_safety(None, str(pickled), cfg)
        assert answers.asked[0][0] == "Load pickle weights?"
        assert cfg.allow_pickle and not cfg.trust_remote_code
        safe = FineTuneConfig(model=str(tiny_llama))
        assert confirm_model_safety(None, str(tiny_llama), safe)
        assert answers.answered == 1  # a safe model needs no question
        adapter_only = tmp_path / "adapter"  # no config.json: nothing to ask; loading it says what is wrong
        adapter_only.mkdir()
        assert confirm_model_safety(None, str(adapter_only), FineTuneConfig(model=str(adapter_only)))
    finally:
        answers.stop()


def _start_detached_worker(cfg, workspace) -> tuple[Path, subprocess.Popen]:
    """A worker as an earlier window would have left it: its own session, nobody reading its output."""
    from studio.engine.supervisor import prepare_run

    run_dir = prepare_run(cfg, workspace)
    proc = subprocess.Popen([sys.executable, "-m", "studio.engine.worker", str(run_dir)],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    return run_dir, proc


def test_a_live_run_is_shown_again_and_can_be_stopped(tiny_llama, qa_dataset, workspace, qtbot):
    from studio.engine.events import read_events

    cfg = sft_config(tiny_llama, qa_dataset, **dict(MEMORISE, epochs=1000, max_steps=100_000, log_every=1))
    run_dir, proc = _start_detached_worker(cfg, workspace)
    try:
        qtbot.waitUntil(lambda: any(e["type"] == "log" for e in read_events(run_dir / "events.jsonl")),
                        timeout=LONG)
        window = open_window(qtbot)
        assert window.reattached == [run_dir]
        tab = window.finetune_tab
        assert tab.is_running() and tab.stop_button.isEnabled()
        qtbot.waitUntil(lambda: tab.loss_plot.point_count("train") > 0, timeout=LONG)
        with qtbot.waitSignal(tab.run_ended, timeout=LONG) as ended:
            tab.stop()
        assert ended.args[0]["type"] == "finished" and ended.args[0]["status"] == "stopped"
        assert (run_dir / "adapter" / "adapter_model.safetensors").is_file()
        qtbot.waitUntil(lambda: not tab.is_running(), timeout=LONG)
    finally:
        if proc.poll() is None:
            proc.kill()
        proc.wait()


def test_a_run_whose_worker_died_is_marked_failed_on_start(workspace, qtbot):
    from studio.engine.events import EventWriter, read_events
    from studio.engine.runs import summarize_run

    run_dir = workspace / "runs" / "20260101-000000-ghost"
    run_dir.mkdir(parents=True)
    (run_dir / "config.yaml").write_text("task: sft\nname: ghost\n")
    writer = EventWriter(run_dir / "events.jsonl")
    writer.emit("started", total_steps=10)
    writer.emit("log", step=1, loss=2.0)
    writer.close()
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (run_dir / "worker.log").write_text("Fatal Python error: Segmentation fault\n")
    (run_dir / "worker.pid").write_text(str(dead.pid))
    window = open_window(qtbot)
    assert window.reattached == []
    last = read_events(run_dir / "events.jsonl")[-1]
    assert last["type"] == "failed" and "ended without finishing" in last["message"]
    assert "Segmentation fault" in last["message"]  # what the worker last printed, from its worker.log
    qtbot.waitUntil(lambda: window.runs_view.runs and window.runs_view.runs[0].status == "failed")
    assert summarize_run(run_dir).status == "failed"
    assert not window.finetune_tab.is_running()
