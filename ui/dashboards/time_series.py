"""The panels that plot over the optimizer step: loss, parameters, gradients, optimizer state.

* ``LossPlot``    loss vs optimizer step for every variant (+ the micro-batch losses);
* ``ParamsPlot``  the chosen parameter series (scalars, tensor elements or norms) vs step;
* ``GradsPlot``   the ``.grad`` each ``optimizer.step()`` saw, and the total gradient norm;
* ``StatePlot``   one row per optimizer-state buffer, the step actually taken, GradScaler scale.

They draw what the History holds and what it derives (``History.grad_norm``,
``History.step_sizes``); the series come from ``gradviz.view.series``.
"""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from gradviz.view.format import format_exact
from gradviz.view.series import completed, finite, param_steps, row_steps, spans_decades

from .. import theme as T
from ..theme import variant_colour
from .panel import (
    MIN_LEGEND_COLUMN_PX,
    PlotPanel,
    cached,
    line_width,
    make_legend,
    make_pen,
)

STATE_TITLES = {
    "step_size": "step taken |Δθ| = |θ(k+1) − θ(k)|", "scale": "GradScaler scale (× marks a skipped step)",
    "momentum_buffer": "momentum_buffer", "exp_avg": "exp_avg (m)", "exp_avg_sq": "exp_avg_sq (v)",
    "max_exp_avg_sq": "max_exp_avg_sq", "square_avg": "square_avg", "grad_avg": "grad_avg", "sum": "sum (Adagrad)",
}
POSITIVE_STATE = ("exp_avg_sq", "max_exp_avg_sq", "square_avg", "sum", "step_size")
STATE_CELL_MIN_W = 240         # an optimizer-state plot is never narrower than this ...
STATE_CELL_MIN_H = 150         # ... nor shorter (title, ticks and curves readable): the tab scrolls


