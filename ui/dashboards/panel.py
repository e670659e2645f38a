"""What every dashboard panel shares: the ``PlotPanel`` base (live refresh, cursor, hover, pick),
the ``Selection`` of series the panels show (for every run) and of runs hidden, and the plots' look.

A panel takes the Document in its constructor, refreshes live (at most ~10 Hz) while a run is in
progress and once more when it finishes, creates its curves once and only ``setData``s them,
shows exact values under the mouse, and calls ``on_pick(step)`` when a point is clicked.

Responsiveness: a panel whose refresh is costly (``defer_when_hidden``: the small multiples) only
notes a refresh while it is hidden (another tab) and catches up when shown, in a turn of the event
loop of its own (``Slices``: the grid shows seven panels at once); work it spreads over several
turns completes at once with ``finish_pending()`` (tests, exports). No plot has a context menu
(making one took half of a plot's making).
"""
from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from gradviz.view.series import Series, SeriesCache, available_series, default_series

from .. import theme as T
from ..turn_budget import TURN

# colours: the theme's (ui/theme.py), read when used: they change with a light/dark switch

LIVE_INTERVAL_S = 0.1          # refresh at most ~10 Hz while a run is in progress ...
LIVE_SPACING = 3.0             # ... and wait 3x as long as the last live refresh took


class Selection(QtCore.QObject):
    """Which parameter series the panels draw (every run's) and which runs or series a legend click
    hid. ``variant`` is the current run, the ViewState's (the toolbar chooses it): the panels draw it
    thicker; ``changed`` also fires when it changes."""
    changed = QtCore.Signal()
    hiddenChanged = QtCore.Signal()          # a legend click showed or hid a run or a series

    def __init__(self, document, view_state, parent=None):
        super().__init__(parent)
        self.document = document
        self.view_state = view_state
        self.series: list[Series] = []
        self.labels: list[str] = []
        self._signature = None
        self.hidden: set[tuple] = set()      # legend keys the user switched off: ("run", i), ("series", label)
        view_state.variantChanged.connect(lambda _i: self.changed.emit())
        document.opened.connect(self._forget_hidden)    # another scenario: its runs all show

    @property
    def variant(self) -> int:
        return self.view_state.variant

    def history(self, variant: int | None = None):
        histories = self.document.histories
        i = self.variant if variant is None else variant
        return histories[i] if 0 <= i < len(histories) else None

    def chosen(self) -> list[Series]:
        by_label = {s.label: s for s in self.series}
        return [by_label[label] for label in self.labels if label in by_label]

    def set_labels(self, labels: list[str]) -> None:
        if list(labels) != self.labels:
            self.labels = list(labels)
            self.changed.emit()

    def is_hidden(self, key) -> bool:
        return key is not None and key in self.hidden

    def toggle(self, key) -> None:
        """Show or hide the run or series ``key`` in every panel (a click on its legend entry)."""
        self.hidden.symmetric_difference_update({key})
        self.hiddenChanged.emit()

    def _forget_hidden(self) -> None:
        if self.hidden:
            self.hidden.clear()
            self.hiddenChanged.emit()

    def sync(self) -> bool:
        """Pick up new parameter names/shapes; True when the series changed."""
        h = self.history()
        if h is None or not getattr(h, "params", None):
            return False
        signature = tuple((n, tuple(np.shape(h.params[n])[1:])) for n in h.param_names)
        if signature == self._signature:
            return False
        self._signature = signature
        self.series = available_series(h)
        self.labels = default_series(self.series)
        return True


# -- the look of the plots ---------------------------------------------------------------------
LEGEND_POINT_SIZE = 8.0
SWATCH_PX = 22                 # the line drawn before each legend label
MIN_LEGEND_COLUMN_PX = 190     # long variant names need about this much


