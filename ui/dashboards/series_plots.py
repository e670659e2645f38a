"""The small-multiples tabs: ``ParamsPlot`` (one plot per chosen parameter series),
``GradsPlot`` (the ``.grad`` each ``optimizer.step()`` saw, and the total gradient norm) and
``StatePlot`` (one plot per optimizer-state buffer and the step actually taken; the GradScaler
scale). The cells, their slices and their curves are ``time_series.SmallMultiples``'.
"""
from __future__ import annotations

import html

import numpy as np
import pyqtgraph as pg
from PySide6 import QtWidgets

from gradviz.view.series import (
    completed,
    grad_label,
    param_steps,
    row_steps,
    spans_decades,
    state_keys_of_runs,
)

from .. import theme as T
from ..theme import variant_colour
from .time_series import POSITIVE_STATE, STATE_TITLES, SmallMultiples


class ParamsPlot(SmallMultiples):
    """One small plot per chosen parameter series, every run's value before step k in it
    (k = steps: the final value)."""
    title = "Parameters"
    log_option = False
    y_label = ("value before step k", "value")

    def _cells(self) -> list[tuple]:
        return [(s.label, s.label) for s in self.selection.chosen()]

    def _fill(self, key, plot, runs) -> dict:
        series = self._series(key)
        if series is None:
            return {}
        return self._run_curves(plot, "param", series, runs,
                                lambda h: (param_steps(h), h.params.get(series.param)))


class GradsPlot(SmallMultiples):
    """``.grad`` as ``optimizer.step()`` saw it (after unscaling): one small plot per chosen series,
    every run in it, and the total gradient norm of every run."""
    title = "Gradients"
    NORM = "‖grad‖ (all parameters)"
    y_label = (".grad at step k", ".grad")

    def _cells(self) -> list[tuple]:
        return [(s.label, grad_label(s)) for s in self.selection.chosen()] + [("gradnorm", self.NORM)]

    def _fill(self, key, plot, runs) -> dict:
        if key == "gradnorm":
            wanted = {}
            for i, name, h in runs:
                n = completed(h)
                norm = self.cache.get((i, "gradnorm"), n, h.grad_norm)
                wanted[(plot, "gradnorm", i)] = (name, np.arange(n), norm, self.run_pen(i, n), False, ("run", i))
            return wanted
        series = self._series(key)
        if series is None:
            return {}
        return self._run_curves(plot, "grad", series, runs, lambda h: (row_steps(h), h.grads.get(series.param)))


