"""The placeholder table ({{name}} → value) on its own and in the Fine-tune dataset panel, typed into as a
user would."""

import json

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QAbstractItemView, QLineEdit

from studio.ui.finetune.dataset_panel import DatasetPanel
from studio.ui.finetune.placeholder_table import PlaceholderTable

LONG = 180_000  # ms: only a bound for a hung analysis; the test machine is shared


def type_value(table, qtbot, row: int, text: str) -> None:
    """Open the value cell's editor, type `text` over what is there, press Enter."""
    item = table.item(row, 1)
    table.setCurrentItem(item)
    table.editItem(item)
    # The editor of an earlier edit may still exist, hidden, until its deferred deletion runs.
    qtbot.waitUntil(lambda: any(e.isVisible() for e in table.findChildren(QLineEdit)))
    editor = next(e for e in table.findChildren(QLineEdit) if e.isVisible())
    editor.selectAll()
    qtbot.keyClick(editor, Qt.Key.Key_Backspace)
    qtbot.keyClicks(editor, text)
    qtbot.keyClick(editor, Qt.Key.Key_Return)
    # the delegate commits Enter through a queued call: the value lands once the editor has closed
    qtbot.waitUntil(lambda: table.state() != QAbstractItemView.State.EditingState)


@pytest.fixture
def table(qtbot):
    table = PlaceholderTable()
    qtbot.addWidget(table)
    table.resize(400, 160)
    table.show()
    qtbot.waitExposed(table)
    return table


def test_the_table_lists_the_names_found_and_keeps_the_values_typed(table, qtbot):
    changes = []
    table.values_changed.connect(lambda: changes.append(dict(table.values())))
    table.set_values({"company": "Acme", "unused_here": "kept"})
    table.set_names({"assistant_name": ["line 1"], "company": ["line 1", "line 2"]})
    assert changes == []  # filling the table is not an edit
    assert [table.item(r, 0).text() for r in range(table.rowCount())] == ["{{assistant_name}}", "{{company}}"]
    assert [table.item(r, 1).text() for r in range(table.rowCount())] == ["", "Acme"]
    assert table.item(1, 0).toolTip() == "In line 1, line 2"
    assert not table.item(0, 0).flags() & Qt.ItemFlag.ItemIsEditable
    type_value(table, qtbot, 0, "Quill")
    assert changes == [{"company": "Acme", "unused_here": "kept", "assistant_name": "Quill"}]
    type_value(table, qtbot, 1, "")  # emptied: no value any more
    assert table.values() == {"unused_here": "kept", "assistant_name": "Quill"}
    table.set_names({"company": ["item 3"]})  # another file: values stay for when the name comes back
    assert table.rowCount() == 1 and table.values()["assistant_name"] == "Quill"


@pytest.fixture
def panel(qtbot):
    panel = DatasetPanel()
    qtbot.addWidget(panel)
    panel.resize(480, 520)
    panel.show()
    yield panel
    panel.shutdown()


def test_the_panel_shows_the_table_only_for_placeholders_and_fills_them(panel, tmp_path, qtbot):
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps([{"instruction": "Hi", "output": "Hello."}]))
    with qtbot.waitSignal(panel.analysis_finished, timeout=LONG):
        panel.load(str(plain))
    assert panel.problem() is None and not panel.placeholder_table.isVisible()

    data = tmp_path / "persona.jsonl"
    data.write_text(json.dumps({"instruction": "Who are you?", "output": "I am {{assistant_name}}."}) + "\n")
    with qtbot.waitSignal(panel.analysis_finished, timeout=LONG):
        panel.load(str(data))
    assert panel.placeholder_table.isVisible() and panel.placeholder_table.names() == ["assistant_name"]
    assert panel.problem() is None  # a warning, never a block
    assert any("{{assistant_name}} (line 1)" in w for w in panel.warnings)
    assert "Warning: " in panel.preview_widget.details_label.text()
    assert "I am {{assistant_name}}." in panel.preview_text(0)

    with qtbot.waitSignal(panel.analysis_finished, timeout=LONG):
        type_value(panel.placeholder_table, qtbot, 0, "Quill")
    assert panel.placeholders() == {"assistant_name": "Quill"}
    assert "I am Quill." in panel.preview_text(0) and panel.warnings == []
    assert panel.placeholder_table.isVisible()  # still listed: its value can be changed again


def test_values_from_a_config_apply_when_the_file_is_loaded(panel, tmp_path, qtbot):
    data = tmp_path / "persona.jsonl"
    data.write_text(json.dumps({"instruction": "Who made you?", "output": "{{company}} did."}) + "\n")
    with qtbot.waitSignal(panel.analysis_finished, timeout=LONG):
        panel.load(str(data), placeholders={"company": "Acme"})
    assert panel.placeholder_table.item(0, 1).text() == "Acme"
    assert "Acme did." in panel.preview_text(0) and panel.warnings == []
