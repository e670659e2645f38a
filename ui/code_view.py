"""The PyTorch training loop of the current scenario, with the line of the current phase lit."""
from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from gradviz.codegen import export_torch


# Colours of the code panel (a light theme that matches the graph view's palette).
CODE_KEYWORD, CODE_NUMBER, CODE_CALL = "#7c3aed", "#b45309", "#1d4ed8"
CODE_STRING, CODE_COMMENT, CODE_HIGHLIGHT = "#15803d", "#6b7280", "#fde68a"

_KEYWORDS = ("for", "in", "range", "if", "with", "import", "def", "return", "not", "and", "or")


class _PythonHighlighter(QtGui.QSyntaxHighlighter):
    """Just enough colour to make the loop easy to read: keywords, comments, numbers, calls."""

    def __init__(self, document):
        super().__init__(document)
        fmt = lambda colour, bold=False: self._fmt(colour, bold)  # noqa: E731
        self.rules = [
            (QtCore.QRegularExpression(r"\b(" + "|".join(_KEYWORDS) + r")\b"), fmt(CODE_KEYWORD, True)),
            (QtCore.QRegularExpression(r"\b[0-9][0-9_.eE+-]*\b"), fmt(CODE_NUMBER)),
            (QtCore.QRegularExpression(r"\.\w+(?=\()"), fmt(CODE_CALL)),
            (QtCore.QRegularExpression(r"\"[^\"]*\"|'[^']*'"), fmt(CODE_STRING)),
            (QtCore.QRegularExpression(r"#.*$"), fmt(CODE_COMMENT)),
        ]

    @staticmethod
    def _fmt(colour, bold=False):
        f = QtGui.QTextCharFormat()
        f.setForeground(QtGui.QColor(colour))
        if bold:
            f.setFontWeight(QtGui.QFont.Weight.Bold)
        return f

    def highlightBlock(self, text):
        for rx, f in self.rules:
            it = rx.globalMatch(text)
            while it.hasNext():
                m = it.next()
                self.setFormat(m.capturedStart(), m.capturedLength(), f)


class CodeView(QtWidgets.QPlainTextEdit):
    """Read-only loop source; ``set_phase`` highlights the line of a loop phase."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.setReadOnly(True)
        self.setLineWrapMode(QtWidgets.QPlainTextEdit.LineWrapMode.NoWrap)
        font = QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont)
        font.setPointSize(max(font.pointSize(), 10))
        self.setFont(font)
        self._highlighter = _PythonHighlighter(self.document())
        self.lines: dict[str, int] = {}
        self.current_phase: str | None = None
        self.current_line: int | None = None

    def set_scenario(self, scenario, variant: int = 0) -> None:
        try:
            script = export_torch(scenario, variant)
            source, lines = script.loop_source(), dict(script.loop_lines)
        except Exception as exc:        # the panel must never take the window down
            source, lines = f"# could not generate the PyTorch loop: {exc}", {}
        self.setPlainText(source)
        self.lines = lines
        self.set_phase(self.current_phase)

    def line_text(self, line: int) -> str:
        block = self.document().findBlockByNumber(line - 1)
        return block.text() if block.isValid() else ""

    def set_phase(self, phase: str | None) -> None:
        """Highlight ``phase``'s line (``zero_grad``, ``zero_grad_after``, ``forward``, ``loss``,
        ``backward``, ``step``); no highlight when the loop has no such line."""
        self.current_phase = phase
        line = self.lines.get(phase) if phase else None
        self.current_line = line
        selections = []
        if line is not None:
            sel = QtWidgets.QTextEdit.ExtraSelection()
            sel.format.setBackground(QtGui.QColor(CODE_HIGHLIGHT))
            sel.format.setProperty(QtGui.QTextFormat.Property.FullWidthSelection, True)
            cursor = QtGui.QTextCursor(self.document().findBlockByNumber(line - 1))
            sel.cursor = cursor
            selections.append(sel)
            self.setTextCursor(cursor)
            self.ensureCursorVisible()
        self.setExtraSelections(selections)