class StatePlot(SmallMultiples):
    """Small multiples, a row per chosen series: one plot per optimizer-state buffer any run keeps
    (with the runs that keep it), then the step actually taken, and at the end the GradScaler scale
    of the runs that scale the loss. A line under the title names the runs without a buffer."""
    title = "Optimizer state"
    empty_text = "no optimizer state yet"

    def __init__(self, document, selection, on_pick=None, parent=None):
        super().__init__(document, selection, on_pick, parent)
        self.skipped: dict[int, pg.ScatterPlotItem] = {}     # run -> its skipped steps on the scale plot
        self.log_touched = False
        self.log_box.clicked.connect(lambda _on: setattr(self, "log_touched", True))
        self.missing_note = QtWidgets.QLabel()
        self.missing_note.setWordWrap(True)
        self.missing_note.setContentsMargins(8, 0, 8, 2)
        self.missing_note.hide()
        self.layout().insertWidget(1, self.missing_note)
        self.keys: list[str] = []              # the state buffers of every run, in first-seen order
        self.missing: dict[str, list[int]] = {}

    def _loggable(self, key) -> bool:
        return key != "scale"

    def _scaling_runs(self, runs) -> list[int]:
        variants = self.document.scenario.variants() if self.document.scenario else []
        return [i for i, _name, _h in runs
                if variants[i].loop.precision == "float16" and variants[i].loop.loss_scaling]

    def _cells(self) -> list[tuple]:
        runs = self.runs()
        self.keys, self.missing = state_keys_of_runs(self.document.histories)
        cells = [((key, s.label), f"{STATE_TITLES.get(key, key)} · {s.label}")
                 for s in self.selection.chosen() for key in self.keys + ["step_size"]]
        if self._scaling_runs(runs):
            cells.append(("scale", STATE_TITLES["scale"]))
        return cells

    def _preferred_columns(self, cells: list) -> int | None:
        return len(self.keys) + 1                  # a row per series

    def _cell_set_up(self, key, plot) -> None:
        plot.titleLabel.setToolTip("|Δθ| = |θ(k+1) − θ(k)|: how far optimizer.step() moved the parameter"
                                   if key[0] == "step_size" else "")

    def _cell_dropped(self, key, plot) -> None:
        if key == "scale":                     # the skipped-step marks go with the plot
            for marks in self.skipped.values():
                plot.removeItem(marks)
            self.skipped = {}

    def _refresh(self) -> None:
        super()._refresh()
        self._note_missing()

    def _note_missing(self) -> None:
        """Which runs a buffer's plots leave out, in a line above them: "momentum_buffer only in
        ■ SGD + momentum · ■ plain SGD keeps no optimizer state" (the shorter of "only in" and
        "not in" for each buffer; buffers kept by the same runs share a phrase)."""
        names = {i: name for i, name, _h in self.runs()}

        def who(runs) -> str:
            return ", ".join(f'<span style="color:{variant_colour(i)}">■</span>&nbsp;{html.escape(names[i])}'
                             for i in runs)
        groups: dict[tuple, list[str]] = {}
        for key in self.keys:
            lacking = tuple(i for i in names if i in self.missing.get(key, []))
            if lacking:
                groups.setdefault(lacking, []).append(STATE_TITLES.get(key, key))
        stateless = [i for i in names if all(i in self.missing.get(k, []) for k in self.keys)]
        parts = []
        for lacking, keys in groups.items():
            keeping = [i for i in names if i not in lacking]
            where = f"only in {who(keeping)}" if len(keeping) <= len(lacking) else f"not in {who(lacking)}"
            parts.append(f"{html.escape(', '.join(keys))} {where}")
        if stateless:
            parts.append(f"{who(stateless)} {'keeps' if len(stateless) == 1 else 'keep'} no optimizer state")
        self.missing_note.setText(" · ".join(parts))
        self.missing_note.setStyleSheet(f"color: {T.TEXT_MUTED}; font-size: 8pt;")
        self.missing_note.setVisible(bool(parts) and bool(names))

    def _fill(self, key, plot, runs) -> dict:
        if key == "scale":
            wanted = {}
            for i in self._scaling_runs(runs):
                h = self.document.histories[i]
                n = completed(h)
                scale = np.asarray(h.grad_scale[:n], dtype=np.float64)
                wanted[(plot, "scale", i)] = (names_of(runs)[i], np.arange(n), scale, self.run_pen(i, n), False,
                                              ("run", i))
                marks = self.skipped.get(i)
                if marks is None:
                    marks = pg.ScatterPlotItem(symbol="x", size=9, pen=pg.mkPen(T.ERROR, width=1.5), brush=None,
                                               name="skipped step")
                    marks.setZValue(8)
                    plot.addItem(marks)
                    self.skipped[i] = marks
                skipped = np.flatnonzero(np.asarray(h.skipped[:n], dtype=bool))
                marks.setData(skipped.astype(float), scale[skipped] if len(skipped) else [])
            return wanted
        state_key, label = key
        series = self._series(label)
        if series is None:
            return {}
        if state_key == "step_size":
            wanted = {}
            for i, name, h in runs:
                if series.param not in h.params:
                    continue
                xs = param_steps(h)[:-1]
                y = self.cache.get((i, "delta", label), len(xs),
                                   lambda a, b, s=series, h=h: s.of(h.step_sizes(s.param, a, b)))
                wanted[(plot, "step_size", label, i)] = (name, xs, y, self.run_pen(i, completed(h)), False, ("run", i))
            return wanted
        return self._run_curves(plot, state_key, series, runs,
                                lambda h: (row_steps(h), (h.state.get(series.param) or {}).get(state_key)))

    def _filled(self, key, plot, wanted) -> None:
        state_key = key if key == "scale" else key[0]
        if state_key == "scale":
            self.set_log_y(plot, True)
        elif not self.log_touched and state_key in POSITIVE_STATE and not self.document.running:
            self.set_log_y(plot, spans_decades([w[2] for w in wanted.values()]))

    def apply_hidden(self) -> None:
        super().apply_hidden()
        for i, marks in self.skipped.items():
            marks.setVisible(not self.selection.is_hidden(("run", i)))

    def hover_html(self, plot, x, y) -> str:
        html_ = super().hover_html(plot, x, y)
        if html_ and plot is self._plots.get("scale"):
            step = int(round(x))
            for i, _marks in self.skipped.items():
                h = self.document.histories[i]
                if not self.selection.is_hidden(("run", i)) and 0 <= step < completed(h) and bool(h.skipped[step]):
                    html_ += f'<br><span style="color:{T.ERROR}">step skipped (inf/nan grad)</span>'
                    break
        return html_


def names_of(runs) -> dict[int, str]:
    return {i: name for i, name, _h in runs}
