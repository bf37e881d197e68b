"""The mouse wheel scrolls a form; spin boxes, combo boxes and sliders take it only when they have focus."""

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import (QApplication, QComboBox, QLineEdit, QScrollArea, QSlider, QSpinBox, QVBoxLayout,
                               QWidget)

from studio.engine.config import FineTuneConfig
from studio.ui.widgets.config_form import ConfigForm
from studio.ui.widgets.wheel_guard import WheelGuard, install_wheel_guard, uninstall_wheel_guard

NOTCH = 120  # angle delta of one wheel notch, in eighths of a degree


def turn_wheel(widget: QWidget, notches: int) -> None:
    """Send `notches` wheel events (negative = towards the user, i.e. scroll down) at the widget's centre."""
    centre = QPointF(widget.rect().center())
    for _ in range(abs(notches)):
        event = QWheelEvent(centre, QPointF(widget.mapToGlobal(centre.toPoint())), QPoint(),
                            QPoint(0, NOTCH if notches > 0 else -NOTCH), Qt.MouseButton.NoButton,
                            Qt.KeyboardModifier.NoModifier, Qt.ScrollPhase.NoScrollPhase, False)
        QApplication.sendEvent(widget, event)


def in_scroll_area(qtbot, content: QWidget, height: int = 220) -> QScrollArea:
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setWidget(content)
    qtbot.addWidget(area)
    area.resize(420, height)  # shorter than its content, so it can scroll
    area.show()
    qtbot.waitExposed(area)
    area.activateWindow()
    qtbot.waitUntil(area.isActiveWindow)
    return area


def focus(qtbot, widget: QWidget) -> None:
    widget.setFocus(Qt.FocusReason.OtherFocusReason)
    qtbot.waitUntil(widget.hasFocus)


@pytest.fixture
def form_in_scroll_area(qtbot):
    form = ConfigForm(FineTuneConfig)
    area = in_scroll_area(qtbot, form)
    focus(qtbot, form.editor("name"))  # somewhere that is not a spin box or a combo box
    return form, area


def test_unfocused_learning_rate_box_ignores_the_wheel_and_the_form_scrolls(qtbot, form_in_scroll_area):
    form, area = form_in_scroll_area
    editor = form.editor("learning_rate")
    bar = area.verticalScrollBar()
    assert bar.maximum() > 0
    bar.setValue(0)
    assert not editor.hasFocus()

    turn_wheel(editor, -15)
    assert form.value("learning_rate") == pytest.approx(2e-4)
    assert bar.value() > 0  # the wheel went to the scroll area instead

    focus(qtbot, editor)
    turn_wheel(editor, 1)
    assert form.value("learning_rate") == pytest.approx(4e-4)  # one notch up doubles a learning rate


def test_unfocused_combo_and_int_boxes_of_the_form_keep_their_values(qtbot, form_in_scroll_area):
    form, _ = form_in_scroll_area
    for name in ("format", "batch_size", "max_length"):
        before = form.value(name)
        turn_wheel(form.editor(name), -3)
        turn_wheel(form.editor(name), 2)
        assert form.value(name) == before, name
    focus(qtbot, form.editor("batch_size"))
    turn_wheel(form.editor("batch_size"), 1)
    assert form.value("batch_size") == 5


def test_the_wheel_never_gives_focus_to_a_form_editor(form_in_scroll_area):
    form, _ = form_in_scroll_area
    for name in ("learning_rate", "batch_size", "format", "scheduler"):
        assert form.editor(name).focusPolicy() == Qt.FocusPolicy.StrongFocus, name


def test_a_combo_box_put_into_the_form_is_guarded_too(qtbot):
    form = ConfigForm(FineTuneConfig, exclude=("method",))
    method = QComboBox()
    method.addItems(["LoRA", "QLoRA", "Full"])
    form.insert_row("Method", "Method", method)
    area = in_scroll_area(qtbot, form)  # kept: a top-level widget without a reference is deleted
    focus(qtbot, form.editor("name"))
    turn_wheel(method, -2)
    assert method.currentIndex() == 0
    assert method.focusPolicy() == Qt.FocusPolicy.StrongFocus
    assert area.verticalScrollBar().value() > 0


@pytest.fixture
def app_wide_guard(qapp):
    install_wheel_guard(qapp)
    yield qapp
    uninstall_wheel_guard(qapp)


def test_the_application_wide_guard_covers_widgets_made_before_and_after(qtbot, qapp):
    uninstall_wheel_guard(qapp)  # a main window of an earlier test may have installed it already
    made_before = QSpinBox()
    qtbot.addWidget(made_before)
    try:
        install_wheel_guard(qapp)
        install_wheel_guard(qapp)  # a second call changes nothing
        assert len([c for c in qapp.children() if isinstance(c, WheelGuard)]) == 1
        assert made_before.focusPolicy() == Qt.FocusPolicy.StrongFocus

        content = QWidget()
        layout = QVBoxLayout(content)
        text = QLineEdit()
        spin, combo, slider = QSpinBox(), QComboBox(), QSlider(Qt.Orientation.Horizontal)
        spin.setValue(50)
        combo.addItems([str(i) for i in range(10)])
        combo.setCurrentIndex(5)
        slider.setValue(50)
        for w in (text, spin, combo, slider):
            layout.addWidget(w)
        layout.addSpacing(1500)
        area = in_scroll_area(qtbot, content)
        focus(qtbot, text)
        bar = area.verticalScrollBar()

        for w in (spin, combo, slider):
            assert w.focusPolicy() != Qt.FocusPolicy.WheelFocus
            turn_wheel(w, -2)
        assert (spin.value(), combo.currentIndex(), slider.value()) == (50, 5, 50)
        assert bar.value() > 0

        focus(qtbot, spin)
        turn_wheel(spin, 1)
        assert spin.value() == 51
    finally:
        uninstall_wheel_guard(qapp)
    assert not [c for c in qapp.children() if isinstance(c, WheelGuard)]


def test_scroll_bars_still_take_the_wheel(qtbot, app_wide_guard):
    content = QWidget()
    QVBoxLayout(content).addSpacing(1500)
    area = in_scroll_area(qtbot, content)
    bar = area.verticalScrollBar()
    turn_wheel(bar, -1)
    assert bar.value() > 0
