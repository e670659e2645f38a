"""The Data tab: the data points and the model's fit at the ViewState's iteration.

- one input, regression: the points, the model's curve and each point's residual;
- one input, two classes: the points at y = 0/1 and the model's probability curve;
- two inputs, two classes: the probability of class 1 as a heat map (orange = class 0, blue = class 1,
  colour-blind safe), the decision boundary p = 0.5, the points coloured by label and a ring around
  each misclassified one;
- two inputs, several classes: the class regions (faded by confidence) and the points;
- two inputs, regression: the prediction as a map, the points coloured by their target;
- a layers model on two inputs: the "Show" box (or selecting a layer's node in the graph) picks a
  layer, and each of its units' outputs over the input plane is drawn as a small map (TensorFlow
  Playground's neuron maps).

It follows the ViewState's variant and iteration (so it animates when playing across iterations):
everything it draws comes from ``gradviz.view.data_fit`` (the core's own forward on a grid, no Qt);
items are created once and only get new data. Scenarios it cannot draw (an objective, a script,
too many inputs) get a sentence saying what it would show and why not.

At most ``MAX_POINTS`` data points are drawn (evenly spaced rows, the header says how many of how
many): rings, residuals, hover and the unit maps' dots use the same ones; the accuracy counts all.
"""
from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from gradviz.view.data_fit import DataFit
from gradviz.view.format import format_exact
from gradviz.view.series import thinned

from .. import theme as T
from ..run_thread import JobSlot
from .panel import PlotPanel, cached, make_pen, slices, style_plot

