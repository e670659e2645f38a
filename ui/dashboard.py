"""Optimizer dashboards: the whole run at a glance, synchronised with the player's iteration.

Five pyqtgraph panels read the Document's Histories (they never compute gradients):

* ``LossPlot``        loss vs optimizer step for every variant (+ the micro-batch losses);
* ``ParamsPlot``      the chosen parameter series (scalars, tensor elements or norms) vs step;
* ``GradsPlot``       the ``.grad`` each ``optimizer.step()`` saw, and the total gradient norm;
* ``ParamSpacePlot``  filled loss contours over two scalar parameters (the Session's Landscape)
                      with every variant's trajectory on top: the optimizer race;
* ``StatePlot``       one row per optimizer-state buffer, the step actually taken, GradScaler scale.

Every panel takes the Document in its constructor, refreshes live (at most ~10 Hz) while a run is
in progress and once more when it finishes, creates its curves once and only ``setData``s them,
shows exact values under the mouse, and calls ``on_pick(step)`` when a point is clicked.
``install_dashboards(window)`` puts them (and the controls) into the main window as docks.
"""
from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from .theme import PALETTE, variant_colour, variant_swatch  # noqa: F401  (re-exported for the plots)

BACKGROUND = "#ffffff"
FOREGROUND = "#374151"
CURSOR_COLOUR = "#6b7280"
DIVERGED_COLOUR = "#dc2626"

LIVE_INTERVAL_S = 0.1          # refresh at most ~10 Hz while a run is in progress
MAX_ELEMENTS_LISTED = 64       # tensor elements offered per parameter in the series picker
MAX_DEFAULT_SERIES = 8         # series shown before the user picks
MAX_MARKERS = 500              # a marker per step up to this many steps in parameter space
MAX_TRAJECTORY_POINTS = 2000   # longer trajectories are drawn through evenly spaced points
LANDSCAPE_N = 100              # grid resolution of the contour plot
BAND_UPSAMPLE = 4              # the filled bands are drawn on a finer (interpolated) grid
CONTOUR_LEVELS = 14
PICK_RADIUS_PX = 14


def fmt(value) -> str:
    """A number as the hover shows it: enough digits to be exact for float32, compact otherwise."""
    value = float(value)
    return "nan" if np.isnan(value) else f"{value:.8g}"


def completed(history) -> int:
    return 0 if history is None else int(getattr(history, "steps", 0) or 0)


def _finite(y) -> np.ndarray:
    """float64 copy with ±inf (a diverged run) replaced by nan, so ranges and paths stay sane."""
    y = np.asarray(y, dtype=np.float64)
    return np.where(np.isfinite(y), y, np.nan)


# -- series: what "a parameter" means on a 2-D plot ---------------------------------------------
@dataclass(frozen=True)
class Series:
    """One plottable line derived from a per-step array ``(T, *shape)``.

    ``kind``: ``"value"`` (a scalar parameter), ``"norm"`` (L2 norm over the tensor's elements)
    or ``"element"`` (one element, ``index``).
    """
    label: str
    param: str
    kind: str
    index: tuple = ()

    def of(self, arr: np.ndarray) -> np.ndarray:
        arr = np.asarray(arr)
        t = arr.shape[0]
        if self.kind == "value":
            return arr.reshape(t).astype(np.float64)
        if self.kind == "element":
            return arr[(slice(None),) + self.index].astype(np.float64)
        flat = arr.reshape(t, -1).astype(np.float64)
        return np.sqrt(np.einsum("ij,ij->i", flat, flat))


def available_series(history) -> list[Series]:
    """Every scalar parameter; for each tensor its norm and its first elements."""
    out: list[Series] = []
    if history is None:
        return out
    for name in history.param_names:
        shape = tuple(np.shape(history.params[name])[1:])
        size = int(np.prod(shape)) if shape else 1
        if size == 1:
            out.append(Series(name, name, "value"))
            continue
        out.append(Series(f"‖{name}‖", name, "norm"))
        for flat in range(min(size, MAX_ELEMENTS_LISTED)):
            index = tuple(int(i) for i in np.unravel_index(flat, shape))
            out.append(Series(f"{name}[{','.join(map(str, index))}]", name, "element", index))
    return out


def default_series(series: list[Series]) -> list[str]:
    picked = [s.label for s in series if s.kind in ("value", "norm")]
    return picked[:MAX_DEFAULT_SERIES]


class SeriesCache:
    """Derived series grow with the History; only the new rows are computed on a live refresh."""

    def __init__(self):
        self._store: dict = {}

    def clear(self) -> None:
        self._store.clear()

    def get(self, key, n: int, compute: Callable[[int, int], np.ndarray]) -> np.ndarray:
        done, values = self._store.get(key, (0, np.empty(0)))
        if n < done:                       # a new run: start again
            done, values = 0, np.empty(0)
        if n > done:
            values = np.concatenate([values[:done], compute(done, n)])
            self._store[key] = (n, values)
        return values[:n]


# -- selection shared by the panels ------------------------------------------------------------
class Selection(QtCore.QObject):
    """Which variant the single-variant panels show, and which parameter series are drawn."""
    changed = QtCore.Signal()

    def __init__(self, document, parent=None):
        super().__init__(parent)
        self.document = document
        self.variant = 0
        self.series: list[Series] = []
        self.labels: list[str] = []
        self._signature = None

    def history(self, variant: int | None = None):
        histories = self.document.histories
        i = self.variant if variant is None else variant
        return histories[i] if 0 <= i < len(histories) else None

    def chosen(self) -> list[Series]:
        by_label = {s.label: s for s in self.series}
        return [by_label[l] for l in self.labels if l in by_label]

    def set_variant(self, i: int) -> None:
        if i != self.variant and i >= 0:
            self.variant = i
            self.changed.emit()

    def set_labels(self, labels: list[str]) -> None:
        if list(labels) != self.labels:
            self.labels = list(labels)
            self.changed.emit()

    def sync(self) -> bool:
        """Pick up new parameter names/shapes and variant count; True when something changed."""
        n_variants = len(self.document.histories)
        changed = False
        if self.variant >= max(n_variants, 1):
            self.variant, changed = 0, True
        h = self.history()
        if h is None or not getattr(h, "params", None):
            return changed
        signature = tuple((n, tuple(np.shape(h.params[n])[1:])) for n in h.param_names)
        if signature != self._signature:
            self._signature = signature
            self.series = available_series(h)
            self.labels = default_series(self.series)
            changed = True
        return changed


