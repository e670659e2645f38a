"""The Lesson panel: the scenario's title and description beside the graph, and its guided tour.

``LessonPanel(document, view_state, player, show_node=..., show_plot=...)`` follows the Document:
another scenario shows its title, its description (a script's: its header comment) and its tour
(``gradviz.view.tour``: a TOML ``[[tour]]`` or a script's ``# tour:`` comments), the tour not yet
started. **Next** / **Back** (the buttons, or ``act_next`` / ``act_back``: Alt+→ / Alt+←) go to a
stop: the ViewState shows its run and iteration, and once that iteration's trace is in the Player
(at once for a TOML scenario; a script's may arrive later, ``Player.replayChanged``), the Player
is put at the stop's frame, ``show_node(node_id)`` highlights its node (or the selection is
cleared) and ``show_plot(title)`` raises its dashboard tab. Where a stop lands is the view
model's rule (``gradviz.view.tour.resolve``); this panel only shows it.
"""
from __future__ import annotations

import html
import re

from PySide6 import QtCore, QtGui, QtWidgets

from gradviz.scenario import ScenarioError
from gradviz.view.phases import phase_title
from gradviz.view.tour import lesson_tour, resolve, stop_label, stop_variant

from . import theme as T

COMPACT_BELOW = 150          # px: a shorter panel shows only the tour (the description inside it)
NEXT_KEYS = ("Alt+Right",)
BACK_KEYS = ("Alt+Left",)


_EMPHASIS = re.compile(r"\*([^*\s](?:[^*]*[^*\s])?)\*")      # *adds*: the lessons' emphasis
_CODE = re.compile(r"`([^`]+)`")


def paragraphs_html(text: str) -> str:
    """Plain text as HTML paragraphs (an empty line, or a line break in a tour stop, starts one);
    ``*word*`` is shown in italics and ```code``` in a fixed-width font, as the lessons write them."""
    parts = [" ".join(p.split()) for p in text.replace("\r", "").split("\n") if p.strip()]
    out = []
    for part in parts:
        part = _CODE.sub(r"<code>\1</code>", html.escape(part, quote=False))
        out.append("<p>" + _EMPHASIS.sub(r"<i>\1</i>", part) + "</p>")
    return "".join(out)


