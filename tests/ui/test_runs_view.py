"""The Runs list (studio.ui.runs.RunsView) on run folders written the way the worker writes them:
a config.yaml and an events.jsonl, no training."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from PySide6.QtWidgets import QInputDialog, QMessageBox

from studio.engine import runs as engine_runs
from studio.engine.config import FineTuneConfig, load_config, save_config
from studio.engine.events import EventWriter
from studio.engine.pretrain_config import PretrainConfig
from studio.engine.runs import CONFIG_FILE, EVENTS_FILE, mark_complete, read_run_config
from studio.ui.runs import rows
from studio.ui.runs import RunsView

T0 = dt.datetime(2024, 3, 5, 14, 30).timestamp()
HOUR = 3600.0


def write_events(run: Path, events: list[tuple[str, dict]]) -> None:
    writer = EventWriter(run / EVENTS_FILE)
    for kind, fields in events:
        writer.emit(kind, **fields)
    writer.close()


def make_run(workspace: Path, folder: str, cfg, events: list[tuple[str, dict]] | None = None) -> Path:
    run = workspace / "runs" / folder
    run.mkdir(parents=True)
    save_config(cfg, run / CONFIG_FILE)
    if events is not None:
        write_events(run, events)
    return run


def trained(start: float, losses: list[float], evals: dict[int, float], total: int) -> list[tuple[str, dict]]:
    events = [("started", dict(time=start, total_steps=total))]
    events += [("log", dict(time=start + s, step=s, loss=loss, learning_rate=1e-4)) for s, loss in enumerate(losses, 1)]
    events += [("eval", dict(time=start + s + 0.5, step=s, eval_loss=loss)) for s, loss in evals.items()]
    return events


def finished(run: Path, status: str, output: str, time: float) -> Path:
    out = run / output
    out.mkdir()
    if output == "adapter":
        (out / "adapter_config.json").write_text(json.dumps({"peft_type": "LORA"}))
    write_events(run, [("finished", dict(time=time, status=status, output=str(out)))])
    return out


def sft_run(workspace: Path, folder: str, name: str, start: float, **cfg) -> Path:
    config = FineTuneConfig(name=name, model="/models/tiny-llama", dataset="/data/qa.json", **cfg)
    run = make_run(workspace, folder, config, trained(start, [2.0, 1.8, 1.6], {3: 1.5}, total=6))
    finished(run, "completed", "adapter", start + 10)
    return run


def checkpoint(run: Path, step: int) -> None:
    point = run / "checkpoints" / f"checkpoint-{step}"
    point.mkdir(parents=True)
    (point / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    mark_complete(point)


def cell(view: RunsView, path: Path, title: str) -> str:
    return view.table.item(view.row_of(path), view.column(title)).text()


@pytest.fixture
def view(qtbot):
    runs_view = RunsView()
    qtbot.addWidget(runs_view)
    return runs_view


@pytest.fixture
def answers(monkeypatch):
    """QMessageBox.question answered from a list; every question asked is recorded as (title, text)."""
    asked, replies = [], []

    def question(parent, title, text, *args):
        asked.append((title, text))
        return replies.pop(0)

    monkeypatch.setattr(QMessageBox, "question", question)
    return asked, replies


def test_every_run_listed_newest_first_with_readable_columns(view, workspace):
    sft = sft_run(workspace, "20240305-143000-chat", "chat", T0)
    corpus = PretrainConfig(name="poems", corpus="/text/a.txt;/text/b.txt", mode="scratch")
    pretrain = make_run(workspace, "20240306-090000-poems", corpus, trained(T0 + 20 * HOUR, [5.0, 4.0], {}, 4))
    view.set_workspace(workspace)
    view.refresh_now()

    assert [r.path for r in view.runs] == [pretrain, sft]
    header = view.table.horizontalHeader()
    shown = [view.table.horizontalHeaderItem(header.logicalIndex(i)).text() for i in range(header.count())]
    assert shown == ["Name", "Kind", "Model", "Dataset", "Method", "Status", "Steps", "Best eval loss", "Date"]
    assert [cell(view, sft, c) for c in shown] == [
        "chat", "Fine-tune", "tiny-llama", "qa.json", "lora", "completed", "3/6", "1.5000",
        dt.datetime.fromtimestamp(T0).strftime("%Y-%m-%d %H:%M")]
    assert cell(view, pretrain, "Kind") == "Pre-train"
    assert cell(view, pretrain, "Dataset") == "2 files"
    assert cell(view, pretrain, "Steps") == "2/4"
    assert view.list_area.currentWidget() is view.table


def test_dates_come_from_the_run_never_the_raw_folder_name(view, workspace):
    failed = make_run(workspace, "20240101-120000-broken", FineTuneConfig(name="broken"),
                      [("failed", dict(time=T0, kind="bad_dataset", message="Row 3 has no 'output' field."))])
    silent = make_run(workspace, "20230704-080910-silent", FineTuneConfig(name="silent"))  # no events at all
    view.set_workspace(workspace)
    view.refresh_now()

    assert cell(view, failed, "Date") == dt.datetime.fromtimestamp(T0).strftime("%Y-%m-%d %H:%M")
    assert cell(view, silent, "Date") == "2023-07-04 08:09"
    status = view.table.item(view.row_of(failed), view.column("Status"))
    assert status.text() == "failed" and "Row 3 has no 'output' field." in status.toolTip()


def test_empty_workspace_says_where_runs_go(view, workspace):
    view.set_workspace(workspace)
    assert view.list_area.currentWidget() is view.empty_label
    text = view.empty_label.text()
    assert text.startswith("No runs yet") and str(workspace / "runs") in text
    sft_run(workspace, "20240305-143000-chat", "chat", T0)
    view.refresh_now()
    assert view.list_area.currentWidget() is view.table


def test_big_refresh_reads_in_a_thread_and_selects_its_run_when_listed(view, workspace, qtbot):
    first = sft_run(workspace, "20240305-143000-one", "one", T0)
    second = sft_run(workspace, "20240305-153000-two", "two", T0 + HOUR)
    view.catalog.sync_max_runs = 0  # anything to read is "much": it goes to the scan thread
    with qtbot.waitSignal(view.refreshed, timeout=60000):
        view.set_workspace(workspace)
        assert view.catalog.scanning and view.runs == []
        assert view.empty_label.text().startswith("Reading the runs")
        view.select_run(first)  # as a tab does right after refresh(): applied once the list has it
    assert [r.path for r in view.runs] == [second, first]
    assert view.selected_run().path == first


def test_a_background_read_never_reads_in_the_gui_thread(view, workspace, qtbot):
    """As the window opens: even one small run is read in a thread (the list says it is reading), and a later
    refresh with nothing changed reads nothing at all."""
    import threading

    only = sft_run(workspace, "20240305-143000-one", "one", T0)
    threads = []
    real_scan = rows.scan
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(rows, "scan", lambda *a: threads.append(threading.get_ident()) or real_scan(*a))
        with qtbot.waitSignal(view.refreshed, timeout=60000):
            view.set_workspace(workspace, background=True)
            assert view.catalog.scanning and view.empty_label.text().startswith("Reading the runs")
        assert [r.path for r in view.runs] == [only]
        assert threads and threading.get_ident() not in threads
        view.refresh(background=True)  # nothing changed since: nothing to read, no thread
        assert not view.catalog.scanning and [r.path for r in view.runs] == [only]


def test_unchanged_runs_are_not_read_again(view, workspace, monkeypatch):
    sft_run(workspace, "20240305-143000-one", "one", T0)
    changing = sft_run(workspace, "20240305-153000-two", "two", T0 + HOUR)
    view.set_workspace(workspace)
    read = []
    real_read = rows.read_entry
    monkeypatch.setattr(rows, "read_entry", lambda run_dir: read.append(run_dir) or real_read(run_dir))
    view.refresh_now()
    assert read == []
    write_events(changing, [("eval", dict(step=6, eval_loss=0.9))])
    view.refresh_now()
    assert read == [changing] and cell(view, changing, "Best eval loss") == "0.9000"


def test_selecting_two_runs_overlays_both_curves(view, workspace):
    first = sft_run(workspace, "20240305-143000-one", "one", T0, learning_rate=1e-4)
    second = sft_run(workspace, "20240305-153000-two", "two", T0 + HOUR, learning_rate=3e-4)
    view.set_workspace(workspace)
    view.refresh_now()
    view.select_run(first)
    assert view.plot.point_count("train") == 3 and view.plot.point_count("eval") == 1
    assert "name: one" in view.config_text.toPlainText()

    view.select_runs([first, second])
    for name in ("one", "two"):
        assert view.plot.point_count(f"{name} · train") == 3
        assert view.plot.point_count(f"{name} · eval") == 1
    assert view.plot.point_count("train") == 0
    assert view.selected_run() is None and len(view.selected_runs()) == 2
    assert "learning_rate" in view.config_text.toPlainText()


def test_resume_only_for_a_stopped_run_with_a_complete_checkpoint(view, workspace, qtbot):
    completed = sft_run(workspace, "20240305-143000-done", "done", T0)
    stopped = make_run(workspace, "20240305-153000-stopped", FineTuneConfig(name="stopped", model="/m"),
                       trained(T0 + HOUR, [2.0, 1.9, 1.8], {}, 100))
    finished(stopped, "stopped", "adapter", T0 + HOUR + 5)
    checkpoint(stopped, 3)
    bare = make_run(workspace, "20240305-163000-bare", FineTuneConfig(name="bare", model="/m"),
                    trained(T0 + 2 * HOUR, [2.0], {}, 100))
    finished(bare, "stopped", "adapter", T0 + 2 * HOUR + 5)
    view.set_workspace(workspace)
    view.refresh_now()

    for run in (completed, bare):
        view.select_run(run)
        assert not view.resume_action.isEnabled() and not view.resume_button.isEnabled()
    view.select_run(stopped)
    assert view.resume_action.isEnabled() and view.resume_action in view.menu.actions()
    with qtbot.waitSignal(view.resume_requested) as sent:
        view.resume_button.click()
    assert sent.args == [stopped]


def test_open_in_playground_sends_base_model_and_adapter_or_the_model(view, workspace, qtbot):
    sft = sft_run(workspace, "20240305-143000-chat", "chat", T0)
    pretrain = make_run(workspace, "20240305-153000-poems", PretrainConfig(name="poems", corpus="/t.txt"),
                        trained(T0 + HOUR, [5.0], {}, 1))
    model = finished(pretrain, "completed", "model", T0 + HOUR + 5)
    unfinished = make_run(workspace, "20240305-163000-stopped-early", FineTuneConfig(name="early", model="/m"),
                          [("failed", dict(time=T0 + 2 * HOUR, kind="out_of_memory", message="Out of memory."))])
    view.set_workspace(workspace)
    view.refresh_now()

    view.select_run(sft)
    with qtbot.waitSignal(view.open_in_playground) as sent:
        view.playground_button.click()
    assert sent.args == ["/models/tiny-llama", str(sft / "adapter")]
    view.select_run(pretrain)
    with qtbot.waitSignal(view.open_in_playground) as sent:
        view.open_action.trigger()
    assert sent.args == [str(model), ""]
    view.select_run(unfinished)
    assert not view.open_action.isEnabled()


def test_load_config_sends_the_config_to_run_again(view, workspace, qtbot):
    run = sft_run(workspace, "20240305-143000-chat", "chat", T0, resume_from="/old/checkpoint-2", max_steps=7)
    view.set_workspace(workspace)
    view.refresh_now()
    view.select_run(run)
    with qtbot.waitSignal(view.load_config_requested) as sent:
        view.load_button.click()
    cfg = sent.args[0]
    assert isinstance(cfg, FineTuneConfig) and cfg.max_steps == 7 and cfg.resume_from == ""


def test_rename_changes_the_listed_name_and_config_but_not_the_folder(view, workspace, monkeypatch):
    run = sft_run(workspace, "20240305-143000-chat", "chat", T0, max_steps=7)
    view.set_workspace(workspace)
    view.refresh_now()
    view.select_run(run)
    asked = []
    monkeypatch.setattr(QInputDialog, "getText", lambda parent, title, label, mode, text: asked.append(text)
                        or ("  support bot v2 ", True))
    view.rename_button.click()

    assert asked == ["chat"]
    assert run.is_dir() and sorted(p.name for p in run.parent.iterdir()) == [run.name]
    assert read_run_config(run)["name"] == "support bot v2"
    assert load_config(run / CONFIG_FILE).max_steps == 7
    assert not list(run.glob("*.tmp"))
    assert cell(view, run, "Name") == "support bot v2"
    assert view.selected_run().path == run


def test_delete_asks_naming_the_run_and_deletes_only_on_yes(view, workspace, answers, monkeypatch, tmp_path):
    trash = tmp_path / "data" / "Trash"
    (trash / "files").mkdir(parents=True)
    (trash / "info").mkdir()
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    run = sft_run(workspace, "20240305-143000-chat", "chat", T0)
    view.set_workspace(workspace)
    view.refresh_now()
    view.select_run(run)
    asked, replies = answers

    replies.append(QMessageBox.StandardButton.No)
    view.delete_button.click()
    assert len(asked) == 1 and "chat" in asked[0][1] and run.name in asked[0][1]
    assert run.is_dir() and view.row_of(run) == 0

    replies.append(QMessageBox.StandardButton.Yes)
    view.delete_action.trigger()
    assert len(asked) == 2 and "trash" in asked[1][1]
    assert not run.exists() and (trash / "files" / run.name / CONFIG_FILE).is_file()
    assert view.runs == [] and view.list_area.currentWidget() is view.empty_label


def test_delete_without_a_trash_deletes_only_after_saying_so(view, workspace, answers, monkeypatch, tmp_path):
    monkeypatch.setenv("HOME", str(tmp_path / "no-home"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "no-home" / "share"))  # no trash folder there
    run = sft_run(workspace, "20240305-143000-chat", "chat", T0)
    view.set_workspace(workspace)
    view.refresh_now()
    view.select_run(run)
    asked, replies = answers
    replies += [QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.No]
    view.delete_button.click()
    assert len(asked) == 2 and "cannot be undone" in asked[1][1] and run.is_dir()

    replies += [QMessageBox.StandardButton.Yes, QMessageBox.StandardButton.Yes]
    view.delete_button.click()
    assert "cannot be undone" in asked[3][1]
    assert not run.exists() and view.row_of(run) == -1


def test_a_running_run_is_not_deleted(view, workspace, answers, monkeypatch):
    running = make_run(workspace, "20240305-143000-live", FineTuneConfig(name="live"),
                       trained(T0, [2.0, 1.9], {}, 100))
    monkeypatch.setattr(engine_runs, "worker_alive", lambda run_dir: Path(run_dir) == running)
    view.set_workspace(workspace)
    view.refresh_now()
    view.select_run(running)
    assert cell(view, running, "Status") == "running"
    assert not view.delete_action.isEnabled() and not view.delete_button.isEnabled()

    view.delete_selected()  # even when asked directly (a stale button, a script)
    asked, _ = answers
    assert asked == [] and running.is_dir()
    assert "still running" in view.error_label.text()


def test_right_click_selects_the_run_under_the_pointer_and_offers_its_actions(view, workspace, monkeypatch):
    older = sft_run(workspace, "20240305-143000-one", "one", T0)
    sft_run(workspace, "20240305-153000-two", "two", T0 + HOUR)
    view.set_workspace(workspace)
    view.refresh_now()
    view.resize(900, 600)
    view.show()
    popped = []
    monkeypatch.setattr(view.menu, "popup", popped.append)  # the offscreen platform cannot show a popup
    pos = view.table.visualRect(view.table.model().index(view.row_of(older), view.column("Name"))).center()
    view.table.customContextMenuRequested.emit(pos)
    assert len(popped) == 1 and view.selected_run().path == older
    offered = {a.text(): a.isEnabled() for a in view.menu.actions()}
    assert offered == {"Open in playground": True, "Evaluate": True, "Export…": True, "Resume": False,
                       "Load config": True, "Rename…": True, "Delete…": True, "Show folder": True}


def test_built_with_only_a_parent_it_waits_for_a_workspace(qtbot):
    from PySide6.QtWidgets import QWidget

    window = QWidget()
    qtbot.addWidget(window)
    view = RunsView(window)
    assert view.parent() is window and view.workspace is None
    assert "No workspace" in view.empty_label.text()


def test_show_folder_opens_the_run_folder(view, workspace, monkeypatch):
    from PySide6.QtGui import QDesktopServices

    run = sft_run(workspace, "20240305-143000-chat", "chat", T0)
    view.set_workspace(workspace)
    view.refresh_now()
    opened = []
    monkeypatch.setattr(QDesktopServices, "openUrl", lambda url: opened.append(url.toLocalFile()) or True)
    assert not view.folder_action.isEnabled()  # nothing selected yet
    view.select_run(run)
    view.folder_button.click()
    assert opened == [str(run)]


def test_a_classification_run_shows_its_metrics_tab(view, workspace):
    from studio.engine.classify.config import ClassifyConfig

    labels = ["negative", "positive"]
    events = [("started", dict(time=T0, total_steps=4, task="classify", problem="single_label", labels=labels))]
    events += [("eval", dict(time=T0 + 2, step=2, eval_loss=0.6, accuracy=0.75, macro_f1=0.7, labels=labels,
                             confusion=[[3, 1], [1, 3]]))]
    clf = make_run(workspace, "20240305-143000-sentiment", ClassifyConfig(name="sentiment", model="/m", dataset="/d"),
                   events)
    sft = sft_run(workspace, "20240305-153000-chat", "chat", T0 + HOUR)
    view.set_workspace(workspace)
    view.refresh_now()
    assert cell(view, clf, "Kind") == "Classification"
    view.table.selectRow(view.row_of(clf))
    assert view.details.isTabVisible(2)
    assert view.metrics.confusion.shown_text() == [["3", "1"], ["1", "3"]]
    view.table.selectRow(view.row_of(sft))
    assert not view.details.isTabVisible(2)  # a chat fine-tune has no classification metrics
