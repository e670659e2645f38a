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

import re
import time

from pygments.lexers import PythonLexer
from pygments.token import Comment, Error, Keyword, Name, Number, Operator, String, _TokenType
from PySide6 import QtCore, QtGui, QtWidgets

from . import theme as T
from .code_program import (  # noqa: F401 (the panel's helpers, re-exported)
    _generate,
    embedded_values,
    expression_chars,
    line_hunks,
    model_elements,
    panel_lines,
    scenario_program,
    waiting_text,
)
from .run_thread import Job

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


LINE_LIMIT = 4_000         # characters: a longer line is shown uncoloured (lexing one line is a single call
                           # of about 3.6 us a character: 29 ms at 8,000, with Qt's layout of the line on top)
SYNC_CHARS = 60_000        # a longer text is recoloured in time slices
PUT_SYNC_CHARS = 16_000    # a longer text goes into the editor in time slices (highlighting 30k chars of
                           # long lines in one go blocked the window 130 ms); every bundled lesson is shorter
PATCH_CHARS = 2_000        # a new program differing from the shown one by at most this much is patched in
SLICE_MS = 5               # the budget of one slice; the event loop turns between slices
FEED_PIECE = (500, 4_000)  # characters put in at once by a slice of a long text: the first piece, the most
                           # (a size learnt on lines of numbers, 0.3 us a character, was 30 ms on the
                           # lines of code after them, 3-10 us a character with their colours)
FEED_PIECE_S = 0.003       # ... and what a piece should cost (its size follows)
ASYNC_VALUES = 20_000      # a scenario embedding more numbers has its program written in a thread ...
ASYNC_PARAMS = 20_000      # ... and one whose layers model has more parameter elements (its check)
ASYNC_EXPRESSION = 400     # ... and one whose model's expression is longer (characters: the largest
                           # the parser takes, 1,287, wrote its program in 27 ms; every lesson's is under 40)
_ROOT = ("root",)

# Pygments' Python number rules (PythonLexer 'numbers', in their order) and what else a line of
# embedded data holds: a line made only of these is coloured without the lexer, exactly as the lexer
# would colour it (each position takes the first rule that matches and keeps it: an atomic group).
_NUMBER = (r"(?:\d(?:_?\d)*\.(?:\d(?:_?\d)*)?|(?:\d(?:_?\d)*)?\.\d(?:_?\d)*)(?:[eE][+-]?\d(?:_?\d)*)?"
           r"|\d(?:_?\d)*[eE][+-]?\d(?:_?\d)*j?|\d(?:_?\d)*")
_DATA_TOKEN = re.compile(rf"(?>[^\S\n]+|({_NUMBER})|[-+.]|[\[\](),])")
_DATA_LINE = re.compile(rf"(?>[^\S\n]+|{_NUMBER}|[-+.]|[\[\](),])*+")


def data_spans(text: str) -> list[tuple[int, int]] | None:
    """The (start, end) of each number of a line of numbers and ``[](),+-.`` (embedded data), or None
    for any other line (the lexer's job)."""
    if _DATA_LINE.fullmatch(text) is None:
        return None
    return [m.span(1) for m in _DATA_TOKEN.finditer(text) if m.start(1) >= 0]


class _LineLexer(PythonLexer):
    """Pygments' Python lexer, one line at a time: ``lex_line`` starts from the state stack the line
    before ended with and returns that line's tokens and the stack it ends with (the loop of
    ``RegexLexer.get_tokens_unprocessed``, which keeps its stack to itself)."""

    def lex_line(self, text: str, stack: tuple[str, ...]) -> tuple[list[tuple[int, object, str]], tuple[str, ...]]:
        tokens: list[tuple[int, object, str]] = []
        pos, tokendefs = 0, self._tokens
        statestack = list(stack)
        statetokens = tokendefs[statestack[-1]]
        while True:
            for rexmatch, action, new_state in statetokens:
                m = rexmatch(text, pos)
                if not m:
                    continue
                if action is not None:
                    if type(action) is _TokenType:
                        tokens.append((pos, action, m.group()))
                    else:
                        tokens.extend(action(self, m))
                pos = m.end()
                if new_state is not None:
                    if isinstance(new_state, tuple):
                        for state in new_state:
                            if state == "#pop":
                                if len(statestack) > 1:
                                    statestack.pop()
                            elif state == "#push":
                                statestack.append(statestack[-1])
                            else:
                                statestack.append(state)
                    elif isinstance(new_state, int):
                        if abs(new_state) >= len(statestack):
                            del statestack[1:]
                        else:
                            del statestack[new_state:]
                    elif new_state == "#push":
                        statestack.append(statestack[-1])
                    statetokens = tokendefs[statestack[-1]]
                break
            else:
                if pos >= len(text):
                    break
                if text[pos] == "\n":                 # at the end of a line the lexer starts afresh
                    statestack = ["root"]
                    statetokens = tokendefs["root"]
                tokens.append((pos, Error, text[pos]))
                pos += 1
        return tokens, tuple(statestack)


