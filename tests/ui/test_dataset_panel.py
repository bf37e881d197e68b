"""The Fine-tune tab's dataset panel, driven as a user would: real files, the real starter model, real threads."""

import json
import threading

import pytest
from PySide6.QtWidgets import QLineEdit, QVBoxLayout, QWidget

from studio.engine.data.analysis import NOT_USED, analyse_dataset
from studio.resources import starter_model_dir
from studio.ui.finetune import dataset_panel as panel_module
from studio.ui.finetune.analysis_thread import DatasetAnalysisThread
from studio.ui.finetune.column_mapping import KEEP_NAME
from studio.ui.finetune.dataset_panel import DatasetPanel
from tests.conftest import QA_PAIRS, shared_dataset

LONG = 180_000  # ms: only a bound for a hung analysis; the test machine is shared
STARTER = str(starter_model_dir())
TOO_LONG_FOR_STARTER = ("Max length 512 is above this model's context of 128 tokens; set it to 128 or less.")


@pytest.fixture
def panel(qtbot):
    panel = DatasetPanel()
    qtbot.addWidget(panel)
    panel.resize(480, 420)
    panel.show()
    yield panel
    panel.shutdown()


@pytest.fixture
def qa_json(tmp_path):
    path = tmp_path / "qa.json"
    path.write_text(json.dumps([{"instruction": q, "input": "", "output": a} for q, a in QA_PAIRS]))
    return path


@pytest.fixture
def counted_threads(monkeypatch):
    """Every analysis thread the panel starts, and the most that ever ran at once."""
    record = {"runs": 0, "running": 0, "most": 0}
    lock = threading.Lock()

    class CountedThread(DatasetAnalysisThread):
        def run(self):
            with lock:
                record["runs"] += 1
                record["running"] += 1
                record["most"] = max(record["most"], record["running"])
            try:
                super().run()
            finally:
                with lock:
                    record["running"] -= 1

    monkeypatch.setattr(panel_module, "DatasetAnalysisThread", CountedThread)
    return record


def load_and_wait(panel, qtbot, path, **kwargs):
    with qtbot.waitSignal(panel.analysis_finished, timeout=LONG):
        panel.load(str(path), **kwargs)


def test_a_fixed_error_stops_blocking_without_reopening_the_file(panel, qa_json, qtbot):
    panel.set_model(STARTER)
    panel.set_max_length(128)
    load_and_wait(panel, qtbot, qa_json)
    assert panel.problem() is None and panel.summary is not None
    with qtbot.waitSignal(panel.analysis_finished, timeout=LONG):
        panel.set_max_length(10)
    assert panel.last_error is not None and "no example is left" in panel.problem()
    assert panel.error_panel.isVisible()
    validity = []
    panel.validity_changed.connect(validity.append)
    with qtbot.waitSignal(panel.analysis_finished, timeout=LONG):
        panel.set_max_length(128)
    assert panel.last_error is None and panel.problem() is None and validity == [True]
    assert not panel.error_panel.isVisible() and panel.summary is not None


def write_rows_with_many_problems(path):
    good = [{"instruction": q, "input": "", "output": a} for q, a in QA_PAIRS]
    bad = [{"instruction": "a", "output": ""}, {"instruction": None, "output": "b"},
           {"instruction": ["a"], "output": "b"}, {"instruction": "a", "output": "b", "history": "oops"},
           {"instruction": "a", "output": None}, {"instruction": "", "output": "b"}]
    path.write_text(json.dumps(good + bad))
    return path


@pytest.fixture
def panel_in_a_form(qtbot):
    """The panel in a narrow column with a field below it, as in the tab."""
    host = QWidget()
    qtbot.addWidget(host)
    layout = QVBoxLayout(host)
    panel = DatasetPanel()
    layout.addWidget(panel)
    field_below = QLineEdit()
    layout.addWidget(field_below)
    layout.addStretch(1)
    host.resize(420, 900)
    host.show()
    qtbot.waitExposed(host)
    yield host, panel, field_below
    panel.shutdown()