class TimeSeriesPanel(PlotPanel):
    """Curves over the optimizer step; keyed curves are created once and reused."""
    x_label = "optimizer step"
    log_option = True
    hover_skip: tuple = ()

    def __init__(self, document, selection, on_pick=None, parent=None):
        super().__init__(document, selection, on_pick, parent)
        self.curves: dict = {}            # key -> PlotDataItem
        self.values: dict = {}            # key -> (label, colour, y) raw values for the hover
        self.toggles: dict = {}           # key -> the legend key that shows/hides it (Selection.hidden)
        self._fitted: tuple | None = None  # (steps, plots) the x range was last set for
        self.log_box = None
        if self.log_option:
            self.log_box = QtWidgets.QCheckBox("log y")
            self.log_box.setToolTip("Logarithmic y axis")
            self.log_box.toggled.connect(self.set_log)
            self.header.addWidget(self.log_box)

    def _main_plot(self, y_label: str, short: str | None = None, row: int = 0, col: int = 0) -> pg.PlotItem:
        """The panel's one plot, over the optimizer step."""
        plot = self._new_plot(row, col)
        plot.setLabel("bottom", self.x_label)
        self.set_y_label(plot, y_label, short)
        return plot

    def set_log(self, on: bool) -> None:
        for plot in self.plots():
            plot.setLogMode(x=False, y=bool(on))

    def refresh(self) -> None:
        super().refresh()
        self._fit_steps()

    def _fit_steps(self) -> None:
        """The x axis (optimizer steps) spans the longest run, set rather than auto-ranged.

        Auto-ranging x over downsampled, clipped curves feeds back into itself: the range picks the
        downsampling factor, the factor moves the curve's last drawn point, that point moves the
        range, and the plot can repaint forever. Set only when the length (or the set of plots)
        changes, so a user's zoom stays until the run grows."""
        n = max((completed(h) for h in self.document.histories), default=0)
        plots = self.plots()
        if (n, len(plots)) == self._fitted:
            return
        self._fitted = (n, len(plots))
        for plot in plots:
            plot.enableAutoRange(x=False)
            plot.setXRange(0, max(n - 1, 1), padding=0.02)

    def _legend(self, plot) -> pg.LegendItem:
        """The legend lives in the layout row under its plot: it never covers the data."""
        legend = getattr(plot, "legend_box", None)
        if legend is None:
            legend = make_legend(max(1, self.width() // MIN_LEGEND_COLUMN_PX))
            row, columns = self._legend_place(plot)
            self.view.addItem(legend, row=row, col=0, colspan=columns)
            legend.toggled.connect(self.selection.toggle)
            plot.legend_box = legend
        return legend

    def _legend_place(self, plot) -> tuple[int, int]:
        """(row, columns spanned) of ``plot``'s legend in the panel's layout."""
        return 1, 1

    def _set_curves(self, plot, wanted: dict, legend: bool = True) -> None:
        """``wanted``: key -> (label, x, y, pen, in_legend, toggle), in legend order (the main run
        first); ``toggle`` is the legend key that hides the curve (a run or a series, every panel).
        Curves are created once per key and reused; the others are dropped."""
        for key in [k for k in self.curves if k[0] is plot and k not in wanted]:
            plot.removeItem(self.curves.pop(key))
            self.values.pop(key, None)
            self.toggles.pop(key, None)
        entries = []
        for key, (label, x, y, pen, in_legend, toggle) in wanted.items():
            curve = self.curves.get(key)
            if curve is None:
                curve = pg.PlotDataItem()
                cached(curve.curve)
                cached(curve.scatter)
                plot.addItem(curve)
                self.curves[key] = curve
            curve.setZValue(5 if in_legend else 2)
            curve.setPen(pen)
            curve.setData(x, finite(y))
            curve.setVisible(not self.selection.is_hidden(toggle))
            self.values[key] = (label, pen.color().name(), y)
            self.toggles[key] = toggle
            if in_legend:
                entries.append((toggle if toggle is not None else key, label, pen))
        if legend:
            self._legend(plot).set_entries(entries, self.selection.hidden)

    def apply_hidden(self) -> None:
        super().apply_hidden()
        for key, curve in self.curves.items():
            curve.setVisible(not self.selection.is_hidden(self.toggles.get(key)))

    def clear_data(self) -> None:
        super().clear_data()
        for key, curve in self.curves.items():
            curve.setData([], [])
            self.values[key] = (self.values[key][0], self.values[key][1], np.empty(0))

    def hover_html(self, plot, x, y) -> str:
        step = int(round(x))
        rows = []
        for key, (label, colour, values) in self.values.items():
            if key[0] is not plot or not len(values) or key[1] in self.hover_skip:
                continue
            if self.selection.is_hidden(self.toggles.get(key)):
                continue
            index = step
            curve = self.curves.get(key)
            xs = None if curve is None else curve.xData
            if xs is not None and len(xs) == len(values) and len(xs) and xs[-1] != len(xs) - 1:
                hits = np.flatnonzero(xs == step)        # a reduced History: rows at every stride-th step
                index = int(hits[0]) if hits.size else -1
            if 0 <= index < len(values):
                rows.append(f'<span style="color:{colour}">■</span> {label}: <b>{format_exact(values[index])}</b>')
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

    def _series_curves(self, arrays: dict, kind: str, prefix: str, length: int, n: int, xs=None) -> dict:
        """One curve per chosen series of ``arrays`` (History.params or .grads): its first ``length``
        rows, for a run of ``n`` completed steps, at steps ``xs`` (default ``0..length-1``; a reduced
        History keeps every stride-th row: ``gradviz.view.series.param_steps``/``row_steps``)."""
        hid, wanted = self.selection.variant, {}
        for j, s in enumerate(self.selection.chosen()):
            arr = arrays[s.param]
            y = self.cache.get((hid, kind, s.label), length, lambda a, b, s=s, arr=arr: s.of(arr[a:b]))
            wanted[(self.plot, kind, s.label)] = (prefix + s.label, np.arange(length) if xs is None else xs, y,
                                                  make_pen(variant_colour(j), line_width(n)), True,
                                                  ("series", s.label))
        return wanted


class LossPlot(TimeSeriesPanel):
    """Loss vs step for every variant; faint micro-batch losses when accumulation is on."""
    title = "Loss"
    hover_skip = ("micro",)          # listed on one line of their own

    def __init__(self, document, selection, on_pick=None, parent=None):
        super().__init__(document, selection, on_pick, parent)
        self.plot = self._main_plot("loss")
        self.diverged = pg.InfiniteLine(angle=90, movable=False, pen=make_pen(T.ERROR, 1, dash=True),
                                        label="diverged", labelOpts=dict(color=T.ERROR, position=0.9))
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
            wanted[(self.plot, "loss", i)] = (name, np.arange(n), h.loss[:n], make_pen(variant_colour(i), width),
                                              True, ("run", i))
            if i == self.selection.variant:
                if h.diverged_at is not None:
                    diverged = h.diverged_at
                acc = int(getattr(h, "accumulation_steps", 1) or 1)
                if acc > 1:
                    micro = np.asarray(h.micro_losses)[:n]
                    for j in range(acc):
                        wanted[(self.plot, "micro", j)] = (
                            f"micro-batch {j}", np.arange(n), micro[:, j], make_pen(variant_colour(i), 1, 70),
                            False, ("run", i))
        self._set_curves(self.plot, wanted)
        if not self.log_touched and not self.document.running and wanted:
            self.log_box.setChecked(self._spans_decades())
        self.diverged.setVisible(diverged is not None)
        if diverged is not None:
            self.diverged.setPos(diverged)

    def clear_data(self) -> None:
        super().clear_data()
        self.diverged.hide()

    def _spans_decades(self) -> bool:
        return spans_decades([v[2] for k, v in self.values.items() if k[1] == "loss"])

    def hover_html(self, plot, x, y) -> str:
        html = super().hover_html(plot, x, y)
        h = self.selection.history()
        step = int(round(x))
        acc = int(getattr(h, "accumulation_steps", 1) or 1) if h is not None else 1
        if html and acc > 1 and 0 <= step < completed(h):
            micro = ", ".join(format_exact(v) for v in np.asarray(h.micro_losses)[step])
            html += f"<br><i>micro-batches</i>: {micro}"
        return html


class ParamsPlot(TimeSeriesPanel):
    """The chosen parameter series of the selected variant (value before step k; k = steps: final)."""
    title = "Parameters"
    log_option = False

    def __init__(self, document, selection, on_pick=None, parent=None):
        super().__init__(document, selection, on_pick, parent)
        self.plot = self._main_plot("value before step k", "value")

    def _refresh(self) -> None:
        h = self.selection.history()
        n = completed(h)
        xs = param_steps(h)
        wanted = self._series_curves(h.params, "param", "", len(xs), n, xs) if h is not None and h.params else {}
        self._set_curves(self.plot, wanted)


class GradsPlot(TimeSeriesPanel):
    """``.grad`` as ``optimizer.step()`` saw it (after unscaling), per series, and its total norm."""
    title = "Gradients"

    def __init__(self, document, selection, on_pick=None, parent=None):
        super().__init__(document, selection, on_pick, parent)
        self.plot = self._main_plot(".grad at step k", ".grad")

    def _refresh(self) -> None:
        h = self.selection.history()
        wanted = {}
        n = completed(h)
        if h is not None and h.params:
            xs = row_steps(h)
            wanted = self._series_curves(h.grads, "grad", "grad ", len(xs), n, xs)
            norm = self.cache.get((self.selection.variant, "gradnorm"), n, h.grad_norm)
            wanted[(self.plot, "gradnorm")] = ("‖grad‖ (all)", np.arange(n), norm,
                                               make_pen(T.PLOT_FOREGROUND, line_width(n), dash=True), True,
                                               ("series", "‖grad‖ (all)"))
        self._set_curves(self.plot, wanted)


class StatePlot(TimeSeriesPanel):
    """Small multiples: one plot per optimizer-state buffer, then the step actually taken, then the
    GradScaler scale; as many columns as the width allows, each plot at least
    ``STATE_CELL_MIN_W`` x ``STATE_CELL_MIN_H`` (the tab scrolls when they do not all fit)."""
    title = "Optimizer state"

    def __init__(self, document, selection, on_pick=None, parent=None):
        super().__init__(document, selection, on_pick, parent)
        self.rows: dict[str, pg.PlotItem] = {}
        self._structure = None
        self.columns = 1
        self.skipped = None
        self.log_touched = False
        self.log_box.clicked.connect(lambda _on: setattr(self, "log_touched", True))
        self.empty = pg.LabelItem("no optimizer state yet", color=T.PLOT_FOREGROUND)
        self.view.addItem(self.empty, row=0, col=0)
        # the plots scroll (vertically) rather than shrink below a readable height
        layout = self.layout()
        layout.removeWidget(self.view)
        self.scroll = QtWidgets.QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(self.view)
        layout.addWidget(self.scroll, 1)

    def _legend_place(self, plot) -> tuple[int, int]:
        return -(-len(self.rows) // self.columns), self.columns

    def _columns_for(self, n: int) -> int:
        """The column count for ``n`` plots: of the layouts whose plots fit the visible height, the
        one with the largest plots (wide rather than tall); when none fits, the most columns that
        keep plots ``STATE_CELL_MIN_W`` wide (the least scrolling)."""
        if n <= 1:
            return 1
        # the panel's own size: on a resize the scroll area inside it is not laid out yet
        width = self.width() - self.scroll.verticalScrollBar().sizeHint().width()
        height = self.height() - self.header.sizeHint().height() - 30          # the header, the legend
        fitting, widest = [], 1
        for columns in range(1, n + 1):
            cell_w, rows = width / columns, -(-n // columns)
            if columns > 1 and cell_w < STATE_CELL_MIN_W:
                break
            widest = columns
            cell_h = height / rows
            if cell_h >= STATE_CELL_MIN_H:
                fitting.append((min(cell_w / 2.0, cell_h), columns))
        return max(fitting)[1] if fitting else widest

    def resizeEvent(self, event):
        super().resizeEvent(event)
        if self.rows and self._columns_for(len(self.rows)) != self.columns:
            self._structure = None             # lay the small multiples out again
            self.refresh()

    def _build(self, rows: list[str]) -> None:
        for key in [k for k in self.curves]:
            self.curves.pop(key)
        self.values.clear()
        self.toggles.clear()
        self.view.clear()
        self._hovers.clear()
        self.rows = {}
        self.skipped = None
        self.columns = self._columns_for(len(rows))
        first = None
        for r, key in enumerate(rows):
            plot = self._new_plot(r // self.columns, r % self.columns)
            # each plot's name above it (inside it, it sat on the curves)
            plot.setTitle(STATE_TITLES.get(key, key), size="8pt", color=T.PLOT_FOREGROUND)
            plot.row_title = plot.titleLabel
            plot.getAxis("left").setWidth(52)
            if first is None:
                first = plot
            else:
                plot.setXLink(first)
            if r >= len(rows) - self.columns:          # the lowest plot of its column
                plot.setLabel("bottom", self.x_label)
            self.rows[key] = plot
            if self.log_box is not None and self.log_box.isChecked() and key != "scale":
                plot.setLogMode(y=True)
        if "scale" in self.rows:
            self.skipped = pg.ScatterPlotItem(symbol="x", size=9, pen=pg.mkPen(T.ERROR, width=1.5),
                                              brush=None, name="skipped step")
            self.rows["scale"].addItem(self.skipped)
            self.rows["scale"].setLogMode(y=True)
        if not rows:
            self.view.setMinimumHeight(0)
            self.view.addItem(self.empty, row=0, col=0)
        self._fitted = None

    def set_log(self, on: bool) -> None:
        for key, plot in self.rows.items():
            if key != "scale":
                plot.setLogMode(x=False, y=bool(on))

    def _refresh(self) -> None:
        h = self.selection.history()
        n = completed(h)
        rows: list[str] = []
        if h is not None and h.params:
            rows = h.state_keys() + ["step_size"]
            variants = self.document.scenario.variants()
            v = variants[self.selection.variant] if self.selection.variant < len(variants) else None
            if v is not None and v.loop.precision == "float16" and v.loop.loss_scaling:
                rows.append("scale")
        structure = (tuple(rows), self._columns_for(len(rows)))
        if structure != self._structure:
            self._structure = structure
            self._build(rows)
        if not rows:
            return
        hid = self.selection.variant
        chosen = self.selection.chosen()
        state_x, step_x = row_steps(h), param_steps(h)[:-1]     # a reduced History: every stride-th step
        for key, plot in self.rows.items():
            wanted = {}
            if key == "scale":
                scale = np.asarray(h.grad_scale[:n], dtype=np.float64)
                wanted[(plot, "scale")] = ("scale", np.arange(n), scale, make_pen(variant_colour(0), 1.5), False,
                                           None)
                skipped = np.flatnonzero(np.asarray(h.skipped[:n], dtype=bool))
                self.skipped.setData(skipped.astype(float), scale[skipped] if len(skipped) else [])
            else:
                for j, s in enumerate(chosen):
                    if key == "step_size":
                        xs = step_x
                        y = self.cache.get((hid, "delta", s.label), len(xs),
                                           lambda a, b, s=s: s.of(h.step_sizes(s.param, a, b)))
                    else:
                        arr = (h.state.get(s.param) or {}).get(key)
                        if arr is None:
                            continue
                        xs = state_x
                        y = self.cache.get((hid, key, s.label), len(xs), lambda a, b, s=s, arr=arr: s.of(arr[a:b]))
                    wanted[(plot, key, s.label)] = (s.label, xs, y,
                                                    make_pen(variant_colour(j), line_width(n)), key == "step_size",
                                                    ("series", s.label))
            self._set_curves(plot, wanted, legend=(key == "step_size"))
            if not self.log_touched and key in POSITIVE_STATE and not self.document.running:
                plot.setLogMode(x=False, y=spans_decades([w[2] for w in wanted.values()]))
        self._fit_height()

    def _fit_height(self) -> None:
        """Tall enough for every plot at ``STATE_CELL_MIN_H`` and the legend under them."""
        legends = self.legends()
        legend_h = legends[0].maximumHeight() if legends else 0
        self.view.setMinimumHeight(int(-(-len(self.rows) // self.columns) * STATE_CELL_MIN_H + legend_h + 8))

    def _fit_legends(self) -> None:
        super()._fit_legends()
        if self.rows:
            self._fit_height()

    def hover_html(self, plot, x, y) -> str:
        html = super().hover_html(plot, x, y)
        if html and plot is self.rows.get("scale"):
            h = self.selection.history()
            step = int(round(x))
            if h is not None and 0 <= step < completed(h) and bool(h.skipped[step]):
                html += f'<br><span style="color:{T.ERROR}">step skipped (inf/nan grad)</span>'
        return html