class PythonHighlighter(QtGui.QSyntaxHighlighter):
    """Pygments' Python lexer, line by line: a block's state is the lexer's state stack at its end
    (an open triple-quoted string, an f-string), so Qt re-highlights the lines below an edit exactly as
    far as their colours change, and no call lexes more than one line. Lines of embedded numbers are
    coloured without the lexer (``data_spans``); lines over ``LINE_LIMIT`` are left uncoloured.
    ``recolour`` (a theme switch) re-highlights a long text in time slices."""

    _stacks: list[tuple[str, ...]] = [_ROOT]       # block state -> lexer stack (shared by all editors)
    _ids: dict[tuple[str, ...], int] = {_ROOT: 0}

    def __init__(self, document: QtGui.QTextDocument):
        self._lexer = _LineLexer(stripnl=False, ensurenl=False)
        self._formats: dict = {}
        self._next_block = 0
        self.recolouring_now = False      # Qt reports a re-highlight as a text change: not an edit
        super().__init__(None)
        self._timer = QtCore.QTimer(self)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._recolour_slice)
        self.setDocument(document)

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

    @classmethod
    def _state(cls, stack: tuple[str, ...]) -> int:
        state = cls._ids.get(stack)
        if state is None:
            state = cls._ids[stack] = len(cls._stacks)
            cls._stacks.append(stack)
        return state

    @property
    def recolouring(self) -> bool:
        return self._timer.isActive()

    def recolour(self) -> None:
        """Forget the formats and highlight everything again (the theme switched): at once for a
        short text, else in slices from the first line."""
        self._formats.clear()
        self._timer.stop()
        if self.document().characterCount() <= SYNC_CHARS:
            self.recolouring_now = True
            try:
                self.rehighlight()
            finally:
                self.recolouring_now = False
        else:
            self._next_block = 0
            self._timer.start()

    def stop(self) -> None:
        """Stop a sliced recolouring (the text is being replaced: it is highlighted as it goes in)."""
        self._timer.stop()

    def _recolour_slice(self) -> None:
        start = time.perf_counter()
        block = self.document().findBlockByNumber(self._next_block)
        self.recolouring_now = True
        try:
            while block.isValid() and time.perf_counter() - start < SLICE_MS / 1000:
                self.rehighlightBlock(block)
                block = block.next()
        finally:
            self.recolouring_now = False
        if block.isValid():
            self._next_block = block.blockNumber()
        else:
            self._timer.stop()

    def highlightBlock(self, text: str) -> None:
        previous = self.previousBlockState()
        stack = self._stacks[previous] if previous > 0 else _ROOT
        if len(text) > LINE_LIMIT:
            self.setCurrentBlockState(max(previous, 0))
            return
        spans = data_spans(text) if stack is _ROOT else None
        if spans is not None:
            fmt = self._format(Number)
            for start, end in spans:
                self.setFormat(start, end - start, fmt)
            self.setCurrentBlockState(0)
            return
        tokens, end = self._lexer.lex_line(text + "\n", stack)
        size = len(text)
        for pos, ttype, value in tokens:
            if pos >= size:
                break
            fmt = self._format(ttype)
            if fmt is not None and value:
                self.setFormat(pos, min(len(value), size - pos), fmt)
        self.setCurrentBlockState(self._state(end))