class LegendEntry(pg.GraphicsWidget):
    """One legend row: a short line in the curve's pen, then the name, both centred on one line.

    It paints both itself (no separate label item that a tall layout row could move away from its
    swatch); a click shows or hides the run or series in every panel (``Legend.toggled``)."""

    def __init__(self, legend: Legend, key, name: str, pen: QtGui.QPen):
        super().__init__()
        self.legend, self.key, self.name, self.pen = legend, key, name, QtGui.QPen(pen)
        self.text = name                      # as pyqtgraph's legend labels call it
        self.hidden = False
        self.font = QtGui.QFont()
        self.font.setPointSizeF(LEGEND_POINT_SIZE)
        metrics = QtGui.QFontMetricsF(self.font)
        width = SWATCH_PX + 6 + metrics.horizontalAdvance(name) + 4
        height = metrics.height() + 4
        for setter in (self.setMinimumSize, self.setPreferredSize, self.setMaximumSize):
            setter(width, height)
        self.setAcceptedMouseButtons(QtCore.Qt.MouseButton.LeftButton)
        self.setCursor(QtCore.Qt.CursorShape.PointingHandCursor)
        self.setToolTip(f"Click to hide or show {name} in every plot")

    def swatch_rect(self) -> QtCore.QRectF:
        """Where the line is drawn (item coordinates): vertically centred in the row."""
        return QtCore.QRectF(0, self.size().height() / 2 - 1.5, SWATCH_PX, 3)

    def text_rect(self) -> QtCore.QRectF:
        """Where the name is drawn: the row's height, text centred vertically in it."""
        return QtCore.QRectF(SWATCH_PX + 6, 0, self.size().width() - SWATCH_PX - 6, self.size().height())

    def boundingRect(self) -> QtCore.QRectF:
        return QtCore.QRectF(0, 0, self.size().width(), self.size().height())

    def paint(self, p, *_args):
        pen = QtGui.QPen(self.pen)
        pen.setWidthF(max(2.0, pen.widthF() + 0.5))          # the current run's entry: thicker
        pen.setCosmetic(True)
        colour = QtGui.QColor(pen.color())
        if self.hidden:
            colour.setAlpha(60)
        pen.setColor(colour)
        y = self.swatch_rect().center().y()
        p.setPen(pen)
        p.drawLine(QtCore.QPointF(1, y), QtCore.QPointF(SWATCH_PX - 1, y))
        text = QtGui.QColor(T.TEXT_FAINT if self.hidden else T.PLOT_FOREGROUND)
        p.setPen(text)
        font = QtGui.QFont(self.font)
        font.setStrikeOut(self.hidden)
        p.setFont(font)
        p.drawText(self.text_rect(), int(QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter),
                   self.name)

    def mouseClickEvent(self, event):
        if event.button() == QtCore.Qt.MouseButton.LeftButton:
            event.accept()
            self.legend.toggled.emit(self.key)


