"""Everything about one node (or one folded module) at one point of the iteration, in sections a
reader scans: the title and op, its value, its gradient, what an op sent back to each input, a
parameter's step and optimizer state, and (given a History) its value and gradient over the last
iterations.  The inspector only reads a Replay's frames and a History; it computes nothing.

``Inspector(player, view_state, document)`` shows the ViewState's selected node at the Player's
frame, with the History of the ViewState's variant; ``select_module(name)`` (a click on a folded
module's box) shows that module instead.  With nothing selected, and after another scenario is
opened, it shows only its empty state.

Numbers read as on the graph: a tensor small enough to read whole is ``gradviz.view.format``'s
``format_value`` text, the very text its node shows; a larger one is its min/mean/max, a heat map
and its first elements.  All of it sits in one scroll area, as selectable text."""
from __future__ import annotations

import numpy as np
import pyqtgraph as pg
from PySide6 import QtCore, QtGui, QtWidgets

from gradviz.summary import is_summary
from gradviz.view.folding import Fold, module_label
from gradviz.view.format import format_head, format_shape, format_stats, format_value
from gradviz.view.formulas import formulas_for_frame
from gradviz.view.series import param_steps, row_steps, rows_between

from . import theme as T

HISTORY_WINDOW = 100          # iterations shown in the history plot
PLOT_HEIGHT = 220
WHOLE_LINES = 12              # a tensor whose text has more lines, or longer ones, is summarised
WHOLE_CHARS = 44
HEAT_WIDTH = 220              # px of a summarised tensor's heat map (height follows, up to HEAT_HEIGHT)
HEAT_HEIGHT = 140
NOTHING_SELECTED = "Click a node in the graph"
EMPTY_HINT = ("Its value, its gradient, what it sent back to each input and, for a parameter, the "
              "optimizer's step show here. A click on a folded module shows its parameters and its "
              "input and output.")
_SELECTABLE = (QtCore.Qt.TextInteractionFlag.TextSelectableByMouse
               | QtCore.Qt.TextInteractionFlag.TextSelectableByKeyboard)


def describe(shape, dtype) -> str:
    """``scalar · float32``, ``shape (2, 3) · float32``."""
    return ("scalar" if len(shape) == 0 else "shape " + format_shape(shape)) + f" · {dtype}"


def _label(font: QtGui.QFont | None = None, wrap: bool = False, muted: bool = False) -> QtWidgets.QLabel:
    label = QtWidgets.QLabel("")
    if font is not None:
        label.setFont(font)
    label.setWordWrap(wrap)
    label.setTextFormat(QtCore.Qt.TextFormat.PlainText)
    label.setTextInteractionFlags(_SELECTABLE)
    if muted:
        label.setProperty("muted", True)
    if wrap:        # prose follows the dock's width instead of widening the panel
        label.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
    return label


