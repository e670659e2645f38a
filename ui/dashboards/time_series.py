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
from PySide6 import QtWidgets

from gradviz.view.format import format_exact
from gradviz.view.series import completed, finite, spans_decades

from ..theme import variant_colour
from .panel import DIVERGED_COLOUR, FOREGROUND, PlotPanel, cached, line_width, make_legend, make_pen

STATE_TITLES = {
    "step_size": "step taken |Δθ| = |θ(k+1) − θ(k)|", "scale": "GradScaler scale (× marks a skipped step)",
    "momentum_buffer": "momentum_buffer", "exp_avg": "exp_avg (m)", "exp_avg_sq": "exp_avg_sq (v)",
    "max_exp_avg_sq": "max_exp_avg_sq", "square_avg": "square_avg", "grad_avg": "grad_avg", "sum": "sum (Adagrad)",
}
POSITIVE_STATE = ("exp_avg_sq", "max_exp_avg_sq", "square_avg", "sum", "step_size")


class TimeSeriesPanel(PlotPanel):
    """Curves over the optimizer step; keyed curves are created once and reused."""
    x_label = "optimizer step"
    log_option = True
    hover_skip: tuple = ()

    def __init__(self, document, selection, on_pick=None, parent=None):
        super().__init__(document, selection, on_pick, parent)
        self.curves: dict = {}            # key -> PlotDataItem
        self.values: dict = {}            # key -> (label, colour, y) raw values for the hover
        self._fitted: tuple | None = None  # (steps, plots) the x range was last set for
        self.log_box = None
        if self.log_option:
            self.log_box = QtWidgets.QCheckBox("log y")
            self.log_box.setToolTip("Logarithmic y axis")
            self.log_box.toggled.connect(self.set_log)
            self.header.addWidget(self.log_box)

    def _main_plot(self, y_label: str) -> pg.PlotItem:
        """The panel's one plot, over the optimizer step."""
        plot = self._new_plot(0)
        plot.setLabel("bottom", self.x_label)
        plot.setLabel("left", y_label)
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
            curve.setData(x, finite(y))
            self.values[key] = (label, pen.color().name(), y)

    def hover_html(self, plot, x, y) -> str:
        step = int(round(x))
        rows = []
        for key, (label, colour, values) in self.values.items():
            if key[0] is not plot or not len(values) or key[1] in self.hover_skip:
                continue
            if 0 <= step < len(values):
                rows.append(f'<span style="color:{colour}">■</span> {label}: <b>{format_exact(values[step])}</b>')
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
                                                  make_pen(variant_colour(j), line_width(n)), True)
        return wanted


class LossPlot(TimeSeriesPanel):
    """Loss vs step for every variant; faint micro-batch losses when accumulation is on."""
    title = "Loss"
    hover_skip = ("micro",)          # listed on one line of their own

    def __init__(self, document, selection, on_pick=None, parent=None):
        super().__init__(document, selection, on_pick, parent)
        self.plot = self._main_plot("loss")
        self.diverged = pg.InfiniteLine(angle=90, movable=False, pen=make_pen(DIVERGED_COLOUR, 1, dash=True),
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
            wanted[(self.plot, "loss", i)] = (name, np.arange(n), h.loss[:n], make_pen(variant_colour(i), width),
                                              True)
            if i == self.selection.variant:
                if h.diverged_at is not None:
                    diverged = h.diverged_at
                acc = int(getattr(h, "accumulation_steps", 1) or 1)
                if acc > 1:
                    micro = np.asarray(h.micro_losses)[:n]
                    for j in range(acc):
                        wanted[(self.plot, "micro", j)] = (
                            f"micro-batch {j}", np.arange(n), micro[:, j], make_pen(variant_colour(i), 1, 70),
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
            micro = ", ".join(format_exact(v) for v in np.asarray(h.micro_losses)[step])
            html += f"<br><i>micro-batches</i>: {micro}"
        return html


class ParamsPlot(TimeSeriesPanel):
    """The chosen parameter series of the selected variant (value before step k; k = steps: final)."""
    title = "Parameters"
    log_option = False

    def __init__(self, document, selection, on_pick=None, parent=None):
        super().__init__(document, selection, on_pick, parent)
        self.plot = self._main_plot("value before step k")

    def _refresh(self) -> None:
        h = self.selection.history()
        n = completed(h)
        wanted = self._series_curves(h.params, "param", "", n + 1, n) if h is not None and h.params else {}
        self._set_curves(self.plot, wanted)


class GradsPlot(TimeSeriesPanel):
    """``.grad`` as ``optimizer.step()`` saw it (after unscaling), per series, and its total norm."""
    title = "Gradients"

    def __init__(self, document, selection, on_pick=None, parent=None):
        super().__init__(document, selection, on_pick, parent)
        self.plot = self._main_plot(".grad at step k")

    def _refresh(self) -> None:
        h = self.selection.history()
        wanted = {}
        n = completed(h)
        if h is not None and h.params:
            wanted = self._series_curves(h.grads, "grad", "grad ", n, n)
            norm = self.cache.get((self.selection.variant, "gradnorm"), n, h.grad_norm)
            wanted[(self.plot, "gradnorm")] = ("‖grad‖ (all)", np.arange(n), norm,
                                               make_pen("#111827", line_width(n), dash=True), True)
        self._set_curves(self.plot, wanted)


class StatePlot(TimeSeriesPanel):
    """One row per optimizer-state buffer, then the step actually taken, then the GradScaler scale."""
    title = "Optimizer state"

    def __init__(self, document, selection, on_pick=None, parent=None):
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
            rows = h.state_keys() + ["step_size"]
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
                wanted[(plot, "scale")] = ("scale", np.arange(n), scale, make_pen(variant_colour(0), 1.5), False)
                skipped = np.flatnonzero(np.asarray(h.skipped[:n], dtype=bool))
                self.skipped.setData(skipped.astype(float), scale[skipped] if len(skipped) else [])
            else:
                for j, s in enumerate(chosen):
                    if key == "step_size":
                        y = self.cache.get((hid, "delta", s.label), n,
                                           lambda a, b, s=s: s.of(h.step_sizes(s.param, a, b)))
                    else:
                        arr = (h.state.get(s.param) or {}).get(key)
                        if arr is None:
                            continue
                        y = self.cache.get((hid, key, s.label), n, lambda a, b, s=s, arr=arr: s.of(arr[a:b]))
                    wanted[(plot, key, s.label)] = (s.label, np.arange(n), y,
                                                    make_pen(variant_colour(j), line_width(n)), key == "step_size")
            self._set_curves(plot, wanted, legend=(key == "step_size"))
            if not self.log_touched and key in POSITIVE_STATE and not self.document.running:
                plot.setLogMode(x=False, y=spans_decades([w[2] for w in wanted.values()]))

    def hover_html(self, plot, x, y) -> str:
        html = super().hover_html(plot, x, y)
        if html and plot is self.rows.get("scale"):
            h = self.selection.history()
            step = int(round(x))
            if h is not None and 0 <= step < completed(h) and bool(h.skipped[step]):
                html += f'<br><span style="color:{DIVERGED_COLOUR}">step skipped (inf/nan grad)</span>'
        return html
