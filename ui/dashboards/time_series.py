"""The panels that plot over the optimizer step: loss, parameters, gradients, optimizer state
(the last three, small multiples, in ``series_plots``).

* ``LossPlot``    loss vs optimizer step for every variant (+ the micro-batch losses);
* ``ParamsPlot``  one small plot per chosen parameter series (scalar, tensor element or norm);
* ``GradsPlot``   the ``.grad`` each ``optimizer.step()`` saw, per series, and the total gradient norm;
* ``StatePlot``   per series, one plot per optimizer-state buffer and the step actually taken;
  the GradScaler scale.

Every plot overlays every run in its colour (``ui.theme.variant_colour``, Okabe–Ito), the current
run (the ViewState's) drawn thicker, under the others (where runs coincide, each still shows); a click
on a run's legend entry hides it everywhere.

They draw what the History holds and what it derives (``History.grad_norm``,
``History.step_sizes``); the series come from ``gradviz.view.series``.
"""
from __future__ import annotations

import html
import time

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from gradviz.view.format import format_exact
from gradviz.view.series import (
    completed,
    finite,
    spans_decades,
)

from .. import theme as T
from ..theme import variant_colour
from .panel import (
    MIN_LEGEND_COLUMN_PX,
    Cursor,
    PlotPanel,
    cached,
    faint_pen,
    line_width,
    make_legend,
    make_pen,
    slices,
)

STATE_TITLES = {
    "step_size": "step taken |Δθ|", "scale": "GradScaler scale (× marks a skipped step)",
    "momentum_buffer": "momentum_buffer", "exp_avg": "exp_avg (m)", "exp_avg_sq": "exp_avg_sq (v)",
    "max_exp_avg_sq": "max_exp_avg_sq", "square_avg": "square_avg", "grad_avg": "grad_avg", "sum": "sum (Adagrad)",
}
POSITIVE_STATE = ("exp_avg_sq", "max_exp_avg_sq", "square_avg", "sum", "step_size")
CELL_MIN_W = 190               # a small plot is never narrower than this ...
CELL_MIN_H = 150               # ... nor shorter (title, ticks and curves readable): the tab scrolls
PLOTS_PER_TURN = 2             # one turn of the event loop makes at most this many small plots a panel
MAX_SPARE_PLOTS = 64           # plots of dropped cells kept for reuse


class CellPlaceholder(pg.GraphicsWidget):
    """A small plot's place until the plot is made: its name, faint, sized as the plot will be
    (``SmallMultiples`` copies a made plot's size hints, so swapping in the plot moves no other)."""

    def __init__(self):
        super().__init__()
        self.text = ""

    def setText(self, text: str) -> None:
        self.text = text
        self.update()

    def paint(self, painter, *_args):
        painter.setPen(QtGui.QColor(T.TEXT_FAINT))
        painter.drawText(self.rect(), int(QtCore.Qt.AlignmentFlag.AlignHCenter | QtCore.Qt.AlignmentFlag.AlignTop),
                         self.text)