class TensorView(QtWidgets.QWidget):
    """One tensor, readable at any size.  Short: its whole ``format_value`` text (the graph's).
    Long: ``min · mean · max``, a heat map (blue < 0 < red) and its first elements.  ``extra`` is
    monospace text under it (an accumulation's sum); ``note`` a sentence shown instead of a tensor.
    ``toPlainText()`` is everything it shows as text.  A right click copies the whole tensor."""

    def __init__(self):
        super().__init__()
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(3)
        self.text = _label(T.mono_font(9))
        self.stats = _label(T.mono_font(9), wrap=True)
        self.heat = QtWidgets.QLabel()
        self.heat.setToolTip("Heat map: blue < 0 < red, white = 0, scaled to the largest |element|")
        self.head = _label(T.mono_font(9), wrap=True)
        self.extra = _label(T.mono_font(9))
        self.note = _label(wrap=True, muted=True)
        for w in (self.text, self.stats, self.heat, self.head, self.extra, self.note):
            layout.addWidget(w)
            w.setVisible(False)
        for w in (self.text, self.stats, self.head, self.extra):
            w.setContextMenuPolicy(QtCore.Qt.ContextMenuPolicy.CustomContextMenu)
            w.customContextMenuRequested.connect(lambda pos, w=w: self._menu(w, pos))
        self._shown: tuple | None = None
        self._array = None

    def set(self, a=None, extra: str = "", note: str = "") -> None:
        if self._shown == (extra, note) and a is self._array:      # every frame while playing: same arrays
            return
        self._shown, self._array = (extra, note), a
        whole = stats = summary = ""
        if a is not None:
            a = a if is_summary(a) else np.asarray(a)
            whole = format_value(a)
            lines = whole.split("\n")
            if "shape" in whole or len(lines) > WHOLE_LINES or max(map(len, lines)) > WHOLE_CHARS:
                # "min -1.2 · mean 0.3 · max 2.1" wraps between its parts only
                stats = " · ".join(part.replace(" ", "\u00a0") for part in format_stats(a).split(" · "))
                whole, summary = "", format_head(a)
        self.text.setText(whole)
        self.text.setVisible(bool(whole))
        self.stats.setText(stats)
        self.stats.setVisible(bool(stats))
        self.head.setText(("first: " if np.size(a) > 12 else "all: ") + summary if summary else "")
        self.head.setVisible(bool(summary))
        self._show_heat(a if summary else None)
        self.extra.setText(extra)
        self.extra.setVisible(bool(extra))
        self.note.setText(note)
        self.note.setVisible(bool(note))

    def toPlainText(self) -> str:
        return "\n".join(w.text().replace("\u00a0", " ") for w in (self.text, self.stats, self.head, self.extra,
                                                                  self.note) if w.text())

    def _show_heat(self, a) -> None:
        if a is None or a.dtype.kind not in "fiub":
            self.heat.clear()
            self.heat.setVisible(False)
            return
        column = a.ndim == 2 and a.shape[1] == 1                              # a column as a strip
        img = T.heat_image((a.grid if is_summary(a) else a).T if column else a)
        cell = max(1.0, HEAT_WIDTH / img.width())
        w = int(min(HEAT_WIDTH, img.width() * cell))
        h = int(min(HEAT_HEIGHT, max(12.0, img.height() * cell)))
        self.heat.setPixmap(QtGui.QPixmap.fromImage(img.scaled(
            w, h, QtCore.Qt.AspectRatioMode.IgnoreAspectRatio, QtCore.Qt.TransformationMode.FastTransformation)))
        self.heat.setFixedSize(w, h)
        self.heat.setVisible(True)

    def _menu(self, label: QtWidgets.QLabel, pos: QtCore.QPoint) -> None:
        menu = QtWidgets.QMenu(self)
        copy = menu.addAction("Copy", lambda: QtWidgets.QApplication.clipboard().setText(label.selectedText()))
        copy.setEnabled(label.hasSelectedText())
        menu.addAction("Copy text", lambda: QtWidgets.QApplication.clipboard().setText(self.toPlainText()))
        if is_summary(self._array):
            every = menu.addAction("Copy every element (NumPy)")
            every.setEnabled(False)
            every.setToolTip("The trace keeps a summary of an array this large, not every element")
            menu.setToolTipsVisible(True)
        elif self._array is not None:
            menu.addAction("Copy every element (NumPy)", lambda: QtWidgets.QApplication.clipboard().setText(
                np.array2string(np.asarray(self._array), threshold=np.asarray(self._array).size + 1,
                                separator=", ", max_line_width=100)))
        menu.exec(label.mapToGlobal(pos))


class _Row(QtWidgets.QWidget):
    """A caption (an input's name, ``before``, ``exp_avg``) over a TensorView."""

    def __init__(self):
        super().__init__()
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 2, 0, 2)
        layout.setSpacing(1)
        self.caption = _label(T.ui_font(8.5, bold=True), wrap=True)
        self.caption.setProperty("caption", True)
        self.view = TensorView()
        layout.addWidget(self.caption)
        layout.addWidget(self.view)


class Section(QtWidgets.QWidget):
    """A heading, rows of tensors, and a sentence of explanation under them."""

    def __init__(self, heading: str):
        super().__init__()
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 10, 0, 0)
        layout.setSpacing(2)
        self.heading = _label(T.ui_font(9.5, bold=True), wrap=True)
        self.heading.setText(heading)
        self.heading.setProperty("heading", True)
        layout.addWidget(self.heading)
        self.meta = _label(wrap=True, muted=True)          # shape · dtype
        layout.addWidget(self.meta)
        self.rows: list[_Row] = []
        self._rows_layout = QtWidgets.QVBoxLayout()
        self._rows_layout.setSpacing(2)
        layout.addLayout(self._rows_layout)
        self.note = _label(wrap=True, muted=True)
        layout.addWidget(self.note)
        self.row(0)

    def row(self, i: int) -> _Row:
        while len(self.rows) <= i:
            self.rows.append(_Row())
            self._rows_layout.addWidget(self.rows[-1])
        return self.rows[i]

    def set_rows(self, rows) -> None:
        """``rows``: (caption, tensor or None, extra text, note); an empty caption is not shown."""
        for i, (caption, a, extra, note) in enumerate(rows):
            row = self.row(i)
            row.caption.setText(caption)
            row.caption.setVisible(bool(caption))
            row.view.set(a, extra, note)
            row.setVisible(True)
        for row in self.rows[len(rows):]:
            row.setVisible(False)

    def set_note(self, text: str) -> None:
        self.note.setText(text)
        self.note.setVisible(bool(text))

    def show_rows(self, heading: str, rows, note: str = "", meta: str = "") -> None:
        self.heading.setText(heading)
        self.meta.setText(meta)
        self.meta.setVisible(bool(meta))
        self.set_rows(rows)
        self.set_note(note)
        self.setVisible(True)


