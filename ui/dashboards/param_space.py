"""The parameter-space panel: filled loss contours over two parameters (the Session's Landscape)
with every variant's trajectory on top, the optimizer race (the current run's thicker, above the others).

The axes are scalar parameters or tensor elements (``0.weight[0,1]``); the trajectories, ranges,
contour levels and bands come from ``gradviz.view.series``, the landscape from the Session.
"""
from __future__ import annotations

import time

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from gradviz.view.format import format_exact
from gradviz.view.series import (
    completed,
    contour_levels,
    element_values,
    fill_non_finite,
    filled_bands,
    finite,
    nice_range,
    thinned,
    trajectory_extent,
)

from .. import theme as T
from ..run_thread import JobSlot
from ..theme import variant_colour
from .panel import Marker, PlotPanel, Segment, cached, make_legend, make_pen, slices

MAX_MARKERS = 500              # a marker per step up to this many steps in parameter space
MAX_TRAJECTORY_POINTS = 2000   # longer trajectories are drawn through evenly spaced points
LANDSCAPE_N = 100              # grid resolution of the contour plot
BAND_UPSAMPLE = 4              # the filled bands are drawn on a finer (interpolated) grid
PICK_RADIUS_PX = 14
SYNC_LANDSCAPE_S = 0.03        # a landscape projected to take longer is computed in a worker thread
LANDSCAPE_POLL_MS = 40


