"""The learning rate and gradient clipping over the optimizer step, for every run side by side.

* top row: the learning rate each ``optimizer.step()`` used (``History.lr``): flat without a
  scheduler, the schedule's shape with one (a run that calls ``scheduler.step()`` before
  ``optimizer.step()`` shows the same curve one step early, its first value never used);
* bottom row: the total gradient norm, solid after clipping (``History.grad_norm``, what the
  optimizer saw) and dashed before (``History.clip_norm``, what ``clip_grad_norm_`` measured).
  A run that clips scaled gradients shows a dashed curve ``scale`` times above the solid one,
  and a solid one pinned far below ``max_norm``.

Each run has its variant colour; the panel only draws what the Histories hold.
"""
from __future__ import annotations

import numpy as np

from gradviz.view.series import completed, spans_decades

from ..theme import variant_colour
from .panel import FOREGROUND, line_width, make_pen
from .time_series import TimeSeriesPanel

NORM_TITLE = "‖grad‖: solid = after clipping (step() saw it), dashed = before (clip_grad_norm_ measured it)"


class SchedulePlot(TimeSeriesPanel):
    """Learning rate (top) and gradient norm before/after clipping (bottom) for every variant."""
    title = "LR and clipping"

    def __init__(self, document, selection, on_pick=None, parent=None):
        super().__init__(document, selection, on_pick, parent)
        self.lr_plot = self._main_plot("lr")
        self.lr_plot.getAxis("bottom").setStyle(showValues=False)
        self.lr_plot.setLabel("bottom", "")
        self.norm_plot = self._new_plot(2)
        self.norm_plot.setLabel("bottom", self.x_label)
        self.norm_plot.setLabel("left", "‖grad‖")
        self.norm_plot.setXLink(self.lr_plot)
        for plot in (self.lr_plot, self.norm_plot):
            plot.getAxis("left").setWidth(56)
            plot.getAxis("left").enableAutoSIPrefix(False)     # "lr (x0.001)" reads worse than 1e-3
        # the key to the dashes, above the plot (drawn inside it, it sat on the curves)
        self.norm_plot.setTitle(NORM_TITLE, size="8pt", color=FOREGROUND)
        self.norm_title = self.norm_plot.titleLabel
        self.log_touched = False               # until the user decides, log y follows the data
        self.log_box.clicked.connect(lambda _on: setattr(self, "log_touched", True))

    def _legend_row(self, plot) -> int:
        return 1                               # between the two rows: the runs' names and colours

    def _refresh(self) -> None:
        variants = self.document.scenario.variants() if self.document.scenario else []
        lr_curves, norm_curves = {}, {}
        for i, h in enumerate(self.document.histories):
            if h is None or i >= len(variants):
                continue
            n = completed(h)
            x, width, colour = np.arange(n), line_width(n), variant_colour(i)
            lr = getattr(h, "lr", None)
            if lr is not None:
                lr_curves[(self.lr_plot, "lr", i)] = (variants[i].name, x, lr[:n], make_pen(colour, width), True)
            if h.params:
                after = self.cache.get((i, "gradnorm"), n, h.grad_norm)
                norm_curves[(self.norm_plot, "after", i)] = (f"{variants[i].name}: ‖grad‖ after clipping", x,
                                                             after, make_pen(colour, width), False)
            before = getattr(h, "clip_norm", None)
            if before is not None:
                norm_curves[(self.norm_plot, "before", i)] = (
                    f"{variants[i].name}: ‖grad‖ before clipping", x, before[:n],
                    make_pen(colour, width, alpha=170, dash=True), False)
        self._set_curves(self.lr_plot, lr_curves)
        self._set_curves(self.norm_plot, norm_curves, legend=False)
        if not self.document.running:
            # the learning rate goes log by itself when the schedule spans decades (the box is the norms')
            rates = [v[2] for k, v in self.values.items() if k[0] is self.lr_plot]
            self.lr_plot.setLogMode(x=False, y=spans_decades(rates))
            if not self.log_touched:
                self.log_box.setChecked(spans_decades([v[2] for k, v in self.values.items()
                                                       if k[0] is self.norm_plot]))

    def set_log(self, on: bool) -> None:
        """The "log y" box: the gradient norms' axis (clipping scaled grads spans ten decades)."""
        self.norm_plot.setLogMode(x=False, y=bool(on))