class MathSection(QtWidgets.QWidget):
    """The math of the selected node at this frame (``gradviz.view.formulas``): for each formula its
    title, the rule and the rule with this iteration's numbers, as rich text.  For a tensor an
    ``element`` field picks the element (``1,0``; empty: the first, or for a step the largest
    update).  "Copy as LaTeX" (the button, or a formula's right-click menu) puts LaTeX on the clipboard."""

    def __init__(self, on_element):
        super().__init__()
        layout = QtWidgets.QVBoxLayout(self)
        layout.setContentsMargins(0, 10, 0, 0)
        layout.setSpacing(3)
        top = QtWidgets.QHBoxLayout()
        self.heading = _label(T.ui_font(9.5, bold=True))
        self.heading.setText("Math")
        self.heading.setProperty("heading", True)
        self.copy_button = QtWidgets.QToolButton()
        self.copy_button.setText("Copy as LaTeX")
        self.copy_button.setToolTip("Copy these formulas as LaTeX, one a line")
        self.copy_button.clicked.connect(self.copy_latex)
        top.addWidget(self.heading)
        top.addStretch(1)
        top.addWidget(self.copy_button)
        layout.addLayout(top)
        row = QtWidgets.QHBoxLayout()
        self.element_label = QtWidgets.QLabel("element")
        self.element_label.setProperty("muted", True)
        self.element_edit = QtWidgets.QLineEdit()
        self.element_edit.setPlaceholderText("auto")
        self.element_edit.setToolTip("Which element of the tensor the formulas show: an index such as 1,0 "
                                     "or a flat index; empty: the first (a step: the largest update)")
        self.element_edit.setMaximumWidth(90)
        self.element_edit.editingFinished.connect(on_element)
        row.addWidget(self.element_label)
        row.addWidget(self.element_edit)
        row.addStretch(1)
        self.element_row = QtWidgets.QWidget()
        self.element_row.setLayout(row)
        row.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.element_row)
        self._items_layout = QtWidgets.QVBoxLayout()
        self._items_layout.setSpacing(4)
        layout.addLayout(self._items_layout)
        self.items: list[tuple[QtWidgets.QLabel, QtWidgets.QLabel]] = []
        self.formulas: list = []

    def element(self):
        """The element typed in the field: an index tuple, a flat index, or None (auto)."""
        text = self.element_edit.text().strip().strip("[]()")
        if not text:
            return None
        try:
            parts = [int(p) for p in text.replace(" ", ",").split(",") if p]
        except ValueError:
            return None
        return parts[0] if len(parts) == 1 else tuple(parts)

    def show_formulas(self, formulas: list, tensor: bool) -> None:
        self.formulas = formulas
        self.element_row.setVisible(tensor)
        while len(self.items) < len(formulas):
            title = _label(T.ui_font(8.5), wrap=True, muted=True)
            body = QtWidgets.QLabel()
            body.setTextFormat(QtCore.Qt.TextFormat.RichText)
            body.setWordWrap(True)
            body.setTextInteractionFlags(_SELECTABLE)
            body.setFont(T.ui_font(10.5))
            body.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Preferred)
            body.setContextMenuPolicy(QtCore.Qt.ContextMenuPolicy.CustomContextMenu)
            k = len(self.items)
            body.customContextMenuRequested.connect(lambda pos, k=k: self._menu(k, pos))
            self._items_layout.addWidget(title)
            self._items_layout.addWidget(body)
            self.items.append((title, body))
        previous = None
        for k, (title, body) in enumerate(self.items):
            shown = k < len(formulas)
            body.setVisible(shown)
            text = ""
            if shown:
                f = formulas[k]
                # lines of one step share "Adam.step() on w, element [1]": said once, then only each note
                head, _, note = f.title.partition(": ")
                text = f.title if head != previous else note
                previous = head
                body.setText(f.symbolic_html + (f"<br>{f.numeric_html}" if f.numeric_html else ""))
            title.setText(text)
            title.setVisible(bool(text))
        self.copy_button.setEnabled(bool(formulas))
        self.setVisible(bool(formulas))

    def latex(self) -> str:
        return "\n".join(f.latex for f in self.formulas)

    def copy_latex(self) -> None:
        QtWidgets.QApplication.clipboard().setText(self.latex())

    def _menu(self, k: int, pos: QtCore.QPoint) -> None:
        if k >= len(self.formulas):
            return
        f, body = self.formulas[k], self.items[k][1]
        menu = QtWidgets.QMenu(self)
        menu.addAction("Copy as LaTeX", lambda: QtWidgets.QApplication.clipboard().setText(f.latex))
        menu.addAction("Copy text", lambda: QtWidgets.QApplication.clipboard().setText(f.plain))
        menu.addAction("Copy all as LaTeX", self.copy_latex)
        menu.exec(body.mapToGlobal(pos))


