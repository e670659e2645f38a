"""The PyTorch training loop of the current scenario, with the line of the current phase lit.

The lines come tagged from the exporter (``Script.listing``): the panel shows the definitions the
loop calls, then the loop, leaving out the asides on GradViz's CSV bookkeeping. ``CodeView(document,
view_state, player)`` follows the Document's scenario, the ViewState's variant and the Player's
phase by itself."""
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


CODE_POINT_SIZE = 8.5
HANGING_INDENT = 4                                   # a wrapped line continues this many columns deeper


def panel_lines(script) -> tuple[list[str], dict[str, int]]:
    """What the panel shows of ``script``: its setup lines (``optimizer = torch.optim.Adam(...)``,
    the loss function, a GradScaler), a blank line, then the loop; and each phase's 1-based line.

    Each line is shown without its aside (``Line.code``): in a narrow panel the comments on the
    CSV bookkeeping would wrap into several grey lines around the lines that matter."""
    setup = [line for line in script.listing if line.kind == "setup"]
    loop = [line for line in script.listing if line.kind in ("loop", "bookkeeping")]
    shown = setup + [None] + loop if setup else loop
    lines: dict[str, int] = {}
    for number, line in enumerate(shown, 1):
        for phase in line.phases if line is not None else ():
            lines.setdefault(phase, number)
    return ["" if line is None else line.code for line in shown], lines


class CodeView(QtWidgets.QTextEdit):
    """Read-only training loop of the current variant, under the optimizer (and loss function) it
    uses, with the line of the Player's phase lit.  ``lines`` maps a phase to its 1-based line
    number in the panel's text, ``current_line`` is the lit line.

    The dock is narrow: instead of scrolling sideways, a long line wraps with a hanging indent (its
    continuation sits deeper than the line itself), so a long objective reads whole."""

    def __init__(self, document, view_state, player, parent=None):
        super().__init__(parent)
        # not ``self.document``: QTextEdit.document() is the text it shows
        self._document, self.view_state, self.player = document, view_state, player
        self.setReadOnly(True)
        self.setUndoRedoEnabled(False)
        self.setLineWrapMode(QtWidgets.QTextEdit.LineWrapMode.WidgetWidth)
        self.setWordWrapMode(QtGui.QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        self.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        font = QtGui.QFontDatabase.systemFont(QtGui.QFontDatabase.SystemFont.FixedFont)
        font.setPointSizeF(CODE_POINT_SIZE)
        self.setFont(font)
        self.document().setDefaultFont(font)
        self.document().setDocumentMargin(5)
        self._char_w = QtGui.QFontMetricsF(font).horizontalAdvance("0")
        self._highlighter = _PythonHighlighter(self.document())
        self.lines: dict[str, int] = {}
        self.current_phase: str | None = None
        self.current_line: int | None = None
        self._shown = None
        self._listing = None                      # (scenario, variant) whose loop is shown
        document.scenarioChanged.connect(self._show_loop)
        view_state.variantChanged.connect(self._show_loop)
        player.positionChanged.connect(self._follow_player)      # also sent for every new replay
        self._show_loop()
        self._follow_player()

    def _show_loop(self) -> None:
        scenario, variant = self._document.scenario, self.view_state.variant
        if scenario is None:
            return
        if self._listing is not None and self._listing[0] is scenario and self._listing[1] == variant:
            return                     # a scenario change can also move the variant: one export
        self._listing = (scenario, variant)
        try:
            shown, lines = panel_lines(export_torch(scenario, variant))
            source = "\n".join(shown)
        except Exception as exc:        # the panel must never take the window down
            source, lines = f"# could not generate the PyTorch loop: {exc}", {}
        self.setPlainText(source.rstrip("\n"))
        self._hang_indents()
        self.lines = lines
        self._shown = None
        self.set_phase(self.current_phase)

    def _follow_player(self, _position: int = 0) -> None:
        frame = self.player.frame
        if frame is not None:
            self.set_phase(frame.phase)

    def _hang_indents(self) -> None:
        """Each line's wrapped continuation starts HANGING_INDENT columns deeper than the line."""
        cursor = QtGui.QTextCursor(self.document())
        block = self.document().begin()
        while block.isValid():
            text = block.text()
            lead = len(text) - len(text.lstrip(" "))
            margin = (lead + HANGING_INDENT) * self._char_w
            fmt = block.blockFormat()
            fmt.setLeftMargin(margin)
            fmt.setTextIndent(-margin)
            cursor.setPosition(block.position())
            cursor.setBlockFormat(fmt)
            block = block.next()

    def line_text(self, line: int) -> str:
        block = self.document().findBlockByNumber(line - 1)
        return block.text() if block.isValid() else ""

    def set_phase(self, phase: str | None) -> None:
        """Highlight ``phase``'s line (``zero_grad``, ``zero_grad_after``, ``forward``, ``loss``,
        ``backward``, ``step``); no highlight when the loop has no such line."""
        self.current_phase = phase
        line = self.lines.get(phase) if phase else None
        self.current_line = line
        if line == self._shown:           # called on every frame while playing
            return
        self._shown = line
        selections = []
        if line is not None:
            sel = QtWidgets.QTextEdit.ExtraSelection()
            sel.format.setBackground(QtGui.QColor(CODE_HIGHLIGHT))
            sel.format.setProperty(QtGui.QTextFormat.Property.FullWidthSelection, True)
            block = self.document().findBlockByNumber(line - 1)
            cursor = QtGui.QTextCursor(block)
            cursor.movePosition(QtGui.QTextCursor.MoveOperation.EndOfBlock, QtGui.QTextCursor.MoveMode.KeepAnchor)
            sel.cursor = cursor                 # the whole block: every wrapped piece of the line
            selections.append(sel)
            self.setTextCursor(QtGui.QTextCursor(block))
            self.ensureCursorVisible()
        self.setExtraSelections(selections)