# -- the panels --------------------------------------------------------------------------------
def make_legend(columns: int = 3) -> pg.LegendItem:
    legend = pg.LegendItem(labelTextColor=FOREGROUND, labelTextSize="8pt", horSpacing=14, verSpacing=-8,
                           pen=None, brush=None, colCount=columns)
    legend.setContentsMargins(40, 0, 0, 0)
    return legend


def spans_decades(arrays) -> bool:
    """Log y suits values that are all positive and span two decades or more (a falling loss)."""
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays if len(a)]
    if not arrays:
        return False
    y = np.concatenate(arrays)
    y = y[np.isfinite(y)]
    return bool(len(y) and y.min() > 0 and y.max() / y.min() >= 100)


def _style_plot(plot: pg.PlotItem) -> None:
    for name in ("left", "bottom", "right", "top"):
        axis = plot.getAxis(name)
        axis.setPen(pg.mkPen(FOREGROUND))
        axis.setTextPen(pg.mkPen(FOREGROUND))
    # no grid: pyqtgraph draws it as part of the axes, over the whole plot, and a cursor move then
    # repaints it in every panel (74 ms instead of 15 ms per iteration change, all panels visible)
    plot.setMenuEnabled(False)
    plot.hideButtons()


class PlotPanel(QtWidgets.QWidget):
    """A header (title, options) above a pyqtgraph layout; live refresh, cursor, hover and pick."""
    title = ""

    def __init__(self, document, selection: Selection | None = None, on_pick=None, parent=None):
        super().__init__(parent)
        self.document = document
        self.selection = selection if selection is not None else Selection(document, self)
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
        _style_plot(plot)
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

    def export_item(self):
        """What the PNG/SVG exporters render: the whole layout of this panel."""
        return self.view.ci

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


