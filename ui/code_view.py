"""The code panel: an editor holding the program the graph animates, with the current line lit.

For a script document it is the user's file (the lit line is the script line of the Player's
frame, ``Frame.line``); for a TOML scenario it is the clean, runnable PyTorch program of the current
variant (``gradviz.codegen.program``), lit by the frame's phase. The text is editable (line numbers,
Pygments colours, undo/redo); every edit goes to the Document (``Document.set_source``), which
owns the modified marker and runs the text on Ctrl+R / the Run button. A failed run lights the
failing line in red until the text changes or a run succeeds.

``CodeView(document, view_state, player)`` follows the three models by itself; ``CodePanel`` puts
it under a small bar with the Run button."""
from __future__ import annotations

from pygments.lexers import PythonLexer
from pygments.token import Comment, Keyword, Name, Number, Operator, String
from PySide6 import QtCore, QtGui, QtWidgets

from gradviz import codegen

from . import theme as T

# Colours of the code panel, a light and a dark set matching the graph view's palettes; the module
# constants are the current theme's (re-bound by ``use_colours`` when the theme switches).
LIGHT_COLOURS = {
    "CODE_KEYWORD": "#7c3aed", "CODE_NUMBER": "#b45309", "CODE_CALL": "#1d4ed8", "CODE_STRING": "#15803d",
    "CODE_COMMENT": "#6b7280", "CODE_HIGHLIGHT": "#fde68a", "CODE_BUILTIN": "#0e7490", "CODE_DECORATOR": "#9333ea",
    "CODE_ERROR": "#fecaca", "CODE_BACKGROUND": "#ffffff", "CODE_TEXT": "#0f172a",
    "GUTTER_BG": "#f1f5f9", "GUTTER_TEXT": "#94a3b8", "GUTTER_CURRENT": "#334155",
}
DARK_COLOURS = {
    "CODE_KEYWORD": "#c4a7ff", "CODE_NUMBER": "#f5b86b", "CODE_CALL": "#82b8ff", "CODE_STRING": "#86d99a",
    "CODE_COMMENT": "#7f8a9c", "CODE_HIGHLIGHT": "#51461f", "CODE_BUILTIN": "#67d4e6", "CODE_DECORATOR": "#e0a3ff",
    "CODE_ERROR": "#5c2228", "CODE_BACKGROUND": "#111827", "CODE_TEXT": "#e5e7eb",
    "GUTTER_BG": "#161e2c", "GUTTER_TEXT": "#5b6678", "GUTTER_CURRENT": "#e2e8f0",
}
CODE_KEYWORD = CODE_NUMBER = CODE_CALL = CODE_STRING = CODE_COMMENT = CODE_HIGHLIGHT = ""
CODE_BUILTIN = CODE_DECORATOR = CODE_ERROR = CODE_BACKGROUND = CODE_TEXT = ""
GUTTER_BG = GUTTER_TEXT = GUTTER_CURRENT = ""
CODE_POINT_SIZE = 8.5
_STYLES: dict = {}


def use_colours(dark: bool) -> None:
    """Re-bind the code colours and the token styles to the dark or the light set."""
    global _STYLES
    globals().update(DARK_COLOURS if dark else LIGHT_COLOURS)
    # Pygments token type -> (colour, bold, italic); a token takes the style of its nearest styled parent.
    _STYLES = {
        Keyword: (CODE_KEYWORD, True, False), Keyword.Constant: (CODE_KEYWORD, False, False),
        Name.Builtin: (CODE_BUILTIN, False, False), Name.Function: (CODE_CALL, True, False),
        Name.Class: (CODE_CALL, True, False), Name.Decorator: (CODE_DECORATOR, False, False),
        Number: (CODE_NUMBER, False, False), String: (CODE_STRING, False, False),
        Comment: (CODE_COMMENT, False, True), Operator.Word: (CODE_KEYWORD, True, False),
    }


use_colours(T.is_dark())


HIGHLIGHT_LIMIT = 400_000     # characters: longer programs (inline data sets) are shown uncoloured