def _row(caption: str, a=None, extra: str = "", note: str = "") -> tuple:
    return caption, a, extra, note


class Inspector(QtWidgets.QWidget):
    """Follows the models (see the module docstring); ``show_node(replay, frame_index, node_id,
    history=None)`` draws one node, ``show_module(replay, frame_index, module)`` a folded module,
    ``clear()`` the empty state.

    One scroll area holds every section: whatever a node shows (a big matrix, the history plot), the
    dock keeps its size and the main window never grows to make room; nothing inside scrolls alone."""

    def __init__(self, player, view_state, document, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.player, self.view_state, self.document = player, view_state, document
        self.replay = None
        self.frame_index = None
        self.node_id = None
        self.module: str | None = None       # a folded module chosen with select_module
        self.history = None
        self._fold: tuple = (None, None, None)     # (replay, module, Fold) last shown

        self.title = _label(T.ui_font(12, bold=True), wrap=True)
        self.subtitle = _label(wrap=True, muted=True)
        self.hint = _label(wrap=True, muted=True)
        self.hint.setText(EMPTY_HINT)

        self.fields: dict[str, QtWidgets.QLabel] = {}
        self.form = QtWidgets.QWidget()
        form = QtWidgets.QFormLayout(self.form)
        form.setContentsMargins(0, 4, 0, 0)
        form.setLabelAlignment(QtCore.Qt.AlignmentFlag.AlignRight)
        form.setHorizontalSpacing(10)
        form.setVerticalSpacing(2)
        form.setRowWrapPolicy(QtWidgets.QFormLayout.RowWrapPolicy.WrapLongRows)    # a long op name: below
        for key, label in (("op", "op (grad_fn)"), ("kind", "kind"), ("shape", "shape"), ("dtype", "dtype"),
                           ("module", "module"), ("state", "state")):
            value = _label()
            self.fields[key] = value
            name = QtWidgets.QLabel(label + ":")
            name.setProperty("muted", True)
            form.addRow(name, value)

        self.value_section = Section("Value")
        self.grad_section = Section("Gradient")
        self.sent_section = Section("Sent back to each input")
        self.params_section = Section("Parameters")
        self.state_section = Section("Optimizer state")
        self.math = MathSection(self._follow)
        self._math_node = None                  # the node whose element the math's field names
        self.sections = (self.value_section, self.grad_section, self.sent_section, self.params_section,
                         self.state_section)
        # the names the tests (and a reader of this file) use for the main pieces
        self.value_label, self.value_text = self.value_section.heading, self.value_section.row(0).view
        self.grad_label, self.grad_text = self.grad_section.heading, self.grad_section.row(0).view
        self.grad_note, self.state_note = self.grad_section.note, self.state_section.note
        self.state_label, self.state_text = self.state_section.heading, self.state_section.row(0).view
        self.sent_label = self.sent_section.heading

        self.history_label = _label(T.ui_font(9.5, bold=True))
        self.history_label.setProperty("heading", True)
        self.history_label.setContentsMargins(0, 10, 0, 0)
        self.plot = pg.GraphicsLayoutWidget()
        self.plot.setFixedHeight(PLOT_HEIGHT)
        self.plot.setSizePolicy(QtWidgets.QSizePolicy.Policy.Ignored, QtWidgets.QSizePolicy.Policy.Fixed)
        self.plot.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.plot.setVerticalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.value_plot = self.plot.addPlot(row=0, col=0)
        self.grad_plot = self.plot.addPlot(row=1, col=0)
        self.grad_plot.setXLink(self.value_plot)
        self.value_curve = self.value_plot.plot()
        self.grad_curve = self.grad_plot.plot()
        self.value_marker = pg.InfiniteLine(angle=90)
        self.grad_marker = pg.InfiniteLine(angle=90)
        self.value_plot.addItem(self.value_marker)
        self.grad_plot.addItem(self.grad_marker)
        for p in (self.value_plot, self.grad_plot):
            p.showGrid(x=True, y=True, alpha=0.15)
            for axis in ("left", "bottom"):              # plain numbers: no "(x0.001)" scaling
                p.getAxis(axis).enableAutoSIPrefix(False)
            p.setMenuEnabled(False)
            p.hideButtons()
        self.grad_plot.setLabel("bottom", "iteration")

        body = QtWidgets.QWidget()
        body.setObjectName("inspectorBody")
        layout = QtWidgets.QVBoxLayout(body)
        layout.setContentsMargins(10, 8, 10, 10)
        layout.setSpacing(3)
        for w in (self.title, self.subtitle, self.hint, self.math, self.form, *self.sections, self.history_label,
                  self.plot):
            layout.addWidget(w)
        layout.addStretch(1)
        self.body = body
        self.scroll = QtWidgets.QScrollArea()
        self.scroll.setWidgetResizable(True)
        self.scroll.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        # a matrix wider than the dock scrolls the panel sideways rather than being cut off
        self.scroll.setHorizontalScrollBarPolicy(QtCore.Qt.ScrollBarPolicy.ScrollBarAsNeeded)
        self.scroll.setWidget(body)
        outer = QtWidgets.QVBoxLayout(self)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self.scroll)
        self._restyle()
        notifier = getattr(T, "notifier", None)          # the theme's scheme-change signal, where it exists
        if notifier is not None:
            notifier.changed.connect(self._restyle)
        self.clear()
        player.positionChanged.connect(self._follow)          # also sent for every new replay
        view_state.selectedNodeChanged.connect(self._follow)
        document.scenarioChanged.connect(self._on_scenario_changed)
        self._follow()

    def sizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(340, 480)

    def minimumSizeHint(self) -> QtCore.QSize:
        return QtCore.QSize(200, 120)

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._fit_title()

    def _fit_title(self) -> None:
        """A long name (``BinaryCrossEntropyWithLogitsBackward0``) in a smaller font rather than cut off."""
        margins = self.body.layout().contentsMargins()       # and room for the scroll bar it may get
        width = (self.scroll.width() - margins.left() - margins.right()
                 - self.scroll.verticalScrollBar().sizeHint().width())
        fonts = [T.ui_font(12 - k / 2, bold=True) for k in range(7)] + [T.ui_font(9), T.ui_font(8)]
        font = next((f for f in fonts if QtGui.QFontMetricsF(f).horizontalAdvance(self.title.text()) <= width),
                    fonts[-1])
        if self.title.font() != font:
            self.title.setFont(font)

    def _restyle(self) -> None:
        """Colours from the theme, read now (the theme may re-bind them on a colour-scheme change)."""
        self.body.setStyleSheet(f"QLabel[muted=\"true\"] {{ color: {T.TEXT_MUTED}; }}"
                                f"QLabel[caption=\"true\"] {{ color: {T.TEXT_MUTED}; }}")
        self.plot.setBackground(T.PANEL)
        self.value_curve.setPen(pg.mkPen(T.FORWARD, width=1))
        self.grad_curve.setPen(pg.mkPen(T.BACKWARD, width=1))
        for marker in (self.value_marker, self.grad_marker):
            marker.setPen(pg.mkPen(T.TEXT_FAINT, style=QtCore.Qt.PenStyle.DashLine))

    # -- following the models ---------------------------------------------------------------------
    def select_module(self, module: str) -> None:
        """Show the folded module ``module`` (a click on its box): its parameters, input and output.
        Clears the selected node, so that a later click on any node shows that node again."""
        self.module = module
        if self.view_state.selected_node is None:
            self._follow()
        else:
            self.view_state.select_node(None)       # which calls _follow

    def _on_scenario_changed(self) -> None:
        """Node ids and module names belong to the old run: back to the empty state."""
        self.module = None
        self.clear()

    def _follow(self, *_) -> None:
        """The selected node (else the chosen module) at the Player's frame; empty when there is none."""
        replay, node = self.player.replay, self.view_state.selected_node
        if node is not None:
            self.module = None
        histories, variant = self.document.histories, self.view_state.variant
        history = histories[variant] if variant < len(histories) else None
        if replay is not None and node is not None and node in replay.nodes:
            self.show_node(replay, self.player.position, node, history)
        elif replay is not None and node is None and self.module in replay.collapsible_modules():
            self.show_module(replay, self.player.position, self.module, history)
        elif not self.is_empty():
            self.clear()

    # -- API --------------------------------------------------------------------------------------
    def is_empty(self) -> bool:
        return self.replay is None

    def clear(self) -> None:
        """The empty state: the prompt and a hint, no headings, no numbers."""
        self.replay = self.node_id = self.frame_index = self.history = None
        self.title.setText(NOTHING_SELECTED)
        self.subtitle.setText("")
        self.subtitle.setVisible(False)
        self.hint.setVisible(True)
        for value in self.fields.values():
            value.setText("—")
        self.form.setVisible(False)
        for section in self.sections:
            section.setVisible(False)
            section.set_rows([])
        self.math.show_formulas([], False)
        for w in (self.history_label, self.plot):
            w.setVisible(False)

    def _begin(self, replay, frame_index, node_id, history, title: str, subtitle: str) -> None:
        self.replay, self.frame_index, self.node_id, self.history = replay, frame_index, node_id, history
        self.title.setText(title)
        self._fit_title()
        self.subtitle.setText(subtitle)
        self.subtitle.setVisible(bool(subtitle))
        self.hint.setVisible(False)
        self.form.setVisible(True)

    def show_node(self, replay, frame_index: int, node_id: int, history=None) -> None:
        info = replay.nodes[node_id]
        frame = replay.frame(frame_index)
        ns = frame.nodes[node_id]
        name = replay.node_name(node_id)
        is_param = node_id in replay.param_names
        kind = "parameter" if is_param else {"op": "operation", "input": "data / constant",
                                              "param": "leaf requiring grad"}.get(info.kind, info.kind)
        self._begin(replay, frame_index, node_id, history, name, self._subtitle(replay, info, is_param))
        module = replay.modules.get(node_id, "")
        self.fields["op"].setText(info.label if info.kind == "op" else "— (leaf: AccumulateGrad)"
                                  if info.requires_grad else "— (leaf)")
        self.fields["kind"].setText(kind)
        self.fields["shape"].setText(format_shape(info.shape))
        self.fields["dtype"].setText(info.dtype)
        self.fields["module"].setText(module_label(replay, module) if module else "—")
        self.fields["state"].setText(ns.state.replace("_", " ") + (" (active now)" if node_id in frame.active_nodes
                                                                    else ""))
        about = describe(info.shape, info.dtype)
        self._show_value(info, ns, about, is_param)
        self._show_grad(replay, info, ns, node_id, about)
        self._show_sent(replay, frame, info, node_id)
        self.params_section.setVisible(False)
        self._show_state(is_param, ns)
        self._show_math(replay, frame, node_id, info)
        self._show_history(replay, name if is_param else None, history)

    def show_module(self, replay, frame_index: int, module: str, history=None) -> None:
        """A folded module: what came in, what went out, the gradient it got back and sent back, and
        each parameter inside with its ``.grad``."""
        cached_replay, cached_module, fold = self._fold
        if cached_replay is not replay or cached_module != module:
            fold = Fold.of(replay, module)
            self._fold = (replay, module, fold)
        frame = replay.frame(frame_index)
        nodes = frame.nodes
        out_info = replay.nodes[fold.output]
        folded = fold.state_at(frame)
        members = set(fold.members)
        n_params = len(fold.params)
        self._begin(replay, frame_index, None, history, fold.label,
                    f"A folded module: {fold.n_ops} op{'s' * (fold.n_ops != 1)} and {n_params} "
                    f"parameter{'s' * (n_params != 1)}. Double-click its box to unfold it.")
        self.fields["op"].setText(replay.module_type(module) + " (module)")
        self.fields["kind"].setText("module")
        self.fields["shape"].setText(format_shape(out_info.shape) + " (output)")
        self.fields["dtype"].setText(out_info.dtype)
        self.fields["module"].setText(module)
        self.fields["state"].setText(folded.state.replace("_", " ") + (" (active now)" if fold.is_active(frame)
                                                                        else ""))
        entering = [(src, dst) for src, dst in replay.edges if dst in members and src not in members]
        sources = list(dict.fromkeys(src for src, _ in entering))
        rows = [_row("in: " + replay.node_name(src), nodes[src].value, note="" if nodes[src].value is not None
                     else "not computed yet") for src in sources]
        out = nodes[fold.output]
        rows.append(_row(f"out: {replay.node_name(fold.output)}  {format_shape(out_info.shape)}", out.value,
                         note="" if out.value is not None else "not computed yet"))
        self.value_section.show_rows("Input → output", rows)
        self.grad_section.show_rows("Gradient received at its output (∂L/∂out)",
                                    [_row("", out.grad, note="" if out.grad is not None else "None")],
                                    "" if out.grad is not None else "Backward has not reached this module yet.")
        sent = []
        for src in sources:
            if not replay.nodes[src].requires_grad:
                continue
            g = self._edge_sum(frame, [(s, d) for s, d in entering if s == src])
            sent.append(_row("to " + replay.node_name(src), g, note="" if g is not None else "nothing sent yet"))
        if sent:
            self.sent_section.show_rows("Sent back to its inputs (∂L/∂input)", sent)
        else:
            self.sent_section.setVisible(False)
        params = []
        for nid, pname in zip(fold.params, fold.param_names):
            p = nodes[nid]
            params.append(_row(f"{pname}  {format_shape(replay.nodes[nid].shape)}", p.value))
            params.append(_row(f"{pname}.grad", p.grad_badge, note="" if p.grad_badge is not None else "None"))
        if params:
            self.params_section.show_rows("Parameters and their .grad", params)
        else:
            self.params_section.setVisible(False)
        self.state_section.setVisible(False)          # a parameter's own page has it (unfold, then click)
        self.math.show_formulas([], False)
        self._show_history(replay, None, None)

    # -- sections -------------------------------------------------------------------------------------
    def _show_value(self, info, ns, about: str, is_param: bool) -> None:
        if is_param and ns.stepped and ns.param_before is not None:
            heading = "Value: before → after optimizer.step()"
            if np.size(ns.value) == 1:
                rows = [_row("", None, format_value(ns.param_before) + " → " + format_value(ns.value))]
            else:
                rows = [_row("before", ns.param_before), _row("after", ns.value)]
        elif ns.value is None and info.kind == "op":
            heading, rows = "Value", [_row("", None, note="Not computed yet: forward has not reached it.")]
        else:
            heading, rows = "Value", [_row("", ns.value, note="" if ns.value is not None else "None")]
        self.value_section.show_rows(heading, rows, meta=about)

    def _show_grad(self, replay, info, ns, node_id: int, about: str) -> None:
        if node_id in replay.badge_nodes:
            row = (_row("", ns.grad_badge, self._accumulation_text(ns)) if ns.grad_badge is not None
                   else _row("", None, "None"))
            self.grad_section.show_rows(".grad", [row], self._grad_note(ns), meta=about)
            return
        heading = ("Received in backward (∂L/∂out)" if info.kind == "op"
                   else "Gradient received in backward (∂L/∂this)")
        note = "" if ns.grad is not None else ("Not reached by backward yet." if info.requires_grad
                                               else "requires_grad=False: backward never visits this node.")
        self.grad_section.show_rows(heading, [_row("", ns.grad, "" if ns.grad is not None else "None")], note,
                                    meta=about if ns.grad is not None else "")

    def _show_sent(self, replay, frame, info, node_id: int) -> None:
        """An op: what its backward sent to each input (the gradient on each input edge)."""
        if info.kind != "op" or not info.inputs:
            self.sent_section.setVisible(False)
            return
        rows = []
        inputs = list(dict.fromkeys(i for i in info.inputs if i in replay.nodes))
        for src in inputs:
            uses = sum(1 for i in info.inputs if i == src)
            caption = "to " + replay.node_name(src) + (f"  (used {uses}×, summed)" if uses > 1 else "")
            if not replay.nodes[src].requires_grad:
                rows.append(_row(caption, note="nothing: requires_grad=False"))
                continue
            g = self._edge_sum(frame, [(src, node_id)])
            rows.append(_row(caption, g, note="" if g is not None else "not sent yet"))
        self.sent_section.show_rows("Sent back to each input (∂L/∂input)", rows)

    @staticmethod
    def _edge_sum(frame, keys):
        """The gradient sent along edges ``keys`` (an input fed to several ops of a module: their sum
        is what reaches it; None while none was sent)."""
        grads = [frame.edges[k].grad for k in keys if k in frame.edges and frame.edges[k].grad is not None]
        if not grads:
            return None
        first = grads[0] if is_summary(grads[0]) else np.asarray(grads[0])
        return first if len(grads) == 1 else sum(grads[1:], first)

    def _show_math(self, replay, frame, node_id: int, info) -> None:
        """The node's formulas as of this frame; the element field starts empty for each new node."""
        if self._math_node != (replay, node_id):
            self._math_node = (replay, node_id)
            self.math.element_edit.clear()
        self.math.show_formulas(formulas_for_frame(replay, frame, node=node_id, element=self.math.element()),
                                len(info.shape) > 0)

    def _show_state(self, is_param: bool, ns) -> None:
        if not is_param:
            self.state_section.setVisible(False)
            return
        after = ns.param_before is not None          # set by this iteration's StepEvent
        heading = "Optimizer state " + ("(after step)" if after else "(before step)")
        state = ns.optimizer_state or {}
        rows = [_row(key, value) for key, value in state.items()]
        note = ("Empty: either the optimizer keeps no state (like plain SGD), or this parameter has not "
                "had a step with a gradient yet." if not state else "")
        self.state_section.show_rows(heading, rows, note)

    @staticmethod
    def _subtitle(replay, info, is_param) -> str:
        if is_param:
            return "A parameter: optimizer.step() moves it against its .grad."
        if info.kind == "op":
            ins = ", ".join(replay.node_name(i) for i in info.inputs)
            return f"{replay.symbol(info.id)} of {ins}" if ins else info.label
        return "Data: no gradient is computed for it." if not info.requires_grad else "A leaf that requires grad."

    @staticmethod
    def _accumulation_text(ns) -> str:
        """After an accumulating backward, the sum that made ``.grad``: one term a line
        (``old`` / ``+ new`` / ``= sum``) so that it reads in a narrow dock."""
        acc = ns.accumulation
        if acc is None or acc[0] is None:
            return ""
        before, added, after = (format_value(a) for a in acc)
        if max(len(t) for t in (before, added, after)) > 3 * 44:
            return ""                                     # too large to add up by eye
        return ("last backward accumulated:\n" + _indent("    ", before) + "\n" + _indent("  + ", added)
                + "\n" + _indent("  = ", after))

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

    def _show_history(self, replay, param: str | None, history) -> None:
        ok = (history is not None and param is not None and param in getattr(history, "params", {})
              and getattr(history, "steps", 0) > 0)
        for w in (self.history_label, self.plot):
            w.setVisible(ok)
        if not ok:
            return
        k = min(replay.iteration, history.steps)
        lo = max(0, k - HISTORY_WINDOW + 1)
        # rows of the steps lo..k (a reduced History keeps every stride-th step: gradviz.view.series)
        value_x, grad_x = param_steps(history), row_steps(history)
        value_rows, grad_rows = rows_between(value_x, lo, k), rows_between(grad_x, lo, min(k, history.steps - 1))
        values = np.asarray(history.params[param][value_rows], dtype=np.float64)
        grads = np.asarray(history.grads[param][grad_rows], dtype=np.float64)
        scalar = values[0].size == 1 if len(values) else True
        reduce = (lambda a: a.reshape(len(a))) if scalar else (lambda a: np.sqrt(np.nansum(
            a.reshape(len(a), -1) ** 2, axis=1)))
        xs = value_x[value_rows]
        self.value_curve.setData(xs, reduce(values) if len(values) else values)
        self.grad_curve.setData(grad_x[grad_rows], reduce(grads) if len(grads) else grads)
        self.value_plot.setLabel("left", param if scalar else f"‖{param}‖")
        self.grad_plot.setLabel("left", f"{param}.grad" if scalar else f"‖{param}.grad‖")
        self.value_marker.setValue(k)
        self.grad_marker.setValue(k)
        self.value_plot.setXRange(lo, max(k, lo + 1), padding=0.04)   # one point: still a sensible axis
        self.history_label.setText(f"History (iterations {lo}–{k})")


def _indent(prefix: str, text: str) -> str:
    return prefix + text.replace("\n", "\n" + " " * len(prefix))