def test_fields_stay_put_when_the_analysis_reports(panel_in_a_form, tmp_path, qtbot):
    host, panel, field_below = panel_in_a_form

    def geometry():
        host.layout().activate()
        return panel.sizeHint().height(), panel.minimumSizeHint().height(), panel.height(), field_below.y()

    before = geometry()
    panel.set_model(STARTER)
    panel.set_max_length(128)
    load_and_wait(panel, qtbot, write_rows_with_many_problems(tmp_path / "mixed.json"))
    assert panel.summary is not None and len(panel.summary.dropped) >= 5  # a long summary
    assert "Dropped" in panel.preview_widget.details_label.text()  # told in full, in the preview
    assert geometry() == before
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"instruction": "a", "output": "b"}\n{"instruction": \n')
    load_and_wait(panel, qtbot, broken)
    assert panel.error_panel.isVisible() and "line 2" in panel.error_panel.message.text()
    assert geometry() == before


def test_mapping_offers_only_the_columns_the_format_reads(panel, tmp_path, qtbot):
    data = tmp_path / "qa.csv"
    data.write_text("question,answer,notes\nWhat is 2+2?,Four.,easy\nWhat is red?,A colour.,hard\n")
    load_and_wait(panel, qtbot, data)
    assert panel.error_panel.isVisible() and "column mapping" in panel.problem()
    combos = [panel.mapping_table.cellWidget(r, 1) for r in range(3)]
    assert not any(c.isEditable() for c in combos)
    choices = [combos[0].itemText(i) for i in range(combos[0].count())]
    assert choices[:2] == [KEEP_NAME, NOT_USED] and {"instruction", "output", "messages", "prompt"} <= set(choices)
    assert "10" not in choices
    with qtbot.waitSignal(panel.analysis_finished, timeout=LONG):
        combos[0].setCurrentIndex(combos[0].findText("instruction"))
        combos[1].setCurrentIndex(combos[1].findText("output"))
        combos[2].setCurrentIndex(combos[2].findText(NOT_USED))
    assert panel.problem() is None and panel.detected_label.text() == "detected: alpaca"
    assert panel.mapping() == {"question": "instruction", "answer": "output", "notes": NOT_USED}
    with qtbot.waitSignal(panel.analysis_finished, timeout=LONG):
        panel.format_combo.setCurrentIndex(panel.format_combo.findData("prompt_completion"))
        choices = [combos[2].itemText(i) for i in range(combos[2].count())]
        assert choices == [KEEP_NAME, NOT_USED, "prompt", "completion", "system"]
    assert "missing column(s) prompt, completion" in panel.problem()


def test_a_burst_of_changes_runs_one_analysis_of_the_final_settings(panel, tmp_path, counted_threads, qtbot):
    data = tmp_path / "with-input.json"
    data.write_text(json.dumps([{"instruction": q, "input": "Some context that makes the prompt longer. " * 3,
                                 "output": a} for q, a in QA_PAIRS]))
    panel.set_model(STARTER)
    panel.set_max_length(128)
    load_and_wait(panel, qtbot, data)
    started = []
    panel.analysis_started.connect(lambda: started.append(1))
    runs_before = counted_threads["runs"]
    input_combo = panel.mapping_table.cellWidget(panel.columns.index("input"), 1)
    with qtbot.waitSignal(panel.analysis_finished, timeout=LONG):
        for i in range(10):  # no event loop runs between them: as fast as a user can type
            panel.set_max_length(20 + i * 5)
            panel.format_combo.setCurrentIndex(panel.format_combo.findData("alpaca" if i % 2 else "auto"))
            input_combo.setCurrentIndex(input_combo.findText(NOT_USED if i % 2 else KEEP_NAME))
    qtbot.waitUntil(lambda: counted_threads["running"] == 0, timeout=LONG)
    assert len(started) <= 2 and counted_threads["runs"] - runs_before <= 2
    assert counted_threads["most"] == 1
    assert (panel.format(), panel.mapping()) == ("alpaca", {"input": NOT_USED})
    final = analyse_dataset(data, "alpaca", {"input": NOT_USED}, STARTER, 65).rendered.summary
    before_last = analyse_dataset(data, "auto", {}, STARTER, 60).rendered.summary
    assert final != before_last  # the settings matter, so equality below means the last ones were used
    assert panel.summary == final


def test_a_superseded_analysis_is_dropped_and_never_overlaps(panel, qa_json, counted_threads, qtbot):
    finished = []
    panel.analysis_finished.connect(lambda: finished.append(panel.path()))
    panel.set_model(STARTER)
    panel.set_max_length(128)
    panel.load(str(shared_dataset("alpaca_en_demo.json")))  # a thousand rows to tokenize
    with qtbot.waitSignal(panel.analysis_finished, timeout=LONG):
        panel.load(str(qa_json))
    qtbot.waitUntil(lambda: counted_threads["running"] == 0, timeout=LONG)
    assert finished == [str(qa_json)]
    assert counted_threads["most"] == 1
    assert panel.summary.rows == len(QA_PAIRS) and panel.preview_table.rowCount() == len(QA_PAIRS)


def test_an_unreadable_file_clears_what_was_shown_about_the_previous_one(panel, qa_json, tmp_path, qtbot):
    load_and_wait(panel, qtbot, qa_json)
    assert panel.detected_label.text() == "detected: alpaca" and panel.mapping_table.rowCount() == 3
    picture = tmp_path / "picture.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR")
    with qtbot.waitSignal(panel.analysis_finished, timeout=LONG):
        panel.load(str(picture))
        assert panel.detected_label.text() == "" and panel.preview_table.rowCount() == 0  # gone at once
    assert panel.detected_label.text() == "" and panel.columns == [] and panel.mapping_table.rowCount() == 0
    assert panel.preview_table.rowCount() == 0 and panel.summary is None and panel.summary_label.text() == ""
    assert str(picture) in panel.error_panel.message.text() and str(qa_json) not in panel.error_panel.text()
    assert panel.problem() == panel.last_error.message
    binary = tmp_path / "binary.json"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    load_and_wait(panel, qtbot, binary)
    assert str(binary) in panel.error_panel.message.text() and str(picture) not in panel.error_panel.text()


