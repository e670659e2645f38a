"""Everything about one node at one point of the iteration: op, shape, full value and gradient, and
for a parameter its optimizer state and (given a History) its value and gradient over the last
iterations.  The inspector only reads a Replay's frames and a History; it computes nothing.

``Inspector(player, view_state, document)`` shows the ViewState's selected node at the Player's
frame, with the History of the ViewState's variant, and is blank while no node is selected."""
from __future__ import annotations

import math

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtWidgets

from gradviz.view.folding import module_label
from gradviz.view.format import format_array, format_full

from . import theme as T

HISTORY_WINDOW = 100          # iterations shown in the history plot
PLOT_HEIGHT = 220


def _indent(prefix: str, text: str) -> str:
    return prefix + text.replace("\n", "\n" + " " * len(prefix))


def array_text(a) -> str:
    """A full, monospace rendering of an array (numpy's array2string), or a placeholder."""
    if a is None:
        return "None"
    a = np.asarray(a)
    body = format_full(a)
    return body if a.ndim == 0 else f"{body}\n\nshape {tuple(a.shape)}  ·  dtype {a.dtype}"


class _TextBox(QtWidgets.QPlainTextEdit):
    """Read-only monospace text exactly as tall as its lines (up to ``max_lines``, then it scrolls), so
    that a short gradient never sits squeezed behind scroll bars while the dock has room to spare.
    Lines are never wrapped (rows of a matrix stay rows); a line wider than the box scrolls sideways."""

    def __init__(self, max_lines: int = 14):
        super().__init__()
        self.max_lines = max_lines
        self.setReadOnly(True)
        self.setLineWrapMode(QtWidgets.QPlainTextEdit.LineWrapMode.NoWrap)
        self.setFont(T.mono_font(9))
        self.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Fixed)
        self._chars = 0
        self._fit()

    def setPlainText(self, text: str) -> None:
        if text == self.toPlainText():         # called every frame while playing: keep the scroll position
            return
        super().setPlainText(text)
        self._chars = max((len(line) for line in text.split("\n")), default=0)
        self._fit()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit()

    def _fit(self) -> None:
        fm = self.fontMetrics()
        margin = 2 * self.document().documentMargin() + 2 * self.frameWidth()
        count = max(self.document().blockCount(), 1)
        lines = min(count, self.max_lines)
        height = lines * fm.lineSpacing() + margin + 2
        self.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAsNeeded if count > self.max_lines
                                        else QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        if self._chars * fm.horizontalAdvance("0") + margin > self.width():
            height += self.horizontalScrollBar().sizeHint().height()
        height = int(math.ceil(height))
        if self.height() != height:
            self.setFixedHeight(height)


