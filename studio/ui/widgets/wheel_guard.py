"""Keep the mouse wheel for scrolling: a spin box, combo box or slider takes the wheel only when it has focus.

Without this, scrolling a long form with the wheel changes whatever editor passes under the pointer (15
notches over the learning-rate box took it from 2e-4 to 1e-8). A guarded widget without focus hands the
wheel to the scroll area around it, and its focus policy drops "wheel focus" so the wheel never focuses it.

Two ways in, which can be combined: `install_wheel_guard(app)` guards every such widget of the application;
`WheelGuard(parent).guard(widget)` guards one widget and the editors inside it (ConfigForm does this for
its editors, so a form is safe even where the application-wide guard is not installed).
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QObject, QPointF, Qt
from PySide6.QtGui import QWheelEvent
from PySide6.QtWidgets import (QAbstractScrollArea, QAbstractSpinBox, QApplication, QComboBox, QSlider,
                               QWidget)

GUARDED_TYPES = (QAbstractSpinBox, QComboBox, QSlider)  # not QScrollBar: a scroll bar is for the wheel


def is_guarded(obj: QObject) -> bool:
    return isinstance(obj, GUARDED_TYPES)


class WheelGuard(QObject):
    """An event filter that passes the wheel of an unfocused guarded widget to its scroll area."""

    def guard(self, widget: QWidget) -> None:
        """Guard `widget` (if it is a spin box, combo box or slider) and every such widget inside it."""
        for w in [widget, *widget.findChildren(QWidget)]:
            if is_guarded(w):
                _drop_wheel_focus(w)
                w.installEventFilter(self)

    def eventFilter(self, obj: QObject, event: QEvent) -> bool:
        kind = event.type()
        if kind == QEvent.Type.Wheel:
            if is_guarded(obj) and not _has_focus(obj):
                _pass_to_scroll_area(obj, event)
                return True
        elif kind == QEvent.Type.Polish and is_guarded(obj):
            _drop_wheel_focus(obj)  # widgets made after install_wheel_guard
        return False


def install_wheel_guard(app: QApplication) -> None:
    """Guard every spin box, combo box and slider of `app`, now and later. Calling it again does nothing."""
    if _installed_guard(app) is not None:
        return
    guard = WheelGuard(app)
    guard.setObjectName("wheel_guard")
    app.installEventFilter(guard)
    for w in app.allWidgets():
        if is_guarded(w):
            _drop_wheel_focus(w)


def uninstall_wheel_guard(app: QApplication) -> None:
    guard = _installed_guard(app)
    if guard is not None:
        app.removeEventFilter(guard)
        guard.setParent(None)
        guard.deleteLater()


def _installed_guard(app: QApplication) -> WheelGuard | None:
    for child in app.children():
        if isinstance(child, WheelGuard) and child.objectName() == "wheel_guard":
            return child
    return None


def _drop_wheel_focus(w: QWidget) -> None:
    # A spontaneous wheel event gives focus to a widget whose policy has the wheel bit *before* any event
    # filter sees it, so the guard alone would let the first notch through.
    if w.focusPolicy() == Qt.FocusPolicy.WheelFocus:
        w.setFocusPolicy(Qt.FocusPolicy.StrongFocus)


def _has_focus(w: QWidget) -> bool:
    focused = QApplication.focusWidget()
    return w.hasFocus() or (focused is not None and w.isAncestorOf(focused))


def _pass_to_scroll_area(w: QWidget, event: QWheelEvent) -> None:
    """Send the wheel to the nearest scroll area around `w`. Qt itself would pass an ignored event on only
    when it came from the window system, and through any other wheel-hungry widget on the way."""
    area = w.parentWidget()
    while area is not None and not isinstance(area, QAbstractScrollArea):
        area = area.parentWidget()
    if area is None or not area.viewport().isAncestorOf(w):
        event.ignore()  # no scroll area: let Qt offer the event to the parents
        return
    viewport = area.viewport()
    position = QPointF(w.mapTo(viewport, event.position().toPoint()))
    forwarded = QWheelEvent(position, event.globalPosition(), event.pixelDelta(), event.angleDelta(),
                            event.buttons(), event.modifiers(), event.phase(), event.inverted(), event.source())
    QApplication.sendEvent(viewport, forwarded)
    event.accept()
