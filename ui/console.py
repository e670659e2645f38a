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
ERROR_COLOUR, NOTE_COLOUR, RUN_COLOUR = "#b91c1c", "#6b7280", "#1d4ed8"


class Console(QtWidgets.QWidget):
    def __init__(self, document, parent=None):
        super().__init__(parent)
        self.document = document
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

    def clear(self) -> None:
        self.text.clear()
        self._partial = self._own_line = False

    def plain_text(self) -> str:
        return self.text.toPlainText()