class Legend(pg.GraphicsWidget):
    """The runs' (or series') names and colours, in the order given (the main run first), row by row
    in as many columns as fit; entries are rebuilt only when the names, pens or order change."""
    toggled = QtCore.Signal(object)           # the key of the entry clicked

    def __init__(self, columns: int = 3):
        super().__init__()
        self.grid = QtWidgets.QGraphicsGridLayout()
        self.grid.setContentsMargins(40, 2, 4, 2)
        self.grid.setHorizontalSpacing(18)
        self.grid.setVerticalSpacing(0)
        self.setLayout(self.grid)
        self.columns = max(1, columns)
        self.entries: list[LegendEntry] = []
        self._signature = None
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Preferred, QtWidgets.QSizePolicy.Policy.Fixed)

    @property
    def names(self) -> list[str]:
        return [e.name for e in self.entries]

    @property
    def items(self) -> list[tuple[LegendEntry, LegendEntry]]:
        """(sample, label) pairs like pyqtgraph's LegendItem.items (here one item draws both)."""
        return [(e, e) for e in self.entries]

    def set_entries(self, entries: list[tuple], hidden: set = frozenset()) -> None:
        """``entries``: (key, name, pen) in display order."""
        signature = tuple((key, name, pen.color().name(QtGui.QColor.NameFormat.HexArgb), pen.style().value,
                           pen.widthF()) for key, name, pen in entries)
        if signature != self._signature:
            self._signature = signature
            for entry in self.entries:
                self.grid.removeItem(entry)
                entry.setParentItem(None)
                if entry.scene() is not None:
                    entry.scene().removeItem(entry)
            self.entries = [LegendEntry(self, key, name, pen) for key, name, pen in entries]
            self._place()
        self.set_hidden(hidden)

    def clear(self) -> None:
        self.set_entries([])

    def set_hidden(self, hidden) -> None:
        for entry in self.entries:
            if entry.hidden != (entry.key in hidden):
                entry.hidden = entry.key in hidden
                entry.update()

    def set_columns(self, columns: int) -> None:
        columns = max(1, int(columns))
        if columns != self.columns:
            self.columns = columns
            self._place()

    def _place(self) -> None:
        """Row-major: the first entry top-left, the second beside it, and so on."""
        while self.grid.count():
            self.grid.removeAt(self.grid.count() - 1)
        for i, entry in enumerate(self.entries):
            self.grid.addItem(entry, i // self.columns, i % self.columns,
                              QtCore.Qt.AlignmentFlag.AlignLeft | QtCore.Qt.AlignmentFlag.AlignVCenter)
        rows = -(-len(self.entries) // self.columns)
        height = sum(e.maximumHeight() for e in self.entries[::self.columns]) + 4 if rows else 0
        self.setMinimumHeight(height)
        self.setMaximumHeight(height)
        self.setVisible(bool(self.entries))
        self.updateGeometry()


def make_legend(columns: int = 3) -> Legend:
    return Legend(columns)


def style_plot(plot: pg.PlotItem) -> None:
    for name in ("left", "bottom", "right", "top"):
        axis = plot.getAxis(name)
        axis.setPen(pg.mkPen(T.PLOT_FOREGROUND))
        axis.setTextPen(pg.mkPen(T.PLOT_FOREGROUND))
        # plain numbers: SI prefixes read "loss (x1e+27)" on a log axis and "(x0.001)" on a bias of 0.5
        axis.enableAutoSIPrefix(False)
    # no grid: pyqtgraph draws it as part of the axes, over the whole plot, and a cursor move then
    # repaints it in every panel (74 ms instead of 15 ms per iteration change, all panels visible)
    plot.setMenuEnabled(False)
    plot.hideButtons()


def make_pen(colour: str, width: float = 1.0, alpha: int = 255, dash: bool = False) -> QtGui.QPen:
    c = QtGui.QColor(colour)
    c.setAlpha(alpha)
    pen = pg.mkPen(c, width=width)
    if dash:
        pen.setStyle(QtCore.Qt.PenStyle.DashLine)
    return pen


def faint_pen(colour: str, alpha: int, width: float = 1.0) -> QtGui.QPen:
    """``colour`` as it shows at ``alpha`` over the plot's background, but opaque. Qt strokes a
    translucent pen's whole path as one polygon (so that overlaps do not blend twice): the 222
    micro-batch lines at the limit, nearly on top of each other, took 46-115 ms per paint that way;
    an opaque pen draws each segment directly (overlapping lines no longer darken each other)."""
    return pg.mkPen(T._mix(T.PLOT_BACKGROUND, colour, alpha / 255), width=width)


def line_width(n: int) -> float:
    """Thicker lines read better on short runs; long ones stay at width 1 (several times faster)."""
    return 1.5 if n <= 500 else 1.0


def cached(item):
    """Paint ``item`` once into a device pixmap and reuse it until the item itself changes.

    A moving cursor then only blits the curves and axes (with their grid) under it instead of
    redrawing thousands of segments: the difference between ~45 ms and ~5 ms per frame."""
    item.setCacheMode(QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache)
    return item


class _Unbounded:
    """For items added with ``ignoreBounds``: moving them must not make the ViewBox re-autorange.

    pyqtgraph's GraphicsObject tells its ViewBox on every move (even ignored items), and the ViewBox
    answers with an autorange pass and a repaint of the whole plot: per cursor move, in every panel.
    """
    def informViewBoundsChanged(self):
        pass


class Cursor(_Unbounded, pg.InfiniteLine):
    pass


class Marker(_Unbounded, pg.ScatterPlotItem):
    pass


class Segment(_Unbounded, pg.PlotCurveItem):
    pass


# -- work spread over turns of the event loop ------------------------------------------------------
TURN_BUDGET_S = 0.015          # the panels' deferred work takes about this long per turn (at least one job)


class Slices(QtCore.QObject):
    """One zero-timer for every panel's deferred work (separate zero-timers would all fire in the same
    turn, their times adding up): each turn runs queued jobs, round-robin, for about
    ``TURN_BUDGET_S``, less what the turn's other work (the graph's text, the player's tick) already
    took (``ui/turn_budget.py``). A job is ``job(deadline) -> bool``: it works until ``time.perf_counter()``
    passes ``deadline`` (doing at least a little) and says whether it has more to do."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self.jobs: dict = {}                   # owner -> job, in turn order
        self.turns = 0
        self.ran_this_turn = 0                 # jobs run so far in the turn under way
        self._turn_spent = False
        self._first = None                     # a job waiting for a turn of its own (``alone``)
        self._timer = QtCore.QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(0)
        self._timer.timeout.connect(self._run)

    def add(self, owner, job) -> None:
        self.jobs.setdefault(owner, job)
        if not self._timer.isActive():
            self._timer.start(0)

    def discard(self, owner) -> None:
        self.jobs.pop(owner, None)

    def end_turn(self) -> None:
        """For a job whose cost comes after it returns (a panel it showed paints when the turn ends):
        no other job runs in this turn."""
        self._turn_spent = True

    def alone(self, owner) -> bool:
        """For a job that wants a turn of its own (it cannot stop half-way): True when no job ran
        before it in this turn; else the turn ends here and ``owner``'s job (which must then return
        True) comes first in the next."""
        if self.ran_this_turn == 0:
            return True
        self._first = owner
        self._turn_spent = True
        return False

    def _run(self) -> None:
        self.turns += 1
        self._turn_spent = False
        self.ran_this_turn = 0
        deadline = TURN.deadline(TURN_BUDGET_S)     # what this turn's other slices left (turn_budget.py)
        try:
            for owner in list(self.jobs):
                job = self.jobs.pop(owner, None)
                if job is None:
                    continue
                more = job(deadline)
                self.ran_this_turn += 1
                if more and owner == self._first:
                    self.jobs = {owner: job, **self.jobs}      # first in the next turn
                elif more:
                    self.jobs[owner] = job     # more next turn, after the others
                if self._turn_spent or time.perf_counter() >= deadline:
                    break
        finally:                               # (a job that raised is dropped; the others go on)
            if self.jobs:
                # 1 ms, not 0: a zero-timer started again ran the next turn before other timers were
                # due (two turns, or a turn and a paint, back to back)
                self._timer.start(1)


_slices: Slices | None = None


def slices() -> Slices:
    """The application's one ``Slices``."""
    global _slices
    if _slices is None:
        _slices = Slices(QtWidgets.QApplication.instance())
    return _slices