class _Gutter(QtWidgets.QWidget):
    """The line numbers beside the editor (painted by the editor, which knows its blocks)."""

    def __init__(self, editor: CodeView):
        super().__init__(editor)
        self.editor = editor

    def sizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(self.editor.gutter_width(), 0)

    def paintEvent(self, event) -> None:
        self.editor.paint_gutter(event)


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
        self._feed = None                         # [text, position, piece size, lines] going in by slices
        self._final_lines = 0                     # ... and how many lines it has
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
        self._origin = None                       # ... and from which file: (path, title)
        self._loading = False
        self._warmed = False
        self._text: str | None = None             # the text we put in (None once the user typed)
        self._rows: list[str] | None = None       # ... as lines
        self._request = None                      # (key, scenario, variant) waiting for the thread
        self._worker = None                       # (run_thread.Job, base rows) under way
        self._poll = QtCore.QTimer(self)
        self._poll.setInterval(15)
        self._poll.timeout.connect(self._poll_worker)
        self._feed_timer = QtCore.QTimer(self)
        self._feed_timer.setInterval(0)
        self._feed_timer.timeout.connect(self._feed_slice)
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
        user is editing (not run yet) is never replaced by a regenerated program. A program that
        embeds much data is written in a thread (``ASYNC_VALUES``) and changes the editor by the lines
        that differ (an lr edit: two lines, not the data); a long text goes in by slices."""
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
            values = embedded_values(scenario)
            if (values > ASYNC_VALUES or model_elements(scenario) > ASYNC_PARAMS
                    or expression_chars(scenario) > ASYNC_EXPRESSION):
                origin = (doc.path, scenario.title)
                if origin != self._origin and self._worker is None:
                    # another file: its program takes a moment to write; the last file's must not
                    # stand beside this one's graph and plots meanwhile (an edit keeps its text)
                    self._put(waiting_text(scenario.title, values), {})
                self._origin = origin
                self._listing = key
                self._request = (key, scenario, variant)
                self._start_worker()
                return
            try:
                text, lines = scenario_program(scenario, variant)
            except Exception as exc:        # the panel must never take the window down
                text, lines = f"# could not generate the PyTorch program: {exc}", {}
        if key == self._listing:
            return
        self._listing = key
        self._origin = (doc.path, scenario.title)
        self._request = None
        rows = text.split("\n")
        if (self._rows is not None and self._feed is None and text != self._text
                and self.document().blockCount() == len(self._rows)):   # a line per block
            hunks = line_hunks(self._rows, rows)                  # an edit: the lines that changed
            if sum(len(row) + 1 for _i0, _i1, j0, j1 in hunks for row in rows[j0:j1]) <= PATCH_CHARS:
                self._highlighter.stop()
                self._patch(hunks, rows, text, lines)
                return
        self._put(text, lines, rows)

    # -- putting a text in: at once, by slices, or by the lines that changed -----------------------
    @property
    def busy(self) -> bool:
        """A program is being written (in the thread) or put into the editor (by slices)."""
        return self._worker is not None or self._request is not None or self._feed is not None

    def _start_worker(self) -> None:
        if self._worker is not None or self._request is None:
            return                        # one thread at a time: the newest request follows it
        key, scenario, variant = self._request
        self._request = None
        base = self._rows if self._feed is None else None
        job = Job(lambda _progress: _generate(scenario, variant, base), key=key, label="PyTorch program")
        self._worker = (job, base)
        self._poll.start()

    def _poll_worker(self) -> None:
        if self._worker is None or not self._worker[0].ended.is_set():
            return
        job, base = self._worker
        self._worker = None
        key = job.key
        message = f"# could not generate the PyTorch program: {job.error}"
        result = [job.result if job.result is not None else (message, {}, message.split("\n"), None)]
        if self._request is not None:         # a newer program was asked for meanwhile
            self._start_worker()
        else:
            self._poll.stop()
        if key != self._listing or not result or self._document.source_edited:
            return
        text, lines, rows, hunks = result[0]
        if (hunks is not None and base is self._rows and self._feed is None
                and self.document().blockCount() == len(base)):     # a line per block: no \r, U+2029
            if sum(len(row) + 1 for _i0, _i1, j0, j1 in hunks for row in rows[j0:j1]) <= PATCH_CHARS:
                self._patch(hunks, rows, text, lines)
                return
        self._put(text, lines, rows)

    def _put(self, text: str, lines: dict[str, int], rows: list[str] | None = None) -> None:
        """Replace the text (no undo back into another file): at once when short, else by slices."""
        self._stop_feed()
        if text != self._text:
            self._highlighter.stop()
            self._text, self._rows = text, rows if rows is not None else text.split("\n")
            if len(text) <= PUT_SYNC_CHARS:
                self._loading = True
                self.setPlainText(text)
                self._loading = False
            else:
                self._loading = True
                self.setReadOnly(True)            # nothing is typed into a half-loaded text
                self.setPlainText("")
                self.document().setUndoRedoEnabled(False)
                self._feed = [text, 0, FEED_PIECE[0], lines]
                self._final_lines = len(self._rows)
                self._fit_gutter()
                self.lines = {}
                self._feed_timer.start()
                self._follow_player()
                return
        self._shown_program(lines)

    def _shown_program(self, lines: dict[str, int]) -> None:
        self.lines = lines
        self._shown = None
        self.error_line = None
        self._follow_player()

    def _feed_slice(self) -> None:
        """Put the next pieces of a long text in (whole lines) until SLICE_MS is used. A piece is
        highlighted as it goes in, so its size follows what the last one cost (FEED_PIECE: at
        most): a line of code costs ~100 times a line of numbers, and a slice of 5,000 characters
        of limit_expression's long lines took 138 ms."""
        if self._feed is None:
            self._feed_timer.stop()
            return
        text, pos, size, lines = self._feed
        if pos and self.viewport().updatesEnabled():
            # the first piece is on screen: each piece would repaint the whole page again (Qt's plain
            # text layout asks for that on every change), tens of ms with long wrapped lines
            self.viewport().setUpdatesEnabled(False)
        start = time.perf_counter()
        cursor = QtGui.QTextCursor(self.document())
        cursor.movePosition(QtGui.QTextCursor.MoveOperation.End)
        while True:
            began = time.perf_counter()
            # a piece ends after a newline: one that began with the newline would change the last
            # line put in, which Qt lays out and highlights again (10 ms for a line of 2,000 characters)
            end = text.find("\n", pos + size)
            end = len(text) if end < 0 else end + 1
            cursor.insertText(text[pos:end])
            pos = end
            took = max(time.perf_counter() - began, 1e-5)
            size = int(min(max(size * min(FEED_PIECE_S / took, 2.0), 200), FEED_PIECE[1]))
            if pos >= len(text) or time.perf_counter() - start >= SLICE_MS / 1000:
                break
        if pos < len(text):
            self._feed = [text, pos, size, lines]
            return
        self._stop_feed(done=True)
        self._shown_program(lines)

    def _stop_feed(self, done: bool = False) -> None:
        if self._feed is not None:
            if not done:                          # the editor holds part of the text
                self._text = self._rows = None
            self._feed, self._final_lines = None, 0
            self._feed_timer.stop()
            self.viewport().setUpdatesEnabled(True)
            self.document().setUndoRedoEnabled(True)
            self.setReadOnly(False)
            self._loading = False

    def _patch(self, hunks, rows: list[str], text: str, lines: dict[str, int]) -> None:
        """Change the editor's lines by ``hunks`` (``line_hunks`` of the shown lines and ``rows``),
        each its own change, so Qt re-highlights only those lines."""
        document = self.document()
        document.setUndoRedoEnabled(False)          # as setPlainText: no undo back into another program
        self._loading = True
        try:
            count = len(self._rows)

            def start(i):                         # where line i (0-based) starts
                return document.findBlockByNumber(i).position()

            def end(i):                           # where line i ends (before its line break)
                block = document.findBlockByNumber(i)
                return block.position() + block.length() - 1
            for i0, i1, j0, j1 in reversed(hunks):
                cursor = QtGui.QTextCursor(document)
                new = "\n".join(rows[j0:j1])
                if i0 < i1 and j0 < j1:           # lines replaced
                    cursor.setPosition(start(i0))
                    cursor.setPosition(end(i1 - 1), QtGui.QTextCursor.MoveMode.KeepAnchor)
                    cursor.insertText(new)
                elif i0 < i1:                      # lines removed, with the line break after (or before) them
                    cursor.setPosition(start(i0) if i1 < count else end(i0 - 1))
                    cursor.setPosition(start(i1) if i1 < count else end(i1 - 1), QtGui.QTextCursor.MoveMode.KeepAnchor)
                    cursor.removeSelectedText()
                elif i0 < count:                   # lines added before line i0
                    cursor.setPosition(start(i0))
                    cursor.insertText(new + "\n")
                else:                              # lines added at the end
                    cursor.setPosition(end(count - 1))
                    cursor.insertText("\n" + new)
        finally:
            self._loading = False
            document.setUndoRedoEnabled(True)
        self._text, self._rows = text, rows
        self._shown_program(lines)

    def _on_text_changed(self) -> None:
        if not self._loading and not self._highlighter.recolouring_now:
            self._text = self._rows = None            # the user's text now, not a program we put in
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
        # while a long text goes in, as wide as its last line number needs: a wider gutter narrows the
        # text, which lays out every line again
        digits = len(str(max(1, self.blockCount(), self._final_lines)))
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
