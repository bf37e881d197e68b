"""`studio train` (with --set and --resume), Ctrl-C and `studio runs`, end to end through the command line, with
the fast fake worker (tests/fake_worker.py: the real worker process and its supervision, a recipe that trains
nothing). What a real worker trains is proven in tests/engine/test_worker.py and by the README walkthrough."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from studio.cli import main
from studio.engine.config import FineTuneConfig, load_config, save_config
from studio.engine.events import read_events
from studio.engine.runs import last_checkpoint, list_runs, summarize_run, worker_alive
from studio.resources import starter_model_dir

ROOT = Path(__file__).resolve().parent.parent
FAKE_WORKER = ROOT / "tests" / "fake_worker.py"
DATASET = ROOT / "resources" / "sample-instructions.json"
# `studio train` in its own process, with the fake worker in place of the real one.
CLI_WITH_FAKE_WORKER = ("import sys, studio.engine.supervisor as s; s.WORKER_ARGS = [sys.argv.pop(1)]; "
                        "from studio.cli import main; sys.exit(main(sys.argv[1:]))")


@pytest.fixture(autouse=True)
def fake_worker(monkeypatch):
    monkeypatch.setattr("studio.engine.supervisor.WORKER_ARGS", [str(FAKE_WORKER)])
    monkeypatch.setenv("FAKE_WORKER_SECONDS_PER_STEP", "0.01")


@pytest.fixture(autouse=True)
def own_sigint_handler():
    """`studio train` answers Ctrl-C itself; the test process gets its own handler back afterwards."""
    handler = signal.getsignal(signal.SIGINT)
    yield
    signal.signal(signal.SIGINT, handler)


@pytest.fixture
def config_file(tmp_path) -> Path:
    path = tmp_path / "run.yaml"
    save_config(FineTuneConfig(model=str(starter_model_dir()), dataset=str(DATASET), name="cli", max_steps=4,
                               save_every=2, max_length=128), path)
    return path


def run_folder(stderr: str) -> Path:
    line = next(line for line in stderr.splitlines() if line.startswith("run folder: "))
    return Path(line.removeprefix("run folder: ").strip())


def test_train_runs_the_config_with_what_set_changes(config_file, tmp_path, capsys):
    workspace = tmp_path / "ws"
    assert main(["train", str(config_file), "--workspace", str(workspace), "--set", "max_steps=7",
                 "--set", "name=changed", "--set", "learning_rate=5e-5", "--quiet"]) == 0
    out, err = capsys.readouterr()
    run_dir = run_folder(err)
    assert run_dir.parent == workspace / "runs" and run_dir.name.endswith("-changed")
    assert out.strip().splitlines()[-1] == f"completed: {run_dir / 'adapter'}"
    saved, written = load_config(run_dir / "config.yaml"), load_config(config_file)
    assert (saved.max_steps, saved.name, saved.learning_rate) == (7, "changed", 5e-5)
    assert {k: v for k, v in vars(saved).items() if k not in ("max_steps", "name", "learning_rate")} == \
        {k: v for k, v in vars(written).items() if k not in ("max_steps", "name", "learning_rate")}
    assert [e["step"] for e in read_events(run_dir / "events.jsonl") if e["type"] == "log"] == list(range(1, 8))
    assert summarize_run(run_dir).status == "completed"


def test_a_bad_set_is_refused_naming_the_field_before_any_run(config_file, tmp_path, capsys):
    workspace = tmp_path / "ws"
    assert main(["train", str(config_file), "--workspace", str(workspace), "--set", "max_steps=lots"]) == 2
    err = capsys.readouterr().err
    assert "Field 'max_steps' has the value 'lots'; expected a whole number" in err and "Traceback" not in err
    assert main(["train", str(config_file), "--workspace", str(workspace), "--set", "max_stepz=3"]) == 2
    assert "unknown field(s) max_stepz" in capsys.readouterr().err
    assert not (workspace / "runs").exists()


def test_resume_without_a_checkpoint_is_refused(config_file, tmp_path, capsys):
    workspace = tmp_path / "ws"
    assert main(["train", str(config_file), "--workspace", str(workspace), "--set", "save_every=0"]) == 0
    finished = run_folder(capsys.readouterr().err)
    assert last_checkpoint(finished) is None
    assert main(["train", str(config_file), "--workspace", str(workspace), "--resume", str(finished)]) == 2
    err = capsys.readouterr().err
    assert "resume_from" in err and "no complete checkpoint" in err
    assert len(list_runs(workspace)) == 1  # nothing new was started


@pytest.mark.skipif(os.name == "nt", reason="Ctrl-C is a POSIX signal to the process group here")
def test_ctrl_c_stops_the_run_cleanly_and_resume_continues_it(config_file, tmp_path, capsys):
    workspace = tmp_path / "ws"
    cli = subprocess.Popen([sys.executable, "-c", CLI_WITH_FAKE_WORKER, str(FAKE_WORKER), "train", str(config_file),
                            "--workspace", str(workspace), "--set", "max_steps=100000", "--quiet"],
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                           start_new_session=True)  # its own process group, as a shell gives a command
    try:
        runs = workspace / "runs"
        deadline = time.monotonic() + 120
        while not (runs.is_dir() and any(e["type"] == "log" for r in runs.iterdir()
                                         for e in read_events(r / "events.jsonl"))):
            assert cli.poll() is None and time.monotonic() < deadline, cli.stderr.read() if cli.poll() else ""
            time.sleep(0.05)
        os.killpg(cli.pid, signal.SIGINT)  # what Ctrl-C in the terminal sends (the worker has its own session)
        out, err = cli.communicate(timeout=120)
    finally:
        if cli.poll() is None:
            cli.kill()
            cli.wait()
    assert cli.returncode == 0, err
    assert "stopping after this step" in err
    run_dir = run_folder(err)
    assert out.strip().splitlines()[-1] == f"stopped: {run_dir / 'adapter'}"
    summary = summarize_run(run_dir)
    assert summary.status == "stopped" and summary.resumable and not worker_alive(run_dir)
    point = last_checkpoint(run_dir)
    stopped_at = int(point.name.split("-")[1])
    assert read_events(run_dir / "events.jsonl")[-1]["summary"]["steps"] == stopped_at

    # --resume continues from that checkpoint, with the run's own config and what --set changes.
    assert main(["train", str(config_file), "--workspace", str(workspace), "--resume", str(run_dir),
                 "--set", f"max_steps={stopped_at + 3}", "--quiet"]) == 0
    resumed = run_folder(capsys.readouterr().err)
    assert load_config(resumed / "config.yaml").resume_from == str(point)
    events = read_events(resumed / "events.jsonl")
    assert next(e for e in events if e["type"] == "started")["resumed_at"] == stopped_at
    assert [e["step"] for e in events if e["type"] == "log"] == [stopped_at + 1, stopped_at + 2, stopped_at + 3]
    assert summarize_run(resumed).status == "completed"


def test_studio_runs_lists_every_run_with_its_status(config_file, tmp_path, capsys):
    from studio.engine.events import EventWriter
    from studio.engine.runs import create_run_dir

    workspace = tmp_path / "ws"
    assert main(["runs", "--workspace", str(workspace)]) == 0
    assert capsys.readouterr().out == ""  # no runs yet: nothing listed, no error
    assert main(["train", str(config_file), "--workspace", str(workspace), "--quiet"]) == 0
    good = run_folder(capsys.readouterr().err)
    crashed = create_run_dir(workspace, "crashed")  # as a worker leaves a run it could not finish
    save_config(load_config(config_file), crashed / "config.yaml")
    events = EventWriter(crashed / "events.jsonl")
    events.emit("started", total_steps=4)
    events.emit("log", step=1, loss=2.0)
    events.emit("failed", kind="out_of_memory", message="Ran out of memory.", hint="")
    events.close()
    assert main(["runs", "--workspace", str(workspace)]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()}
    assert set(rows) == {good.name, crashed.name}
    assert rows[good.name][1:6] == ["sft", "lora", "completed", "step", "4"]
    assert rows[crashed.name][1:6] == ["sft", "lora", "failed", "step", "1"]


def test_export_writes_the_merged_model_a_gguf_file_and_a_modelfile(memorised_run, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("studio.engine.supervisor.WORKER_ARGS", ["-m", "studio.engine.worker"])  # the real one
    workspace = tmp_path / "ws"
    assert main(["export", str(memorised_run[0]), "--format", "merged,gguf-q8_0,ollama", "--name", "QA Bot",
                 "--system", "Answer briefly.", "--workspace", str(workspace), "--quiet"]) == 0
    out = capsys.readouterr().out
    (run_dir,) = (workspace / "runs").iterdir()
    modelfile = (run_dir / "Modelfile").read_text()
    assert modelfile.startswith("FROM ./QA-Bot-q8_0.gguf\n") and 'SYSTEM """Answer briefly."""' in modelfile
    assert (run_dir / "QA-Bot-q8_0.gguf").stat().st_size > 0 and (run_dir / "merged" / "config.json").is_file()
    assert f"ollama create qa-bot -f {run_dir / 'Modelfile'}" in out
    finished = read_events(run_dir / "events.jsonl")[-1]
    assert finished["type"] == "finished" and finished["ollama_command"].startswith("ollama create qa-bot")
