"""The window's keys reach its actions wherever focus is, not only when Qt's shortcut map matches.

Qt tries a window's shortcuts only while that window is the active one and the focused widget does
not claim the key: right after a dialog closes (before the window is active again), or with focus in
a read-only text box (which claims PageDown, End and the arrows to scroll), the key went to the
focused widget instead, and the graph scrolled out of view on PageDown while the iteration stayed.

``KeyRouter`` watches the key presses that reach a widget of its window (an event filter on the
focused widget and on the window: a key press arrives only when no shortcut took it) and triggers
the action bound to the key:
the player's keys anywhere except in a text field (the code editor, a line edit, a spin box, where
they edit text), the window's Ctrl shortcuts (Open, Open bundled, Save, Run…) everywhere. It also
gives the keyboard back to the window when one of its dialogs closes (the focus leaves it).
"""
from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

QEvent = QtCore.QEvent
Mod = QtCore.Qt.KeyboardModifier


def is_text_field(widget: QtWidgets.QWidget | None) -> bool:
    """True for a widget where keys type or move a text cursor: editable text, line edits, spin boxes,
    editable combo boxes (checked up two parents: a spin box's line edit, an editor's viewport)."""
    for _ in range(3):
        if widget is None:
            return False
        if isinstance(widget, (QtWidgets.QLineEdit, QtWidgets.QAbstractSpinBox)):
            return not (isinstance(widget, QtWidgets.QLineEdit) and widget.isReadOnly())
        if isinstance(widget, (QtWidgets.QPlainTextEdit, QtWidgets.QTextEdit)):
            return not widget.isReadOnly()
        if isinstance(widget, QtWidgets.QComboBox):
            return widget.isEditable()
        widget = widget.parentWidget()
    return False


def combination(event: QtGui.QKeyEvent) -> QtCore.QKeyCombination:
    mods = event.modifiers() & ~Mod.KeypadModifier
    return QtCore.QKeyCombination(mods, QtCore.Qt.Key(event.key()))


class KeyRouter(QtCore.QObject):
    """``KeyRouter(window, player_actions, window_actions)``: see the module docstring. A child of the
    window: it stops filtering when the window goes."""

    focusReturned = QtCore.Signal()

    def __init__(self, window: QtWidgets.QWidget, player_actions, window_actions):
        super().__init__(window)
        self._window = window
        self._player = self._keys(player_actions)
        self._global = self._keys(window_actions)
        self._attached = False
        self._watched: QtWidgets.QWidget | None = None
        self._dialog: QtWidgets.QDialog | None = None
        self.attach()

    def attach(self) -> None:
        """Watch the keys (again): the window is open. The router filters the events of the widget
        that has the focus (a key press goes there first) and of the window (when nothing has it),
        not the whole application's: an application-wide Python filter is called for every event of
        every object (each paint, timer, mouse move) and made building and repainting widgets 30-40 %
        slower."""
        if self._attached:
            return
        self._attached = True
        QtWidgets.QApplication.instance().focusChanged.connect(self._on_focus_changed)
        self._window.installEventFilter(self)
        self._watch(QtWidgets.QApplication.focusWidget())

    def detach(self) -> None:
        """Stop watching: the window is closed."""
        if not self._attached:
            return
        self._attached = False
        app = QtWidgets.QApplication.instance()
        if app is not None:
            try:
                app.focusChanged.disconnect(self._on_focus_changed)
            except (RuntimeError, TypeError):
                pass
        self._watch(None)
        try:
            self._window.removeEventFilter(self)
        except RuntimeError:                     # (the window's C++ object is gone)
            pass

    def _watch(self, widget) -> None:
        old, self._watched = self._watched, None
        if old is not None:
            try:
                old.removeEventFilter(self)
            except RuntimeError:                 # deleted meanwhile
                pass
        if widget is not None and self._attached and self._mine(widget):
            widget.installEventFilter(self)
            self._watched = widget

    def _on_focus_changed(self, old, new) -> None:
        self._watch(new)
        self._watch_dialog(new)
        # the focus left one of this window's dialogs for another window (or none): it closed
        dialog = old.window() if old is not None else None
        if (isinstance(dialog, QtWidgets.QDialog) and dialog.parentWidget() is not None
                and self._mine(dialog.parentWidget()) and (new is None or new.window() is not dialog)):
            QtCore.QTimer.singleShot(0, self.give_back_focus)
        # or it came back to one that has closed already: the window system's activation of a dialog
        # closed at once arrives after its closing (seen under load), and would leave the keys to it
        hidden = new.window() if new is not None else None
        if (isinstance(hidden, QtWidgets.QDialog) and not hidden.isVisible()
                and hidden.parentWidget() is not None and self._mine(hidden.parentWidget())):
            QtCore.QTimer.singleShot(0, self.give_back_focus)

    def _watch_dialog(self, widget) -> None:
        """Focus entered one of this window's dialogs: watch it close. The focus does not always leave
        a closed dialog (Qt can leave its last focused widget as the application's focus widget until
        another window is activated), and then no focusChanged says it closed."""
        dialog = widget.window() if widget is not None else None
        if (isinstance(dialog, QtWidgets.QDialog) and dialog is not self._dialog
                and dialog.parentWidget() is not None and self._mine(dialog.parentWidget())):
            self._dialog = dialog
            dialog.installEventFilter(self)

    @staticmethod
    def _keys(actions) -> dict:
        keys = {}
        for action in actions:
            for sequence in action.shortcuts():
                if sequence.count() == 1:
                    keys[sequence[0]] = action
        return keys

    def action_for(self, widget: QtWidgets.QWidget | None, combo: QtCore.QKeyCombination) -> QtGui.QAction | None:
        """The action a key press ``combo`` on ``widget`` triggers, or None (the widget keeps the key)."""
        action = self._global.get(combo)
        if action is None and not is_text_field(widget):
            action = self._player.get(combo)
        return action if action is not None and action.isEnabled() else None

    def _mine(self, widget: QtWidgets.QWidget) -> bool:
        top = widget.window()
        if top is self._window:
            return True
        # a floating dock of this window is its own top-level widget
        return isinstance(top, QtWidgets.QDockWidget) and top.parentWidget() is self._window

    def eventFilter(self, obj, event) -> bool:
        kind = event.type()
        if kind == QEvent.Type.Hide and obj is self._dialog:
            obj.removeEventFilter(self)
            self._dialog = None
            QtCore.QTimer.singleShot(0, self.give_back_focus)
            return False
        if kind == QEvent.Type.KeyPress:
            if not isinstance(obj, QtWidgets.QWidget) or not self._mine(obj):
                return False
            if QtWidgets.QApplication.activeModalWidget() is not None or QtWidgets.QApplication.activePopupWidget():
                return False
            action = self.action_for(obj, combination(event))
            if action is None:
                return False
            action.trigger()
            return True
        return False

    @QtCore.Slot()
    def give_back_focus(self) -> None:
        """After a dialog: the window is active again and a widget of it has the focus (the one that
        had it, else the centre widget), so that the next key press finds the window's shortcuts."""
        window = self._window
        if not window.isVisible() or QtWidgets.QApplication.activeModalWidget() is not None:
            return
        window.activateWindow()
        focus = QtWidgets.QApplication.focusWidget()
        if focus is None or not self._mine(focus):
            central = window.centralWidget() if isinstance(window, QtWidgets.QMainWindow) else None
            (central or window).setFocus(QtCore.Qt.FocusReason.ActiveWindowFocusReason)
        self.focusReturned.emit()
