"""The caption over the graph's corner: which phase, where in the iteration, what the event did, and
the math of the event with this iteration's numbers (``gradviz.view.formulas``)."""
from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from gradviz.view.formulas import formulas_for_frame
from gradviz.view.phases import phase_label

from .. import theme as T

Qt = QtCore.Qt
MAX_FULL = 3              # formulas the caption writes out; with more, all but the last show only their result
MAX_SHORT = 6


class Caption(QtWidgets.QFrame):
    """The phase, the position and one sentence about the current event, over the graph's corner,
    then the event's formulas with their numbers (``∂L/∂w = ∂L/∂out · x = −3.6 · 2.0 = −7.2``).

    Plain-text labels with a height measured by font metrics: a rich-text QLabel re-laid out every
    frame costs about a millisecond, so the formulas show in their plain Unicode form here."""

    def __init__(self, parent):
        super().__init__(parent)
        self.setObjectName("caption")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.pill = QtWidgets.QLabel(self)
        self.pill.setFont(T.ui_font(9, bold=True))
        self.info = QtWidgets.QLabel(self)
        self.text = QtWidgets.QLabel(self)
        self.text.setWordWrap(True)
        self.text.setTextFormat(Qt.TextFormat.PlainText)
        self.math = QtWidgets.QLabel(self)          # the event's formulas, one a line
        self.math.setObjectName("captionMath")
        self.math.setWordWrap(True)
        self.math.setTextFormat(Qt.TextFormat.PlainText)
        self.math.setFont(T.ui_font(10))
        self.formulas: list = []
        self._lines: list[str] = []
        self._colour = None
        self._width = 0
        self.apply_theme()

    def apply_theme(self) -> None:
        """(Re)set the colours from the theme (also after a light/dark switch)."""
        self.setStyleSheet(f"#caption {{ background: {T.CAPTION_BG}; border: 1px solid {T.PANEL_BORDER};"
                           f" border-radius: 8px; }}")
        self.info.setStyleSheet(f"color: {T.TEXT_MUTED}")
        self.text.setStyleSheet(f"color: {T.TEXT}")
        self.math.setStyleSheet(f"color: {T.TEXT}")
        colour, self._colour = self._colour, None
        if colour is not None:
            self._set_pill_colour(colour)

    def show_frame(self, replay, frame, selected: int | None = None) -> None:
        """Show ``frame`` of ``replay``: its phase, its position, the replay's description of it and
        its formulas (a step's for the ``selected`` parameter, when one is)."""
        phase = phase_label(frame.phase, frame.micro_batch, replay.accumulation_steps)
        self.show_text(phase, T.PHASE_COLOURS.get(frame.phase, T.TEXT_MUTED),
                       f"iteration {replay.iteration} · event {frame.index}/{len(replay) - 1}", frame.description)
        formulas = []
        if selected is not None and frame.event_kind == "step" and selected in replay.param_names:
            formulas = [f for f in formulas_for_frame(replay, frame, node=selected) if f.kind == "step"]
        if not formulas:
            formulas = formulas_for_frame(replay, frame)
        self.show_formulas(formulas)

    def show_formulas(self, formulas: list) -> None:
        """The formulas' plain lines under the sentence (none: the line is hidden)."""
        self.formulas = formulas
        if len(formulas) <= MAX_FULL:
            lines = [f.plain for f in formulas]
        else:       # Adam's m, v, m_hat, v_hat as their results on one line, then the update in full
            lines = ["; ".join(f.short for f in formulas[:-1][:MAX_SHORT]), formulas[-1].plain]
        self._lines = lines
        text = "\n".join(lines)
        if text != self.math.text():
            self.math.setText(text)
            self._width = 0
        self.math.setVisible(bool(text))

    def show_pending(self, text: str) -> None:
        """While no trace can be shown (a run computes it): a grey pill and ``text``, e.g. the run's progress."""
        self.show_text("no trace yet", T.TEXT_MUTED, "", text)
        self.show_formulas([])

    def show_text(self, phase: str, colour: str, info: str, text: str) -> None:
        self._set_pill_colour(colour)
        if self.pill.text() != phase:
            self.pill.setText(phase)
            self.pill.adjustSize()
            self.info.move(10 + self.pill.width() + 8, 8)
        self.info.setText(info)
        self.info.adjustSize()
        self.text.setText(text)
        self._width = 0                    # re-measure

    def _set_pill_colour(self, colour: str) -> None:
        if colour != self._colour:
            self._colour = colour
            self.pill.setStyleSheet(f"background: {colour}; color: {T.ON_ACCENT}; border-radius: 4px;"
                                    " padding: 1px 6px;")

    def fit(self, width: int, max_height: float | None = None) -> None:
        """Lay out for ``width``; taller than ``max_height`` (a small window), the sentence gives way
        to the formulas, which say the same with the numbers."""
        inner = width - 20
        flags = int(Qt.TextFlag.TextWordWrap)
        h = self.text.fontMetrics().boundingRect(QtCore.QRect(0, 0, inner, 10_000), flags, self.text.text()).height()
        top = 8 + max(self.pill.sizeHint().height(), self.info.sizeHint().height()) + 4
        self.pill.move(10, 8)
        def height(text: str) -> int:
            return self.math.fontMetrics().boundingRect(QtCore.QRect(0, 0, inner, 10_000), flags, text).height()

        lines = self._lines if not self.math.isHidden() else []
        math = "\n".join(lines)
        mh = height(math) if math else 0
        sentence = not (math and max_height is not None and top + h + 5 + mh + 8 > max_height)
        if not sentence and len(lines) > 1 and top + mh + 8 > max_height:
            math = lines[-1]                   # still too tall: the update itself
            mh = height(math)
        if math != self.math.text():
            self.math.setText(math)
        self.text.setVisible(sentence)
        bottom = top
        if sentence:
            self.text.setGeometry(10, top, inner, h)
            bottom += h + (5 if math else 0)
        if math:
            self.math.setGeometry(10, bottom, inner, mh)
            bottom += mh
        size = QtCore.QSize(width, bottom + 8)
        if size != self.size():
            self.setFixedSize(size)