# -- the base panel ----------------------------------------------------------------------------
class PlotPanel(QtWidgets.QWidget):
    """A header (title, options) above a pyqtgraph layout; live refresh, cursor, hover and pick."""
    title = ""
    defer_when_hidden = False     # a refresh while hidden waits until the panel is shown

    def __init__(self, document, selection: Selection, on_pick=None, parent=None):
        super().__init__(parent)
        self.document = document
        self.selection = selection
        self.on_pick = on_pick
        self.iteration = 0
        self.refreshes = 0
        self._next_live = 0.0                  # the earliest time of the next live refresh
        self._deferred = False             # a refresh came while hidden (``defer_when_hidden``)
        self._finishing = False
        self.cache = SeriesCache()
        self.header = QtWidgets.QHBoxLayout()
        self.header.setContentsMargins(6, 2, 6, 0)
        label = QtWidgets.QLabel(f"<b>{self.title}</b>")
        self.header.addWidget(label)
        # a decimated History (``History.reduction``) says so under the plots' title
        self.reduction_note = QtWidgets.QLabel()
        self.reduction_note.setStyleSheet("color: #6b7280; font-style: italic;")
        self.reduction_note.hide()
        self.header.addWidget(self.reduction_note)
        self.header.addStretch(1)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground(T.PLOT_BACKGROUND)
        self.view.ci.setContentsMargins(4, 4, 8, 4)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(self.header)
        layout.addWidget(self.view, 1)
        self.setMinimumSize(260, 180)
        self._hovers: dict[pg.PlotItem, pg.TextItem] = {}
        self.view.scene().sigMouseMoved.connect(self._on_mouse_moved)
        self.view.scene().sigMouseClicked.connect(self._on_mouse_clicked)
        document.runStarted.connect(self._on_run_started)
        document.runProgress.connect(self._on_run_progress)
        document.runFinished.connect(self.refresh)
        document.scenarioChanged.connect(self.cache.clear)
        document.opened.connect(self.clear_data)      # no plot shows a run of another scenario
        document.failed.connect(lambda _msg: self.refresh())
        self.selection.changed.connect(self.refresh)
        self.selection.hiddenChanged.connect(self.apply_hidden)
        T.notifier.changed.connect(self._on_theme_changed)
        self.destroyed.connect(lambda *_a, key=self._catch_up_key: slices().discard(key))
        self.destroyed.connect(lambda *_a, key=self._live_key: slices().discard(key))

    def _on_theme_changed(self) -> None:
        """A light/dark switch: ui.theme_switch has re-coloured the items of the old palette; repaint
        the ones that read the theme when they paint (legend entries, cached curves)."""
        self.view.setBackground(T.PLOT_BACKGROUND)
        for item in self.view.scene().items():
            item.update()
        self.refresh()                                # pens mixed with the background (faint_pen)

    # plumbing shared by the subclasses
    def _new_plot(self, row: int, col: int = 0, cursor: bool = True, place: bool = True, **kw) -> pg.PlotItem:
        """A styled plot with a cursor and a hover box, in the view's grid at (row, col) (``place``;
        else the caller places it)."""
        # no context menus (``style_plot`` turns them off): making them took half of a plot's making
        kw.setdefault("enableMenu", False)
        plot = self.view.addPlot(row=row, col=col, **kw) if place else pg.PlotItem(**kw)
        style_plot(plot)
        plot.setDownsampling(auto=True, mode="peak")
        plot.setClipToView(True)
        if cursor:
            line = Cursor(pos=0, angle=90, movable=False,
                          pen=pg.mkPen(T.PLOT_CURSOR, width=1, style=QtCore.Qt.PenStyle.DashLine))
            line.setZValue(20)
            plot.addItem(line, ignoreBounds=True)
            plot.cursor = line
        hover = pg.TextItem(color=T.PLOT_FOREGROUND, anchor=(0, 1), fill=pg.mkBrush(T.colour(T.PLOT_HOVER_FILL, 0.92)),
                            border=pg.mkPen(T.PLOT_HOVER_BORDER))
        hover.setZValue(100)
        hover.hide()
        plot.addItem(hover, ignoreBounds=True)
        self._hovers[plot] = hover
        return plot

    def set_y_label(self, plot: pg.PlotItem, text: str, short: str | None = None) -> None:
        """The left axis's name; ``short`` replaces it while the plot is too short for ``text``
        (a rotated label longer than its axis is cut off at both ends)."""
        plot.y_labels = (text, short or text)
        axis = plot.getAxis("left")
        if not getattr(axis, "fits_label", False):
            axis.fits_label = True
            axis.geometryChanged.connect(lambda plot=plot: self._fit_y_label(plot))
        self._fit_y_label(plot)

    @staticmethod
    def _fit_y_label(plot: pg.PlotItem) -> None:
        if getattr(plot, "y_labels", None) is None:       # a reused small plot without a y label now
            return
        text, short = plot.y_labels
        axis = plot.getAxis("left")
        room = axis.geometry().height() - 8
        width = QtGui.QFontMetricsF(axis.label.font()).horizontalAdvance(text)
        wanted = text if width <= room or room <= 0 else short
        if axis.labelText != wanted:
            plot.setLabel("left", wanted)

    def legends(self) -> list[Legend]:
        return [p.legend_box for p in self._hovers if getattr(p, "legend_box", None) is not None]

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self._fit_legends()

    def _fit_legends(self) -> None:
        """As many legend columns as the width allows (long variant names need about 190 px)."""
        columns = max(1, self.width() // MIN_LEGEND_COLUMN_PX)
        for legend in self.legends():
            if getattr(legend, "beside_plot", False):
                continue                      # a one-column legend to the right of its plot
            legend.set_columns(columns)

    def apply_hidden(self) -> None:
        """Show or hide the curves of the runs and series switched off in a legend (every panel)."""
        for legend in self.legends():
            legend.set_hidden(self.selection.hidden)

    def clear_data(self) -> None:
        """Show nothing (another scenario opened: its data comes with its run), legends included."""
        for legend in self.legends():
            legend.clear()

    def plots(self) -> list[pg.PlotItem]:
        return list(self._hovers)

    def _plot_at(self, scene_pos):
        for plot in self._hovers:
            if plot.isVisible() and plot.vb.sceneBoundingRect().contains(scene_pos):
                return plot
        return None

    def _on_run_started(self) -> None:
        self.cache.clear()
        self._next_live = 0.0

    @property
    def _live_key(self) -> tuple:
        return ("live", id(self))

    def _on_run_progress(self, _done: int, _total: int) -> None:
        """A live refresh while a run is in progress, in a turn of its own (``Slices``) rather than in
        the progress pump's: that turn already updates the progress bar and the graph's caption, and a
        large run's loss plot (its refresh and then its axes' repaint) took as long again (limit_data:
        turns of 45-68 ms). At most every ``LIVE_INTERVAL_S``, and ``LIVE_SPACING`` times the last
        refresh's cost."""
        if not self.isVisible():            # a hidden tab catches up when the run finishes
            return
        now = time.perf_counter()
        if now >= self._next_live:
            self._next_live = now + LIVE_INTERVAL_S
            slices().add(self._live_key, self._live_refresh)

    def _live_refresh(self, _deadline: float) -> bool:
        """The ``Slices`` job of a live refresh (none once the run has ended: its own refresh follows)."""
        if not (self.isVisible() and self.document.running):
            return False
        if not slices().alone(self._live_key):
            return True
        start = time.perf_counter()
        self.refresh()
        end = time.perf_counter()
        self._next_live = max(self._next_live, end + LIVE_SPACING * (end - start))
        slices().end_turn()                    # its repaint comes after the turn
        return False

    def refresh(self) -> None:
        if self.defer_when_hidden and not self._finishing and not self.isVisible():
            self._deferred = True           # caught up in showEvent (or finish_pending)
            self._defer()
            return
        self._deferred = False
        self.selection.sync()
        self.refreshes += 1
        self._refresh()
        self.apply_hidden()
        self._show_reduction()
        self.set_iteration(self.iteration)

    def _defer(self) -> None:
        """A refresh was put off (hidden): drop work already scheduled (it is redone when shown)."""

    def _needs_catch_up(self) -> bool:
        """Whether being shown calls for a refresh (one put off while hidden; subclasses add theirs)."""
        return self._deferred

    @property
    def _catch_up_key(self) -> tuple:
        return ("catch up", id(self))

    def showEvent(self, event) -> None:
        # the refresh put off while hidden comes in a turn of its own (``Slices``), not in the one that
        # shows the panel: the grid shows every panel at once and would refresh them all in one turn
        super().showEvent(event)
        if self._needs_catch_up():
            slices().add(self._catch_up_key, self._catch_up)

    def _catch_up(self, _deadline: float) -> bool:
        """The ``Slices`` job queued by ``showEvent``: one refresh, in a turn of its own (none when
        hidden again meanwhile)."""
        if not (self.isVisible() and self._needs_catch_up()):
            return False
        if not slices().alone(self._catch_up_key):
            return True
        self.refresh()
        slices().end_turn()                    # its repaint comes after the turn
        return False

    def finish_pending(self) -> None:
        """Complete now whatever the panel put off: a refresh deferred while hidden (or queued when
        shown), plots still to be built or filled over the next turns of the event loop. The panel then
        shows its full state."""
        slices().discard(self._catch_up_key)
        if self._deferred or (self.isVisible() and self._needs_catch_up()):
            self._finishing = True
            try:
                self.refresh()
            finally:
                self._finishing = False

    def _show_reduction(self) -> None:
        """``History.reduction``: one line saying how a long run was decimated ("" when it was not)."""
        h = self.selection.history()
        text = str(getattr(h, "reduction", "") or "") if h is not None else ""
        self.reduction_note.setText(text)
        self.reduction_note.setToolTip(text)
        self.reduction_note.setVisible(bool(text))

    def _refresh(self) -> None:
        raise NotImplementedError

    def set_iteration(self, k: int) -> None:
        self.iteration = int(k)
        for plot in self._hovers:
            cursor = getattr(plot, "cursor", None)
            if isinstance(cursor, Cursor):          # else QGraphicsItem.cursor(): a plot made without one
                cursor.setPos(self.iteration)

    # hover and pick
    def _on_mouse_moved(self, scene_pos) -> None:
        plot = self._plot_at(scene_pos)
        for p, hover in self._hovers.items():
            if p is not plot:
                hover.hide()
        if plot is None:
            return
        point = plot.vb.mapSceneToView(scene_pos)
        html = self.hover_html(plot, point.x(), point.y())
        hover = self._hovers[plot]
        if not html:
            hover.hide()
            return
        hover.setHtml(html)
        # keep the box inside the view: flip to the other side of the mouse near the edges
        rect = plot.vb.sceneBoundingRect()
        right = scene_pos.x() > rect.center().x()
        low = scene_pos.y() > rect.center().y()
        hover.setAnchor((1.0 if right else 0.0, 1.0 if low else 0.0))
        hover.setPos(point.x(), point.y())     # view coordinates (log10 ones in log mode)
        hover.show()

    def leaveEvent(self, event):
        for hover in self._hovers.values():
            hover.hide()
        super().leaveEvent(event)

    def _on_mouse_clicked(self, event) -> None:
        if event.button() != QtCore.Qt.MouseButton.LeftButton or event.double():
            return
        plot = self._plot_at(event.scenePos())
        if plot is None:
            return
        point = plot.vb.mapSceneToView(event.scenePos())
        step = self.pick(plot, point.x(), point.y())
        if step is not None and self.on_pick is not None:
            event.accept()
            self.on_pick(int(step))

    def hover_html(self, plot, x: float, y: float) -> str:
        return ""

    def pick(self, plot, x: float, y: float) -> int | None:
        return None