class TimeSeriesPanel(PlotPanel):
    """Curves over the optimizer step; keyed curves are created once and reused."""
    x_label = "optimizer step"
    defer_when_hidden = True
    log_option = True
    hover_skip: tuple = ()

    def __init__(self, document, selection, on_pick=None, parent=None):
        super().__init__(document, selection, on_pick, parent)
        self.curves: dict = {}            # key -> PlotDataItem
        self.values: dict = {}            # key -> (label, colour, y) raw values for the hover
        self.toggles: dict = {}           # key -> the legend key that shows/hides it (Selection.hidden)
        self.connect: dict = {}           # key -> pyqtgraph ``connect`` array of a curve drawn as several lines
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
        changes, so a user's zoom stays until the run grows.

        While a run is in progress the axis spans the steps it will make: the curves grow into it,
        and the axis is not laid out anew at every live refresh (its ticks and labels, 3-8 ms)."""
        n = max((completed(h) for h in self.document.histories), default=0)
        if self.document.running:
            n = max([n] + [getattr(s, "planned_steps", 0) for s in self.document.sessions])
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
            self.connect.pop(key, None)
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
            connect = self.connect.get(key)
            if connect is None:
                curve.setData(x, finite(y))
            else:
                curve.setData(x, finite(y), connect=connect)
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
        """The curve for ``key`` (without the plot), for tests and exports (pending work done first)."""
        self.finish_pending()
        for k, c in self.curves.items():
            if k[1:] == key:
                return c
        return None


MICRO_LISTED = 12          # micro-batch losses listed in a hover (then "… (N in all)")


def micro_lines(micro: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``micro`` (steps x micro-batches) as one curve's ``x``, ``y`` and ``connect``: micro-batch
    ``j``'s losses over the steps, one line each, not joined to the next. One curve whatever the
    number of micro-batches: a curve each (222 at the limit) took 1.3 s per refresh."""
    n, count = micro.shape
    x = np.tile(np.arange(n, dtype=float), count)
    y = micro.T.reshape(-1)
    connect = np.ones(n * count, dtype=bool)
    if n:                                      # (no step yet: nothing to break)
        connect[n - 1::n] = False              # the last step of a micro-batch's line
    return x, y, connect


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
            width = line_width(n) + (1.0 if i == self.selection.variant else 0.0)    # the current run
            wanted[(self.plot, "loss", i)] = (name, np.arange(n), h.loss[:n], make_pen(variant_colour(i), width),
                                              True, ("run", i))
            if i == self.selection.variant:
                if h.diverged_at is not None:
                    diverged = h.diverged_at
                acc = int(getattr(h, "accumulation_steps", 1) or 1)
                if acc > 1:               # every micro-batch's loss: one curve, a line per micro-batch
                    x, y, connect = micro_lines(np.asarray(h.micro_losses)[:n])
                    wanted[(self.plot, "micro")] = ("micro-batches", x, y, faint_pen(variant_colour(i), 70),
                                                   False, ("run", i))
                    self.connect[(self.plot, "micro")] = connect
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
            values = np.asarray(h.micro_losses)[step]
            micro = ", ".join(format_exact(v) for v in values[:MICRO_LISTED])
            more = f", … ({len(values)} in all)" if len(values) > MICRO_LISTED else ""
            html += f"<br><i>micro-batches</i>: {micro}{more}"
        return html


