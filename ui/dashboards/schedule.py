"""The learning rate and gradient clipping over the optimizer step, for every run side by side.

* left: the learning rate each ``optimizer.step()`` used (``History.lr``): flat without a
  scheduler, the schedule's shape with one (a run that calls ``scheduler.step()`` before
  ``optimizer.step()`` shows the same curve one step early, its first value never used);
* right: the total gradient norm, solid after clipping (``History.grad_norm``, what the
  optimizer saw) and dashed before (``History.clip_norm``, what ``clip_grad_norm_`` measured).
  A run that clips scaled gradients shows a dashed curve ``scale`` times above the solid one,
  and a solid one pinned far below ``max_norm``.

Each run has its variant colour; the panel only draws what the Histories hold.
"""
from __future__ import annotations

import numpy as np

from gradviz.view.series import completed, spans_decades

from .. import theme as T
from ..theme import variant_colour
from .panel import line_width, make_pen
from .time_series import TimeSeriesPanel

NORM_TITLE = "‖grad‖: solid after clipping, dashed before"
NORM_TOOLTIP = ("Solid: the norm optimizer.step() saw (after clipping); dashed: the norm clip_grad_norm_ "
                "measured (before clipping)")


class SchedulePlot(TimeSeriesPanel):
    """Learning rate (left) and gradient norm before/after clipping (right) for every variant, the
    runs' legend under both."""
    title = "LR and clipping"

    def __init__(self, document, selection, on_pick=None, parent=None):
        super().__init__(document, selection, on_pick, parent)
        self.lr_plot = self._main_plot("lr", row=0, col=0)
        self.lr_plot.setTitle("learning rate step() used", size="8pt", color=T.PLOT_FOREGROUND)
        self.norm_plot = self._main_plot("‖grad‖", row=0, col=1)
        self.norm_plot.setXLink(self.lr_plot)
        for plot in (self.lr_plot, self.norm_plot):
            plot.getAxis("left").setWidth(56)
        # the key to the dashes, above the plot (drawn inside it, it sat on the curves)
        self.norm_plot.setTitle(NORM_TITLE, size="8pt", color=T.PLOT_FOREGROUND)
        self.norm_title = self.norm_plot.titleLabel
        self.norm_title.setToolTip(NORM_TOOLTIP)
        self.log_touched = False               # until the user decides, log y follows the data
        self.log_box.clicked.connect(lambda _on: setattr(self, "log_touched", True))
        self.lr_log = False

    def _legend_place(self, plot) -> tuple[int, int]:
        return 1, 2                            # under both plots: the runs' names and colours

    def _refresh(self) -> None:
        variants = self.document.scenario.variants() if self.document.scenario else []
        lr_curves, norm_curves = {}, {}
        for i, h in enumerate(self.document.histories):
            if h is None or i >= len(variants):
                continue
            n = completed(h)
            x, width, colour = np.arange(n), line_width(n), variant_colour(i)
            lr = getattr(h, "lr", None)
            run = ("run", i)
            if lr is not None:
                lr_curves[(self.lr_plot, "lr", i)] = (variants[i].name, x, lr[:n], make_pen(colour, width), True, run)
            if h.params:
                after = self.cache.get((i, "gradnorm"), n, h.grad_norm)
                norm_curves[(self.norm_plot, "after", i)] = (f"{variants[i].name}: ‖grad‖ after clipping", x,
                                                             after, make_pen(colour, width), False, run)
            before = getattr(h, "clip_norm", None)
            if before is not None:
                norm_curves[(self.norm_plot, "before", i)] = (
                    f"{variants[i].name}: ‖grad‖ before clipping", x, before[:n],
                    make_pen(colour, width, alpha=170, dash=True), False, run)
        self._set_curves(self.lr_plot, lr_curves)
        self._set_curves(self.norm_plot, norm_curves, legend=False)
        rates = [v[2] for k, v in self.values.items() if k[0] is self.lr_plot]
        if not self.document.running:
            # the learning rate goes log by itself when the schedule spans decades (the box is the norms')
            self.lr_log = spans_decades(rates)
            self.lr_plot.setLogMode(x=False, y=self.lr_log)
            self.lr_plot.enableAutoRange(y=self.lr_log)
        if not self.lr_log:
            self._fit_lr(rates)
        if not self.document.running:
            if not self.log_touched:
                self.log_box.setChecked(spans_decades([v[2] for k, v in self.values.items()
                                                       if k[0] is self.norm_plot]))

    def _fit_lr(self, rates) -> None:
        """A linear lr axis from 0 to a little above the largest rate: a constant lr reads as a flat
        line at its value (auto-ranging a constant gives a ±0.5 window of overlapping ticks)."""
        values = np.concatenate([np.asarray(r, dtype=np.float64).ravel() for r in rates]) if rates else np.empty(0)
        values = values[np.isfinite(values)]
        if not len(values):
            return
        lo, hi = min(0.0, float(values.min())), max(0.0, float(values.max()))
        if hi == lo:
            hi = lo + 1.0
        self.lr_plot.enableAutoRange(y=False)
        self.lr_plot.setYRange(lo, hi + 0.15 * (hi - lo), padding=0)

    def set_log(self, on: bool) -> None:
        """The "log y" box: the gradient norms' axis (clipping scaled grads spans ten decades)."""
        self.norm_plot.setLogMode(x=False, y=bool(on))