class _ElidedTitle(QtWidgets.QLabel):
    """One line that ends in "…" when the column is narrow; ``text()`` is the whole text (also its
    tooltip when cut)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._full = ""

    def setText(self, text: str) -> None:  # noqa: N802 (Qt's name)
        self._full = text
        self._elide()

    def text(self) -> str:
        return self._full

    def resizeEvent(self, event) -> None:  # noqa: N802
        super().resizeEvent(event)
        self._elide()

    def _elide(self) -> None:
        shown = self.fontMetrics().elidedText(self._full, QtCore.Qt.TextElideMode.ElideRight, max(self.width(), 0))
        self.setToolTip(self._full if shown != self._full else "")
        if shown != super().text():
            super().setText(shown)


class LessonPanel(QtWidgets.QWidget):
    """See the module docstring. ``index`` is the stop shown (-1: the tour not started)."""

    stopChanged = QtCore.Signal(int)          # the stop now shown (-1: none)

    def __init__(self, document, view_state, player, *, show_node=None, show_plot=None, parent=None):
        super().__init__(parent)
        self.setObjectName("lessonPanel")
        self.document, self.view_state, self.player = document, view_state, player
        self._show_node = show_node or (lambda node_id: view_state.select_node(node_id))
        self._show_plot = show_plot or (lambda title: None)
        self.stops: list = []
        self.index = -1
        self.tour_error = ""
        self.compact = False                    # too short for title and description: the tour only
        self._pending: tuple | None = None      # (index, variant, iteration) waiting for its trace

        self.title = QtWidgets.QLabel()
        self.title.setObjectName("lessonTitle")
        self.title.setWordWrap(True)
        self.title.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
        self.description = QtWidgets.QTextBrowser()
        self.description.setObjectName("lessonDescription")
        self.description.setOpenExternalLinks(False)
        self.description.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.description.setMinimumHeight(24)
        self.title.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)

        self.tour_box = QtWidgets.QFrame()
        self.tour_box.setObjectName("tourBox")
        self.tour_box.setFrameShape(QtWidgets.QFrame.Shape.StyledPanel)
        self.stop_title = _ElidedTitle()
        self.stop_title.setObjectName("tourStopTitle")
        # it gives up width to the buttons rather than widen the column (800 × 600 has room for both)
        self.stop_title.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        self.stop_title.setMinimumWidth(40)
        self.stop_where = QtWidgets.QLabel()
        self.stop_where.setObjectName("tourStopWhere")
        self.stop_where.setWordWrap(True)
        self.stop_text = QtWidgets.QTextBrowser()          # scrolls when the panel is short
        self.stop_text.setObjectName("tourStopText")
        self.stop_text.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.stop_text.setMinimumHeight(24)
        self.stop_text.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        self.description.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)
        for browser in (self.description, self.stop_text):   # the stretch factors share the room
            browser.setSizePolicy(QtWidgets.QSizePolicy.Policy.Preferred, QtWidgets.QSizePolicy.Policy.Ignored)
        self.act_back = self._action("Previous tour stop", BACK_KEYS, self.back)
        self.act_next = self._action("Next tour stop", NEXT_KEYS, self.next)
        self.back_button = QtWidgets.QToolButton()
        self.back_button.setText("◀ Back")
        self.next_button = QtWidgets.QToolButton()
        self.next_button.setText("Next ▶")
        for button, action in ((self.back_button, self.act_back), (self.next_button, self.act_next)):
            button.setFocusPolicy(QtCore.Qt.FocusPolicy.NoFocus)       # the keys stay the player's
            button.setToolTip(action.toolTip())
            button.clicked.connect(action.trigger)
        buttons = QtWidgets.QHBoxLayout()
        buttons.setContentsMargins(0, 0, 0, 0)
        buttons.addWidget(self.stop_title, 1)
        buttons.addWidget(self.back_button)
        buttons.addWidget(self.next_button)
        box = QtWidgets.QVBoxLayout(self.tour_box)
        box.setContentsMargins(8, 4, 6, 4)
        box.setSpacing(2)
        box.addLayout(buttons)
        box.addWidget(self.stop_where)
        box.addWidget(self.stop_text, 1)

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(6, 4, 6, 6)
        layout.setSpacing(4)
        layout.addWidget(self.title)
        layout.addWidget(self.description, 2)
        layout.addWidget(self.tour_box, 3)
        self._layout = layout
        self._restyle()
        if hasattr(T, "notifier"):
            T.notifier.changed.connect(self._restyle)

        document.opened.connect(self._on_opened)
        document.scenarioChanged.connect(self._on_scenario_changed)
        player.replayChanged.connect(self._on_replay_changed)
        self._on_opened()

    def _action(self, text: str, keys, slot) -> QtGui.QAction:
        action = QtGui.QAction(text, self)
        action.setShortcuts([QtGui.QKeySequence(k) for k in keys])
        action.setShortcutContext(QtCore.Qt.ShortcutContext.WindowShortcut)
        shown = QtGui.QKeySequence(keys[0]).toString(QtGui.QKeySequence.SequenceFormat.NativeText)
        action.setToolTip(f"{text} ({shown})")
        action.triggered.connect(slot)
        return action

    def _restyle(self) -> None:
        self.title.setFont(T.ui_font(12, bold=True))
        self.stop_title.setFont(T.ui_font(10, bold=True))
        self.stop_where.setStyleSheet(f"color: {T.TEXT_MUTED};")
        self.stop_text.setFont(T.ui_font(10))
        self.description.setFont(T.ui_font(9.5))
        self.tour_box.setStyleSheet(f"QFrame#tourBox {{ background: {T.PANEL}; border: 1px solid "
                                    f"{T.PANEL_BORDER}; border-radius: 6px; }}")
        for browser in (self.description, self.stop_text):      # text on the panel, not in a white box
            # by palette, not a style sheet: a style sheet on a scroll area draws its scroll bars in
            # the style sheet's fallback look (a black or missing handle), not Fusion's
            browser.viewport().setAutoFillBackground(False)
            browser.document().setDocumentMargin(2)

    def set_compact(self, compact: bool) -> None:
        """A short panel (an 800 × 600 window) shows the tour box alone: its text area shows the
        description until the tour starts, and the dock's title says "Lesson"."""
        if compact != self.compact:
            self.compact = compact
            self.title.setVisible(not compact)
            self.description.setVisible(not compact)
            self._show_stop()

    # -- following the document ----------------------------------------------------------------
    def _on_opened(self) -> None:
        self.index, self._pending = -1, None
        self._load()

    def _on_scenario_changed(self) -> None:
        """An edit (or another scenario: ``opened`` came first) may change the title or the tour."""
        before = list(self.stops)
        self._load()
        if self.stops != before:
            self.index, self._pending = -1, None
        self._show_stop()

    def _load(self) -> None:
        scenario = self.document.scenario
        self.title.setText(scenario.title if scenario is not None else "")
        text = scenario.description if scenario is not None else ""
        self.description.setHtml(paragraphs_html(text) or "<p><i>No description.</i></p>")
        try:
            self.stops, self.tour_error = lesson_tour(scenario), ""
        except ScenarioError as exc:            # a script's bad "# tour:" comment: say which
            self.stops, self.tour_error = [], str(exc)
        self._show_stop()

    # -- going to a stop ---------------------------------------------------------------------------
    def next(self) -> None:
        if self.index + 1 < len(self.stops):
            self.go(self.index + 1)

    def back(self) -> None:
        if self.index > 0:
            self.go(self.index - 1)

    def go(self, index: int) -> None:
        """Show stop ``index``: its run and iteration now, its frame and node once its trace is in."""
        if not 0 <= index < len(self.stops):
            return
        stop = self.stops[index]
        self.index = index
        variant = stop_variant(self.document.scenario, stop)
        self.player.pause()
        self._pending = (index, variant, stop.iteration)
        self.view_state.set_variant(variant)
        self.view_state.set_iteration(stop.iteration)
        self._show_stop()
        self.stopChanged.emit(index)
        self._arrive()

    def _on_replay_changed(self) -> None:
        if self._pending is not None:
            QtCore.QTimer.singleShot(0, self._arrive)     # after the window has shown the new trace

    def _arrive(self) -> None:
        """Put the Player at the pending stop once its iteration's trace is the one it shows."""
        if self._pending is None:
            return
        index, variant, iteration = self._pending
        replay = self.player.replay
        # the ViewState fits the iteration to the run: a script's stop past its end shows the last one
        if (replay is None or self.view_state.variant != variant
                or replay.iteration != self.view_state.iteration):
            return
        self._pending = None
        stop = self.stops[index]
        place = resolve(replay, stop)
        self.player.seek(place.frame)
        self.stop_where.setText(self._where(stop, replay.frame(place.frame).phase))
        if place.node is not None:
            self._show_node(place.node)
        else:
            self.view_state.select_node(None)
        if stop.plot:
            self._show_plot(stop.plot)

    @property
    def arrived(self) -> bool:
        """The Player is at the current stop (no stop waits for its trace)."""
        return self.index >= 0 and self._pending is None

    # -- showing ---------------------------------------------------------------------------------
    def _show_stop(self) -> None:
        n = len(self.stops)
        self.tour_box.setVisible(bool(n) or bool(self.tour_error) or self.compact)
        # on the tour, its text gets the room (the description a few lines); before it, the description
        touring = self.index >= 0
        self._layout.setStretchFactor(self.description, 1 if touring else 3)
        lines = self.description.fontMetrics().lineSpacing()
        self.description.setMaximumHeight(int(lines * 3.6) if touring else 16777215)
        self.act_back.setEnabled(self.index > 0)
        self.act_next.setEnabled(self.index + 1 < n)
        self.back_button.setEnabled(self.act_back.isEnabled())
        self.next_button.setEnabled(self.act_next.isEnabled())
        self.back_button.setVisible(n > 0)
        self.next_button.setVisible(n > 0)
        if self.tour_error:
            self.stop_title.setText("Guided tour")
            self.stop_where.hide()
            self.stop_text.setHtml(f"<p>The tour in this script's comments cannot be read:</p>"
                                   f"<p><tt>{html.escape(self.tour_error)}</tt></p>")
            return
        if not 0 <= self.index < n:
            self.stop_title.setText(f"Guided tour · {n} stops" if n else "")
            self.stop_where.hide()
            keys = QtGui.QKeySequence(NEXT_KEYS[0]).toString(QtGui.QKeySequence.SequenceFormat.NativeText)
            intro = (f"<p>Press <b>Next</b> ({html.escape(keys)}) to walk through this lesson step by "
                     "step: the player goes to each stop and the text says what to look at.</p>" if n else "")
            if self.compact:              # the title and the description live in the tour box now
                scenario = self.document.scenario
                self.stop_title.setText(scenario.title if scenario is not None else "")
                intro += paragraphs_html(scenario.description if scenario is not None else "")
            self.stop_text.setHtml(intro)
            return
        stop = self.stops[self.index]
        self.stop_title.setText(stop_label(self.index, n))
        self.stop_where.setText(self._where(stop))
        self.stop_where.setVisible(not self.compact)      # the caption says where, too
        self.stop_text.setHtml(paragraphs_html(stop.text))

    def _where(self, stop, phase: str | None = None) -> str:
        """``Iteration 1 · loss.backward() · run "loss scaling on"``: where the stop is (``phase``:
        the phase of the frame it landed on, once it has)."""
        parts = [f"Iteration {stop.iteration}"]
        if phase or stop.phase:
            parts.append(phase_title(phase or stop.phase))
        if stop.micro_batch is not None:
            parts.append(f"micro-batch {stop.micro_batch + 1}")
        if stop.run:
            parts.append(f"run “{stop.run}”")
        return " · ".join(parts)

    def shown_text(self) -> str:
        """The stop's text as the panel shows it, without markup (for tests and accessibility)."""
        return self.stop_text.toPlainText()