class TimeSeriesPanel(PlotPanel):
    """Curves over the optimizer step; keyed curves are created once and reused."""
    x_label = "optimizer step"
    log_option = True
    hover_skip: tuple = ()

    def __init__(self, document, selection=None, on_pick=None, parent=None):
        super().__init__(document, selection, on_pick, parent)
        self.curves: dict = {}            # key -> PlotDataItem
        self.values: dict = {}            # key -> (label, colour, y) raw values for the hover
        self.log_box = None
        if self.log_option:
            self.log_box = QtWidgets.QCheckBox("log y")
            self.log_box.setToolTip("Logarithmic y axis")
            self.log_box.toggled.connect(self.set_log)
            self.header.addWidget(self.log_box)

    def set_log(self, on: bool) -> None:
        for plot in self.plots():
            plot.setLogMode(x=False, y=bool(on))

    def _legend(self, plot) -> pg.LegendItem:
        """The legend lives in the layout row under its plot: it never covers the data."""
        legend = getattr(plot, "legend_box", None)
        if legend is None:
            legend = make_legend(max(1, self.width() // 190))
            row = self._legend_row(plot)
            self.view.addItem(legend, row=row, col=0)
            plot.legend_box = legend
        return legend

    def _legend_row(self, plot) -> int:
        return 1

    def _set_curves(self, plot, wanted: dict, legend: bool = True) -> None:
        """``wanted``: key -> (label, x, y, pen, in_legend). Reuse curves, drop the others."""
        for key in [k for k in self.curves if k[0] is plot and k not in wanted]:
            curve = self.curves.pop(key)
            if legend:
                self._legend(plot).removeItem(curve)
            plot.removeItem(curve)
            self.values.pop(key, None)
        for key, (label, x, y, pen, in_legend) in wanted.items():
            curve = self.curves.get(key)
            if curve is None or curve.opts.get("name") != (label if in_legend else None):
                if curve is not None:
                    if legend:
                        self._legend(plot).removeItem(curve)
                    plot.removeItem(curve)
                curve = pg.PlotDataItem(name=label if in_legend else None)
                cached(curve.curve)
                cached(curve.scatter)
                curve.setZValue(5 if in_legend else 2)
                plot.addItem(curve)
                if in_legend and legend:
                    self._legend(plot).addItem(curve, label)
                self.curves[key] = curve
            curve.setPen(pen)
            curve.setData(x, _finite(y))
            self.values[key] = (label, pen.color().name(), y)

    def hover_html(self, plot, x, y) -> str:
        step = int(round(x))
        rows = []
        for key, (label, colour, values) in self.values.items():
            if key[0] is not plot or not len(values) or key[1] in self.hover_skip:
                continue
            if 0 <= step < len(values):
                rows.append(f'<span style="color:{colour}">■</span> {label}: <b>{fmt(values[step])}</b>')
        if not rows:
            return ""
        return f"<b>step {step}</b><br>" + "<br>".join(rows[:12])

    def pick(self, plot, x, y) -> int | None:
        n = max((completed(h) for h in self.document.histories), default=0)
        if n == 0:
            return None
        return int(min(max(round(x), 0), n - 1))

    def curve(self, *key):
        """The curve for ``key`` (without the plot), for tests and exports."""
        for k, c in self.curves.items():
            if k[1:] == key:
                return c
        return None

    def _series_curves(self, arrays: dict, kind: str, prefix: str, length: int, n: int) -> dict:
        """One curve per chosen series of ``arrays`` (History.params or .grads): its first ``length``
        rows, for a run of ``n`` completed steps."""
        hid, wanted = self.selection.variant, {}
        for j, s in enumerate(self.selection.chosen()):
            arr = arrays[s.param]
            y = self.cache.get((hid, kind, s.label), length, lambda a, b, s=s, arr=arr: s.of(arr[a:b]))
            wanted[(self.plot, kind, s.label)] = (prefix + s.label, np.arange(length), y,
                                                  _pen(variant_colour(j), line_width(n)), True)
        return wanted


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


def _pen(colour: str, width: float = 1.0, alpha: int = 255, dash: bool = False) -> QtGui.QPen:
    c = QtGui.QColor(colour)
    c.setAlpha(alpha)
    pen = pg.mkPen(c, width=width)
    if dash:
        pen.setStyle(QtCore.Qt.PenStyle.DashLine)
    return pen


class LossPlot(TimeSeriesPanel):
    """Loss vs step for every variant; faint micro-batch losses when accumulation is on."""
    title = "Loss"
    hover_skip = ("micro",)          # listed on one line of their own

    def __init__(self, document, selection=None, on_pick=None, parent=None):
        super().__init__(document, selection, on_pick, parent)
        self.plot = self._new_plot(0)
        self.plot.setLabel("bottom", self.x_label)
        self.plot.setLabel("left", "loss")
        self.diverged = pg.InfiniteLine(angle=90, movable=False, pen=_pen(DIVERGED_COLOUR, 1, dash=True),
                                        label="diverged", labelOpts=dict(color=DIVERGED_COLOUR, position=0.9))
        self.plot.addItem(self.diverged, ignoreBounds=True)
        self.diverged.hide()
        self.log_touched = False                 # until the user decides, log y follows the data
        self.log_box.clicked.connect(lambda _on: setattr(self, "log_touched", True))

    def _refresh(self) -> None:
        wanted = {}
        variants = self.document.scenario.variants() if self.document.scenario else []
        diverged = None
        for i, h in enumerate(self.document.histories):
            n = completed(h)
            if h is None or i >= len(variants):
                continue
            name = variants[i].name
            width = line_width(n)
            wanted[(self.plot, "loss", i)] = (name, np.arange(n), h.loss[:n], _pen(variant_colour(i), width), True)
            if i == self.selection.variant:
                if h.diverged_at is not None:
                    diverged = h.diverged_at
                acc = int(getattr(h, "accumulation_steps", 1) or 1)
                if acc > 1:
                    micro = np.asarray(h.micro_losses)[:n]
                    for j in range(acc):
                        wanted[(self.plot, "micro", j)] = (
                            f"micro-batch {j}", np.arange(n), micro[:, j], _pen(variant_colour(i), 1, 70),
                            False)
        self._set_curves(self.plot, wanted)
        if not self.log_touched and not self.document.running and wanted:
            self.log_box.setChecked(self._spans_decades())
        self.diverged.setVisible(diverged is not None)
        if diverged is not None:
            self.diverged.setPos(diverged)

    def _spans_decades(self) -> bool:
        return spans_decades([v[2] for k, v in self.values.items() if k[1] == "loss"])

    def hover_html(self, plot, x, y) -> str:
        html = super().hover_html(plot, x, y)
        h = self.selection.history()
        step = int(round(x))
        acc = int(getattr(h, "accumulation_steps", 1) or 1) if h is not None else 1
        if html and acc > 1 and 0 <= step < completed(h):
            micro = ", ".join(fmt(v) for v in np.asarray(h.micro_losses)[step])
            html += f"<br><i>micro-batches</i>: {micro}"
        return html


class ParamsPlot(TimeSeriesPanel):
    """The chosen parameter series of the selected variant (value before step k; k = steps: final)."""
    title = "Parameters"
    log_option = False

    def __init__(self, document, selection=None, on_pick=None, parent=None):
        super().__init__(document, selection, on_pick, parent)
        self.plot = self._new_plot(0)
        self.plot.setLabel("bottom", self.x_label)
        self.plot.setLabel("left", "value before step k")

    def _refresh(self) -> None:
        h = self.selection.history()
        n = completed(h)
        wanted = self._series_curves(h.params, "param", "", n + 1, n) if h is not None and h.params else {}
        self._set_curves(self.plot, wanted)


class GradsPlot(TimeSeriesPanel):
    """``.grad`` as ``optimizer.step()`` saw it (after unscaling), per series, and its total norm."""
    title = "Gradients"

    def __init__(self, document, selection=None, on_pick=None, parent=None):
        super().__init__(document, selection, on_pick, parent)
        self.plot = self._new_plot(0)
        self.plot.setLabel("bottom", self.x_label)
        self.plot.setLabel("left", ".grad at step k")

    def grad_norm(self, h, n: int) -> np.ndarray:
        """‖∇‖ over every parameter (nan where a .grad was None)."""
        def compute(a, b):
            total = np.zeros(b - a)
            for name in h.param_names:
                g = np.asarray(h.grads[name][a:b], dtype=np.float64).reshape(b - a, -1)
                total += np.einsum("ij,ij->i", g, g)
            return np.sqrt(total)
        return self.cache.get((self.selection.variant, "gradnorm"), n, compute)

    def _refresh(self) -> None:
        h = self.selection.history()
        wanted = {}
        n = completed(h)
        if h is not None and h.params:
            wanted = self._series_curves(h.grads, "grad", "grad ", n, n)
            wanted[(self.plot, "gradnorm")] = ("‖grad‖ (all)", np.arange(n), self.grad_norm(h, n),
                                               _pen("#111827", line_width(n), dash=True), True)
        self._set_curves(self.plot, wanted)


STATE_TITLES = {
    "step_size": "step taken |Δθ| = |θ(k+1) − θ(k)|", "scale": "GradScaler scale (× marks a skipped step)",
    "momentum_buffer": "momentum_buffer", "exp_avg": "exp_avg (m)", "exp_avg_sq": "exp_avg_sq (v)",
    "max_exp_avg_sq": "max_exp_avg_sq", "square_avg": "square_avg", "grad_avg": "grad_avg", "sum": "sum (Adagrad)",
}


POSITIVE_STATE = ("exp_avg_sq", "max_exp_avg_sq", "square_avg", "sum", "step_size")


class StatePlot(TimeSeriesPanel):
    """One row per optimizer-state buffer, then the step actually taken, then the GradScaler scale."""
    title = "Optimizer state"

    def __init__(self, document, selection=None, on_pick=None, parent=None):
        super().__init__(document, selection, on_pick, parent)
        self.rows: dict[str, pg.PlotItem] = {}
        self._structure = None
        self.skipped = None
        self.log_touched = False
        self.log_box.clicked.connect(lambda _on: setattr(self, "log_touched", True))
        self.empty = pg.LabelItem("no optimizer state yet", color=FOREGROUND)
        self.view.addItem(self.empty, row=0, col=0)

    def _legend_row(self, plot) -> int:
        return len(self.rows)

    def state_keys(self, h) -> list[str]:
        keys: list[str] = []
        for name in h.param_names:
            for key in (h.state.get(name) or {}):
                if key != "step" and key not in keys:
                    keys.append(key)
        return keys

    def _build(self, rows: list[str]) -> None:
        for key in [k for k in self.curves]:
            self.curves.pop(key)
        self.values.clear()
        self.view.clear()
        self._hovers.clear()
        self.rows = {}
        self.skipped = None
        first = None
        for r, key in enumerate(rows):
            plot = self._new_plot(r)
            # the row's name sits inside its top-left corner: rotated axis titles collide in short rows
            title = pg.LabelItem(STATE_TITLES.get(key, key), color=FOREGROUND, size="8pt")
            title.setParentItem(plot.vb)
            title.anchor(itemPos=(0, 0), parentPos=(0, 0), offset=(4, 0))
            title.setZValue(50)
            plot.row_title = title
            plot.getAxis("left").setWidth(52)
            if first is None:
                first = plot
            else:
                plot.setXLink(first)
            if r < len(rows) - 1:
                plot.getAxis("bottom").setStyle(showValues=False)
            self.rows[key] = plot
            if self.log_box is not None and self.log_box.isChecked() and key != "scale":
                plot.setLogMode(y=True)
        if rows:
            self.rows[rows[-1]].setLabel("bottom", self.x_label)
        if "scale" in self.rows:
            self.skipped = pg.ScatterPlotItem(symbol="x", size=9, pen=pg.mkPen(DIVERGED_COLOUR, width=1.5),
                                              brush=None, name="skipped step")
            self.rows["scale"].addItem(self.skipped)
            self.rows["scale"].setLogMode(y=True)
        if not rows:
            self.view.addItem(self.empty, row=0, col=0)

    def set_log(self, on: bool) -> None:
        for key, plot in self.rows.items():
            if key != "scale":
                plot.setLogMode(x=False, y=bool(on))

    def _refresh(self) -> None:
        h = self.selection.history()
        n = completed(h)
        rows: list[str] = []
        if h is not None and h.params:
            rows = self.state_keys(h) + ["step_size"]
            variants = self.document.scenario.variants()
            v = variants[self.selection.variant] if self.selection.variant < len(variants) else None
            if v is not None and v.loop.precision == "float16" and v.loop.loss_scaling:
                rows.append("scale")
        if tuple(rows) != self._structure:
            self._structure = tuple(rows)
            self._build(rows)
        if not rows:
            return
        hid = self.selection.variant
        chosen = self.selection.chosen()
        for key, plot in self.rows.items():
            wanted = {}
            if key == "scale":
                scale = np.asarray(h.grad_scale[:n], dtype=np.float64)
                wanted[(plot, "scale")] = ("scale", np.arange(n), scale, _pen(variant_colour(0), 1.5), False)
                skipped = np.flatnonzero(np.asarray(h.skipped[:n], dtype=bool))
                self.skipped.setData(skipped.astype(float), scale[skipped] if len(skipped) else [])
            else:
                for j, s in enumerate(chosen):
                    if key == "step_size":
                        p = h.params[s.param]
                        y = self.cache.get((hid, "delta", s.label), n,
                                           lambda a, b, s=s, p=p: np.abs(s.of(np.asarray(p[a + 1:b + 1], np.float64)
                                                                               - np.asarray(p[a:b], np.float64))))
                    else:
                        arr = (h.state.get(s.param) or {}).get(key)
                        if arr is None:
                            continue
                        y = self.cache.get((hid, key, s.label), n, lambda a, b, s=s, arr=arr: s.of(arr[a:b]))
                    wanted[(plot, key, s.label)] = (s.label, np.arange(n), y,
                                                    _pen(variant_colour(j), line_width(n)), key == "step_size")
            self._set_curves(plot, wanted, legend=(key == "step_size"))
            if not self.log_touched and key in POSITIVE_STATE and not self.document.running:
                plot.setLogMode(x=False, y=spans_decades([w[2] for w in wanted.values()]))

    def hover_html(self, plot, x, y) -> str:
        html = super().hover_html(plot, x, y)
        if html and plot is self.rows.get("scale"):
            h = self.selection.history()
            step = int(round(x))
            if h is not None and 0 <= step < completed(h) and bool(h.skipped[step]):
                html += '<br><span style="color:#dc2626">step skipped (inf/nan grad)</span>'
        return html


# -- parameter space ---------------------------------------------------------------------------
def nice_range(lo: float, hi: float, margin: float = 0.12) -> tuple[float, float]:
    """Pad [lo, hi] and round outwards to a round step, so small changes reuse the landscape."""
    if not np.isfinite(lo) or not np.isfinite(hi):
        return (-1.0, 1.0)
    span = hi - lo
    if span <= 1e-12 * max(1.0, abs(lo), abs(hi)):
        span = max(abs(lo) * 0.5, 1.0)
        lo, hi = lo - span / 2, hi + span / 2
    lo, hi = lo - margin * span, hi + margin * span
    step = 10.0 ** np.floor(np.log10(hi - lo)) / 4
    return float(np.floor(lo / step) * step), float(np.ceil(hi / step) * step)


def trajectory_extent(points: list[np.ndarray]) -> tuple[float, float]:
    """Range of the finite trajectory coordinates, ignoring the far tail of a divergence."""
    values = np.concatenate([p[np.isfinite(p)] for p in points]) if points else np.empty(0)
    if not len(values):
        return (-1.0, 1.0)
    lo, hi = float(values.min()), float(values.max())
    start = float(values[0])
    span0 = max(np.percentile(values, 95) - np.percentile(values, 5), 1e-9)
    if hi - lo > 50 * span0:                      # a run flew off: keep the part worth looking at
        lo, hi = float(np.percentile(values, 2)), float(np.percentile(values, 98))
        lo, hi = min(lo, start), max(hi, start)
    return lo, hi


def element_values(history, text: str, rows: int) -> np.ndarray:
    """The first ``rows`` values of a scalar parameter or tensor element (``0.weight[1,0]``)."""
    name, index = text, ()
    if text not in history.params and text.endswith("]") and "[" in text:
        name, _, rest = text[:-1].rpartition("[")
        index = tuple(int(i) for i in rest.split(","))
    values = np.asarray(history.params[name][:rows])
    return values[(slice(None),) + index].astype(np.float64).reshape(len(values))


def contour_levels(z: np.ndarray, mode: str = "auto") -> tuple[np.ndarray, bool]:
    """Band edges for the filled contours; log-spaced when the loss spans decades (Rosenbrock)."""
    finite = z[np.isfinite(z)]
    if not len(finite):
        return np.linspace(0, 1, CONTOUR_LEVELS + 1), False
    lo, hi = float(finite.min()), float(finite.max())
    positive = finite[finite > 0]
    use_log = mode == "log" or (mode == "auto" and lo >= 0 and len(positive)
                                and hi / max(np.median(positive), 1e-300) > 8)
    if use_log and len(positive):
        floor = max(float(positive.min()), hi * 1e-7)
        return np.geomspace(floor, hi, CONTOUR_LEVELS + 1), True
    if hi <= lo:
        hi = lo + 1.0
    return np.linspace(lo, hi, CONTOUR_LEVELS + 1), False


def _upsample(z: np.ndarray, factor: int) -> np.ndarray:
    """Bilinear interpolation of a grid (rows and columns), keeping the corner samples."""
    if factor <= 1:
        return z
    rows, cols = z.shape
    ri = np.linspace(0, rows - 1, (rows - 1) * factor + 1)
    ci = np.linspace(0, cols - 1, (cols - 1) * factor + 1)
    tmp = np.empty((rows, len(ci)))
    for r in range(rows):
        tmp[r] = np.interp(ci, np.arange(cols), z[r])
    out = np.empty((len(ri), len(ci)))
    for c in range(len(ci)):
        out[:, c] = np.interp(ri, np.arange(rows), tmp[:, c])
    return out


def _pastel(name: str, white: float = 0.5) -> pg.ColorMap:
    """A colour map blended towards white, so coloured trajectories stand out on it."""
    base = pg.colormap.get(name)
    pos = np.linspace(0, 1, 9)
    rgba = base.map(pos, mode="float")[:, :3]
    rgba = (1 - white) * rgba + white
    return pg.ColorMap(pos, (rgba * 255).astype(np.ubyte))


CONTOUR_MAP = _pastel("viridis", 0.55)


class ParamSpacePlot(PlotPanel):
    """Filled loss contours over two scalar parameters, with every variant's trajectory on them."""
    title = "Parameter space"

    def __init__(self, document, selection=None, on_pick=None, parent=None):
        super().__init__(document, selection, on_pick, parent)
        self.x_box, self.y_box = QtWidgets.QComboBox(), QtWidgets.QComboBox()
        self.levels_box = QtWidgets.QComboBox()
        self.levels_box.addItems(["auto", "log", "linear"])
        self.levels_box.setToolTip("Spacing of the contour levels (auto: log when the loss spans decades)")
        for box in (self.x_box, self.y_box):
            box.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
            box.setMinimumContentsLength(11)        # room for "0.weight[0,1]"
            box.setToolTip("A scalar parameter or one element of a tensor parameter")
        for text, box in (("x", self.x_box), ("y", self.y_box), ("levels", self.levels_box)):
            self.header.addWidget(QtWidgets.QLabel(text))
            self.header.addWidget(box)
        self.note = QtWidgets.QLabel("others at initial values")
        self.note.setStyleSheet("color: #6b7280; font-style: italic;")
        self.note.setToolTip("The landscape is the loss over these two values with every other parameter "
                             "fixed at its initial value; the trajectory moves all of them")
        self.note.hide()
        self.header.insertWidget(1, self.note)
        self.x_box.activated.connect(lambda _i: self._axes_changed())
        self.y_box.activated.connect(lambda _i: self._axes_changed())
        self.levels_box.activated.connect(lambda _i: self._draw_landscape())
        self.plot = self._new_plot(0, cursor=False)
        self.plot.setDownsampling(auto=False)
        self.plot.setClipToView(False)
        self.image = cached(pg.ImageItem(axisOrder="row-major"))
        self.image.setZValue(-10)
        self.plot.addItem(self.image)
        self.isocurves: list[QtWidgets.QGraphicsPathItem] = []     # one contour line item per level
        self.colorbar = pg.ColorBarItem(values=(0, 1), colorMap=CONTOUR_MAP, interactive=False, width=12)
        self.colorbar.setImageItem(self.image, insert_in=self.plot)
        self.colorbar.axis.setPen(pg.mkPen(FOREGROUND))
        self.colorbar.axis.setTextPen(pg.mkPen(FOREGROUND))
        self.colorbar.hide()
        # The legend sits beside the contours (not under them): the landscape needs the height.
        self.legend = make_legend(1)
        self.legend.beside_plot = True
        self.legend.setContentsMargins(4, 0, 0, 0)
        self.view.addItem(self.legend, row=0, col=1)
        self.plot.legend_box = self.legend
        self.trajectories: list[pg.PlotDataItem] = []
        self.current: list[pg.ScatterPlotItem] = []
        self.step_segments: list[pg.PlotCurveItem] = []
        self.message = pg.TextItem("", color=FOREGROUND, anchor=(0.5, 0.5))
        self.plot.addItem(self.message, ignoreBounds=True)
        self.landscape = None
        self.levels = None
        self.log_levels = False
        self._landscape_key = None
        self._landscape_stale = False
        self._points: list[tuple[np.ndarray, np.ndarray]] = []
        self._names: list[str] = []
        document.scenarioChanged.connect(self._fill_axes)

    def axes(self) -> tuple[str | None, str | None]:
        return self.x_box.currentText() or None, self.y_box.currentText() or None

    def set_axes(self, p1: str, p2: str) -> None:
        self.x_box.setCurrentText(p1)
        self.y_box.setCurrentText(p2)
        self._axes_changed()

    def _fill_axes(self) -> None:
        """Scalar parameters first (the classic picture), then tensor elements (``0.weight[0,1]``)."""
        sessions = self.document.sessions
        names: list[str] = []
        if sessions:
            try:
                names = list(sessions[0].scalar_parameters())
            except Exception:
                names = []
        current = [self.x_box.itemText(i) for i in range(self.x_box.count())]
        if names == current:
            return
        p1, p2 = self.axes()
        for box in (self.x_box, self.y_box):
            box.blockSignals(True)
            box.clear()
            box.addItems(names)
            box.setMaxVisibleItems(20)
            box.blockSignals(False)
        self.note.setVisible(len(names) > 2)
        if len(names) >= 2:
            x = p1 if p1 in names else names[0]
            y = p2 if p2 in names and p2 != x else next(n for n in names if n != x)
            self.x_box.setCurrentText(x)
            self.y_box.setCurrentText(y)
        self._landscape_key = None

    def _axes_changed(self) -> None:
        self._landscape_key = None
        self.refresh()

    def _refresh(self) -> None:
        self._fill_axes()
        p1, p2 = self.axes()
        histories = self.document.histories
        variants = self.document.scenario.variants() if self.document.scenario else []
        if p1 is None or p2 is None or p1 == p2 or not histories:
            self._show_message("Parameter space needs two scalar parameters."
                               if not (p1 and p2) else "Choose two different parameters.")
            self._set_trajectories([], [])
            return
        self.message.hide()
        points, names = [], []
        for i, h in enumerate(histories):
            if h is None or not h.params or i >= len(variants):
                continue
            n = completed(h)
            xs, ys = element_values(h, p1, n + 1), element_values(h, p2, n + 1)
            points.append((xs, ys))
            names.append(variants[i].name)
        self._set_trajectories(points, names)
        if not self.document.running:
            # the landscape costs a grid of forward passes: a hidden tab computes it when it is shown
            self._landscape_stale = not self.isVisible()
            if not self._landscape_stale:
                self._update_landscape(p1, p2)

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._landscape_stale:
            self.refresh()

    def _show_message(self, text: str) -> None:
        self.image.clear()
        self._clear_isocurves()
        self.colorbar.hide()
        self.landscape = None
        self.message.setText(text)
        vr = self.plot.vb.viewRect()
        self.message.setPos(vr.center())
        self.message.show()

    def _set_trajectories(self, points, names) -> None:
        self._points, self._names = points, names
        while len(self.trajectories) > len(points):
            for items in (self.trajectories, self.current, self.step_segments):
                self.plot.removeItem(items.pop())
        while len(self.trajectories) < len(points):
            i = len(self.trajectories)
            colour = variant_colour(i)
            curve = pg.PlotDataItem()
            cached(curve.curve)
            cached(curve.scatter)
            curve.setZValue(10 + i)
            self.plot.addItem(curve)
            self.trajectories.append(curve)
            segment = Segment(pen=_pen(colour, 3))
            segment.setZValue(30 + i)
            self.plot.addItem(segment, ignoreBounds=True)
            self.step_segments.append(segment)
            marker = Marker(size=12, brush=pg.mkBrush(colour), pen=pg.mkPen("w", width=2))
            marker.setZValue(40 + i)
            self.plot.addItem(marker, ignoreBounds=True)
            self.current.append(marker)
        self.legend.clear()
        for i, ((xs, ys), name) in enumerate(zip(points, names)):
            colour = variant_colour(i)
            curve = self.trajectories[i]
            n = len(xs)
            if n > MAX_TRAJECTORY_POINTS:
                idx = np.unique(np.r_[np.linspace(0, n - 1, MAX_TRAJECTORY_POINTS).astype(int), n - 1])
                xs, ys = xs[idx], ys[idx]
            markers = n <= MAX_MARKERS
            curve.setData(_finite(xs), _finite(ys), pen=_pen(colour, 2 if markers else 1), name=name,
                          symbol="o" if markers else None, symbolSize=5, symbolBrush=pg.mkBrush(colour),
                          symbolPen=None)
            self.legend.addItem(curve, name)
        self.legend.setVisible(bool(points))

    def _update_landscape(self, p1: str, p2: str) -> None:
        sessions = self.document.sessions
        if not sessions or not self._points:
            return
        xr = nice_range(*trajectory_extent([p[0] for p in self._points]))
        yr = nice_range(*trajectory_extent([p[1] for p in self._points]))
        sc = self.document.scenario
        key = (p1, p2, xr, yr, repr(sc.model), repr(sc.data), repr(sc.loss), sc.seed)
        if key == self._landscape_key and self.landscape is not None:
            return
        try:
            landscape = sessions[0].landscape(p1, p2, n=LANDSCAPE_N, x_range=xr, y_range=yr)
        except Exception as exc:          # the core refuses (e.g. too expensive): say so, keep the rest
            self._show_message(f"No landscape: {exc}")
            return
        self._landscape_key = key
        self.landscape = landscape
        self._draw_landscape()
        self.plot.vb.setRange(xRange=xr, yRange=yr, padding=0.01)   # the image inside the view: cacheable

    def _draw_landscape(self) -> None:
        ls = self.landscape
        if ls is None:
            return
        z = np.asarray(ls.z, dtype=np.float64)
        self.levels, self.log_levels = contour_levels(z, self.levels_box.currentText())
        f = (lambda v: np.log10(np.maximum(v, self.levels[0]))) if self.log_levels else (lambda v: v)
        t_levels = f(self.levels)
        fine = _upsample(np.where(np.isfinite(z), z, np.nanmax(z[np.isfinite(z)]) if np.isfinite(z).any() else 0),
                         BAND_UPSAMPLE)
        band = np.clip(np.searchsorted(self.levels, fine, side="right") - 1, 0, len(self.levels) - 2)
        centres = (t_levels[:-1] + t_levels[1:]) / 2
        self.band_image = centres[band]
        xs, ys = np.asarray(ls.xs, dtype=np.float64), np.asarray(ls.ys, dtype=np.float64)
        dx = (xs[-1] - xs[0]) / max(len(xs) - 1, 1)
        dy = (ys[-1] - ys[0]) / max(len(ys) - 1, 1)
        rows, cols = self.band_image.shape
        self.image.setImage(self.band_image, autoLevels=False, levels=(t_levels[0], t_levels[-1]))
        fx, fy = (xs[-1] - xs[0]) / max(cols - 1, 1), (ys[-1] - ys[0]) / max(rows - 1, 1)
        self.image.setRect(QtCore.QRectF(xs[0] - fx / 2, ys[0] - fy / 2, fx * cols, fy * rows))
        self.colorbar.setLevels((t_levels[0], t_levels[-1]))
        self.colorbar.axis.setLabel("log₁₀ loss" if self.log_levels else "loss", color=FOREGROUND)
        self.colorbar.show()
        self._clear_isocurves()
        # contour lines on the original grid, one pixel = one sample, centred on the samples
        holder = self.plot.vb.childGroup
        transform = QtGui.QTransform()
        transform.translate(xs[0], ys[0])
        transform.scale(dx if dx else 1.0, dy if dy else 1.0)
        zc = np.where(np.isfinite(z), z, np.nanmax(z[np.isfinite(z)]) if np.isfinite(z).any() else 0)
        pen = pg.mkPen(40, 50, 70, 90, width=1)
        pen.setCosmetic(True)
        for level in self.levels[1:-1]:
            # Qt's own path item (fast paint); no closing along the edges of the grid
            path = QtGui.QPainterPath()
            for line in pg.functions.isocurve(zc.T, float(level), connected=True, extendToEdge=False):
                if len(line) < 2:
                    continue
                path.moveTo(*line[0])
                for point in line[1:]:
                    path.lineTo(*point)
            iso = QtWidgets.QGraphicsPathItem(path)
            iso.setPen(pen)
            iso.setParentItem(holder)
            iso.setTransform(transform)
            iso.setZValue(-5)
            cached(iso)
            self.isocurves.append(iso)

    def _clear_isocurves(self) -> None:
        for iso in self.isocurves:
            if iso.scene() is not None:
                iso.scene().removeItem(iso)
            iso.setParentItem(None)
        self.isocurves = []

    def set_iteration(self, k: int) -> None:
        self.iteration = int(k)
        for i, (xs, ys) in enumerate(self._points):
            if i >= len(self.current):
                break
            j = min(self.iteration, len(xs) - 1)
            if j < 0:
                self.current[i].setData([], [])
                self.step_segments[i].setData([], [])
                continue
            self.current[i].setData([xs[j]], [ys[j]])
            nxt = min(j + 1, len(xs) - 1)
            self.step_segments[i].setData(_finite(xs[j:nxt + 1]), _finite(ys[j:nxt + 1]))

    def _nearest(self, x: float, y: float):
        pw, ph = self.plot.vb.viewPixelSize()
        best = None
        for i, (xs, ys) in enumerate(self._points):
            if not len(xs):
                continue
            with np.errstate(invalid="ignore", over="ignore"):
                d = np.hypot((xs - x) / (pw or 1), (ys - y) / (ph or 1))
            if not np.isfinite(d).any():
                continue
            j = int(np.nanargmin(d))
            if best is None or d[j] < best[0]:
                best = (float(d[j]), i, j)
        return best

    def hover_html(self, plot, x, y) -> str:
        best = self._nearest(x, y)
        rows = []
        if best is not None and best[0] <= PICK_RADIUS_PX * 2:
            _d, i, j = best
            xs, ys = self._points[i]
            h = self.document.histories[i]
            p1, p2 = self.axes()
            rows.append(f'<span style="color:{variant_colour(i)}">■</span> <b>{self._names[i]}</b>')
            rows.append(f"before step {j}: {p1} = {fmt(xs[j])}, {p2} = {fmt(ys[j])}")
            if j < completed(h):
                rows.append(f"loss at step {j}: {fmt(h.loss[j])}")
        if self.landscape is not None:
            ls = self.landscape
            cj = int(np.argmin(np.abs(np.asarray(ls.xs) - x)))
            ci = int(np.argmin(np.abs(np.asarray(ls.ys) - y)))
            if ls.xs[0] <= x <= ls.xs[-1] and ls.ys[0] <= y <= ls.ys[-1]:
                rows.append(f"<i>landscape ({fmt(ls.xs[cj])}, {fmt(ls.ys[ci])})</i>: {fmt(ls.z[ci, cj])}")
        return "<br>".join(rows)

    def pick(self, plot, x, y) -> int | None:
        best = self._nearest(x, y)
        if best is None or best[0] > PICK_RADIUS_PX:
            return None
        _d, i, j = best
        n = completed(self.document.histories[i])
        return min(j, max(n - 1, 0))


# -- the container -----------------------------------------------------------------------------
class SeriesPicker(QtWidgets.QToolButton):
    """A drop-down list of checkable parameter series (scalars, norms, tensor elements)."""

    def __init__(self, selection: Selection, parent=None):
        super().__init__(parent)
        self.selection = selection
        self.setText("Series ▾")
        self.setStyleSheet("QToolButton::menu-indicator { image: none; width: 0px; }")
        self.setToolTip("Which parameters, tensor elements or norms the Parameters, Gradients and "
                        "Optimizer state plots draw")
        self.setPopupMode(QtWidgets.QToolButton.ToolButtonPopupMode.InstantPopup)
        self.list = QtWidgets.QListWidget()
        self.list.setMinimumSize(220, 260)
        menu = QtWidgets.QMenu(self)
        action = QtWidgets.QWidgetAction(menu)
        action.setDefaultWidget(self.list)
        menu.addAction(action)
        self.setMenu(menu)
        self.list.itemChanged.connect(self._on_item_changed)
        selection.changed.connect(self.fill)

    def fill(self) -> None:
        self.list.blockSignals(True)
        self.list.clear()
        chosen = set(self.selection.labels)
        for s in self.selection.series:
            item = QtWidgets.QListWidgetItem(s.label)
            item.setFlags(item.flags() | QtCore.Qt.ItemFlag.ItemIsUserCheckable)
            item.setCheckState(QtCore.Qt.CheckState.Checked if s.label in chosen else QtCore.Qt.CheckState.Unchecked)
            self.list.addItem(item)
        self.list.blockSignals(False)

    def _on_item_changed(self, _item) -> None:
        labels = [self.list.item(i).text() for i in range(self.list.count())
                  if self.list.item(i).checkState() == QtCore.Qt.CheckState.Checked]
        self.selection.set_labels(labels)


class Dashboards(QtWidgets.QWidget):
    """The five panels with a shared variant/series selection, in tabs or in a grid."""

    def __init__(self, document, on_pick: Callable[[int], None] | None = None, parent=None):
        super().__init__(parent)
        self.document = document
        self.on_pick = on_pick
        self.selection = Selection(document, self)
        pick = self._pick
        self.loss = LossPlot(document, self.selection, pick)
        self.params = ParamsPlot(document, self.selection, pick)
        self.grads = GradsPlot(document, self.selection, pick)
        self.space = ParamSpacePlot(document, self.selection, pick)
        self.state = StatePlot(document, self.selection, pick)
        self.panels: list[PlotPanel] = [self.loss, self.params, self.grads, self.space, self.state]

        bar = QtWidgets.QHBoxLayout()
        bar.setContentsMargins(6, 4, 6, 2)
        bar.addWidget(QtWidgets.QLabel("Variant"))
        self.variant_box = QtWidgets.QComboBox()
        self.variant_box.setToolTip("The run the Parameters, Gradients and Optimizer state plots show")
        self.variant_box.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.variant_box.activated.connect(self.selection.set_variant)
        bar.addWidget(self.variant_box)
        self.picker = SeriesPicker(self.selection)
        bar.addWidget(self.picker)
        bar.addStretch(1)
        self.grid_button = QtWidgets.QToolButton()
        self.grid_button.setText("Grid")
        self.grid_button.setCheckable(True)
        self.grid_button.setToolTip("Show every plot at once (grid) or one per tab")
        self.grid_button.toggled.connect(lambda on: self.set_layout_mode("grid" if on else "tabs"))
        bar.addWidget(self.grid_button)

        self.tabs = QtWidgets.QTabWidget()
        self.tabs.setDocumentMode(True)
        self.grid = QtWidgets.QWidget()
        self.grid_layout = QtWidgets.QGridLayout(self.grid)
        self.grid_layout.setContentsMargins(0, 0, 0, 0)
        self.grid_layout.setSpacing(4)
        self.stack = QtWidgets.QStackedWidget()
        self.stack.addWidget(self.tabs)
        self.stack.addWidget(self.grid)
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addLayout(bar)
        layout.addWidget(self.stack, 1)
        self.layout_mode = ""
        self.set_layout_mode("tabs")

        document.runStarted.connect(self._fill_variants)
        document.runFinished.connect(self._fill_variants)
        self.selection.changed.connect(self._sync_variant_box)
        if document.scenario is not None:
            self._fill_variants()

    def _pick(self, step: int) -> None:
        if self.on_pick is not None:
            self.on_pick(step)

    def set_layout_mode(self, mode: str) -> None:
        """``"tabs"`` (one plot at a time) or ``"grid"`` (all five visible)."""
        if mode == self.layout_mode:
            return
        self.layout_mode = mode
        current = self.tabs.currentIndex()
        self.tabs.clear()
        for p in self.panels:
            self.grid_layout.removeWidget(p)
        if mode == "grid":
            spots = [(0, 0, 1, 1), (0, 1, 1, 1), (0, 2, 1, 1), (1, 0, 1, 2), (1, 2, 1, 1)]
            order = [self.loss, self.params, self.grads, self.space, self.state]
            for p, (r, c, rs, cs) in zip(order, spots):
                self.grid_layout.addWidget(p, r, c, rs, cs)
                p.show()
            self.stack.setCurrentWidget(self.grid)
        else:
            for p in self.panels:
                self.tabs.addTab(p, p.title)
            self.tabs.setCurrentIndex(max(current, 0))
            self.stack.setCurrentWidget(self.tabs)
        self.grid_button.blockSignals(True)
        self.grid_button.setChecked(mode == "grid")
        self.grid_button.blockSignals(False)

    def current_panel(self) -> PlotPanel:
        if self.layout_mode == "tabs":
            return self.tabs.currentWidget() or self.loss
        return self.loss

    def _fill_variants(self) -> None:
        if self.document.scenario is None:
            return
        names = [v.name for v in self.document.scenario.variants()]
        self.variant_box.blockSignals(True)
        self.variant_box.clear()
        for i, name in enumerate(names):
            self.variant_box.addItem(variant_swatch(i), name)
        self.variant_box.setCurrentIndex(min(self.selection.variant, len(names) - 1))
        self.variant_box.blockSignals(False)
        if self.selection.sync():
            self.picker.fill()

    def _sync_variant_box(self) -> None:
        if self.variant_box.currentIndex() != self.selection.variant:
            self.variant_box.blockSignals(True)
            self.variant_box.setCurrentIndex(self.selection.variant)
            self.variant_box.blockSignals(False)

    def set_iteration(self, k: int) -> None:
        for p in self.panels:
            p.set_iteration(k)

    def refresh(self) -> None:
        for p in self.panels:
            p.refresh()


def install_dashboards(window) -> Dashboards:
    """Add the plots (bottom dock) and the controls (right dock) to ``window`` and wire them up.

    * clicking a plotted point calls ``window.set_iteration``; the window's ``iterationChanged``
      moves every plot's cursor;
    * View menu: toggles for both docks and the grid layout; File ▸ Export: plots and History.
    """
    from .controls import ControlsPanel
    from .dashboard_export import DashboardExporter

    Area = QtCore.Qt.DockWidgetArea
    dashboards = Dashboards(window.document, on_pick=window.set_iteration)
    controls = ControlsPanel(window.document)
    window.dashboards, window.controls = dashboards, controls

    dock = QtWidgets.QDockWidget("Dashboards", window)
    dock.setObjectName("dock_dashboards")
    dock.setWidget(dashboards)
    window.addDockWidget(Area.BottomDockWidgetArea, dock)
    scroll = QtWidgets.QScrollArea()
    scroll.setWidgetResizable(True)
    scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
    scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
    scroll.setWidget(controls)
    controls_dock = QtWidgets.QDockWidget("Controls", window)
    controls_dock.setObjectName("dock_controls")
    controls_dock.setWidget(scroll)
    window.addDockWidget(Area.RightDockWidgetArea, controls_dock)
    window.dashboards_dock, window.controls_dock = dock, controls_dock
    inspector_dock = getattr(window, "inspector_dock", None)
    if inspector_dock is not None:
        # one column on the right: the controls in front, the inspector a tab away (raised on a click)
        window.tabifyDockWidget(inspector_dock, controls_dock)
        controls_dock.raise_()
        graph = getattr(window, "graph", None)
        if graph is not None and hasattr(graph, "nodeClicked"):
            graph.nodeClicked.connect(lambda _node: inspector_dock.raise_())
    window.resizeDocks([dock], [max(320, window.height() * 2 // 5)], QtCore.Qt.Orientation.Vertical)

    window.iterationChanged.connect(dashboards.set_iteration)

    view = getattr(window, "view_menu", None)
    if view is not None:
        view.addSeparator()
        view.addAction(dock.toggleViewAction())
        view.addAction(controls_dock.toggleViewAction())
        grid = QtGui.QAction("Dashboards in a &grid", window)
        grid.setCheckable(True)
        grid.toggled.connect(lambda on: dashboards.set_layout_mode("grid" if on else "tabs"))
        dashboards.grid_button.toggled.connect(grid.setChecked)
        view.addAction(grid)
        window.act_dash_grid = grid

    exporter = DashboardExporter(window, dashboards)
    window.dashboard_exporter = exporter
    export_menu = None
    for action in getattr(window, "file_menu", QtWidgets.QMenu()).actions():
        if action.menu() is not None and action.menu().title().replace("&", "") == "Export":
            export_menu = action.menu()
    if export_menu is not None:
        export_menu.addSeparator()
        for text, slot in (("Plot as P&NG…", lambda: exporter.export_plot("png")),
                           ("Plot as S&VG…", lambda: exporter.export_plot("svg")),
                           ("History as &CSV…", lambda: exporter.export_history("csv")),
                           ("History as &JSON…", lambda: exporter.export_history("json"))):
            export_menu.addAction(text, slot)

    # The window restores its saved layout after this (once every dock exists): a second restoreState
    # here would leave a stale copy of the Inspector/Controls tab bar drawn over the menu bar.
    if window.document.scenario is not None and window.document.sessions:
        dashboards._fill_variants()
        dashboards.refresh()
    return dashboards
