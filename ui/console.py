"""The console pane: what a script printed, GradViz's notes about it, and its errors, in order.

``Console(document)`` follows the Document's ``output`` (printed text as it comes, notes such as
"this script asked for cuda…", the run's start and end) and ``scriptFailed`` (the one-line error,
shown in red). It keeps the last ``MAX_BLOCKS`` lines: a script printing in a loop cannot grow
the window's memory without bound."""
from __future__ import annotations

import html

from PySide6 import QtCore, QtGui, QtWidgets

from . import theme as T

MAX_BLOCKS = 5000
# GradViz's own lines, in the light and the dark theme; the constants are the current theme's
LIGHT_COLOURS = {"ERROR_COLOUR": "#b91c1c", "NOTE_COLOUR": "#6b7280", "RUN_COLOUR": "#1d4ed8"}
DARK_COLOURS = {"ERROR_COLOUR": "#f87171", "NOTE_COLOUR": "#9ca3af", "RUN_COLOUR": "#82b8ff"}
ERROR_COLOUR, NOTE_COLOUR, RUN_COLOUR = LIGHT_COLOURS.values()


def use_colours(dark: bool) -> dict[str, str]:
    """Re-bind the colours to the dark or the light set; returns {other set's colour: this set's}."""
    new, old = (DARK_COLOURS, LIGHT_COLOURS) if dark else (LIGHT_COLOURS, DARK_COLOURS)
    globals().update(new)
    return {QtGui.QColor(old[name]).name(): colour for name, colour in new.items()}


use_colours(T.is_dark())


class Console(QtWidgets.QWidget):
    def __init__(self, document, parent=None):
        super().__init__(parent)
        self.document = document
        use_colours(T.is_dark())            # the theme may have switched while no console existed
        self.text = QtWidgets.QPlainTextEdit()
        self.text.setReadOnly(True)
        self.text.setMaximumBlockCount(MAX_BLOCKS)
        self.text.setFont(T.mono_font(8.5))
        self.text.setLineWrapMode(QtWidgets.QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.text.setFocusPolicy(QtCore.Qt.FocusPolicy.ClickFocus)
        self.text.setPlaceholderText("A script's printed output appears here.")
        clear = QtWidgets.QToolButton()
        clear.setText("Clear")
        clear.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        clear.clicked.connect(self.clear)
        self.clear_button = clear
        bar = QtWidgets.QHBoxLayout()
        bar.setContentsMargins(6, 2, 4, 2)
        bar.addStretch(1)
        bar.addWidget(clear)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(bar)
        layout.addWidget(self.text, 1)
        self._partial = False               # the last printed text did not end its line
        self._own_line = False              # the last block is one of GradViz's lines (▶, ✓, notes)
        T.notifier.changed.connect(self._on_theme_changed)
        document.output.connect(self.write)
        document.scriptFailed.connect(lambda message, _line: self.write_line(message, ERROR_COLOUR))

    def write(self, text: str) -> None:
        """Printed text as it comes (may end mid-line); GradViz's own lines (▶, ✓, note:) are coloured."""
        if text.startswith(("▶ ", "✓ ")):
            self.write_line(text, RUN_COLOUR)
        elif text.startswith("note: "):
            self.write_line(text, NOTE_COLOUR)
        elif text == self.document.last_error:
            return                           # said by scriptFailed, in red
        else:
            cursor = self.text.textCursor()
            cursor.movePosition(QtGui.QTextCursor.MoveOperation.End)
            if self._own_line:              # printed text starts below GradViz's line, not on it
                cursor.insertText("\n", QtGui.QTextCharFormat())
                self._own_line = False
            cursor.insertText(text, QtGui.QTextCharFormat())
            self._partial = not text.endswith("\n")
            self.text.ensureCursorVisible()

    def write_line(self, text: str, colour: str) -> None:
        if self._partial:
            self.text.appendPlainText("")
        self._partial = False
        line = f'<span style="color:{colour}">{html.escape(text)}</span>'
        last = self.text.document().lastBlock()
        if last.text() == "" and last.blockNumber() > 0:     # printed text ended its line: use that empty line
            cursor = self.text.textCursor()
            cursor.movePosition(QtGui.QTextCursor.MoveOperation.End)
            cursor.insertHtml(line)
        else:
            self.text.appendHtml(line)
        self._own_line = True
        self.text.ensureCursorVisible()

    def _on_theme_changed(self) -> None:
        """Recolour the lines already shown (GradViz's coloured lines follow the theme too)."""
        changes = use_colours(T.is_dark())
        block = self.text.document().begin()
        while block.isValid():
            it = block.begin()
            while not it.atEnd():
                fragment = it.fragment()
                new = changes.get(fragment.charFormat().foreground().color().name())
                if new is not None and fragment.charFormat().hasProperty(QtGui.QTextFormat.Property.ForegroundBrush):
                    cursor = QtGui.QTextCursor(self.text.document())
                    cursor.setPosition(fragment.position())
                    cursor.setPosition(fragment.position() + fragment.length(), QtGui.QTextCursor.MoveMode.KeepAnchor)
                    fmt = QtGui.QTextCharFormat()
                    fmt.setForeground(QtGui.QColor(new))
                    cursor.mergeCharFormat(fmt)
                it += 1
            block = block.next()

    def clear(self) -> None:
        self.text.clear()
        self._partial = self._own_line = False

    def plain_text(self) -> str:
        return self.text.toPlainText()