class _Later(Exception):
    """The landscape would take too long for the UI thread: compute it in a worker."""


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
    defer_when_hidden = True       # a hidden tab catches up when shown (``PlotPanel.refresh``)

    def __init__(self, document, selection, on_pick=None, parent=None):
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
        self.cancel_button = QtWidgets.QPushButton("Cancel")
        self.cancel_button.setToolTip("Stop computing the loss landscape (the trajectories stay)")
        self.cancel_button.clicked.connect(self._cancel_or_compute)
        self.cancel_button.hide()
        self.header.addWidget(self.cancel_button)
        self._jobs = JobSlot(self, self._job_ended, LANDSCAPE_POLL_MS)   # a landscape computed in a worker
        self._progress_timer = QtCore.QTimer(self)
        self._progress_timer.setInterval(LANDSCAPE_POLL_MS)
        self._progress_timer.timeout.connect(self._show_progress)
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
        # the colour bar (a plot of its own, hidden until a landscape is drawn) is made in a later turn
        # of the event loop than the panel: together they took twice as long as one turn should
        self._colorbar: pg.ColorBarItem | None = None
        key = ("colour bar", id(self))
        self.destroyed.connect(lambda *_a, key=key: slices().discard(key))
        slices().add(key, lambda _deadline: self.colorbar is None)
        # The legend sits beside the contours (not under them): the landscape needs the height.
        self.legend = make_legend(1)
        self.legend.beside_plot = True
        self.legend.grid.setContentsMargins(4, 0, 0, 0)
        self.legend.toggled.connect(selection.toggle)
        self.view.addItem(self.legend, row=0, col=1)
        self.view.ci.layout.setAlignment(self.legend, QtCore.Qt.AlignmentFlag.AlignTop)
        self.plot.legend_box = self.legend
        self.trajectories: list[pg.PlotDataItem] = []
        self.current: list[pg.ScatterPlotItem] = []
        self.step_segments: list[pg.PlotCurveItem] = []
        # a box like the hover's, above the trajectories (they would run through the text)
        self.message = pg.TextItem("", anchor=(0.5, 0.5))
        self.message.setZValue(90)
        self._style_message()
        self.plot.addItem(self.message, ignoreBounds=True)
        self.landscape = None
        self.levels = None
        self.log_levels = False
        self._landscape_key = None
        self._landscape_stale = False
        self._landscape_later = False          # (``_catch_up``) the landscape waits for the next turn
        self._points: list[tuple[np.ndarray, np.ndarray]] = []
        self._names: list[str] = []
        self._runs: list[int] = []             # the variant index of each trajectory
        document.scenarioChanged.connect(self._fill_axes)

    @property
    def colorbar(self) -> pg.ColorBarItem:
        """The landscape's colour bar beside the plot (made when first needed)."""
        if self._colorbar is None:
            bar = pg.ColorBarItem(values=(0, 1), colorMap=CONTOUR_MAP, interactive=False, width=12)
            bar.setImageItem(self.image, insert_in=self.plot)
            bar.setMenuEnabled(False)
            bar.axis.setPen(pg.mkPen(T.PLOT_FOREGROUND))
            bar.axis.setTextPen(pg.mkPen(T.PLOT_FOREGROUND))
            bar.axis.enableAutoSIPrefix(False)
            bar.hide()
            self._colorbar = bar
        return self._colorbar

    def _hide_colorbar(self) -> None:
        if self._colorbar is not None:
            self._colorbar.hide()

    def _style_message(self) -> None:
        """The progress and notes box in the colours of the theme of the moment (the hover's)."""
        self.message.setColor(T.PLOT_FOREGROUND)
        self.message.fill = pg.mkBrush(T.colour(T.PLOT_HOVER_FILL, 0.92))
        self.message.border = pg.mkPen(T.PLOT_HOVER_BORDER)
        self.message.update()

    def _on_theme_changed(self) -> None:
        super()._on_theme_changed()
        self._style_message()

    def axes(self) -> tuple[str | None, str | None]:
        return self.x_box.currentText() or None, self.y_box.currentText() or None

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
        self._label_axes()

    def _label_axes(self) -> None:
        p1, p2 = self.axes()
        self.plot.setLabel("bottom", p1 or "")
        self.plot.setLabel("left", p2 or "")

    def clear_data(self) -> None:
        """Drop the landscape and the trajectories (another scenario: its own come with its run)."""
        super().clear_data()
        self.image.clear()
        self._clear_isocurves()
        self._hide_colorbar()
        self.landscape = None
        self._landscape_key = None
        self._drop_job()
        self.message.hide()
        self._set_trajectories([], [])

    def _axes_changed(self) -> None:
        self._landscape_key = None
        self._label_axes()
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
        points, names, runs = [], [], []
        for i, h in enumerate(histories):
            if h is None or not h.params or i >= len(variants):
                continue
            n = completed(h)
            xs, ys = element_values(h, p1, n + 1), element_values(h, p2, n + 1)
            points.append((xs, ys))
            names.append(variants[i].name)
            runs.append(i)
        self._set_trajectories(points, names, runs)
        if not self.document.running:
            # the landscape costs a grid of forward passes: a hidden tab computes it when it is shown
            # (and a tab just shown in the turn after its trajectories: ``_catch_up``)
            self._landscape_stale = not self.isVisible() or self._landscape_later
            if not self._landscape_stale:
                self._update_landscape(p1, p2)

    def _needs_catch_up(self) -> bool:
        return super()._needs_catch_up() or self._landscape_stale     # computed when shown

    def _catch_up(self, deadline: float) -> bool:
        """Shown after a refresh was put off: the trajectories in this turn, the landscape (up to
        ``SYNC_LANDSCAPE_S`` on this thread) in the next."""
        if not (self.isVisible() and self._needs_catch_up()):
            return False
        if not slices().alone(self._catch_up_key):
            return True
        slices().end_turn()                    # its repaint comes after the turn
        if not self._deferred:
            self.refresh()
            return False
        self._landscape_later = True
        try:
            self.refresh()
        finally:
            self._landscape_later = False
        return self._landscape_stale

    def _show_message(self, text: str) -> None:
        self.image.clear()
        self._clear_isocurves()
        self._hide_colorbar()
        self.landscape = None
        self.message.setText(text)
        vr = self.plot.vb.viewRect()
        self.message.setPos(vr.center())
        self.message.show()

    def _set_trajectories(self, points, names, runs=None) -> None:
        runs = list(range(len(points))) if runs is None else runs
        self._points, self._names, self._runs = points, names, runs
        while len(self.trajectories) > len(points):
            for items in (self.trajectories, self.current, self.step_segments):
                self.plot.removeItem(items.pop())
        while len(self.trajectories) < len(points):
            i = len(self.trajectories)
            colour = variant_colour(i)
            curve = pg.PlotDataItem()
            curve.curve.setSegmentedLineMode("off")     # one path per trajectory (also in an SVG)
            cached(curve.curve)
            cached(curve.scatter)
            curve.setZValue(10 + i)
            self.plot.addItem(curve)
            self.trajectories.append(curve)
            segment = Segment(pen=make_pen(colour, 3))
            segment.setZValue(30 + i)
            self.plot.addItem(segment, ignoreBounds=True)
            self.step_segments.append(segment)
            marker = Marker(size=12, brush=pg.mkBrush(colour), pen=pg.mkPen("w", width=2))
            marker.setZValue(40 + i)
            self.plot.addItem(marker, ignoreBounds=True)
            self.current.append(marker)
        entries = []
        for i, ((xs, ys), name, run) in enumerate(zip(points, names, runs)):
            colour = variant_colour(run)
            curve = self.trajectories[i]
            n = len(xs)
            if n > MAX_TRAJECTORY_POINTS:
                idx = thinned(n, MAX_TRAJECTORY_POINTS)
                xs, ys = xs[idx], ys[idx]
            markers = n <= MAX_MARKERS
            current = run == self.selection.variant          # the current run: thicker, on top
            pen = make_pen(colour, (2 if markers else 1) + (1 if current else 0))
            curve.setZValue(10 + (len(points) if current else i))
            curve.setData(finite(xs), finite(ys), pen=pen, name=name,
                          symbol="o" if markers else None, symbolSize=5, symbolBrush=pg.mkBrush(colour),
                          symbolPen=None)
            self.step_segments[i].setPen(make_pen(colour, 3))
            self.current[i].setBrush(pg.mkBrush(colour))
            entries.append((("run", run), name, pen))
        self.legend.set_entries(entries, self.selection.hidden)
        self.apply_hidden()

    def apply_hidden(self) -> None:
        super().apply_hidden()
        for i, run in enumerate(self._runs):
            shown = not self.selection.is_hidden(("run", run))
            for items in (self.trajectories, self.current, self.step_segments):
                if i < len(items):
                    items[i].setVisible(shown)

    def _update_landscape(self, p1: str, p2: str) -> None:
        """The landscape for these axes and the trajectories' ranges: computed here if the first
        block of grid points says it is quick, else in a worker thread (progress in the plot, Cancel
        in the header)."""
        sessions = self.document.sessions
        if not sessions or not self._points:
            return
        key = self._key(p1, p2)
        if key == self._landscape_key and self.landscape is not None:
            return
        if self._jobs.running(key):
            return
        self._drop_job()
        session, (_, _, xr, yr) = sessions[0], key[:4]
        began = time.perf_counter()

        def quick(done: int, total: int) -> None:
            if done < total and (time.perf_counter() - began) * total / done > SYNC_LANDSCAPE_S:
                raise _Later()
        try:
            landscape = session.landscape(p1, p2, n=LANDSCAPE_N, x_range=xr, y_range=yr, progress=quick)
        except _Later:
            self._jobs.start(lambda progress: session.landscape(p1, p2, n=LANDSCAPE_N, x_range=xr, y_range=yr,
                                                                progress=progress), key)
            self._progress_timer.start()
            self._show_message("")               # no contours of other axes or ranges under the progress
            self._show_progress()
            return
        except Exception as exc:          # the core refuses (e.g. too expensive): say so, keep the rest
            self._show_message(f"No landscape: {exc}")
            return
        self._set_landscape(key, landscape)

    def _key(self, p1: str, p2: str) -> tuple:
        xr = nice_range(*trajectory_extent([p[0] for p in self._points]))
        yr = nice_range(*trajectory_extent([p[1] for p in self._points]))
        sc = self.document.scenario
        return (p1, p2, xr, yr, repr(sc.model), repr(sc.data), repr(sc.loss), sc.seed)

    def _set_landscape(self, key: tuple, landscape) -> None:
        self._landscape_key = key
        self.landscape = landscape
        self.cancel_button.hide()
        self.message.hide()
        self._draw_landscape()
        self.plot.vb.setRange(xRange=key[2], yRange=key[3], padding=0.01)   # the image inside the view: cacheable

    def _show_progress(self) -> None:
        job = self._jobs.job
        if job is None:
            self._progress_timer.stop()
            return
        self.cancel_button.setText("Cancel")
        self.cancel_button.show()
        self.message.setText(f"Computing the loss landscape… {int(100 * job.fraction)} %")
        self.message.setPos(*(np.mean(r) for r in job.key[2:4]))
        self.message.show()

    def _job_ended(self, job) -> None:
        self._progress_timer.stop()
        key = job.key
        if job.cancelled:
            self._show_cancelled()
        elif job.error is not None:
            self.cancel_button.hide()
            self._show_message(f"No landscape: {job.error}")
        elif key == self._key(*self.axes()):
            self._set_landscape(key, job.result)

    def _show_cancelled(self) -> None:
        self.cancel_button.setText("Compute landscape")
        self.cancel_button.show()
        self._show_message("Landscape not computed (cancelled): the trajectories are drawn without it")

    def _cancel_or_compute(self) -> None:
        if self._jobs.running():
            self._jobs.job.cancel()         # it stops at its next block; its end shows "cancelled"
            self.cancel_button.setText("Cancelling…")
        else:
            self._landscape_key = None
            self.refresh()

    def _drop_job(self) -> None:
        self._jobs.drop()
        self._progress_timer.stop()
        self.cancel_button.hide()

    def wait_landscape(self, timeout: float = 120.0) -> None:
        """Block until a landscape computed in a worker is there, and draw it (tests, exports)."""
        self._jobs.wait(timeout)

    def _draw_landscape(self) -> None:
        ls = self.landscape
        if ls is None:
            return
        z = np.asarray(ls.z, dtype=np.float64)
        self.levels, self.log_levels = contour_levels(z, self.levels_box.currentText())
        self.band_image, t_levels = filled_bands(z, self.levels, self.log_levels, BAND_UPSAMPLE)
        xs, ys = np.asarray(ls.xs, dtype=np.float64), np.asarray(ls.ys, dtype=np.float64)
        dx = (xs[-1] - xs[0]) / max(len(xs) - 1, 1)
        dy = (ys[-1] - ys[0]) / max(len(ys) - 1, 1)
        rows, cols = self.band_image.shape
        self.image.setImage(self.band_image, autoLevels=False, levels=(t_levels[0], t_levels[-1]))
        fx, fy = (xs[-1] - xs[0]) / max(cols - 1, 1), (ys[-1] - ys[0]) / max(rows - 1, 1)
        self.image.setRect(QtCore.QRectF(xs[0] - fx / 2, ys[0] - fy / 2, fx * cols, fy * rows))
        self.colorbar.setLevels((t_levels[0], t_levels[-1]))
        self.colorbar.axis.setLabel("log₁₀ loss" if self.log_levels else "loss", color=T.PLOT_FOREGROUND)
        self.colorbar.show()
        self._clear_isocurves()
        # contour lines on the original grid, one pixel = one sample, centred on the samples
        holder = self.plot.vb.childGroup
        transform = QtGui.QTransform()
        transform.translate(xs[0], ys[0])
        transform.scale(dx if dx else 1.0, dy if dy else 1.0)
        zc = fill_non_finite(z)
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
            self.step_segments[i].setData(finite(xs[j:nxt + 1]), finite(ys[j:nxt + 1]))

    def _nearest(self, x: float, y: float):
        pw, ph = self.plot.vb.viewPixelSize()
        best = None
        for i, (xs, ys) in enumerate(self._points):
            if not len(xs) or self.selection.is_hidden(("run", self._runs[i])):
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
            h = self.document.histories[self._runs[i]]
            p1, p2 = self.axes()
            rows.append(f'<span style="color:{variant_colour(self._runs[i])}">■</span> <b>{self._names[i]}</b>')
            rows.append(f"before step {j}: {p1} = {format_exact(xs[j])}, {p2} = {format_exact(ys[j])}")
            if j < completed(h):
                rows.append(f"loss at step {j}: {format_exact(h.loss[j])}")
        if self.landscape is not None:
            ls = self.landscape
            cj = int(np.argmin(np.abs(np.asarray(ls.xs) - x)))
            ci = int(np.argmin(np.abs(np.asarray(ls.ys) - y)))
            if ls.xs[0] <= x <= ls.xs[-1] and ls.ys[0] <= y <= ls.ys[-1]:
                where = f"{format_exact(ls.xs[cj])}, {format_exact(ls.ys[ci])}"
                rows.append(f"<i>landscape ({where})</i>: {format_exact(ls.z[ci, cj])}")
        return "<br>".join(rows)

    def pick(self, plot, x, y) -> int | None:
        best = self._nearest(x, y)
        if best is None or best[0] > PICK_RADIUS_PX:
            return None
        _d, i, j = best
        n = completed(self.document.histories[self._runs[i]])
        return min(j, max(n - 1, 0))
