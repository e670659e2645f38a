"""The first-launch welcome: a card over the graph saying what the app shows and how to start.

``show_welcome(graph, settings, dismiss_on=[...])`` puts a ``WelcomeOverlay`` over ``graph`` (over
the whole window when the graph is too small for its card, as in an 800 × 600 window) unless the
user has dismissed it before (``SEEN_KEY`` in the settings), and returns it (or None). It goes
away, for good, on its button, on Esc or Enter, on a click anywhere on it, or when one of the
``dismiss_on`` actions is used (Space plays, → steps: the user has started); a window closed
while it shows brings it back next time.
"""
from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from . import theme as T

SEEN_KEY = "welcome/seen"
CARD_WIDTH = 460

POINTS = (
    ("The graph", "in the middle is one training iteration of a PyTorch loop, node by node: the forward "
                  "pass, the loss, <code>loss.backward()</code> sending gradients back into "
                  "<code>.grad</code>, and <code>optimizer.step()</code>."),
    ("Space", "plays the iteration, <b>→</b> and <b>←</b> step one event, <b>Page Down</b> goes on to "
              "the next iteration. Click a node to inspect its numbers."),
    ("The Lesson panel", "on the right says what this lesson is about; its <b>Next</b> button "
                         "(<b>Alt+→</b>) walks you through a guided tour."),
    ("The plots", "below show every step of the run. <b>Help</b> lists every key and the scenario "
                  "file format; <b>File ▸ Open bundled scenario</b> has more lessons."),
)


def seen(settings: QtCore.QSettings) -> bool:
    value = settings.value(SEEN_KEY, False)
    return value in (True, "true", "1", 1)


class WelcomeOverlay(QtWidgets.QWidget):
    """A veil over its parent (the graph) with a card in the middle; see the module docstring."""

    dismissed = QtCore.Signal()

    def __init__(self, anchor: QtWidgets.QWidget, settings: QtCore.QSettings):
        super().__init__(anchor.window())      # a child of the window: it may cover more than the graph
        self.setObjectName("welcomeOverlay")
        self.anchor = anchor
        self._settings = settings
        self._gone = False                     # dismissed: a deferred _place must not touch it
        self.setAttribute(QtCore.Qt.WidgetAttribute.WA_StyledBackground, True)
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.StrongFocus)
        self.card = QtWidgets.QFrame(self)
        self.card.setObjectName("welcomeCard")
        self.heading = QtWidgets.QLabel("Welcome to GradViz")
        self.heading.setObjectName("welcomeHeading")
        self.body = QtWidgets.QLabel(self._body_html())
        self.body.setObjectName("welcomeBody")
        self.body.setWordWrap(True)
        self.body.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.button = QtWidgets.QPushButton("Start exploring")
        self.button.setDefault(True)
        self.button.clicked.connect(self.dismiss)
        hint = QtWidgets.QLabel("Esc or a click closes this; it will not show again.")
        hint.setObjectName("welcomeHint")
        row = QtWidgets.QHBoxLayout()
        row.addWidget(hint, 1)
        row.addWidget(self.button)
        layout = QtWidgets.QVBoxLayout(self.card)
        layout.setContentsMargins(22, 18, 22, 16)
        layout.setSpacing(10)
        layout.addWidget(self.heading)
        layout.addWidget(self.body)
        layout.addLayout(row)
        self._hint = hint
        self._restyle()
        T.notifier.changed.connect(self._restyle)
        anchor.installEventFilter(self)
        self.parentWidget().installEventFilter(self)
        self._place()

    @staticmethod
    def _body_html() -> str:
        return "".join(f"<p style='margin-bottom: 6px;'><b>{head}</b> {text}</p>" for head, text in POINTS)

    def _restyle(self) -> None:
        veil = QtGui.QColor(T.BACKGROUND)
        self.setStyleSheet(
            f"QWidget#welcomeOverlay {{ background: rgba({veil.red()}, {veil.green()}, {veil.blue()}, 200); }}"
            f"QFrame#welcomeCard {{ background: {T.PANEL}; border: 1px solid {T.PANEL_BORDER}; "
            f"border-radius: 10px; }}"
            f"QLabel {{ color: {T.TEXT}; background: transparent; }}"
            f"QLabel#welcomeHint {{ color: {T.TEXT_MUTED}; }}")
        self.heading.setFont(T.ui_font(15, bold=True))
        self.body.setFont(T.ui_font(10))
        self._hint.setFont(T.ui_font(8.5))

    def _card_height(self, width: int) -> int:
        layout = self.card.layout()
        return layout.heightForWidth(width) if layout.hasHeightForWidth() else self.card.sizeHint().height()

    def _place(self) -> None:
        """Over the graph when the card fits there, else over the window below its menu bar."""
        if self._gone:
            return
        window, anchor = self.parentWidget(), self.anchor
        area = QtCore.QRect(anchor.mapTo(window, QtCore.QPoint(0, 0)), anchor.size())
        width = min(CARD_WIDTH, max(area.width() - 32, 200))
        if area.width() < width + 16 or area.height() < self._card_height(width) + 16:
            bar = window.menuWidget() if isinstance(window, QtWidgets.QMainWindow) else None
            top = bar.geometry().bottom() + 1 if bar is not None and bar.isVisible() else 0
            area = QtCore.QRect(0, top, window.width(), window.height() - top)
            width = min(CARD_WIDTH, max(area.width() - 32, 200))
        self.setGeometry(area)
        self.card.setFixedWidth(width)
        self.card.setFixedHeight(min(max(self._card_height(width), self.card.minimumSizeHint().height()),
                                     max(area.height() - 16, 120)))
        self.card.move(max((area.width() - width) // 2, 0), max((area.height() - self.card.height()) // 2, 0))
        self.raise_()

    def eventFilter(self, watched, event) -> bool:
        if event.type() in (QtCore.QEvent.Type.Resize, QtCore.QEvent.Type.Move) and (
                watched is self.anchor or watched is self.parentWidget()):
            QtCore.QTimer.singleShot(0, self._place)      # after the docks have taken their places
        return False

    def keyPressEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        if event.key() in (QtCore.Qt.Key.Key_Escape, QtCore.Qt.Key.Key_Return, QtCore.Qt.Key.Key_Enter):
            self.dismiss()
            return
        super().keyPressEvent(event)

    def mousePressEvent(self, event) -> None:  # noqa: N802
        self.dismiss()

    def dismiss(self) -> None:
        """Close it and remember that: it never shows again for this user."""
        if self._gone:
            return
        self._gone = True
        self._settings.setValue(SEEN_KEY, True)
        self._settings.sync()
        self.anchor.removeEventFilter(self)
        self.parentWidget().removeEventFilter(self)
        self.hide()
        self.dismissed.emit()
        self.deleteLater()


def show_welcome(graph: QtWidgets.QWidget, settings: QtCore.QSettings, dismiss_on=()) -> WelcomeOverlay | None:
    """The welcome over ``graph`` on a first launch (see the module docstring), else None."""
    if seen(settings):
        return None
    overlay = WelcomeOverlay(graph, settings)
    for action in dismiss_on:
        action.triggered.connect(overlay.dismiss)
    overlay.show()
    overlay._place()                                  # again, now that its card is polished
    QtCore.QTimer.singleShot(0, overlay._place)       # and once the window has laid out its docks
    overlay.setFocus(QtCore.Qt.FocusReason.OtherFocusReason)
    return overlay
