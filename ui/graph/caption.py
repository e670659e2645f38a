"""The caption over the graph's corner: which phase, where in the iteration, what the event did."""
from __future__ import annotations

from PySide6 import QtCore, QtWidgets

from gradviz.view.phases import phase_label

from .. import theme as T

Qt = QtCore.Qt


class Caption(QtWidgets.QFrame):
    """The phase, the position and one sentence about the current event, over the graph's corner.

    Plain-text labels with a height measured by font metrics: a rich-text QLabel re-laid out every
    frame costs about a millisecond."""

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
        self._colour = None
        self._width = 0
        self.apply_theme()

    def apply_theme(self) -> None:
        """(Re)set the colours from the theme (also after a light/dark switch)."""
        self.setStyleSheet(f"#caption {{ background: {T.CAPTION_BG}; border: 1px solid {T.PANEL_BORDER};"
                           f" border-radius: 8px; }}")
        self.info.setStyleSheet(f"color: {T.TEXT_MUTED}")
        self.text.setStyleSheet(f"color: {T.TEXT}")
        colour, self._colour = self._colour, None
        if colour is not None:
            self._set_pill_colour(colour)

    def show_frame(self, replay, frame) -> None:
        """Show ``frame`` of ``replay``: its phase, its position, and the replay's description of it."""
        phase = phase_label(frame.phase, frame.micro_batch, replay.accumulation_steps)
        self.show_text(phase, T.PHASE_COLOURS.get(frame.phase, T.TEXT_MUTED),
                       f"iteration {replay.iteration} · event {frame.index}/{len(replay) - 1}", frame.description)

    def show_pending(self, text: str) -> None:
        """While no trace can be shown (a run computes it): a grey pill and ``text``, e.g. the run's progress."""
        self.show_text("no trace yet", T.TEXT_MUTED, "", text)

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

    def fit(self, width: int) -> None:
        inner = width - 20
        fm = self.text.fontMetrics()
        h = fm.boundingRect(QtCore.QRect(0, 0, inner, 10_000), int(Qt.TextFlag.TextWordWrap), self.text.text()).height()
        top = 8 + max(self.pill.sizeHint().height(), self.info.sizeHint().height()) + 4
        self.pill.move(10, 8)
        self.text.setGeometry(10, top, inner, h)
        size = QtCore.QSize(width, top + h + 8)
        if size != self.size():
            self.setFixedSize(size)
