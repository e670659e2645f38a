"""What every dashboard panel shares: the ``PlotPanel`` base (live refresh, cursor, hover, pick),
the ``Selection`` of series the panels show (of the ViewState's variant), and the plots' look.

A panel takes the Document in its constructor, refreshes live (at most ~10 Hz) while a run is in
progress and once more when it finishes, creates its curves once and only ``setData``s them,
shows exact values under the mouse, and calls ``on_pick(step)`` when a point is clicked.
"""
from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from gradviz.view.series import Series, SeriesCache, available_series, default_series

BACKGROUND = "#ffffff"
FOREGROUND = "#374151"
CURSOR_COLOUR = "#6b7280"
DIVERGED_COLOUR = "#dc2626"

LIVE_INTERVAL_S = 0.1          # refresh at most ~10 Hz while a run is in progress


class Selection(QtCore.QObject):
    """Which parameter series the panels draw, of the ViewState's variant; ``changed`` also fires
    when that variant changes (the single-variant panels then show another run)."""
    changed = QtCore.Signal()

    def __init__(self, document, view_state, parent=None):
        super().__init__(parent)
        self.document = document
        self.view_state = view_state
        self.series: list[Series] = []
        self.labels: list[str] = []
        self._signature = None
        view_state.variantChanged.connect(lambda _i: self.changed.emit())

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
def make_legend(columns: int = 3) -> pg.LegendItem:
    legend = pg.LegendItem(labelTextColor=FOREGROUND, labelTextSize="8pt", horSpacing=14, verSpacing=-8,
                           pen=None, brush=None, colCount=columns)
    legend.setContentsMargins(40, 0, 0, 0)
    return legend


def style_plot(plot: pg.PlotItem) -> None:
    for name in ("left", "bottom", "right", "top"):
        axis = plot.getAxis(name)
        axis.setPen(pg.mkPen(FOREGROUND))
        axis.setTextPen(pg.mkPen(FOREGROUND))
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


# -- the base panel ----------------------------------------------------------------------------
class PlotPanel(QtWidgets.QWidget):
    """A header (title, options) above a pyqtgraph layout; live refresh, cursor, hover and pick."""
    title = ""

    def __init__(self, document, selection: Selection, on_pick=None, parent=None):
        super().__init__(parent)
        self.document = document
        self.selection = selection
        self.on_pick = on_pick
        self.iteration = 0
        self.refreshes = 0
        self._last_live = 0.0
        self.cache = SeriesCache()
        self.header = QtWidgets.QHBoxLayout()
        self.header.setContentsMargins(6, 2, 6, 0)
        label = QtWidgets.QLabel(f"<b>{self.title}</b>")
        self.header.addWidget(label)
        self.header.addStretch(1)
        self.view = pg.GraphicsLayoutWidget()
        self.view.setBackground(BACKGROUND)
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
        document.failed.connect(lambda _msg: self.refresh())
        self.selection.changed.connect(self.refresh)

    # plumbing shared by the subclasses
    def _new_plot(self, row: int, col: int = 0, cursor: bool = True, **kw) -> pg.PlotItem:
        plot = self.view.addPlot(row=row, col=col, **kw)
        style_plot(plot)
        plot.setDownsampling(auto=True, mode="peak")
        plot.setClipToView(True)
        if cursor:
            line = Cursor(pos=0, angle=90, movable=False,
                          pen=pg.mkPen(CURSOR_COLOUR, width=1, style=QtCore.Qt.PenStyle.DashLine))
            line.setZValue(20)
            plot.addItem(line, ignoreBounds=True)
            plot.cursor = line
        hover = pg.TextItem(color=FOREGROUND, anchor=(0, 1), fill=pg.mkBrush(255, 255, 255, 235),
                            border=pg.mkPen("#9ca3af"))
        hover.setZValue(100)
        hover.hide()
        plot.addItem(hover, ignoreBounds=True)
        self._hovers[plot] = hover
        return plot

    def legends(self) -> list[pg.LegendItem]:
        return [p.legend_box for p in self._hovers if getattr(p, "legend_box", None) is not None]

    def resizeEvent(self, event):
        super().resizeEvent(event)
        self._fit_legends()

    def _fit_legends(self) -> None:
        """As many legend columns as the width allows (long variant names need about 190 px)."""
        columns = max(1, self.width() // 190)
        for legend in self.legends():
            if getattr(legend, "beside_plot", False):
                continue                      # a one-column legend to the right of its plot
            if legend.columnCount != columns:
                legend.setColumnCount(columns)

    def plots(self) -> list[pg.PlotItem]:
        return list(self._hovers)

    def _plot_at(self, scene_pos):
        for plot in self._hovers:
            if plot.isVisible() and plot.vb.sceneBoundingRect().contains(scene_pos):
                return plot
        return None

    def _on_run_started(self) -> None:
        self.cache.clear()
        self._last_live = 0.0

    def _on_run_progress(self, _done: int, _total: int) -> None:
        if not self.isVisible():            # a hidden tab catches up when the run finishes
            return
        now = time.perf_counter()
        if now - self._last_live >= LIVE_INTERVAL_S:
            self._last_live = now
            self.refresh()

    def refresh(self) -> None:
        self.selection.sync()
        self.refreshes += 1
        self._refresh()
        self.set_iteration(self.iteration)

    def _refresh(self) -> None:
        raise NotImplementedError

    def set_iteration(self, k: int) -> None:
        self.iteration = int(k)
        for plot in self._hovers:
            cursor = getattr(plot, "cursor", None)
            if cursor is not None:
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