def raise_plot(dock: QtWidgets.QDockWidget, dashboards, title: str) -> bool:
    """Show the dashboards' tab titled ``title`` (its dock shown and raised); False when there is
    no such tab (a plot another build does not have). In the grid every plot shows already."""
    dock.show()
    dock.raise_()
    tabs = getattr(dashboards, "tabs", None)
    if getattr(dashboards, "layout_mode", "tabs") != "tabs" or tabs is None:
        return any(getattr(p, "title", "") == title for p in getattr(dashboards, "panels", []))
    for i in range(tabs.count()):
        if tabs.tabText(i).replace("&", "") == title:
            tabs.setCurrentIndex(i)
            return True
    return False


class _LessonScroll(QtWidgets.QScrollArea):
    """Tells its panel when it is too short for everything (``LessonPanel.set_compact``)."""

    def resizeEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        panel = self.widget()
        if isinstance(panel, LessonPanel):
            panel.set_compact(event.size().height() < COMPACT_BELOW)
        super().resizeEvent(event)


def lesson_scroll(panel: LessonPanel, minimum_height: int = 32) -> QtWidgets.QScrollArea:
    """``panel`` in a scroll area: a short column (an 800 × 600 window) scrolls the lesson rather than
    making the window taller than the screen, and the panel shows only its tour there."""
    scroll = _LessonScroll()
    scroll.setObjectName("lessonScroll")
    scroll.setWidgetResizable(True)
    scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
    scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setWidget(panel)
    scroll.setMinimumHeight(minimum_height)
    return scroll