class PythonHighlighter(QtGui.QSyntaxHighlighter):
    """Pygments' Python lexer over the whole text (a triple-quoted string spans lines), its tokens
    cut into per-line spans. A block's state is a hash of the *next* line's spans, so a change that
    recolours later lines (opening a string) makes Qt carry on highlighting exactly that far."""

    def __init__(self, document: QtGui.QTextDocument):
        self._lexer = PythonLexer(stripnl=False, ensurenl=False)
        self._formats: dict = {}
        self._text: str | None = None
        self._dirty = True
        self._spans: list[list[tuple[int, int, QtGui.QTextCharFormat]]] = []
        self._keys: list[int] = []
        super().__init__(None)
        # connected before the highlighter's own slot (setDocument below), so a change marks the lexed
        # text stale before Qt asks for blocks: one toPlainText() per change, not one per block (which
        # made highlighting quadratic: minutes for a program with 100,000 data rows)
        document.contentsChange.connect(self._on_change)
        self.setDocument(document)

    def _on_change(self, *_args) -> None:
        self._dirty = True

    def _format(self, ttype):
        if ttype not in self._formats:
            style, t = None, ttype
            while t is not None and style is None:
                style, t = _STYLES.get(t), t.parent
            fmt = None
            if style is not None:
                fmt = QtGui.QTextCharFormat()
                fmt.setForeground(QtGui.QColor(style[0]))
                if style[1]:
                    fmt.setFontWeight(QtGui.QFont.Weight.Bold)
                fmt.setFontItalic(style[2])
            self._formats[ttype] = fmt
        return self._formats[ttype]

    def recolour(self) -> None:
        """Forget the formats and highlight everything again (the theme switched)."""
        self._formats.clear()
        self._text, self._dirty = None, True
        self.rehighlight()

    def _lex(self) -> None:
        if not self._dirty:
            return
        self._dirty = False
        text = self.document().toPlainText()
        if text == self._text:
            return
        self._text = text
        if len(text) > HIGHLIGHT_LIMIT:          # a program with huge inline data: plain text, at once
            self._spans, self._keys = [], []
            return
        spans: list[list] = [[] for _ in range(text.count("\n") + 1)]
        keys: list[list] = [[] for _ in spans]
        line = col = 0
        for ttype, value in self._lexer.get_tokens(text):
            fmt = self._format(ttype)
            for i, part in enumerate(value.split("\n")):
                if i:
                    line, col = line + 1, 0
                if part and fmt is not None and line < len(spans):
                    spans[line].append((col, len(part), fmt))
                    keys[line].append((col, len(part), str(ttype)))
                col += len(part)
        self._spans = spans
        self._keys = [hash(tuple(k)) & 0x3FFFFFFF for k in keys]

    def highlightBlock(self, text: str) -> None:
        self._lex()
        n = self.currentBlock().blockNumber()
        for start, length, fmt in self._spans[n] if n < len(self._spans) else ():
            self.setFormat(start, length, fmt)
        self.setCurrentBlockState(self._keys[n + 1] if n + 1 < len(self._keys) else 0)


class _Gutter(QtWidgets.QWidget):
    """The line numbers beside the editor (painted by the editor, which knows its blocks)."""

    def __init__(self, editor: CodeView):
        super().__init__(editor)
        self.editor = editor

    def sizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(self.editor.gutter_width(), 0)

    def paintEvent(self, event) -> None:
        self.editor.paint_gutter(event)


def panel_lines(script) -> tuple[list[str], dict[str, int]]:
    """An exporter listing shown as a training loop only (the fallback while codegen has no clean
    ``program()``): the setup lines, a blank line, then the loop; and each phase's 1-based line."""
    setup = [line for line in script.listing if line.kind == "setup"]
    loop = [line for line in script.listing if line.kind in ("loop", "bookkeeping")]
    shown = setup + [None] + loop if setup else loop
    lines: dict[str, int] = {}
    for number, line in enumerate(shown, 1):
        for phase in line.phases if line is not None else ():
            lines.setdefault(phase, number)
    return ["" if line is None else line.code for line in shown], lines


def scenario_program(scenario, variant: int) -> tuple[str, dict[str, int]]:
    """The clean PyTorch program of a TOML scenario's variant and its phase lines (1-based)."""
    program = getattr(codegen, "program", None)
    if program is not None:
        script = program(scenario, variant)
        return script.source.rstrip("\n"), dict(script.lines)
    shown, lines = panel_lines(codegen.export_torch(scenario, variant))
    return "\n".join(shown).rstrip("\n"), lines


