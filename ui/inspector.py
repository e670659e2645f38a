"""Everything about one node at one point of the iteration: op, shape, full value and gradient, and
for a parameter its optimizer state and (given a History) its value and gradient over the last
iterations.  The inspector only reads a Replay's frames and a History; it computes nothing."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from gradviz.replay import format_array

from . import theme as T

HISTORY_WINDOW = 100          # iterations shown in the history plot


def array_text(a) -> str:
    """A full, monospace rendering of an array (numpy's array2string), or a placeholder."""
    if a is None:
        return "None"
    a = np.asarray(a)
    body = np.array2string(a, precision=6, suppress_small=False, max_line_width=72, threshold=4000,
                           floatmode="maxprec")
    return body if a.ndim == 0 else f"{body}\n\nshape {tuple(a.shape)}  ·  dtype {a.dtype}"


class Inspector(QtWidgets.QWidget):
    """``show_node(replay, frame_index, node_id, history=None)``; ``clear()``."""

    def __init__(self, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.replay = None
        self.frame_index = None
        self.node_id = None
        self.history = None

        self.title = QtWidgets.QLabel("Click a node in the graph")
        self.title.setFont(T.ui_font(12, bold=True))
        self.subtitle = QtWidgets.QLabel("")
        self.subtitle.setStyleSheet(f"color: {T.TEXT_MUTED}")
        self.subtitle.setWordWrap(True)

        self.fields: dict[str, QtWidgets.QLabel] = {}
        form = QtWidgets.QFormLayout()
        form.setLabelAlignment(QtCore.Qt.AlignmentFlag.AlignRight)
        form.setHorizontalSpacing(12)
        form.setVerticalSpacing(3)
        for key, label in (("op", "op (grad_fn)"), ("kind", "kind"), ("shape", "shape"), ("dtype", "dtype"),
                           ("module", "module"), ("state", "state")):
            value = QtWidgets.QLabel("—")
            value.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
            self.fields[key] = value
            form.addRow(label + ":", value)

        self.value_label = self._section("Value")
        self.value_text = self._text_box()
        self.grad_label = self._section("Gradient")
        self.grad_text = self._text_box()
        self.state_label = self._section("Optimizer state")
        self.state_text = self._text_box(90)
        self.state_text.setLineWrapMode(QtWidgets.QPlainTextEdit.LineWrapMode.WidgetWidth)

        self.history_label = self._section("History")
        self.plot = pg.GraphicsLayoutWidget()
        self.plot.setBackground(T.PANEL)
        self.plot.setMinimumHeight(180)
        self.value_plot = self.plot.addPlot(row=0, col=0)
        self.grad_plot = self.plot.addPlot(row=1, col=0)
        self.grad_plot.setXLink(self.value_plot)
        self.value_curve = self.value_plot.plot(pen=pg.mkPen(T.FORWARD, width=1))
        self.grad_curve = self.grad_plot.plot(pen=pg.mkPen(T.BACKWARD, width=1))
        self.value_marker = pg.InfiniteLine(angle=90, pen=pg.mkPen(T.TEXT_FAINT, style=QtCore.Qt.PenStyle.DashLine))
        self.grad_marker = pg.InfiniteLine(angle=90, pen=pg.mkPen(T.TEXT_FAINT, style=QtCore.Qt.PenStyle.DashLine))
        self.value_plot.addItem(self.value_marker)
        self.grad_plot.addItem(self.grad_marker)
        for p in (self.value_plot, self.grad_plot):
            p.showGrid(x=True, y=True, alpha=0.15)
            p.setMenuEnabled(False)
            p.hideButtons()
        self.grad_plot.setLabel("bottom", "iteration")

        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(4)
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)
        layout.addLayout(form)
        for w in (self.value_label, self.value_text, self.grad_label, self.grad_text, self.state_label,
                  self.state_text, self.history_label, self.plot):
            layout.addWidget(w)
        layout.addStretch(1)
        self.clear()

    @staticmethod
    def _section(text: str) -> QtWidgets.QLabel:
        label = QtWidgets.QLabel(text)
        label.setFont(T.ui_font(9, bold=True))
        label.setContentsMargins(0, 6, 0, 0)
        return label

    @staticmethod
    def _text_box(height: int = 110) -> QtWidgets.QPlainTextEdit:
        box = QtWidgets.QPlainTextEdit()
        box.setReadOnly(True)
        box.setLineWrapMode(QtWidgets.QPlainTextEdit.LineWrapMode.NoWrap)
        box.setFont(T.mono_font(9))
        box.setMinimumHeight(height // 2)
        box.setMaximumHeight(height * 2)
        return box

    # -- API --------------------------------------------------------------------------------------
    def clear(self) -> None:
        self.replay = self.node_id = self.frame_index = self.history = None
        self.title.setText("Click a node in the graph")
        self.subtitle.setText("")
        for value in self.fields.values():
            value.setText("—")
        self.value_text.setPlainText("")
        self.grad_text.setPlainText("")
        for w in (self.state_label, self.state_text, self.history_label, self.plot):
            w.setVisible(False)

    def show_node(self, replay, frame_index: int, node_id: int, history=None) -> None:
        self.replay, self.frame_index, self.node_id, self.history = replay, frame_index, node_id, history
        info = replay.nodes[node_id]
        frame = replay.frame(frame_index)
        ns = frame.nodes[node_id]
        name = replay.node_name(node_id)
        is_param = node_id in replay.param_names
        kind = "parameter" if is_param else {"op": "operation", "input": "data / constant",
                                              "param": "leaf requiring grad"}.get(info.kind, info.kind)
        self.title.setText(name)
        self.subtitle.setText(self._subtitle(replay, info, is_param))
        module = replay.modules.get(node_id, "")
        self.fields["op"].setText(info.label if info.kind == "op" else "— (leaf: AccumulateGrad)"
                                  if info.requires_grad else "— (leaf)")
        self.fields["kind"].setText(kind)
        self.fields["shape"].setText(str(tuple(info.shape)))
        self.fields["dtype"].setText(info.dtype)
        self.fields["module"].setText(f"{replay.module_type(module.split('.')[0])} {module}" if module else "—")
        self.fields["state"].setText(ns.state.replace("_", " ") + (" (active now)" if node_id in frame.active_nodes
                                                                    else ""))

        value_text = array_text(ns.value)
        if is_param and ns.stepped and ns.param_before is not None:
            self.value_label.setText("Value (before → after optimizer.step())")
            value_text = "before:\n" + array_text(ns.param_before) + "\n\nafter:\n" + array_text(ns.value)
        else:
            self.value_label.setText("Value" if ns.value is not None or info.kind != "op"
                                     else "Value (not computed yet)")
        self.value_text.setPlainText(value_text)

        if node_id in replay.badge_nodes:
            self.grad_label.setText(".grad")
            self.grad_text.setPlainText(self._grad_text(ns))
        else:
            self.grad_label.setText("Gradient received in backward (∂loss/∂output)")
            self.grad_text.setPlainText(array_text(ns.grad) if ns.grad is not None else
                                        "not reached by backward yet" if info.requires_grad else
                                        "None (requires_grad=False: backward never visits this node)")

        show_state = is_param
        self.state_label.setVisible(show_state)
        self.state_text.setVisible(show_state)
        if show_state:
            after = ns.param_before is not None          # set by this iteration's StepEvent
            self.state_label.setText("Optimizer state " + ("(after step)" if after else "(before step)"))
            self.state_text.setPlainText(self._state_text(ns.optimizer_state))
        self._show_history(replay, name if is_param else None, history)

    # -- pieces -------------------------------------------------------------------------------------
    @staticmethod
    def _subtitle(replay, info, is_param) -> str:
        if is_param:
            return "A parameter: optimizer.step() moves it against its .grad."
        if info.kind == "op":
            ins = ", ".join(replay.node_name(i) for i in info.inputs)
            return f"{replay.symbol(info.id)} of {ins}" if ins else info.label
        return "Data: no gradient is computed for it." if not info.requires_grad else "A leaf that requires grad."

    @staticmethod
    def _grad_text(ns) -> str:
        parts = [array_text(ns.grad_badge)]
        acc = ns.accumulation
        if acc is not None:
            before, added, after = acc
            if before is None:
                parts.append(f"\nLast backward: .grad was None, so it now holds the incoming gradient "
                             f"{format_array(added)}.")
            else:
                parts.append(f"\nLast backward accumulated: {format_array(before)} + {format_array(added)} "
                             f"= {format_array(after)}")
        if ns.cleared == "none":
            parts.append("\nzero_grad(set_to_none=True) set it to None.")
        elif ns.cleared == "zeros":
            parts.append("\nzero_grad(set_to_none=False) filled it with zeros.")
        return "\n".join(parts)

    @staticmethod
    def _state_text(state) -> str:
        if not state:
            return ("{}  (empty: either the optimizer keeps no state, like plain SGD, or this parameter "
                    "has not had a step with a gradient yet)")
        lines = []
        for key, value in state.items():
            text = np.array2string(np.asarray(value), precision=6, max_line_width=72, threshold=400)
            lines.append(f"{key}:\n  " + text.replace("\n", "\n  ") if "\n" in text else f"{key}: {text}")
        return "\n".join(lines)

    def _show_history(self, replay, param: str | None, history) -> None:
        ok = (history is not None and param is not None and param in getattr(history, "params", {})
              and getattr(history, "steps", 0) > 0)
        for w in (self.history_label, self.plot):
            w.setVisible(ok)
        if not ok:
            return
        k = min(replay.iteration, history.steps)
        lo = max(0, k - HISTORY_WINDOW + 1)
        values = np.asarray(history.params[param][lo:k + 1], dtype=np.float64)
        grads = np.asarray(history.grads[param][lo:min(k + 1, history.steps)], dtype=np.float64)
        scalar = values[0].size == 1 if len(values) else True
        reduce = (lambda a: a.reshape(len(a))) if scalar else (lambda a: np.sqrt(np.nansum(
            a.reshape(len(a), -1) ** 2, axis=1)))
        xs = np.arange(lo, lo + len(values))
        self.value_curve.setData(xs, reduce(values) if len(values) else values)
        self.grad_curve.setData(np.arange(lo, lo + len(grads)), reduce(grads) if len(grads) else grads)
        self.value_plot.setLabel("left", param if scalar else f"‖{param}‖")
        self.grad_plot.setLabel("left", f"{param}.grad" if scalar else f"‖{param}.grad‖")
        self.value_marker.setValue(k)
        self.grad_marker.setValue(k)
        self.history_label.setText(f"History (iterations {lo}–{k})")