# Okabe–Ito, classes 0 and 1 orange and blue (as TensorFlow Playground's two classes)
CLASS_COLOURS = ("#E69F00", "#0072B2", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#7f7f7f")
CLASS_COLOURS_DARK = ("#F2B134", "#3D9BDB", "#25C08F", "#E08FC0", "#8DD3F7", "#F0783A", "#F0E442", "#b3b3b3")
HEAT_SOFTEN = (0.35, 0.6)     # the heat map's ends: the class colour with this share of the background
REGION_ALPHA = (0.18, 0.6)    # class regions: the class colour's share from least to most confident
POINT_SIZE = 8
RING_SIZE = 13
GRID_SAMPLES = 100 * 100      # the map samples the range on screen with about this many points
MAX_UNIT_MAPS = 64
COMPACT_BELOW_PX = 1100       # a narrower panel gets the short header texts
HOVER_PX = 8                  # a point this close to the mouse is described in the hover
MAX_POINTS = 2500             # data points drawn at most (a scatter of 100,000 takes seconds to build)


def class_colours() -> tuple[str, ...]:
    return CLASS_COLOURS_DARK if T.is_dark() else CLASS_COLOURS


def _mix(a: QtGui.QColor, b: QtGui.QColor, t: float) -> np.ndarray:
    ca = np.array([a.red(), a.green(), a.blue()], float)
    return ca + (np.array([b.red(), b.green(), b.blue()], float) - ca) * t


def diverging_map() -> pg.ColorMap:
    """Class 0's orange through the plot background to class 1's blue (low → high)."""
    bg = QtGui.QColor(T.PLOT_BACKGROUND)
    c0, c1 = (QtGui.QColor(c) for c in class_colours()[:2])
    soften = HEAT_SOFTEN[T.is_dark()]          # light, dark: on a dark surface the ends stay darker
    stops = [_mix(c0, bg, soften), _mix(bg, c0, 0.08), _mix(bg, c1, 0.08), _mix(c1, bg, soften)]
    return pg.ColorMap([0.0, 0.5, 0.5, 1.0], np.array(stops).astype(np.ubyte))


def sequential_map() -> pg.ColorMap:
    return pg.colormap.get("viridis")


class DataView(PlotPanel):
    """The data and the model's fit at the current iteration (see the module docstring)."""
    title = "Data"
    defer_when_hidden = True       # a hidden tab catches up when shown (``PlotPanel.refresh``)

    def __init__(self, document, selection, on_pick=None, parent=None, player=None):
        super().__init__(document, selection, on_pick, parent)
        self.player = player
        self.fit: DataFit | None = None
        self.mode = "fit"                    # "fit" or a module name ("0", "1", ...): its unit maps
        self.drawn_iteration: int | None = None
        self.draws = 0
        self.drawn_rows: np.ndarray | None = None     # the data rows drawn (all up to MAX_POINTS)
        self._jobs = JobSlot(self, self._evaluation_ended)   # a large data set's evaluation (_evaluated)
        self._warm: tuple | None = None      # what the last finished evaluation filled the caches for
        self._stale = False
        self._configured = None
        self.show_label = QtWidgets.QLabel("Show")
        self.show_box = QtWidgets.QComboBox()
        self.show_box.setToolTip("The model's fit to the data, or each unit of a layer over the input plane "
                                 "(selecting a layer's node in the graph chooses it too)")
        # a fixed width (long layer titles show in full in the popup): never widens a narrow window
        self.show_box.setSizeAdjustPolicy(QtWidgets.QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon)
        self.show_box.setMinimumContentsLength(20)
        self.show_box.view().setMinimumWidth(320)
        self.show_box.activated.connect(self._on_show_chosen)
        self.info = QtWidgets.QLabel()
        self.info.setTextFormat(QtCore.Qt.TextFormat.RichText)
        # a narrow panel clips this line rather than squeezing the Show box
        self.info.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        self.info.setMinimumWidth(60)
        self.key = QtWidgets.QLabel()
        self.key.setTextFormat(QtCore.Qt.TextFormat.RichText)
        self.header.insertSpacing(1, 12)
        for i, w in enumerate((self.show_label, self.show_box, self.info)):
            self.header.insertWidget(2 + i, w)          # after the title, before the stretch
        self.header.insertSpacing(5, 6)
        self.header.insertSpacing(4, 10)
        self.header.setStretchFactor(self.info, 10)     # the free space goes to the line, not the stretch
        self.header.addWidget(self.key)
        # the body: the fit plot, the unit maps, or an explanation
        self.units_view = pg.GraphicsLayoutWidget()
        self.units_view.setBackground(T.PLOT_BACKGROUND)
        self.units_view.ci.setContentsMargins(4, 4, 4, 4)
        self.units_view.ci.setSpacing(6)
        self.explanation = QtWidgets.QLabel()
        self.explanation.setWordWrap(True)
        self.explanation.setAlignment(QtCore.Qt.AlignmentFlag.AlignCenter)
        self.explanation.setMargin(24)
        self.stack = QtWidgets.QStackedWidget()
        layout = self.layout()
        layout.removeWidget(self.view)
        for w in (self.view, self.units_view, self.explanation):
            self.stack.addWidget(w)
        layout.addWidget(self.stack, 1)

        self.plot = self._new_plot(0, cursor=False)
        self.plot.setDownsampling(auto=False)
        self.plot.setClipToView(False)
        self.heat = pg.ImageItem(axisOrder="row-major")
        self.regions = pg.ImageItem(axisOrder="row-major")
        for image in (self.heat, self.regions):
            image.setZValue(-10)
            self.plot.addItem(image, ignoreBounds=True)
        # the map covers whatever range is on screen: re-sampled after a pan, zoom or resize
        self._resample = QtCore.QTimer(self)
        self._resample.setSingleShot(True)
        self._resample.setInterval(0)
        self._resample.timeout.connect(self._on_range_changed)
        self.plot.vb.sigRangeChanged.connect(lambda *_: self._resample.start())
        # the colour bar (a plot of its own) is made in a later turn of the event loop than the panel
        # (together they took twice as long as one turn should); hidden until a heat map shows
        self._colorbar: pg.ColorBarItem | None = None
        key = ("colour bar", id(self))
        self.destroyed.connect(lambda *_a, key=key: slices().discard(key))
        slices().add(key, lambda _deadline: self.colorbar is None)
        self.boundary = pg.PlotCurveItem(connect="pairs")
        self.boundary.setZValue(5)
        self.residuals = pg.PlotCurveItem(connect="pairs")
        self.model_curve = pg.PlotCurveItem()
        self.model_curve.setZValue(6)
        self.points = pg.ScatterPlotItem(size=POINT_SIZE)
        self.points.setZValue(10)
        self.wrong = pg.ScatterPlotItem(size=RING_SIZE, symbol="o", brush=None)
        self.wrong.setZValue(11)
        for item in (self.boundary, self.residuals, self.model_curve, self.points, self.wrong):
            self.plot.addItem(item)
        self.half = pg.InfiniteLine(pos=0.5, angle=0, movable=False)      # one input, two classes: p = 0.5
        self.plot.addItem(self.half, ignoreBounds=True)
        self.unit_boxes: list[tuple[pg.ViewBox, pg.ImageItem, pg.TextItem]] = []
        self._unit_lut = diverging_map().getLookupTable(nPts=256, alpha=True)    # (256, 4) RGBA
        self._unit_columns = 0
        self._units_built = None
        self._restyle()
        selection.view_state.selectedNodeChanged.connect(self._on_node_selected)
        T.notifier.changed.connect(self._on_theme)

    # -- what is shown -----------------------------------------------------------------------------
    def session(self):
        sessions = self.document.sessions
        i = self.selection.variant
        return sessions[i] if 0 <= i < len(sessions) else None

    def clear_data(self) -> None:
        super().clear_data()
        self.fit = None
        self._configured = None
        self.drawn_iteration = None
        self.drawn_rows = None
        self._warm = None
        self._jobs.drop()
        for item in (self.heat, self.regions):
            item.clear()
        for item in (self.boundary, self.residuals, self.model_curve):
            item.setData([], [])
        self.points.clear()
        self.wrong.clear()
        self.info.clear()
        self.key.clear()

    def _explain(self, text: str, heading: str = "Nothing to draw here") -> None:
        self.explanation.setText(f"<p style='font-size: 12pt'><b>{html.escape(heading)}</b></p>"
                                 f"<p style='font-size: 10.5pt'>{html.escape(text)}</p>")
        self.explanation.setStyleSheet(f"color: {T.TEXT_MUTED};")
        self.stack.setCurrentWidget(self.explanation)
        for w in (self.show_label, self.show_box):
            w.hide()
        self.info.clear()
        self.key.clear()

    def _refresh(self) -> None:
        if self.isVisible():
            self._stale = False              # drawn now (or explained, or evaluated in a worker)
        session = self.session()
        if self.document.scenario is None or session is None:
            self.fit = None
            self._explain("The Data view shows a scenario's data points and the model's fit to them, "
                          "following the iteration. Open a scenario with data (File ▸ Open bundled) to see it.",
                          "No run yet")
            return
        if self.fit is None or self.fit.session is not session:
            try:
                self.fit = DataFit(session)
            except Exception as exc:           # never let a drawing problem take the dashboards down
                self.fit = None
                self._explain(f"The Data view cannot evaluate this model: {exc}")
                return
        fit = self.fit
        if not fit.kind:
            self._explain(fit.why_not, fit.why_not_heading)
            return
        if self._configured is not fit:
            self._configure(fit)
        if self.isVisible():
            self._draw(self.iteration)
        else:
            self._stale = True

    def _configure(self, fit: DataFit) -> None:
        """Set the plot up for this run's kind of problem, once per run."""
        self._configured = fit
        box = self.show_box
        box.blockSignals(True)
        box.clear()
        box.addItem({"regression": "Fit: the model's curve", "surface": "Fit: the prediction map",
                     "multiclass": "Fit: class regions"}.get(fit.kind, "Fit: decision boundary")
                    if fit.dims == 2 or fit.kind == "regression" else "Fit: probability curve", "fit")
        for choice in fit.layers:
            box.addItem(f"Units of {choice.title}", choice.module)
        if self.mode != "fit" and fit.hidden_layer(self.mode) is None:
            self.mode = "fit"
        box.setCurrentIndex(max(0, box.findData(self.mode)))
        box.blockSignals(False)
        for w in (self.show_label, self.show_box):
            w.setVisible(box.count() > 1)
        two_d = fit.dims == 2
        self.plot.setLabel("bottom", fit.input_names[0])
        self.plot.setLabel("left", fit.input_names[1] if two_d else
                           (f"p({fit.target_name} = 1)" if fit.kind == "binary" else fit.target_name))
        heat = two_d and fit.kind in ("binary", "surface")
        self.heat.setVisible(heat)
        self.colorbar.setVisible(heat)
        self.regions.setVisible(fit.kind == "multiclass")
        self.boundary.setVisible(fit.kind == "binary" and two_d)
        self.residuals.setVisible(fit.kind == "regression")
        self.model_curve.setVisible(not two_d)
        self.half.setVisible(fit.kind == "binary" and not two_d)
        self.colorbar.axis.setLabel("prediction" if fit.kind == "surface" else "p(class 1)")
        if fit.kind == "surface":
            self.colorbar.setColorMap(sequential_map())
        elif heat:
            self.colorbar.setColorMap(diverging_map())
            self.colorbar.setLevels((0.0, 1.0))
        self._set_points(fit)
        (x0, x1) = fit.extent[0]
        if two_d:
            (y0, y1) = fit.extent[1]
            self._lock_aspect()
            self.plot.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)
        else:
            self.plot.setAspectLocked(False)
            self.plot.enableAutoRange()
            self.plot.setXRange(x0, x1, padding=0)
        self._set_key(fit)

    def _set_points(self, fit: DataFit) -> None:
        """The data points (at most ``MAX_POINTS``, evenly spaced rows): colour by label (classes), by
        target (a map) or one colour (a curve)."""
        edge = pg.mkPen(T.PLOT_BACKGROUND, width=1)
        rows = thinned(len(fit.x), MAX_POINTS)
        self.drawn_rows = rows
        xy = self._xy(fit)[rows]
        y = np.asarray(fit.y)[rows]
        if fit.classes:
            palette = np.empty(len(class_colours()), dtype=object)
            palette[:] = [pg.mkBrush(QtGui.QColor(c)) for c in class_colours()]
            brushes = palette[y.astype(np.intp) % len(palette)]
        elif fit.kind == "surface":
            lo, hi = float(np.min(fit.y)), float(np.max(fit.y))
            t = (y - lo) / (hi - lo) if hi > lo else np.full(len(y), 0.5)
            palette = np.empty(256, dtype=object)         # one brush per shade, not per point
            palette[:] = [pg.mkBrush(c) for c in sequential_map().map(np.linspace(0, 1, 256), mode="qcolor")]
            brushes = palette[np.clip(np.round(np.nan_to_num(t) * 255), 0, 255).astype(np.intp)]
            edge = pg.mkPen(T.PLOT_FOREGROUND, width=1)
        else:
            brushes = pg.mkBrush(T.colour(T.PARAM_BORDER))
        self.points.setData(pos=xy, brush=brushes, pen=edge, size=POINT_SIZE)

    @staticmethod
    def _xy(fit: DataFit) -> np.ndarray:
        """Every data point where it is drawn: the inputs (two), or input and target (one)."""
        return fit.x if fit.dims == 2 else np.stack([fit.x[:, 0], np.asarray(fit.y).astype(np.float64)], axis=1)

    def _rows(self, fit: DataFit) -> np.ndarray:
        if self.drawn_rows is None or (len(self.drawn_rows) and self.drawn_rows[-1] >= len(fit.x)):
            self.drawn_rows = thinned(len(fit.x), MAX_POINTS)
        return self.drawn_rows

    def _compact(self) -> bool:
        """Short header texts when the panel is narrow (800 px windows)."""
        return self.width() < COMPACT_BELOW_PX

    def _set_key(self, fit: DataFit) -> None:
        """The header's key: what the colours and marks mean (shorter when the panel is narrow)."""
        short = self._compact()

        def dot(colour: str, text: str) -> str:
            return f"<span style='color:{colour}; font-size: 12pt'>●</span>&nbsp;{html.escape(text)}"
        parts = []
        tip = ""
        if self.mode != "fit":
            choice = fit.hidden_layer(self.mode)
            lo, hi = {"Tanh": (-1, 1), "Sigmoid": (0, 1)}.get(choice.kind if choice else "", ("−", "+"))
            colours = class_colours()
            parts = [dot(colours[0], f"low ({lo})"), dot(colours[1], f"high ({hi})")]
            if not short:
                parts.append("each map: one unit's output over the input plane")
            tip = "Each small map is one unit's output over the input plane (x1 across, x2 up)."
        elif fit.classes:
            colours = class_colours()
            parts = [dot(colours[c % len(colours)], f"{'' if short else 'class '}{c}")
                     for c in range(min(fit.classes, 8))]
            parts.append(f"<span style='color:{T.PLOT_FOREGROUND}'>◯</span>&nbsp;"
                         f"{'wrong' if short else 'misclassified'}")
            tip = "Points coloured by their label; a ring marks a point the model classifies wrongly."
            if fit.kind == "binary" and fit.dims == 2:
                tip += " The line is the decision boundary, where p(class 1) = 0.5."
        elif fit.kind == "regression":
            parts = [dot(T.PARAM_BORDER, "data"), f"<span style='color:{T.FORWARD}'>━</span>&nbsp;model",
                     f"<span style='color:{T.LOSS}'>┊</span>&nbsp;residual"]
            tip = "The dashed lines are the residuals, prediction − target, whose squares the MSE averages."
        else:
            parts = ["colour: prediction; points: their target"]
        text = "&nbsp;&nbsp;".join(parts)
        if self.key.text() != text:
            self.key.setText(text)
            self.key.setToolTip(tip)

    def _on_show_chosen(self, index: int) -> None:
        self.mode = self.show_box.itemData(index) or "fit"
        self._draw(self.iteration)

    def show_layer(self, module: str | None) -> None:
        """Show the unit maps of ``module`` ("0", "1", …), or the fit for None; as the Show box does."""
        index = self.show_box.findData(module or "fit")
        if index >= 0:
            self.show_box.setCurrentIndex(index)
            self._on_show_chosen(index)

    def _replay(self):
        """The graph's Replay (node ids → modules): the Player given, else the main window's (the
        Dashboards are built without one; a floating dock is still the window's child)."""
        player, widget = self.player, self.parentWidget()
        while player is None and widget is not None:
            player = getattr(widget, "player", None)
            widget = widget.parentWidget()
        return getattr(player, "replay", None)

    def _on_node_selected(self, node_id) -> None:
        """A layer's node selected in the graph: show its units (the Linear's or the activation's)."""
        if node_id is None or self.fit is None or not self.fit.layers:
            return
        replay = self._replay()
        module = replay.modules.get(node_id, "") if replay is not None else ""
        top = module.split(".")[0] if module else ""
        if self.fit.hidden_layer(top) is not None:
            self.show_layer(top)

    # -- drawing ---------------------------------------------------------------------------------------
    def set_iteration(self, k: int) -> None:
        self.iteration = int(k)             # no cursor to move (the base's plots have one)
        if self.fit is None or not self.fit.kind or self._configured is not self.fit:
            return
        if self.isVisible():
            self._draw(self.iteration)
        else:
            self._stale = True

    def _needs_catch_up(self) -> bool:
        return super()._needs_catch_up() or self._stale       # drawn when shown

    def _draw(self, k: int) -> None:
        fit = self.fit
        if fit is None or not fit.kind:
            return
        if fit.expensive and not self._evaluated(fit, k):
            return                           # a worker evaluates the model; drawn when it is done
        self._stale = False
        self.draws += 1
        self.drawn_iteration = k
        if self.mode == "fit":
            self.stack.setCurrentWidget(self.view)
            self._draw_fit(fit, k)
        else:
            self.stack.setCurrentWidget(self.units_view)
            self._draw_units(fit, k)
        self._set_info(fit, k)
        self._set_key(fit)

    # -- a large data set's evaluation, off the UI thread ----------------------------------------------
    def _need(self, fit: DataFit, k: int) -> tuple:
        """What drawing iteration ``k`` in the current mode evaluates (the key of the worker's job)."""
        extent = shape = None
        if self.mode == "fit" and fit.dims == 2:
            extent, shape = self._view_grid()
            extent = tuple(tuple(map(float, e)) for e in extent)
            shape = tuple(map(int, shape))
        return (id(fit), k, self.mode, extent, shape)

    def _evaluated(self, fit: DataFit, k: int) -> bool:
        """True when ``fit``'s caches hold what iteration ``k`` needs (``DataFit.expensive``: the model
        on every data point takes long); else start a worker that fills them and say so."""
        need = self._need(fit, k)
        if need == self._warm:
            return True
        if self._jobs.running(need):
            return False
        mode, extent, shape = need[2:]

        def evaluate(_progress):
            fit.points(k)
            if mode != "fit":
                fit.unit_maps(k, mode)
            elif fit.dims == 1:
                fit.curve(k)
            else:
                fit.grid(k, extent=extent, shape=shape)
        self._jobs.start(evaluate, need)     # replaces a stale one (the caches take its result anyway)
        self.info.setText(f"<span style='color:{T.TEXT_MUTED}'>evaluating the model on "
                          f"{len(fit.x):,} points at iteration {k}…</span>")
        return False

    def _evaluation_ended(self, job) -> None:
        if job.cancelled or self.fit is None or job.key[0] != id(self.fit):
            return
        if job.error is not None:
            self.info.setText(f"<span style='color:{T.TEXT_MUTED}'>cannot evaluate the model: {job.error}</span>")
            return
        self._warm = job.key
        if self.isVisible():
            self._draw(self.iteration)       # this iteration, or (moved on meanwhile) evaluate that one

    def wait_evaluation(self, timeout: float = 120.0) -> None:
        """Block until a worker's evaluation has ended and draw it (tests, exports)."""
        self._jobs.wait(timeout)

    def _set_info(self, fit: DataFit, k: int) -> None:
        short = self._compact()
        shown = fit.shown_step(k)
        parts = [f"{'it.' if short else 'iteration'} {k}"]
        if shown != k:
            parts[0] += f" (drawn: step {shown}, the last kept)"
        h = fit.history
        if h is not None and k < len(h.loss) and not (short and fit.classes):
            parts.append(f"loss {float(h.loss[k]):.4g}")
        drawn = len(self._rows(fit))
        if drawn < len(fit.x):
            parts.append(f"{drawn:,} of {len(fit.x):,} points drawn")
        if fit.classes:
            correct = fit.points(k).correct
            wrong = int((~correct).sum())
            parts.append(f"{correct.mean():.0%} correct" if short else
                         f"accuracy {correct.mean():.0%} ({wrong} misclassified)")
        self.info.setText(f"<span style='color:{T.TEXT_MUTED}'>{' · '.join(parts)}</span>")

    def _draw_fit(self, fit: DataFit, k: int) -> None:
        if fit.dims == 1:
            curve = fit.curve(k)
            self.model_curve.setData(curve.x, curve.y)
            points = fit.points(k)
            rows = self._rows(fit)
            if fit.kind == "regression":
                segs = np.empty((2 * len(rows), 2))
                segs[0::2, 0] = segs[1::2, 0] = fit.x[rows, 0]
                segs[0::2, 1], segs[1::2, 1] = np.asarray(fit.y)[rows], np.asarray(points.output)[rows]
                self.residuals.setData(segs[:, 0], segs[:, 1])
            else:
                self._set_wrong(self._xy(fit), points.correct)
            return
        extent, shape = self._view_grid()
        grid = fit.grid(k, extent=extent, shape=shape)
        rect = QtCore.QRectF(*grid.pixel_rect())
        if fit.kind == "multiclass":
            self.regions.setImage(self._region_rgba(grid, fit.classes), autoLevels=False, levels=(0, 255))
            self.regions.setRect(rect)
        else:
            values = np.nan_to_num(grid.values, nan=0.5 if fit.kind == "binary" else 0.0)
            if fit.kind == "surface":
                lo = float(min(values.min(), fit.y.min()))
                hi = float(max(values.max(), fit.y.max()))
                self.colorbar.setLevels((lo, hi if hi > lo else lo + 1))
            self.heat.setImage(values, autoLevels=False, levels=self.colorbar.levels())
            self.heat.setRect(rect)
        if fit.kind == "binary":
            segments = fit.boundary(k, extent=extent, shape=shape)
            self.boundary.setData(segments[:, :, 0].ravel(), segments[:, :, 1].ravel())
        if fit.classes:
            self._set_wrong(self._xy(fit), fit.points(k).correct)

    def _view_grid(self):
        """The range on screen and a grid over it with square-ish cells (about GRID_SAMPLES samples);
        (None, None), the data's range at 100 x 100, before the plot has a size."""
        vb = self.plot.vb
        w, h = vb.width(), vb.height()
        if w < 20 or h < 20:
            return None, None
        (x0, x1), (y0, y1) = vb.viewRange()
        nx = int(np.clip(round(np.sqrt(GRID_SAMPLES * w / h)), 16, 400))
        ny = int(np.clip(round(GRID_SAMPLES / nx), 16, 400))
        return ((x0, x1), (y0, y1)), (nx, ny)

    def _on_range_changed(self) -> None:
        fit = self.fit
        if (fit is not None and fit.kind and fit.dims == 2 and self.mode == "fit" and self.isVisible()
                and self._configured is fit):
            self._draw(self.iteration)

    def _set_wrong(self, xy: np.ndarray, correct: np.ndarray) -> None:
        """A ring around each drawn point the model gets wrong."""
        rows = self._rows(self.fit)
        wrong = ~np.asarray(correct)[rows]
        self.wrong.setData(pos=xy[rows][wrong], pen=make_pen(T.PLOT_FOREGROUND, 1.3, alpha=210), brush=None,
                           size=RING_SIZE)

    @staticmethod
    def _region_rgba(grid, classes: int) -> np.ndarray:
        """Each sample in its class's colour, more opaque where the model is surer."""
        bg = QtGui.QColor(T.PLOT_BACKGROUND)
        base = np.array([bg.red(), bg.green(), bg.blue()], float)
        colours = np.array([[c.red(), c.green(), c.blue()] for c in map(QtGui.QColor, class_colours())], float)
        cls = grid.classes % len(colours)
        confidence = np.clip((np.nan_to_num(grid.values) - 1 / classes) / (1 - 1 / classes), 0, 1)
        share = REGION_ALPHA[0] + (REGION_ALPHA[1] - REGION_ALPHA[0]) * confidence
        rgb = base + (colours[cls] - base) * share[..., None]
        rgba = np.empty(grid.values.shape + (4,), np.ubyte)
        rgba[..., :3] = np.clip(rgb, 0, 255)
        rgba[..., 3] = 255
        return rgba

    # -- neuron maps ----------------------------------------------------------------------------------
    def _draw_units(self, fit: DataFit, k: int) -> None:
        maps = fit.unit_maps(k, self.mode)
        units = min(len(maps.values), MAX_UNIT_MAPS)
        self._ensure_unit_boxes(units, maps)
        rect = QtCore.QRectF(*maps.pixel_rect())
        # every unit coloured at once (one lookup), handed over as RGBA: no per-image colour table
        lo, hi = maps.levels
        index = np.clip((np.nan_to_num(maps.values[:units]) - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.intp)
        rgba = self._unit_lut[index]
        for j in range(units):
            _vb, image, _label = self.unit_boxes[j]
            image.setImage(rgba[j], autoLevels=False, levels=None)
            image.setRect(rect)

    def _ensure_unit_boxes(self, units: int, maps) -> None:
        """One small aspect-locked map per unit, laid out in as many columns as fit best."""
        columns = self._best_columns(units, maps)
        built = (units, columns, maps.choice.title)            # labels and tooltips name the layer
        if len(self.unit_boxes) == units and built == self._units_built:
            return
        self.units_view.ci.clear()
        self.unit_boxes = []
        self._unit_columns = columns
        self._units_built = built
        (x0, x1), (y0, y1) = self.fit.extent
        for j in range(units):
            vb = self.units_view.ci.addViewBox(row=j // columns, col=j % columns, lockAspect=True,
                                               enableMouse=False, enableMenu=False)
            vb.setBackgroundColor(T.PLOT_BACKGROUND)
            image = pg.ImageItem(axisOrder="row-major")
            vb.addItem(image)
            dots = pg.ScatterPlotItem(pos=self.fit.x[self._rows(self.fit)], size=2, pen=None,
                                      brush=pg.mkBrush(T.colour(T.PLOT_FOREGROUND, 0.3)))
            dots.setZValue(5)                    # the data, faintly: where each unit's boundary falls
            cached(dots)                         # static: painted once, then blitted
            vb.addItem(dots, ignoreBounds=True)
            label = pg.TextItem(f"{maps.choice.module}[{j}]", color=T.PLOT_FOREGROUND, anchor=(0, 0))
            label.setFont(T.ui_font(7.5))
            label.setPos(x0, y1)
            vb.addItem(label, ignoreBounds=True)
            vb.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)
            vb.setToolTip(f"Unit {j} of {maps.choice.title}: its output over the input plane "
                          f"(orange low, blue high; {maps.levels[0]:g} … {maps.levels[1]:g})")
            self.unit_boxes.append((vb, image, label))

    def _best_columns(self, units: int, maps) -> int:
        """The column count that makes each map largest in the space the tab has."""
        (x0, x1), (y0, y1) = self.fit.extent
        aspect = (x1 - x0) / (y1 - y0) if y1 > y0 else 1.0
        w, h = max(self.units_view.width(), 100), max(self.units_view.height(), 60)
        best, size = 1, 0.0
        for columns in range(1, units + 1):
            rows = -(-units // columns)
            cell = min(w / columns / aspect, h / rows)        # the map's height that fits
            if cell > size:
                best, size = columns, cell
        return best

    MAX_STRETCH = 2.0     # the input plane is drawn at most this much wider (or taller) than 1:1

    def _lock_aspect(self) -> None:
        """Lock the plane's aspect near 1:1 (the moons keep their shape) but let it stretch up to
        MAX_STRETCH towards the plot's shape: a wide, short dock at exactly 1:1 is mostly empty plane."""
        fit = self.fit
        if fit is None or fit.dims != 2:
            return
        (x0, x1), (y0, y1) = fit.extent
        w, h = self.plot.vb.width(), self.plot.vb.height()
        if w <= 0 or h <= 0 or x1 <= x0 or y1 <= y0:
            self.plot.setAspectLocked(True, 1.0)
            return
        natural = (h / (y1 - y0)) / (w / (x1 - x0))         # y pixels per unit over x pixels per unit
        ratio = min(max(natural, 1 / self.MAX_STRETCH), self.MAX_STRETCH)
        if abs(ratio - (self.plot.vb.state["aspectLocked"] or 0)) > 1e-3:
            self.plot.setAspectLocked(True, ratio)
            self.plot.setRange(xRange=(x0, x1), yRange=(y0, y1), padding=0)

    def resizeEvent(self, event):
        super().resizeEvent(event)
        if self.fit is not None and self.mode == "fit":
            self._lock_aspect()
        if self.fit is not None and self.fit.kind and self.drawn_iteration is not None:
            self._set_info(self.fit, self.iteration)
            self._set_key(self.fit)
        if self.mode != "fit" and self.fit is not None and self.fit.kind and self.unit_boxes:
            if self._best_columns(len(self.unit_boxes), None) != self._unit_columns:
                self._draw(self.iteration)          # another column count fits better: re-laid out

    # -- hover and look --------------------------------------------------------------------------------
    def hover_html(self, plot, x: float, y: float) -> str:
        fit = self.fit
        if fit is None or not fit.kind or self.mode != "fit":
            return ""
        k = self.iteration
        if fit.expensive and self.drawn_iteration != k:
            return ""                        # its points are being evaluated in a worker
        sx, sy = plot.vb.viewPixelSize()
        rows = self._rows(fit)                      # the points drawn
        xy = self._xy(fit)[rows]
        d = np.hypot((xy[:, 0] - x) / sx, (xy[:, 1] - y) / sy)
        j = int(np.argmin(d)) if len(d) else -1
        i = int(rows[j]) if j >= 0 else -1
        if i >= 0 and d[j] <= HOVER_PX:
            points = fit.points(k)
            coords = ", ".join(f"{n} = {format_exact(float(v))}" for n, v in zip(fit.input_names, fit.x[i]))
            if fit.classes:
                verdict = "✓" if points.correct[i] else "✗ misclassified"
                prob = (f"p(class 1) = {points.output[i]:.3f}" if fit.kind == "binary"
                        else f"p = {points.output[i]:.3f}")
                return (f"point {i}: {coords}<br>label {int(fit.y[i])}, predicted {int(points.predicted[i])} "
                        f"({prob}) {verdict}")
            return (f"point {i}: {coords}<br>{fit.target_name} = {format_exact(float(fit.y[i]))}, "
                    f"prediction {format_exact(float(points.output[i]))}")
        if fit.dims == 2:
            raw = fit.predict(k, np.array([[x, y]]))
            where = f"{fit.input_names[0]} = {x:.3g}, {fit.input_names[1]} = {y:.3g}"
            if fit.kind == "binary":
                return f"{where}<br>p(class 1) = {1 / (1 + np.exp(-raw[0, 0])):.3f}"
            if fit.kind == "multiclass":
                return f"{where}<br>class {int(np.argmax(raw[0]))}"
            return f"{where}<br>prediction {raw[0, 0]:.4g}"
        return ""

    @property
    def colorbar(self) -> pg.ColorBarItem:
        """The heat map's colour bar beside the plot (made when first needed)."""
        if self._colorbar is None:
            bar = pg.ColorBarItem(values=(0, 1), colorMap=diverging_map(), interactive=False, width=12)
            bar.setImageItem(self.heat, insert_in=self.plot)
            bar.setMenuEnabled(False)
            bar.axis.enableAutoSIPrefix(False)
            bar.axis.setPen(pg.mkPen(T.PLOT_FOREGROUND))
            bar.axis.setTextPen(pg.mkPen(T.PLOT_FOREGROUND))
            bar.setVisible(self.heat.isVisible() and self.heat.image is not None)
            self._colorbar = bar
        return self._colorbar

    def _restyle(self) -> None:
        """Colours of the theme in use (at construction and after a light/dark switch)."""
        self.units_view.setBackground(T.PLOT_BACKGROUND)
        self.boundary.setPen(make_pen(T.PLOT_FOREGROUND, 2.0))
        self.model_curve.setPen(make_pen(T.FORWARD, 2.0))
        self.half.setPen(make_pen(T.PLOT_CURSOR, 1.0, dash=True))
        self.residuals.setPen(make_pen(T.LOSS, 1.0, alpha=170, dash=True))
        if self._colorbar is not None:
            self._colorbar.axis.setPen(pg.mkPen(T.PLOT_FOREGROUND))
            self._colorbar.axis.setTextPen(pg.mkPen(T.PLOT_FOREGROUND))
        style_plot(self.plot)

    def _on_theme(self) -> None:
        self._restyle()
        self._unit_lut = diverging_map().getLookupTable(nPts=256, alpha=True)    # (256, 4) RGBA
        self.units_view.ci.clear()              # the unit maps are rebuilt in the new colours
        self.unit_boxes = []
        fit = self.fit
        if fit is not None and fit.kind and self._configured is fit:
            self._configured = None
            self._configure(fit)
            self._draw(self.iteration)
