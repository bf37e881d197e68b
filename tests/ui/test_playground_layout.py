"""The playground in a small window, and the examples saved as a dataset for the Fine-tune tab."""

from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QRect, Qt

from studio.engine.data.files import read_records
from studio.engine.data.formats import to_conversations


@pytest.fixture
def tab(qtbot):
    from studio.ui.playground.tab import PlaygroundTab

    tab = PlaygroundTab()
    qtbot.addWidget(tab)
    yield tab
    tab.shutdown()


def shown_whole(widget, ancestor) -> bool:
    """The widget is on screen, all of it inside `ancestor` (nothing cut off at an edge)."""
    rect = QRect(widget.mapTo(ancestor, QPoint(0, 0)), widget.size())
    return not widget.visibleRegion().isEmpty() and ancestor.rect().contains(rect)


def scroll_to(area, widget) -> None:
    """Scroll so that all of `widget` is in view. (QScrollArea.ensureWidgetVisible brings only a spin
    box's text cursor into view, not the whole box.)"""
    at = widget.mapTo(area.widget(), QPoint(widget.width() // 2, widget.height() // 2))
    area.ensureVisible(at.x(), at.y(), widget.width() // 2 + 4, widget.height() // 2 + 4)


# 800x600 is the tab alone; 800x500 about what it gets inside an 800x600 window (menu, tab bar, status bar).
@pytest.mark.parametrize("width, height", [(800, 600), (800, 500)])
def test_the_playground_is_usable_in_a_small_window(tab, qtbot, width, height):
    tab.resize(width, height)
    tab.show()
    qtbot.waitExposed(tab)
    assert tab.minimumSizeHint().width() <= width and tab.minimumSizeHint().height() <= height
    qtbot.waitUntil(lambda: tab.size().width() == width and tab.size().height() == height)
    for widget in (tab.prompt, tab.send_button, tab.stop_button, tab.regen_button, tab.good_button, tab.compare,
                   tab.load_button, tab.run_picker, tab.panes["base"].output, tab.conversation):
        assert shown_whole(widget, tab), widget
    # The left panel scrolls up and down only: its controls are never cut off at the right.
    left = tab.in_context
    assert left.horizontalScrollBar().maximum() == 0
    sampling = tab.sampling
    for widget in (tab.mode, tab.system, tab.examples.add_button, tab.examples.down_button, sampling.greedy,
                   sampling.temperature, sampling.top_k, sampling.max_new_tokens, sampling.min_new_tokens,
                   sampling.stop_strings, sampling.seed, left.dataset.save_button, tab.good_label):
        # Scrolled to (again while the panel's layout settles): then the whole control is in view.
        qtbot.waitUntil(lambda w=widget: scroll_to(left, w) or shown_whole(w, left.viewport()))


def test_examples_are_saved_in_the_workspace_and_offered_to_fine_tune(tab, qtbot, workspace):
    tab.show()
    tab.system.setPlainText("Be brief.")
    tab.examples.add_example("2+2", "4")
    tab.examples.add_example("3+3", "6")
    box = tab.in_context.dataset
    assert not box.use_button.isVisible()
    qtbot.mouseClick(box.save_button, Qt.MouseButton.LeftButton)
    dialog = box.dialog
    qtbot.waitUntil(dialog.isVisible)
    assert Path(dialog.directory().absolutePath()) == workspace / "datasets"
    assert [Path(f) for f in dialog.selectedFiles()] == [workspace / "datasets" / "examples.jsonl"]
    dialog.accept()
    saved = workspace / "datasets" / "examples.jsonl"
    qtbot.waitUntil(box.use_button.isVisible)
    assert "Saved 2 examples to examples.jsonl" in box.saved_label.text()
    convs = to_conversations(read_records(saved))
    assert convs.conversations[1] == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "3+3"},
                                      {"role": "assistant", "content": "6"}]
    with qtbot.waitSignal(tab.use_dataset_in_finetune) as offered:
        qtbot.mouseClick(box.use_button, Qt.MouseButton.LeftButton)
    assert offered.args == [str(saved)]


def test_nothing_to_save_is_said_clearly(tab, qtbot, workspace):
    tab.show()
    assert not tab.save_dataset_file(workspace / "empty.jsonl")
    assert "nothing to save" in tab.error_panel.text() and not tab.in_context.dataset.use_button.isVisible()