class CodeView(QtWidgets.QPlainTextEdit):
    """The editor (see the module docstring). ``lines`` maps a phase to its 1-based line for a TOML
    program (empty for a script, whose frames name their line); ``current_line`` is the lit line,
    ``error_line`` the line lit red after a failed run."""

    def __init__(self, document, view_state, player, parent=None):
        super().__init__(parent)
        # not ``self.document``: QPlainTextEdit.document() is the text it shows
        self._document, self.view_state, self.player = document, view_state, player
        self.setLineWrapMode(QtWidgets.QPlainTextEdit.LineWrapMode.WidgetWidth)
        self.setWordWrapMode(QtGui.QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        self.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFocusPolicy(QtCore.Qt.FocusPolicy.ClickFocus)   # the window's keys stay the transport's
        self.setTabChangesFocus(False)
        font = T.mono_font(CODE_POINT_SIZE)
        font.setStyleHint(QtGui.QFont.StyleHint.Monospace)
        self.setFont(font)
        self.document().setDefaultFont(font)
        self.setTabStopDistance(4 * QtGui.QFontMetricsF(font).horizontalAdvance(" "))
        use_colours(T.is_dark())          # the theme may have switched while no editor existed
        self._highlighter = PythonHighlighter(self.document())
        self._gutter = _Gutter(self)
        self._apply_theme()
        T.notifier.changed.connect(self._on_theme_changed)
        self.blockCountChanged.connect(self._fit_gutter)
        self.updateRequest.connect(self._scroll_gutter)
        self._fit_gutter()
        self.lines: dict[str, int] = {}
        self.current_phase: str | None = None
        self.current_line: int | None = None
        self.error_line: int | None = None
        self._shown = None
        self._listing = None                      # what the text was made from: (scenario, variant, source)
        self._loading = False
        self._warmed = False
        self.textChanged.connect(self._on_text_changed)
        document.scenarioChanged.connect(self._show_program)
        view_state.variantChanged.connect(self._show_program)
        document.sourceChanged.connect(self._show_program)
        document.scriptFailed.connect(lambda _message, line: self.set_error_line(line or None))
        document.runFinished.connect(self._on_run_finished)
        player.positionChanged.connect(self._follow_player)      # also sent for every new replay
        self._show_program()
        self._follow_player()

    # -- the theme --------------------------------------------------------------------------------
    def _apply_theme(self) -> None:
        palette = self.palette()
        palette.setColor(QtGui.QPalette.ColorRole.Base, QtGui.QColor(CODE_BACKGROUND))
        palette.setColor(QtGui.QPalette.ColorRole.Text, QtGui.QColor(CODE_TEXT))
        self.setPalette(palette)

    def _on_theme_changed(self) -> None:
        use_colours(T.is_dark())
        self._apply_theme()
        self._highlighter.recolour()
        self._paint_lines()

    # -- the text ---------------------------------------------------------------------------------
    def _show_program(self, *_) -> None:
        """Show the script's source, or the TOML scenario's program for the current variant. Text the
        user is editing (not run yet) is never replaced by a regenerated program."""
        doc = self._document
        scenario, variant = doc.scenario, self.view_state.variant
        if scenario is None:
            return
        if doc.is_script:
            key, lines = ("script", doc.source), {}
            text = doc.source or ""
        else:
            key = (scenario, variant)
            if doc.source_edited or self._listing == key:
                return
            try:
                text, lines = scenario_program(scenario, variant)
            except Exception as exc:        # the panel must never take the window down
                text, lines = f"# could not generate the PyTorch program: {exc}", {}
        if key == self._listing:
            return
        self._listing = key
        if text != self.toPlainText():
            self._loading = True
            self.setPlainText(text)          # a new text, not an edit: no undo back into another file
            self._loading = False
        self.lines = lines
        self._shown = None
        self.error_line = None
        self._follow_player()

    def _on_text_changed(self) -> None:
        if not self._loading:
            if not self._warmed:          # the first edit: the worker loads while the user types
                self._warmed = True
                self._document.runner.warm()
            self._listing = ("edited",)
            self._document.set_source(self.toPlainText())
            if self.error_line is not None:
                self.set_error_line(None)

    def line_text(self, line: int) -> str:
        block = self.document().findBlockByNumber(line - 1)
        return block.text() if block.isValid() else ""

    # -- the lit lines ----------------------------------------------------------------------------
    def _follow_player(self, _position: int = 0) -> None:
        frame = self.player.frame
        if frame is None:
            self.set_phase(None)
        elif getattr(frame, "line", None) is not None and self._document.is_script:
            self.set_line(frame.line, frame.phase)
        else:
            self.set_phase(frame.phase)

    def _on_run_finished(self) -> None:
        if not self._document.last_error:
            self.set_error_line(None)

    def set_phase(self, phase: str | None) -> None:
        """Light ``phase``'s line of the program (no line when the program has none for it)."""
        self.set_line(self.lines.get(phase) if phase else None, phase)

    def set_line(self, line: int | None, phase: str | None = None) -> None:
        """Light the 1-based ``line`` (None: nothing) and scroll it into view."""
        self.current_phase = phase
        if line is not None and not 1 <= line <= self.blockCount():
            line = None
        self.current_line = line
        if line == self._shown:           # called on every frame while playing
            return
        self._shown = line
        if line is not None:
            self._scroll_to(line)
        self._paint_lines()

    def set_error_line(self, line: int | None) -> None:
        """Light the line a failed run stopped at in red (None: clear)."""
        self.error_line = line if line is not None and 1 <= line <= self.blockCount() else None
        if self.error_line is not None:
            self._scroll_to(self.error_line)
        self._paint_lines()

    def _scroll_to(self, line: int) -> None:
        block = self.document().findBlockByNumber(line - 1)
        if self.hasFocus():                # the user is typing: leave the caret where it is
            return
        self.setTextCursor(QtGui.QTextCursor(block))
        self.centerCursor() if not self._visible(block) else self.ensureCursorVisible()

    def _visible(self, block) -> bool:
        rect = self.blockBoundingGeometry(block).translated(self.contentOffset())
        return rect.top() >= 0 and rect.bottom() <= self.viewport().height()

    def _paint_lines(self) -> None:
        selections = []
        for line, colour in ((self.current_line, CODE_HIGHLIGHT), (self.error_line, CODE_ERROR)):
            if line is None:
                continue
            sel = QtWidgets.QTextEdit.ExtraSelection()
            sel.format.setBackground(QtGui.QColor(colour))
            sel.format.setProperty(QtGui.QTextFormat.Property.FullWidthSelection, True)
            block = self.document().findBlockByNumber(line - 1)
            cursor = QtGui.QTextCursor(block)
            # through the line's end into the next: full width on every wrapped piece of the line
            end = min(block.position() + block.length(), self.document().characterCount() - 1)
            cursor.setPosition(end, QtGui.QTextCursor.MoveMode.KeepAnchor)
            sel.cursor = cursor
            selections.append(sel)
        self.setExtraSelections(selections)
        self._gutter.update()

    # -- keys -------------------------------------------------------------------------------------
    def event(self, event) -> bool:
        """While the editor has the focus, typing wins over the window's one-key transport shortcuts
        (Space, arrows, Home/End, Page Up/Down and their Ctrl/Shift forms)."""
        if event.type() == QtCore.QEvent.Type.ShortcutOverride:
            mods = event.modifiers() & ~QtCore.Qt.KeyboardModifier.KeypadModifier
            Mod = QtCore.Qt.KeyboardModifier
            navigation = event.key() in (QtCore.Qt.Key.Key_Left, QtCore.Qt.Key.Key_Right,
                                         QtCore.Qt.Key.Key_Home, QtCore.Qt.Key.Key_End,
                                         QtCore.Qt.Key.Key_PageUp, QtCore.Qt.Key.Key_PageDown)
            if mods in (Mod.NoModifier, Mod.ShiftModifier) or (navigation and not mods & Mod.AltModifier):
                event.accept()
                return True
        return super().event(event)

    def keyPressEvent(self, event) -> None:
        """Return keeps the line's indent (one level deeper after a ``:``); Tab indents by 4 spaces."""
        key = event.key()
        if key in (QtCore.Qt.Key.Key_Return, QtCore.Qt.Key.Key_Enter) and not event.modifiers():
            cursor = self.textCursor()
            text = cursor.block().text()[:cursor.positionInBlock()]
            indent = text[:len(text) - len(text.lstrip(" "))]
            if text.rstrip().endswith(":"):
                indent += "    "
            cursor.insertText("\n" + indent)
            self.ensureCursorVisible()
            return
        if key == QtCore.Qt.Key.Key_Tab and not event.modifiers():
            self.textCursor().insertText("    ")
            return
        super().keyPressEvent(event)

    # -- the gutter -------------------------------------------------------------------------------
    def gutter_width(self) -> int:
        digits = len(str(max(1, self.blockCount())))
        return 10 + self.fontMetrics().horizontalAdvance("9") * max(2, digits)

    def _fit_gutter(self, *_) -> None:
        self.setViewportMargins(self.gutter_width(), 0, 0, 0)

    def _scroll_gutter(self, rect, dy) -> None:
        if dy:
            self._gutter.scroll(0, dy)
        else:
            self._gutter.update(0, rect.y(), self._gutter.width(), rect.height())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        cr = self.contentsRect()
        self._gutter.setGeometry(QtCore.QRect(cr.left(), cr.top(), self.gutter_width(), cr.height()))
        lit = self.error_line or self.current_line          # a smaller panel still shows the lit line
        if lit is not None and not self._visible(self.document().findBlockByNumber(lit - 1)):
            self._scroll_to(lit)

    def paint_gutter(self, event) -> None:
        painter = QtGui.QPainter(self._gutter)
        painter.fillRect(event.rect(), QtGui.QColor(GUTTER_BG))
        block = self.firstVisibleBlock()
        top = self.blockBoundingGeometry(block).translated(self.contentOffset()).top()
        height = self.fontMetrics().height()
        width = self._gutter.width() - 5
        while block.isValid() and top <= event.rect().bottom():
            bottom = top + self.blockBoundingRect(block).height()
            if block.isVisible() and bottom >= event.rect().top():
                number = block.blockNumber() + 1
                if number == self.error_line:
                    painter.fillRect(QtCore.QRectF(0, top, width + 5, bottom - top), QtGui.QColor(CODE_ERROR))
                lit = number in (self.current_line, self.error_line)
                painter.setPen(QtGui.QColor(GUTTER_CURRENT if lit else GUTTER_TEXT))
                painter.drawText(QtCore.QRectF(0, top, width, height),
                                 QtCore.Qt.AlignmentFlag.AlignRight, str(number))
            block, top = block.next(), bottom
        painter.end()


class CodePanel(QtWidgets.QWidget):
    """The code dock's content: a bar (what the text is, whether it changed, Run) over the editor."""

    def __init__(self, document, editor: CodeView, run_action: QtGui.QAction, parent=None):
        super().__init__(parent)
        self._document, self.editor = document, editor
        bar = QtWidgets.QHBoxLayout()
        bar.setContentsMargins(6, 3, 4, 3)
        self.label = QtWidgets.QLabel()
        self._style_label()
        T.notifier.changed.connect(self._style_label)
        self.label.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        self.run_button = QtWidgets.QToolButton()
        self.run_button.setDefaultAction(run_action)
        self.run_button.setToolButtonStyle(QtCore.Qt.ToolButtonStyle.ToolButtonTextBesideIcon)
        self.run_button.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        bar.addWidget(self.label, 1)
        bar.addWidget(self.run_button)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(bar)
        layout.addWidget(editor, 1)
        for signal in (document.scenarioChanged, document.modifiedChanged, document.sourceChanged):
            signal.connect(self._show_name)
        self._show_name()

    def _style_label(self) -> None:
        self.label.setStyleSheet(f"color: {T.TEXT_MUTED};")

    def _show_name(self, *_) -> None:
        doc = self._document
        if doc.scenario is None:
            return
        name = doc.script_name if doc.is_script else "PyTorch program of this scenario"
        edited = doc.modified if doc.is_script else doc.source_edited
        self.label.setText(("● " if edited else "") + name)
        self.label.setToolTip("Edited: Ctrl+R runs the text as it is now" if edited else name)