class Inspector(QtWidgets.QWidget):
    """Follows the models (see the module docstring); ``show_node(replay, frame_index, node_id,
    history=None)`` draws one node, ``clear()`` the blank state.

    The sections sit in a scroll area: whatever a node shows (a big matrix, the history plot), the
    dock keeps its size and the main window never grows to make room."""

    def __init__(self, player, view_state, document, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.player, self.view_state, self.document = player, view_state, document
        self.replay = None
        self.frame_index = None
        self.node_id = None
        self.history = None

        self.title = QtWidgets.QLabel("Click a node in the graph")
        self.title.setFont(T.ui_font(12, bold=True))
        self.title.setWordWrap(True)
        self.subtitle = self._note()

        self.fields: dict[str, QtWidgets.QLabel] = {}
        form = QtWidgets.QFormLayout()
        form.setLabelAlignment(QtCore.Qt.AlignmentFlag.AlignRight)
        form.setHorizontalSpacing(12)
        form.setVerticalSpacing(3)
        form.setRowWrapPolicy(QtWidgets.QFormLayout.RowWrapPolicy.DontWrapRows)
        for key, label in (("op", "op (grad_fn)"), ("kind", "kind"), ("shape", "shape"), ("dtype", "dtype"),
                           ("module", "module"), ("state", "state")):
            value = QtWidgets.QLabel("—")
            value.setWordWrap(True)
            value.setTextInteractionFlags(QtCore.Qt.TextInteractionFlag.TextSelectableByMouse)
            self.fields[key] = value
            form.addRow(label + ":", value)

        self.value_label = self._section("Value")
        self.value_text = _TextBox()
        self.grad_label = self._section("Gradient")
        self.grad_text = _TextBox()
        self.grad_note = self._note()
        self.state_label = self._section("Optimizer state")
        self.state_text = _TextBox()
        self.state_note = self._note()

        self.history_label = self._section("History")
        self.plot = pg.GraphicsLayoutWidget()
        self.plot.setBackground(T.PANEL)
        self.plot.setFixedHeight(PLOT_HEIGHT)
        self.plot.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Fixed)
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

        body = QtWidgets.QWidget()
        layout = QtWidgets.QVBoxLayout(body)
        layout.setContentsMargins(8, 8, 8, 8)
        layout.setSpacing(4)
        layout.addWidget(self.title)
        layout.addWidget(self.subtitle)
        layout.addLayout(form)
        for w in (self.value_label, self.value_text, self.grad_label, self.grad_text, self.grad_note,
                  self.state_label, self.state_text, self.state_note, self.history_label, self.plot):
            layout.addWidget(w)
        layout.addStretch(1)
        self.scroll = QtWidgets.QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        self.scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.scroll.setWidget(body)
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll)
        self.clear()
        player.positionChanged.connect(self._follow)          # also sent for every new replay
        view_state.selectedNodeChanged.connect(self._follow)
        self._follow()

    def sizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(340, 480)

    def minimumSizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(200, 120)

    @staticmethod
    def _section(text: str) -> QtWidgets.QLabel:
        label = QtWidgets.QLabel(text)
        label.setFont(T.ui_font(9, bold=True))
        label.setContentsMargins(0, 6, 0, 0)
        return label

    @staticmethod
    def _note() -> QtWidgets.QLabel:
        """A sentence of explanation under a section (word-wrapped prose, unlike the monospace boxes)."""
        label = QtWidgets.QLabel("")
        label.setStyleSheet(f"color: {T.TEXT_MUTED}")
        label.setWordWrap(True)
        label.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
        return label

    @staticmethod
    def _set_note(label: QtWidgets.QLabel, text: str) -> None:
        label.setText(text)
        label.setVisible(bool(text))

    # -- following the models ---------------------------------------------------------------------
    def _follow(self, *_) -> None:
        """The selected node at the Player's frame; blank when there is none (or not in this graph)."""
        replay, node = self.player.replay, self.view_state.selected_node
        if replay is None or node is None or node not in replay.nodes:
            if self.node_id is not None:
                self.clear()
            return
        histories, variant = self.document.histories, self.view_state.variant
        self.show_node(replay, self.player.position, node, histories[variant] if variant < len(histories) else None)

    # -- API --------------------------------------------------------------------------------------
    def clear(self) -> None:
        self.replay = self.node_id = self.frame_index = self.history = None
        self.title.setText("Click a node in the graph")
        self.subtitle.setText("")
        for value in self.fields.values():
            value.setText("—")
        self.value_text.setPlainText("")
        self.grad_text.setPlainText("")
        for w in (self.state_label, self.state_text, self.history_label, self.plot, self.grad_note, self.state_note):
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
        self.fields["module"].setText(module_label(replay, module) if module else "—")
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
            self._set_note(self.grad_note, self._grad_note(ns))
        else:
            self.grad_label.setText("Gradient received in backward (∂loss/∂output)")
            self.grad_text.setPlainText(array_text(ns.grad) if ns.grad is not None else "None")
            self._set_note(self.grad_note, "" if ns.grad is not None else "Not reached by backward yet."
                           if info.requires_grad else "requires_grad=False: backward never visits this node.")

        show_state = is_param
        self.state_label.setVisible(show_state)
        self.state_text.setVisible(show_state)
        if show_state:
            after = ns.param_before is not None          # set by this iteration's StepEvent
            self.state_label.setText("Optimizer state " + ("(after step)" if after else "(before step)"))
            self.state_text.setPlainText(self._state_text(ns.optimizer_state))
        self._set_note(self.state_note, "Empty: either the optimizer keeps no state (like plain SGD), or this "
                       "parameter has not had a step with a gradient yet."
                       if show_state and not ns.optimizer_state else "")
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
        """The ``.grad`` tensor and, after an accumulating backward, the sum that made it: one term a
        line (``old`` / ``+ new`` / ``= sum``) so that it reads in a narrow dock."""
        text = array_text(ns.grad_badge)
        acc = ns.accumulation
        if acc is not None and acc[0] is not None:
            before, added, after = (format_array(a, multiline=True, sep=" ") for a in acc)
            text += ("\n\nlast backward accumulated:\n" + _indent("    ", before) + "\n" + _indent("  + ", added)
                     + "\n" + _indent("  = ", after))
        return text

    @staticmethod
    def _grad_note(ns) -> str:
        notes = []
        if ns.accumulation is not None and ns.accumulation[0] is None:
            notes.append("Last backward: .grad was None, so it now holds the incoming gradient.")
        if ns.cleared == "none":
            notes.append("zero_grad(set_to_none=True) set it to None.")
        elif ns.cleared == "zeros":
            notes.append("zero_grad(set_to_none=False) filled it with zeros.")
        return " ".join(notes)

    @staticmethod
    def _state_text(state) -> str:
        if not state:
            return "{}"
        lines = []
        for key, value in state.items():
            text = format_full(value, threshold=400)
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
        self.value_plot.setXRange(lo, max(k, lo + 1), padding=0.04)   # one point: still a sensible axis
        self.history_label.setText(f"History (iterations {lo}–{k})")