class SmallMultiples(TimeSeriesPanel):
    """One small plot per cell (a parameter series, a state buffer of one…) over the optimizer step,
    each overlaying every run in its colour, the current run (the ViewState's) drawn thicker and
    under the others; the runs' legend above the plots, the main run first. As many columns as the
    width allows, each plot at least ``CELL_MIN_W`` x ``CELL_MIN_H`` (the tab scrolls when they do
    not all fit).

    Subclasses say which cells to show (``_cells``) and fill each one's curves (``_fill``).

    Never long on the UI thread: a refresh only lays the cells out (placeholders for plots not made
    yet) and queues them; each turn of the event loop then makes at most ``PLOTS_PER_TURN`` plots
    and fills cells for the turn's budget (``panel.slices``, shared by the panels). Plots are kept
    across refreshes and re-layouts (moved, not re-made; a dropped cell's plot is reused for the
    next new one), and a hidden panel waits until it is shown. ``finish_pending()`` completes all
    of it at once."""
    empty_text = "no parameters yet"
    y_label: tuple | None = None          # (name, short name) of the first column's y axes
    defer_when_hidden = True

    def __init__(self, document, selection, on_pick=None, parent=None):
        super().__init__(document, selection, on_pick, parent)
        self._order: list[tuple] = []          # (cell key, title) of every cell, in display order
        self._plots: dict = {}                 # cell key -> its plot, once made
        self._slots: dict = {}                 # cell key -> its placeholder until its plot is made
        self._spare_plots: list = []           # plots of dropped cells, reused for new ones
        self._spare_slots: list = []
        self._hints: dict = {}                 # (first column, lowest row) -> a made plot's size hints
        self._todo: dict = {}                  # cell key -> None: cells to make and fill, in order
        self._structure = None
        self.columns = 1
        self.made_last_turn = 0                # plots the last slice made (tests)
        self.plots_made = 0                    # plots ever created (not reused)
        self._plot_cost = 0.0                  # how long the last plot took to make (s)
        self.destroyed.connect(lambda *_a, job=self._slices_key: slices().discard(job))
        self.runs_legend = make_legend(max(1, self.width() // MIN_LEGEND_COLUMN_PX))
        self.runs_legend.toggled.connect(self.selection.toggle)
        self.empty = pg.LabelItem(self.empty_text, color=T.PLOT_FOREGROUND)
        self.view.addItem(self.empty, row=1, col=0)
        # the plots scroll (vertically) rather than shrink below a readable height
        layout = self.layout()
        layout.removeWidget(self.view)
        self.scroll = QtWidgets.QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        # sideways only when a long run name in the legend is wider than a narrow panel (grid mode)
        self.scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.scroll.setWidget(self.view)
        layout.addWidget(self.scroll, 1)

    @property
    def cells(self) -> dict:
        """Cell key -> its plot, in display order (pending plots made first)."""
        self.finish_pending()
        return self._made_cells()

    def _made_cells(self) -> dict:
        return {key: self._plots[key] for key, _title in self._order if key in self._plots}

    @property
    def plot(self) -> pg.PlotItem | None:
        """The first small plot (the first chosen series)."""
        return next(iter(self.cells.values()), None)

    def plot_of(self, *cell) -> pg.PlotItem | None:
        """The small plot of ``cell`` (``plot_of("0.weight")``, ``plot_of("exp_avg", "x")``)."""
        return self.cells.get(cell[0] if len(cell) == 1 else cell)

    @property
    def pending(self) -> int:
        """How many cells still wait to be made or filled."""
        return len(self._todo)

    @property
    def _slices_key(self) -> tuple:
        return ("small multiples", id(self))

    def _schedule(self) -> None:
        if self._todo:
            slices().add(self._slices_key, self._work_slice)

    def _unschedule(self) -> None:
        slices().discard(self._slices_key)

    def finish_pending(self) -> None:
        super().finish_pending()
        if self._todo:
            self._unschedule()
            self._work(None, None)
        self.view.ci.layout.activate()

    def legends(self) -> list:
        return [self.runs_legend]

    # -- the runs --------------------------------------------------------------------------------
    def runs(self) -> list[tuple[int, str, object]]:
        """(index, name, History) of every run with parameters to show, the main run first."""
        variants = self.document.scenario.variants() if self.document.scenario else []
        return [(i, variants[i].name, h) for i, h in enumerate(self.document.histories)
                if h is not None and h.params and i < len(variants)]

    def run_pen(self, i: int, n: int):
        """Run ``i``'s colour; the current run's line thicker."""
        return make_pen(variant_colour(i), line_width(n) + (1.0 if i == self.selection.variant else 0.0))

    # -- layout ------------------------------------------------------------------------------------
    def _columns_for(self, n: int, preferred: int | None = None) -> int:
        """The column count for ``n`` plots: ``preferred`` when that many fit the width; else, of
        the layouts whose plots fit the visible height, the one with the largest plots (wide rather
        than tall); when none fits, the most columns that keep plots ``CELL_MIN_W`` wide."""
        # the panel's own size: on a resize the scroll area inside it is not laid out yet
        width = self.width() - self.scroll.verticalScrollBar().sizeHint().width()
        if n <= 1:
            return 1
        if preferred and 1 < preferred <= n and width / preferred >= CELL_MIN_W:
            return preferred
        height = self.height() - self.header.sizeHint().height() - self.runs_legend.maximumHeight() - 12
        fitting, widest = [], 1
        for columns in range(1, n + 1):
            cell_w, rows = width / columns, -(-n // columns)
            if columns > 1 and cell_w < CELL_MIN_W:
                break
            widest = columns
            cell_h = height / rows
            if cell_h >= CELL_MIN_H:
                fitting.append((min(cell_w / 2.0, cell_h), columns))
        return max(fitting)[1] if fitting else widest

    def _preferred_columns(self, cells: list) -> int | None:
        return None

    def resizeEvent(self, event):
        super().resizeEvent(event)
        if self._order and self._columns_for(len(self._order), self._preferred_columns([c[0] for c in self._order])) \
                != self.columns:
            self._structure = None             # lay the small multiples out again
            self.refresh()

    # -- the layout: plots kept, moved, reused; placeholders until made ----------------------------------
    def _put(self, item, row: int, col: int, colspan: int = 1) -> None:
        """Place ``item`` in the view's grid (pyqtgraph's bookkeeping kept), without re-adding it to the
        scene: moving a plot costs a layout pass, not a rebuild."""
        ci = self.view.ci
        self._take(item)
        if item.parentItem() is not ci:
            item.setParentItem(ci)
        ci.items[item] = [(row, col + j) for j in range(colspan)]
        for r, c in ci.items[item]:
            ci.rows.setdefault(r, {})[c] = item
        ci.layout.addItem(item, row, col, 1, colspan)
        item.show()

    def _take(self, item) -> None:
        """Out of the grid (the item stays in the scene, hidden until placed again)."""
        ci = self.view.ci
        cells = ci.items.pop(item, None)
        if cells is None:
            return
        for r, c in cells:
            if ci.rows.get(r, {}).get(c) is item:
                del ci.rows[r][c]
        for i in range(ci.layout.count()):
            if ci.layout.itemAt(i).graphicsItem() is item:
                ci.layout.removeAt(i)
                break
        item.hide()

    def _build(self, cells: list[tuple]) -> None:
        """Lay out one cell per (key, title) of ``cells`` under the runs' legend: the plots already made
        for these keys move to their new places, the others get placeholders (made later)."""
        wanted = {key for key, _title in cells}
        for key in [k for k in self._todo if k not in wanted]:
            del self._todo[key]                # queued for a cell that is gone (a run's other optimizer)
        for key in [k for k in self._plots if k not in wanted]:
            self._drop_plot(key)
        for key in [k for k in self._slots if k not in wanted]:
            slot = self._slots.pop(key)
            self._take(slot)
            self._spare_slots.append(slot)
        for item in list(self.view.ci.items):
            self._take(item)
        self._order = list(cells)
        self.columns = self._columns_for(len(cells), self._preferred_columns([c[0] for c in cells]))
        self._put(self.runs_legend, 0, 0, self.columns)
        self.runs_legend.setVisible(bool(self.runs_legend.entries))
        for r, (key, title) in enumerate(cells):
            plot = self._plots.get(key)
            if plot is not None:
                self._set_up_cell(plot, r, key, title)
                self._put(plot, 1 + r // self.columns, r % self.columns)
            else:
                slot = self._slots.get(key) or self._new_slot()
                slot.setText(title)
                self._slots[key] = slot
                self._size_slot(slot, r)
                self._put(slot, 1 + r // self.columns, r % self.columns)
        if not cells:
            self._put(self.empty, 1, 0)
        self._fitted = None

    def _new_slot(self):
        if self._spare_slots:
            return self._spare_slots.pop()
        return CellPlaceholder()

    def _place_kind(self, r: int) -> tuple[bool, bool]:
        """(first column, lowest of its column): what a cell's axis labels, so its size, depend on."""
        return r % self.columns == 0, r >= len(self._order) - self.columns

    def _size_slot(self, slot, r: int) -> None:
        hints = self._hints.get(self._place_kind(r))
        if hints is not None:
            policy, smallest, preferred = hints
            slot.setSizePolicy(policy)
            slot.setMinimumSize(smallest)
            slot.setPreferredSize(preferred)

    def _learn_size(self, plot, r: int) -> None:
        """The first plot made of its kind of place: its placeholders take its size hints."""
        kind = self._place_kind(r)
        if kind in self._hints:
            return
        self._hints[kind] = (plot.sizePolicy(), plot.effectiveSizeHint(QtCore.Qt.SizeHint.MinimumSize),
                             plot.effectiveSizeHint(QtCore.Qt.SizeHint.PreferredSize))
        for i, (key, _title) in enumerate(self._order):
            slot = self._slots.get(key)
            if slot is not None and self._place_kind(i) == kind:
                self._size_slot(slot, i)

    def _drop_plot(self, key) -> None:
        """Cell ``key`` is gone: its plot leaves the layout (and the curves it had) for reuse."""
        plot = self._plots.pop(key)
        self._cell_dropped(key, plot)
        for k in [k for k in self.curves if k[0] is plot]:
            plot.removeItem(self.curves.pop(k))
            self.values.pop(k, None)
            self.toggles.pop(k, None)
        self._take(plot)
        self._hovers.pop(plot, None)
        if len(self._spare_plots) < MAX_SPARE_PLOTS:
            self._spare_plots.append(plot)
        elif plot.scene() is not None:
            plot.scene().removeItem(plot)

    def _cell_dropped(self, key, plot) -> None:
        """Subclasses: remove what they added to ``plot`` for cell ``key``."""

    def _make_plot(self, key):
        """The plot of cell ``key``, in its place instead of the placeholder: a spare one, else a new one."""
        r = next(i for i, (k, _title) in enumerate(self._order) if k == key)
        title = self._order[r][1]
        if self._spare_plots:
            plot = self._spare_plots.pop()
            self._hovers[plot] = plot.hover_item
        else:
            plot = self._new_plot(1 + r // self.columns, r % self.columns, place=False)
            plot.hover_item = self._hovers[plot]
            self.plots_made += 1
        slot = self._slots.pop(key, None)
        if slot is not None:
            self._take(slot)
            self._spare_slots.append(slot)
        self._plots[key] = plot
        self._set_up_cell(plot, r, key, title, fresh=True)
        self._put(plot, 1 + r // self.columns, r % self.columns)
        self._learn_size(plot, r)
        cursor = getattr(plot, "cursor", None)
        if isinstance(cursor, Cursor):
            cursor.setPos(self.iteration)
        return plot

    def _set_up_cell(self, plot, r: int, key, title: str, fresh: bool = False) -> None:
        """What depends on the cell and its place: the title, the y label (first column), the x label
        (lowest plot of its column), and for a plot new to the cell (``fresh``) log y."""
        if getattr(plot, "cell_title", None) != title:
            # each plot's name above it (inside it, it sat on the curves)
            plot.setTitle(title, size="8pt", color=T.PLOT_FOREGROUND)
            plot.row_title, plot.cell_title = plot.titleLabel, title
        left = plot.getAxis("left")
        first = bool(self.y_label) and r % self.columns == 0
        if first:
            left.setWidth(68)
            self.set_y_label(plot, *self.y_label)
            if not left.label.isVisibleTo(left):
                left.showLabel(True)
        else:
            left.setWidth(52)
            if getattr(plot, "y_labels", None) is not None:
                plot.y_labels = None
                left.showLabel(False)
        # no x link: pyqtgraph links views by their pixels on screen, and plots side by side (or not
        # laid out yet, in a hidden tab) then show shifted ranges; ``_fit_steps`` sets them all
        lowest = r >= len(self._order) - self.columns          # the lowest plot of its column
        bottom = plot.getAxis("bottom")
        if lowest and bottom.labelText != self.x_label:
            plot.setLabel("bottom", self.x_label)
        elif lowest and not bottom.label.isVisibleTo(bottom):
            bottom.showLabel(True)
        elif not lowest and bottom.label.isVisibleTo(bottom):
            bottom.showLabel(False)
        if fresh:
            log = self.log_box is not None and self.log_box.isChecked() and self._loggable(key)
            if log or getattr(plot, "log_y", False):
                self.set_log_y(plot, log)
        self._cell_set_up(key, plot)

    def _cell_set_up(self, key, plot) -> None:
        """Subclasses: per-cell touches (tooltips)."""

    def _loggable(self, key) -> bool:
        return True

    def set_log(self, on: bool) -> None:
        for key, plot in self._made_cells().items():
            if self._loggable(key):
                self.set_log_y(plot, on)
        self._fit_steps()

    def set_log_y(self, plot, on: bool) -> None:
        """Log y for one plot, only when it changes: pyqtgraph turns auto-range back on for both axes
        with it, and the steps axis is then fitted again (``_fit_steps``)."""
        if getattr(plot, "log_y", False) != bool(on):
            plot.log_y = bool(on)
            plot.setLogMode(x=False, y=bool(on))
            plot.fitted_n = None
            self._fitted = None

    def _fit_steps(self) -> None:
        """As ``TimeSeriesPanel._fit_steps``, plot by plot (each when it is filled)."""
        n = max((completed(h) for h in self.document.histories), default=0)
        for plot in self._plots.values():
            self._fit_plot(plot, n)

    @staticmethod
    def _fit_plot(plot, n: int) -> None:
        if getattr(plot, "fitted_n", None) != n:
            plot.fitted_n = n
            plot.enableAutoRange(x=False)
            plot.setXRange(0, max(n - 1, 1), padding=0.02)

    def _cells(self) -> list[tuple]:
        raise NotImplementedError

    def _fill(self, key, plot, runs) -> dict:
        """The curves of cell ``key``: ``_set_curves``' ``wanted``."""
        raise NotImplementedError

    def _refresh(self) -> None:
        runs = self.runs()
        if not runs and self._order and self.document.running:
            return                    # a re-run's first rows are not in yet: keep the plots until they are
        cells = self._cells() if runs else []
        structure = (tuple(cells), self._columns_for(len(cells), self._preferred_columns([c[0] for c in cells])))
        if structure != self._structure:
            self._structure = structure
            self._build(cells)
        self.runs_legend.set_entries([(("run", i), name, self.run_pen(i, completed(h))) for i, name, h in runs],
                                     self.selection.hidden)
        # every cell again; cells still waiting keep their place in the queue (a live run's refreshes
        # then fill them in turn rather than the first ones over and over)
        for key, _title in cells:
            self._todo.setdefault(key, None)
        self._schedule()
        self._fit_height()

    def _defer(self) -> None:
        self._unschedule()
        self._todo.clear()

    def _work_slice(self, deadline: float) -> bool:
        """One turn's share (a ``Slices`` job): True while cells still wait."""
        if not self.isVisible():
            self._deferred = True              # hidden meanwhile: all of it again when shown
            self._todo.clear()
            return False
        key = next(iter(self._todo), None)
        if (key is not None and key not in self._plots and time.perf_counter() + self._plot_cost >= deadline
                and not slices().alone(self._slices_key)):
            return True                        # no time left for a plot: first in the next turn
        self._work(deadline, PLOTS_PER_TURN)
        return bool(self._todo)

    def _work(self, deadline: float | None, max_new: int | None) -> None:
        """Make and fill queued cells: at most ``max_new`` new plots and, after the first cell, until
        ``deadline`` (None: all of them). The rest waits for the next turn."""
        runs = self.runs()
        n = max((completed(h) for h in self.document.histories), default=0)
        made, cost = 0, 0.0                    # plots made, the last one's time
        while self._todo:
            key = next(iter(self._todo))
            plot = self._plots.get(key)
            if plot is None:
                # another plot only if it would still end before the deadline (one takes ~10 ms)
                if max_new is not None and (made >= max_new or (made and time.perf_counter() + cost >= deadline)):
                    break
                began = time.perf_counter()
                plot = self._make_plot(key)
                cost = self._plot_cost = time.perf_counter() - began
                made += 1
            del self._todo[key]
            self._fill_cell(key, plot, runs)
            self._fit_plot(plot, n)
            if deadline is not None and time.perf_counter() >= deadline:
                break
        self.made_last_turn = made
        if made:
            self.view.ci.layout.activate()     # the new plots in their places before the next paint

    def _fill_cell(self, key, plot, runs) -> None:
        current = self.selection.variant
        wanted = self._fill(key, plot, runs)
        self._set_curves(plot, wanted, legend=False)
        for k in wanted:
            # the current run's thick line under the others: a run that coincides with it (0.bias
            # with and without a GradScaler) shows as a thin line inside it, not hidden behind it
            self.curves[k].setZValue(4 if k[-1] == current else 6)
        self._filled(key, plot, wanted)

    def clear_data(self) -> None:
        self._unschedule()
        self._todo.clear()
        super().clear_data()

    def _series(self, label: str):
        """The chosen series ``label`` (None when the choice changed since the cell was queued)."""
        return next((s for s in self.selection.chosen() if s.label == label), None)

    def _filled(self, key, plot, wanted: dict) -> None:
        """After cell ``key``'s curves are set (log y, markers)."""

    def _run_curves(self, plot, kind: str, series, runs, rows) -> dict:
        """One curve per run of ``series``: ``rows(h)`` -> (x, the History's array or None)."""
        wanted = {}
        for i, name, h in runs:
            x, arr = rows(h)
            if arr is None:
                continue
            y = self.cache.get((i, kind, series.label), len(x), lambda a, b, s=series, arr=arr: s.of(arr[a:b]))
            wanted[(plot, kind, series.label, i)] = (name, x, y, self.run_pen(i, completed(h)), False, ("run", i))
        return wanted

    def hover_html(self, plot, x, y) -> str:
        """The runs' values at the step, under the step and the plot's name."""
        text = super().hover_html(plot, x, y)
        title = html.escape(getattr(plot, "cell_title", ""))
        return text.replace("</b><br>", f"</b> · {title}<br>", 1) if text and title else text

    def curve(self, *key):
        """The curve for ``key`` (without the plot); without the run: the current run's."""
        found = super().curve(*key)
        return found if found is not None else super().curve(*key, self.selection.variant)

    def _fit_height(self) -> None:
        """Tall enough for every plot at ``CELL_MIN_H`` and the legend above them."""
        rows = -(-len(self._order) // max(self.columns, 1))
        spacing = self.view.ci.layout.verticalSpacing()
        self.view.setMinimumHeight(int(rows * (CELL_MIN_H + max(spacing, 0)) + self.runs_legend.maximumHeight() + 16))

    def _fit_legends(self) -> None:
        super()._fit_legends()
        if self._order:
            self._fit_height()