@pytest.mark.parametrize("name, content, expected", [
    ("deep.json", b"[" * 100_000 + b"]" * 100_000, "nested too deeply"),
    ("noise.jsonl", bytes(range(256)) * 64, "binary"),
])
def test_odd_input_gives_a_message_naming_the_file(panel, tmp_path, qtbot, name, content, expected):
    path = tmp_path / name
    path.write_bytes(content)
    panel.set_model(STARTER)
    load_and_wait(panel, qtbot, path)
    assert panel.error_panel.isVisible() and expected in panel.error_panel.message.text()
    assert str(path) in panel.problem()


def test_a_max_length_above_the_model_context_blocks_until_lowered(panel, qa_json, qtbot):
    panel.set_model(STARTER)
    panel.set_max_length(512)
    load_and_wait(panel, qtbot, qa_json)
    assert panel.last_error is None and panel.summary is not None  # the data itself is fine
    assert panel.problem() == TOO_LONG_FOR_STARTER
    assert panel.error_panel.isVisible() and TOO_LONG_FOR_STARTER in panel.error_panel.message.text()
    with qtbot.waitSignal(panel.validity_changed, timeout=LONG, check_params_cb=lambda valid: valid):
        panel.set_max_length(128)
    assert panel.problem() is None and not panel.error_panel.isVisible()


def test_problem_follows_the_panel_from_empty_to_checked(panel, qa_json, qtbot):
    validity = []
    panel.validity_changed.connect(validity.append)
    assert panel.problem() == "Open a dataset first." and not panel.busy()
    with qtbot.waitSignal(panel.analysis_finished, timeout=LONG):
        panel.load(str(qa_json))
        assert panel.busy() and panel.problem() == "The dataset is still being checked."
    assert panel.problem() is None and not panel.busy() and validity == [True]
    with qtbot.waitSignal(panel.analysis_finished, timeout=LONG):
        panel.set_model(STARTER)  # 512 tokens on a 128-token model
    assert validity == [True, False] and panel.problem() == TOO_LONG_FOR_STARTER


def test_a_saved_mapping_is_shown_and_kept_with_its_role_tags(panel, tmp_path, qtbot):
    data = tmp_path / "chats.jsonl"
    data.write_text(json.dumps({"dialog": [{"from": "human", "value": "Hi"}, {"from": "bot2", "value": "Hello"}]})
                    + "\n")
    mapping = {"dialog": "conversations", "role:bot2": "assistant"}
    load_and_wait(panel, qtbot, data, fmt="sharegpt", mapping=mapping)
    assert panel.problem() is None and panel.format() == "sharegpt"
    assert panel.mapping_table.cellWidget(0, 1).currentText() == "conversations"
    assert panel.mapping() == mapping
    assert "Hello" in panel.preview_text(0)
