"""The computation graph of one iteration, animated by the Player.

Items are built once per Replay (and again when a module is collapsed or expanded), placed by
``gradviz.layout.layered_layout``; on every cursor move only the nodes and edges whose state
changed are touched.  Everything is made of Qt's built-in items (rect/path/text/pixmap): no Python
``paint()`` overrides, which are slow and hit the PySide6 None-refcount bug (see
``shared/notes/pyside6-py311.md``).

Node look:  parameters = amber rounded boxes with a ``.grad`` badge hanging below; data = small grey
boxes; ops = white boxes headed by PyTorch's grad_fn name, with a symbol pill (×, +, tanh, @) left of
the value row and the gradient row (∇); an op on data only (``1 - y``) is grey, the loss is rose with
a "loss" tab.  Values are numbers or compact matrices, larger tensors a heat map and their mean.
Active nodes glow (blue forward, orange backward, green step, violet zero_grad); edges turn orange
and, while the gradient travels along them, show it.

Text is sized in scene pixels and the columns are packed (each as wide as its widest box, 36 px
apart) so that the tutorial, fitted into the main window's graph panel, reads at 10 px or more; a
tiny graph is fitted larger than life (up to ``FIT_MAX_ZOOM``).
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np
from PySide6 import QtCore, QtGui, QtWidgets

from gradviz import trace as _trace
from gradviz.view.layout import LayoutNode, layered_layout
from gradviz.view.format import format_array, format_number
from gradviz.view.phases import phase_label
from gradviz.view.replay import EdgeState, NodeState

from . import theme as T

Qt = QtCore.Qt

# -- geometry (scene units = pixels at zoom 1) ---------------------------------------------------
# Node text is sized in scene pixels (not points, which round differently per screen), chosen so that
# the tutorial, fitted into the main window's graph panel (about 0.85 zoom), reads at >= 10 px.
PAD = 7.0
CAPTION_H = 21.0            # top line of a node: grad_fn name / parameter name
ROWS_Y = CAPTION_H + 2.0    # where the value row starts
HEAT_ROW_H = 22.0           # a row holding a heat map
HEAT_W, HEAT_H = 32.0, 16.0
PILL_MIN_W, PILL_H = 26.0, 28.0   # the op symbol's pill, left of the value rows
PILL_GAP = 6.0
MAX_TEXT_CHARS = 22         # longer values are drawn as a heat map
MAX_TEXT_ELEMS = 12         # so are values with more elements than this, whatever their text
BADGE_GAP = 5.0
BADGE_PAD_X, BADGE_PAD_Y = 8.0, 4.0   # text inside a .grad badge
BADGE_LINE_GAP = 3.0        # extra leading between badge lines: the mono font's own is tight
BADGE_RULE_GAP = 5.0        # room for the rule above an accumulation's "= sum" line
BADGE_MIN_CHARS = 12        # a badge may be this wide even under a narrower node
LAYER_GAP = 36.0            # room for an arrow; small graphs fit the panel at a readable zoom
LAYER_GAP_LARGE = 48.0      # large graphs: more room for the ports of many edges
NODE_GAP = 22.0
FIT_MARGIN = 4.0            # scene units around the drawing when fitted to the view
FIT_MAX_ZOOM = 1.6          # a tiny graph is drawn larger than life, up to this
LOD_DETAIL = 0.42           # below this zoom, node text, heat maps and badges are hidden
LOD_SYMBOL = 0.16           # below this, op symbols too
EDGE_PIECE = 4              # route segments per path item
SMALL_GRAPH = 48            # up to this many nodes, columns are closer and edge labels longer
PRECISION = 4


def _shape_text(shape) -> str:
    return "×".join(str(n) for n in shape) if len(shape) != 1 else f"{shape[0]}"


def _num_lines(text: str) -> int:
    return text.count("\n") + 1


def _fmt(a) -> str:
    """A value as the node shows it in text mode (multi-line for matrices)."""
    return format_array(a, max_elems=10 ** 9, precision=PRECISION, multiline=True, sep=" ")


def _indent(prefix: str, text: str) -> str:
    return prefix + text.replace("\n", "\n" + " " * len(prefix))


def _mean_text(a) -> str:
    a = np.asarray(a, dtype=np.float64)
    with np.errstate(all="ignore"):
        return f"μ {format_number(a.mean(), 2)}"


def _step_heat_text(before, after) -> str:
    return f"{_mean_text(before)} → {format_number(np.mean(np.asarray(after, dtype=np.float64)), 2)}"


def _short(a, max_chars: int = 12) -> str:
    """A gradient label on an edge: the value if short, else its mean."""
    if a is None:
        return ""
    text = format_array(a, max_elems=3, precision=PRECISION, sep=" ")
    return text if len(text) <= max_chars and "\n" not in text and "shape" not in text else _mean_text(a)


AUTO_COLLAPSE_NODES = 24      # above this many boxes a new graph opens with modules folded

@dataclass
class _Spec:
    """What a displayed node is: decided once per Replay, so its size never changes while playing."""
    key: int                       # node id, or a negative id for a collapsed module box
    kind: str                      # "op", "param", "input", "module"
    title: str                     # parameter / input name, op grad_fn name, "Linear 0"
    symbol: str = ""
    shape: str = ""
    heat: bool = False             # values drawn as a heat map (else as text)
    value_lines: int = 1
    grad_row: bool = False         # ops (and modules) show the gradient they received
    badge: bool = False
    badge_lines: int = 1
    loss: bool = False
    width: float = 160.0           # the body's width (the layout reserves max(body, badge))
    body_h: float = 48.0
    height: float = 48.0           # body + badge: what the layout reserves
    members: tuple = ()            # for module boxes: the node ids inside
    output: int | None = None      # for module boxes: the member whose value leaves the box
    tooltip: str = ""
    pill_w: float = 0.0            # ops: the symbol pill's width
    layout_w: float = 0.0          # what the layout reserves: the body or the widest badge


class _NodeGfx:
    """The Qt items of one displayed node and how they change with its state."""

    def __init__(self, view: "GraphView", spec: _Spec, fonts):
        self.spec = spec
        self.view = view
        w, h = spec.width, spec.body_h
        kind = spec.kind
        fill, border = {
            "op": (T.OP_FILL, T.OP_BORDER), "param": (T.PARAM_FILL, T.PARAM_BORDER),
            "input": (T.INPUT_FILL, T.INPUT_BORDER), "module": (T.MODULE_FILL, T.MODULE_BORDER),
        }[kind]
        data_op = kind == "op" and not spec.grad_row and not spec.loss   # no gradient flows through it
        if data_op:
            fill, border = T.INPUT_FILL, T.INPUT_BORDER
        if spec.loss:
            fill, border = T.LOSS_SOFT, T.LOSS
        self.base_border = border
        radius = 12.0 if kind in ("param", "module") else 7.0
        path = QtGui.QPainterPath()
        path.addRoundedRect(QtCore.QRectF(0, 0, w, h), radius, radius)
        self.root = QtWidgets.QGraphicsPathItem(path)
        self.root.setBrush(QtGui.QColor(fill))
        self.root.setZValue(10)
        self.root.setData(0, spec.key)
        if spec.tooltip:
            self.root.setToolTip(spec.tooltip)
        self.pens = {
            "base": _pen(border, 2.0 if spec.loss or kind == "param" else 1.2),
            "forward": _pen(T.FORWARD, 2.6), "backward": _pen(T.BACKWARD, 2.6),
            "backward_done": _pen(T.BACKWARD, 1.6) if kind in ("op", "module") and not spec.loss else None,
            "step": _pen(T.STEP, 2.6), "zero": _pen(T.ZERO, 2.6),
        }
        self.root.setPen(self.pens["base"])

        # glow: two soft rounded rects behind the body, shown only while active
        self.halos = []
        for grow, alpha in ((3.5, 0.35), (7.0, 0.16)):       # soft rings around the body
            hp = QtGui.QPainterPath()
            hp.addRoundedRect(QtCore.QRectF(-grow, -grow, w + 2 * grow, h + 2 * grow), radius + grow, radius + grow)
            halo = QtWidgets.QGraphicsPathItem(hp, self.root)
            halo.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemStacksBehindParent)
            halo.setBrush(Qt.BrushStyle.NoBrush)
            halo.setVisible(False)
            self.halos.append((halo, alpha))
        self.halo_colour = None

        f_caption, f_title, f_mono, f_symbol, f_badge = fonts[:5]
        self.detail = _container(self.root)          # hidden when zoomed far out
        self.symbol_bg = None
        row_h = HEAT_ROW_H if spec.heat else view.line_h * spec.value_lines
        rows_h = row_h * (2 if spec.grad_row else 1) + (1 if spec.grad_row else 0)
        x0 = PAD
        if kind == "op":
            # the header names the grad_fn across the whole width; below it the symbol pill sits
            # left of the value (and gradient) rows
            pw = spec.pill_w
            ph = max(PILL_H, min(rows_h, 40.0))
            pill = QtGui.QPainterPath()
            pill.addRoundedRect(QtCore.QRectF(0, 0, pw, ph), 7, 7)
            self.symbol_bg = QtWidgets.QGraphicsPathItem(pill, self.root)
            self.symbol_bg.setPos(PAD, ROWS_Y + (rows_h - ph) / 2)
            self.symbol_bg.setPen(Qt.PenStyle.NoPen)
            self.symbol_bg.setBrush(QtGui.QColor(T.LOSS_PILL if spec.loss else T.INPUT_PILL if data_op
                                                 else T.OP_SYMBOL_FILL))
            font = view.symbol_font(spec.symbol)
            sym = _text_item(self.symbol_bg, font, T.LOSS if spec.loss else T.OP_SYMBOL_TEXT, spec.symbol)
            br = sym.boundingRect()
            sym.setPos((pw - br.width()) / 2, (ph - br.height()) / 2)
            x0 = PAD + pw + PILL_GAP
            title_font, title_colour = f_caption, T.TEXT_MUTED
        else:
            title_font = f_title
            title_colour = {"param": T.PARAM_TEXT, "input": T.TEXT_MUTED, "module": "#4c1d95"}[kind]
        self.x0 = x0
        title = _text_item(self.detail, title_font, T.LOSS if spec.loss else title_colour, spec.title)
        title.setPos(PAD, (CAPTION_H - title.boundingRect().height()) / 2 + 2)
        if spec.shape:
            shape = _text_item(self.detail, f_caption, T.TEXT_FAINT, spec.shape)
            shape.setPos(w - PAD - shape.boundingRect().width(), (CAPTION_H - shape.boundingRect().height()) / 2 + 2)
        if spec.loss:                                   # a tab on the top edge says which node is the loss
            tab_text = _text_item(None, view.fonts[6], "#ffffff", "loss")
            br = tab_text.boundingRect()
            tw, th = br.width() + 12, br.height() + 2
            tp = QtGui.QPainterPath()
            tp.addRoundedRect(QtCore.QRectF(0, 0, tw, th), th / 2, th / 2)
            tab = QtWidgets.QGraphicsPathItem(tp, self.root)
            tab.setPen(Qt.PenStyle.NoPen)
            tab.setBrush(QtGui.QColor(T.LOSS))
            tab.setPos(w - tw - 10, -th / 2 - 1)
            tab_text.setParentItem(tab)
            tab_text.setPos(6, 1)

        self.value = self._row(x0, ROWS_Y, f_mono, T.TEXT, spec.heat)
        self.grad = self._row(x0, ROWS_Y + row_h + 1, f_mono, T.BACKWARD, spec.heat) if spec.grad_row else None

        self.badge = self.badge_text = None
        if spec.badge:
            self.badge = QtWidgets.QGraphicsPathItem(self.detail)
            self.badge.setPos(0, h + BADGE_GAP)
            self.badge_text = _BadgeText(view, self.badge)
            self._badge_key = None
        self.texts: dict[str, str] = {}
        self.images: dict[str, object] = {}          # row -> the array its heat map shows
        self.selection = QtWidgets.QGraphicsPathItem(self.root)
        sp = QtGui.QPainterPath()
        sp.addRoundedRect(QtCore.QRectF(-3, -3, w + 6, h + 6), radius + 3, radius + 3)
        self.selection.setPath(sp)
        pen = _pen(T.TEXT, 1.4)
        pen.setStyle(Qt.PenStyle.DashLine)
        self.selection.setPen(pen)
        self.selection.setVisible(False)
        self._look = None
        self._value_sig = self._badge_sig = (object(),)
        self._grad_sig = object()

    def _row(self, x, y, font, colour, heat):
        if heat:
            pix = QtWidgets.QGraphicsPixmapItem(self.detail)
            pix.setTransformationMode(Qt.TransformationMode.FastTransformation)
            pix.setPos(x, y + (HEAT_ROW_H - HEAT_H) / 2)
            frame = QtWidgets.QGraphicsRectItem(QtCore.QRectF(0, 0, HEAT_W, HEAT_H), pix)
            frame.setPen(_pen(T.INPUT_BORDER, 0.8))
            text = _text_item(self.detail, font, colour)
            text.setPos(x + HEAT_W + 6, y + (HEAT_ROW_H - self.view.line_h) / 2)
            pix.setVisible(False)
            return pix, text
        text = _text_item(self.detail, font, colour)
        text.setPos(x, y)
        return None, text

    # -- updates ----------------------------------------------------------------------------------
    def _set_text(self, item, key, text, colour=None):
        if self.texts.get(key) != text:
            self.texts[key] = text
            item.setText(text)
        if colour is not None and self.texts.get(key + ".c") != colour:
            self.texts[key + ".c"] = colour
            item.setBrush(QtGui.QColor(colour))

    def _set_row(self, row, key, a, prefix, colour, empty=""):
        pix, text = row
        if a is None:
            if pix is not None:
                pix.setVisible(False)
            self._set_text(text, key, empty, colour)
            return
        if pix is not None:
            if self.images.get(key) is not a:
                self.images[key] = a
                img = T.heat_image(a)
                pix.setPixmap(QtGui.QPixmap.fromImage(img))
                pix.setTransform(QtGui.QTransform.fromScale(HEAT_W / img.width(), HEAT_H / img.height()))
                for child in pix.childItems():      # the frame keeps its size in node units
                    child.setTransform(QtGui.QTransform.fromScale(img.width() / HEAT_W, img.height() / HEAT_H))
            pix.setVisible(True)
            self._set_text(text, key, prefix + _mean_text(a), colour)
        else:
            self._set_text(text, key, _indent(prefix, _fmt(a)), colour)

    def update(self, ns: NodeState, active: bool, event, selected: bool) -> None:
        """Bring the items in line with ``ns``; each part is skipped when what it shows is unchanged
        (compared by identity: frames share unchanged arrays).  Border and glow change at once; text
        and heat maps of a node outside the viewport (or when zoomed far out) wait until it shows."""
        spec = self.spec
        state = ns.state
        # border and glow
        halo = None
        if active:
            if isinstance(event, _trace.ZeroGradEvent):
                halo, pen = T.ZERO, "zero"
            elif isinstance(event, _trace.StepEvent):
                halo, pen = T.STEP, "step"
            elif state == "backward":
                halo, pen = T.BACKWARD, "backward"
            else:
                halo, pen = T.FORWARD, "forward"
        elif state == "backward_done" and self.pens["backward_done"] is not None:
            pen = "backward_done"
        else:
            pen = "base"
        faded = state == "idle" and not active and spec.kind == "op"
        look = (pen, halo, faded, selected)
        if look != self._look:
            self._look = look
            self.root.setPen(self.pens[pen])
            if halo != self.halo_colour:
                self.halo_colour = halo
                for item, alpha in self.halos:
                    item.setVisible(halo is not None)
                    if halo is not None:
                        item.setPen(QtGui.QPen(T.colour(halo, alpha), 4.0))
            self.root.setOpacity(T.IDLE_ALPHA if faded else 1.0)
            self.selection.setVisible(selected)
        if not self.view.defer_detail(self, ns, active, event):
            self.update_detail(ns, active, event)

    def update_detail(self, ns, active: bool, event) -> None:
        """Values, gradients and the badge: the costly part, deferred while the node is not visible."""
        spec = self.spec
        value = ns.value
        stepped = spec.kind == "param" and ns.param_before is not None and ns.stepped
        sig = (value, ns.param_before if stepped else None)
        if not _same(sig, self._value_sig):
            self._value_sig = sig
            if stepped:
                if spec.heat:
                    self._set_row(self.value, "value", value, "", T.STEP)
                    self._set_text(self.value[1], "value", _step_heat_text(ns.param_before, value), T.STEP)
                else:
                    self._set_text(self.value[1], "value", f"{_fmt(ns.param_before)} → {_fmt(value)}", T.STEP)
            else:
                self._set_row(self.value, "value", value, "= " if spec.kind == "op" and not spec.heat else "",
                              T.TEXT if spec.kind != "input" else T.TEXT_MUTED,
                              empty="" if spec.kind in ("op", "module") else f"{spec.shape or 'scalar'} (value not recorded)")
        if self.grad is not None and ns.grad is not self._grad_sig:
            self._grad_sig = ns.grad
            self._set_row(self.grad, "grad", ns.grad, "∇ ", T.BACKWARD)
        if self.badge is not None:
            highlight = active and isinstance(event, (_trace.AccumulateEvent, _trace.ZeroGradEvent))
            sig = (ns.grad_badge, ns.accumulation, ns.cleared, highlight, getattr(ns, "box_badge", None))
            if not _same(sig, self._badge_sig):
                self._badge_sig = sig
                self._update_badge(ns, highlight)

    def _update_badge(self, ns: NodeState, highlight: bool) -> None:
        box = getattr(ns, "box_badge", None)
        text = box or badge_text(ns, self.spec.heat, self.view.badge_chars(self.spec))
        if box is not None:
            style = "none" if all(line.endswith("None") for line in box.split("\n")) else "grad"
        elif ns.grad_badge is None and ns.accumulation is None:
            style = "none"
        elif ns.cleared == "zeros":
            style = "zero"
        else:
            style = "grad"
        key = (text, style, highlight)
        if key == self._badge_key:
            return
        self._badge_key = key
        fill, border, colour = {
            "none": ("#ffffff", T.INPUT_BORDER, T.TEXT_FAINT),
            "zero": (T.ZERO_SOFT, T.ZERO, T.ZERO),
            "grad": (T.BACKWARD_SOFT, T.BACKWARD, "#9a3412"),
        }[style]
        if highlight:
            fill = T.ZERO_SOFT if style != "grad" else "#fed7aa"
        tw, bh = self.badge_text.set(text, colour, border)
        bw = max(tw, min(64.0, self.spec.width))
        path = QtGui.QPainterPath()
        path.addRoundedRect(QtCore.QRectF(0, 0, bw, bh), 7, 7)
        self.badge.setPath(path)
        self.badge.setPos((self.spec.width - bw) / 2, self.spec.body_h + BADGE_GAP)
        self.badge.setBrush(QtGui.QColor(fill))
        pen = _pen(border, 2.0 if highlight else 1.0)
        if style == "none":
            pen.setStyle(Qt.PenStyle.DashLine)
        self.badge.setPen(pen)


def _fits(new: _Spec, old: _Spec) -> bool:
    """``new`` can be shown in the items built for ``old``: same look, no more room needed."""
    sizes = ("width", "body_h", "height", "layout_w")
    return (all(getattr(new, f.name) == getattr(old, f.name) for f in dataclasses.fields(_Spec) if f.name not in sizes)
            and all(getattr(new, f) <= getattr(old, f) for f in sizes) and new.body_h == old.body_h)


def _same(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


def badge_text(ns: NodeState, heat: bool, max_chars: int = 30) -> str:
    """The ``.grad`` badge: ``grad: None``, ``grad: 1.6``, ``grad: 0.8 + 1.6 = 2.4`` (accumulating)."""
    fmt = (lambda a: format_number(np.mean(np.asarray(a, dtype=np.float64)), 2)) if heat else _fmt
    lead = "grad mean: " if heat else "grad: "
    acc = ns.accumulation
    if ns.grad_badge is None:
        return "grad: None"
    if ns.cleared == "zeros":
        return lead + fmt(ns.grad_badge) + "  (zeroed)"
    if acc is not None and acc[0] is not None:
        before, added, after = fmt(acc[0]), fmt(acc[1]), fmt(acc[2])
        one = f"{lead}{before} + {added} = {after}"
        if len(one) <= max_chars and "\n" not in one:
            return one
        pad = " " * (len(lead) - 2)
        return _indent(lead, before) + "\n" + _indent(pad + "+ ", added) + "\n" + _indent(pad + "= ", after)
    if acc is not None:
        one = _indent(lead, fmt(acc[2]))
        return one + " (new)" if "\n" not in one and len(one) + 6 <= max_chars else one
    return _indent(lead, fmt(ns.grad_badge))


def _sum_start(lines: list[str]) -> int | None:
    """Index of an accumulation's ``= sum`` line (drawn bold, under a rule), or None."""
    for i, line in enumerate(lines):
        if i > 0 and line.lstrip().startswith("= "):
            return i
    return None


class _BadgeText:
    """The text of a ``.grad`` badge, one item per line with a little extra leading.  An accumulation
    reads like a sum written on paper: ``grad: old`` / ``+ new``, a rule, then ``= sum`` in bold.
    ``text()`` is the whole text, lines joined by newlines."""

    def __init__(self, view: "GraphView", parent):
        self.view = view
        self.parent = parent
        self.items: list[QtWidgets.QGraphicsSimpleTextItem] = []
        self.rule = QtWidgets.QGraphicsPathItem(parent)
        self.rule.setVisible(False)
        self._text = ""

    def text(self) -> str:
        return self._text

    def set(self, text: str, colour: str, rule_colour: str) -> tuple[float, float]:
        """Show ``text``; returns the badge's size (padding included), as ``GraphView.badge_size``."""
        self._text = text
        lines = text.split("\n")
        view = self.view
        while len(self.items) < len(lines):
            self.items.append(_text_item(self.parent, view.fonts[4], colour))
        for i, item in enumerate(self.items):
            item.setVisible(i < len(lines))
        y = BADGE_PAD_Y
        sum_at = _sum_start(lines)
        brush = QtGui.QColor(colour)
        for i, line in enumerate(lines):
            item = self.items[i]
            summed = sum_at is not None and i >= sum_at
            if i == sum_at:
                y += BADGE_RULE_GAP
            item.setFont(view.badge_bold if summed else view.fonts[4])
            item.setText(line)
            item.setBrush(brush)
            item.setPos(BADGE_PAD_X, y)
            y += view.badge_line_h + BADGE_LINE_GAP
        w, h = view.badge_size(text)
        if sum_at is not None:
            op = lines[sum_at]
            x0 = BADGE_PAD_X + (len(op) - len(op.lstrip())) * view.badge_char_w
            ry = self.items[sum_at].pos().y() - BADGE_RULE_GAP / 2 - BADGE_LINE_GAP / 2
            path = QtGui.QPainterPath(QtCore.QPointF(x0, ry))
            path.lineTo(w - BADGE_PAD_X, ry)
            self.rule.setPath(path)
            self.rule.setPen(_pen(rule_colour, 0.9))
        self.rule.setVisible(sum_at is not None)
        return w, h


_CACHE = QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache
_NO_CACHE = QtWidgets.QGraphicsItem.CacheMode.NoCache


def _text_item(parent, font, colour, text: str = "") -> QtWidgets.QGraphicsSimpleTextItem:
    """A text item cached as a pixmap at device resolution: repaints blit it instead of laying out glyphs."""
    item = QtWidgets.QGraphicsSimpleTextItem(text, parent)
    item.setFont(font)
    item.setBrush(QtGui.QColor(colour))
    item.setCacheMode(_CACHE)
    return item


def _container(parent) -> QtWidgets.QGraphicsPathItem:
    """An invisible parent for items that are shown or hidden together (level of detail)."""
    item = QtWidgets.QGraphicsPathItem(parent)
    item.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemHasNoContents)
    return item


def _pen(colour: str, width: float) -> QtGui.QPen:
    pen = QtGui.QPen(QtGui.QColor(colour), width)
    pen.setCosmetic(False)
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    return pen


class _EdgeGfx:
    """An edge: a curve through the layout's route, an arrow head, and a gradient label."""

    def __init__(self, view: "GraphView", key, points, fonts, label_chars: int):
        self.key = key
        self.view = view
        # A long edge is drawn in pieces: a path far longer than the screen would be stroked whole on
        # every repaint that touches any part of it; pieces outside the view are skipped.
        self.lines = []
        for start in range(0, len(points) - 1, EDGE_PIECE):
            piece = points[start:start + EDGE_PIECE + 1]
            path = QtGui.QPainterPath(QtCore.QPointF(*piece[0]))
            for (x0, y0), (x1, y1) in zip(piece, piece[1:]):
                mx = (x0 + x1) / 2
                path.cubicTo(mx, y0, mx, y1, x1, y1)
            line = QtWidgets.QGraphicsPathItem(path)
            line.setZValue(1)
            self.lines.append(line)
        self.line = self.lines[0]
        ex, ey = points[-1]
        head = QtGui.QPolygonF([QtCore.QPointF(ex + 1, ey), QtCore.QPointF(ex - 8, ey - 4.5),
                                QtCore.QPointF(ex - 8, ey + 4.5)])
        self.head = QtWidgets.QGraphicsPolygonItem(head)
        self.head.setZValue(1)
        self.head.setPen(Qt.PenStyle.NoPen)
        (x0, y0), (x1, y1) = points[0], points[1]
        self.label_pos = QtCore.QPointF((x0 + x1) / 2, (y0 + y1) / 2)
        self.label = QtWidgets.QGraphicsPathItem()
        self.label.setZValue(20)
        self.label.setPen(_pen(T.BACKWARD, 1.4))
        self.label.setBrush(QtGui.QColor(T.EDGE_LABEL_BG))
        self.label_text = _text_item(self.label, fonts[5], T.BACKWARD)
        self.label.setVisible(False)
        self.label_chars = label_chars
        self.want_label = False
        self._style = None
        self._text = None
        for item in (*self.lines, self.head, self.label):
            view.scene().addItem(item)

    def items(self):
        return (*self.lines, self.head, self.label)

    def update(self, es: EdgeState, active: bool) -> None:
        state = es.state
        style = (state, active)
        if style != self._style:
            self._style = style
            pen, colour = self.view.edge_pens[(state, active)]
            for line in self.lines:
                line.setPen(pen)
            self.head.setBrush(colour)
        # The label shows while the gradient travels along the edge; afterwards the edge stays orange
        # and the numbers live on in the nodes' ∇ rows and .grad badges (columns are too close to keep
        # a label on every edge legible).
        show = es.grad is not None and active and state == "backward"
        if show:
            text = "∇ " + _short(es.grad, self.label_chars)
            if text != self._text:
                self._text = text
                self.label_text.setText(text)
                br = self.label_text.boundingRect()
                w, h = br.width() + 10, br.height() + 2
                p = QtGui.QPainterPath()
                p.addRoundedRect(QtCore.QRectF(-w / 2, -h / 2, w, h), h / 2, h / 2)
                self.label.setPath(p)
                self.label_text.setPos(-br.width() / 2, -br.height() / 2)
                self.label.setPos(self.label_pos)
        self.want_label = show
        self.label.setVisible(show and self.view.lod_detail)


class GraphView(QtWidgets.QGraphicsView):
    """The animated computation graph.  ``GraphView(player)``; see the module docstring."""

    nodeClicked = QtCore.Signal(int)
    moduleClicked = QtCore.Signal(str)
    collapsedChanged = QtCore.Signal()

    def __init__(self, player, parent: QtWidgets.QWidget | None = None):
        super().__init__(parent)
        self.player = player
        self.replay = None
        self.setScene(QtWidgets.QGraphicsScene(self))
        self.setRenderHints(QtGui.QPainter.RenderHint.Antialiasing | QtGui.QPainter.RenderHint.TextAntialiasing)
        self.setDragMode(QtWidgets.QGraphicsView.DragMode.ScrollHandDrag)
        self.setTransformationAnchor(QtWidgets.QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QtWidgets.QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setViewportUpdateMode(QtWidgets.QGraphicsView.ViewportUpdateMode.MinimalViewportUpdate)
        self.setOptimizationFlags(QtWidgets.QGraphicsView.OptimizationFlag.DontSavePainterState)
        self.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setVerticalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.setFrameShape(QtWidgets.QFrame.Shape.NoFrame)
        # The dotted canvas is the viewport's own background, painted in device space: a scene-space
        # brush would be re-sampled under the zoom transform on every repaint (several ms).
        palette = self.viewport().palette()
        palette.setBrush(QtGui.QPalette.ColorRole.Base, self._background_brush())
        self.viewport().setPalette(palette)
        self.viewport().setAutoFillBackground(True)
        self.lod_detail = True
        self._lod = (True, True)
        self._pending: dict[int, tuple] = {}             # node key -> (state, active, event) not drawn yet
        self._visible_rect = None                        # per frame: the scene rect on screen
        self.setMinimumSize(320, 200)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.DefaultContextMenu)

        # caption (grad_fn), title, values, op symbol, badge, edge label, loss tab -- in scene pixels
        self.fonts = (T.graph_font(12), T.graph_font(13, bold=True), T.graph_mono(13), T.graph_font(18, bold=True),
                      T.graph_mono(12), T.graph_mono(12), T.graph_font(11, bold=True))
        fm = QtGui.QFontMetricsF(self.fonts[2])
        self.char_w = fm.horizontalAdvance("0")
        self.line_h = math.ceil(fm.height()) + 1
        fm = QtGui.QFontMetricsF(self.fonts[4])
        self.badge_char_w = fm.horizontalAdvance("0")
        self.badge_line_h = math.ceil(fm.height())
        self.badge_bold = T.graph_mono(self.fonts[4].pixelSize(), bold=True)
        self._badge_metrics = (fm, QtGui.QFontMetricsF(self.badge_bold))
        self.edge_pens = self._make_edge_pens()

        self.node_items: dict[int, _NodeGfx] = {}       # displayed key -> items (node id or box id)
        self.edge_items: dict[tuple, _EdgeGfx] = {}
        self.layout = None
        self._collapsed: set[str] = set()
        self._display_of: dict[int, int] = {}           # node id -> displayed key
        self._edge_map: dict[tuple, list] = {}          # displayed edge -> underlying edges
        self._shown_nodes: dict[int, object] = {}
        self._shown_edges: dict[tuple, object] = {}
        self._prev_active: set[int] = set()
        self._prev_active_edges: set = set()
        self._frame_index = -1
        self._selected: int | None = None
        self._auto_fit = True
        self.follow_active = True          # when zoomed in, pan to the node the current event is about
        self._press_pos = None

        self.caption = _Caption(self)                 # not the viewport's child: scrolling would move it
        self.caption.move(12, 12)
        self.caption.hide()

        player.replayChanged.connect(self._on_replay_changed)
        player.positionChanged.connect(self._on_position_changed)
        if player.replay is not None:
            self._on_replay_changed()
            self._on_position_changed(player.position)

    # -- public API ---------------------------------------------------------------------------------
    def set_collapsed(self, module: str, collapsed: bool) -> None:
        """Collapse the nodes of ``module`` (e.g. "0" = the first layer of a Sequential) into one box."""
        if self.replay is None or module not in self.replay.collapsible_modules():
            return
        if collapsed == (module in self._collapsed):
            return
        (self._collapsed.add if collapsed else self._collapsed.discard)(module)
        self._rebuild()
        self.collapsedChanged.emit()

    @staticmethod
    def default_collapsed(replay) -> set[str]:
        """Modules folded when a graph first appears, so that the overview stays readable: the loss
        first (a loss like BCE-with-logits is a dozen primitive ops), then every module, while the
        graph has more than AUTO_COLLAPSE_NODES boxes. The user expands any of them on demand."""
        if replay is None:
            return set()
        modules = replay.collapsible_modules()
        order = [m for m in modules if m == "loss"] + [m for m in modules if m != "loss"]
        collapsed: set[str] = set()
        visible = len(replay.nodes)
        for m in order:
            if visible <= AUTO_COLLAPSE_NODES:
                break
            collapsed.add(m)
            visible -= len(replay.module_members(m)) - 1
        return collapsed

    def is_collapsed(self, module: str) -> bool:
        return module in self._collapsed

    def collapsible_modules(self) -> list[str]:
        return self.replay.collapsible_modules() if self.replay is not None else []

    def module_label(self, module: str) -> str:
        return f"{self.replay.module_type(module)} {module}"

    def set_zoom(self, scale: float) -> None:
        """Zoom to ``scale`` (1 = 100 %) around the view's centre; stops following fit-to-view."""
        centre = self.mapToScene(self.viewport().rect().center())
        self.resetTransform()
        self.scale(scale, scale)
        self.centerOn(centre)
        self._auto_fit = False
        self._apply_lod()

    def zoom(self) -> float:
        return self.transform().m11()

    def fit_to_view(self) -> None:
        """Show the whole drawing below the caption, as large as fits (a small graph up to
        ``FIT_MAX_ZOOM``: its text then reads larger than at 100 %)."""
        rect = self._graph_rect().adjusted(-FIT_MARGIN, -FIT_MARGIN, FIT_MARGIN, FIT_MARGIN)
        if rect.isEmpty():
            return
        top = 0.0
        if self.caption.isVisible():          # keep the caption from covering the graph's top
            top = self.caption.height() + 12
        self.resetTransform()
        avail = QtCore.QRectF(self.viewport().rect()).adjusted(0, top, 0, 0)
        scale = min(avail.width() / rect.width(), avail.height() / rect.height(), FIT_MAX_ZOOM)
        self.scale(scale, scale)
        centre = rect.center() - QtCore.QPointF(0, top / 2 / scale)
        self.centerOn(centre)
        self._apply_lod()

    # -- deferred detail updates --------------------------------------------------------------------
    def defer_detail(self, gfx: _NodeGfx, ns, active: bool, event) -> bool:
        """True (and remembered) when ``gfx``'s text would not be seen now: update it when it shows."""
        if self._visible_rect is None:
            self._visible_rect = self.mapToScene(self.viewport().rect()).boundingRect().adjusted(-60, -60, 60, 60)
        if self.lod_detail and gfx.root.sceneBoundingRect().intersects(self._visible_rect):
            self._pending.pop(gfx.spec.key, None)
            return False
        self._pending[gfx.spec.key] = (ns, active, event)
        return True

    def _flush_pending(self, everything: bool = False) -> None:
        if not self._pending:
            return
        self._visible_rect = None
        if not everything and not self.lod_detail:
            return
        rect = self.mapToScene(self.viewport().rect()).boundingRect().adjusted(-60, -60, 60, 60)
        for key in list(self._pending):
            gfx = self.node_items.get(key)
            if gfx is None:
                del self._pending[key]
            elif everything or gfx.root.sceneBoundingRect().intersects(rect):
                gfx.update_detail(*self._pending.pop(key))

    def _flush_node(self, node_id: int) -> None:
        key = self._display_of.get(node_id)
        if key in self._pending:
            self.node_items[key].update_detail(*self._pending.pop(key))

    def scrollContentsBy(self, dx: int, dy: int) -> None:
        super().scrollContentsBy(dx, dy)
        self._visible_rect = None
        self._flush_pending()

    def _apply_lod(self) -> None:
        """Hide text and heat maps when they would be unreadably small (and cost paint time)."""
        scale = self.transform().m11()
        lod = (scale >= LOD_DETAIL, scale >= LOD_SYMBOL)
        self._visible_rect = None
        if lod == self._lod:
            self._flush_pending()
            return
        self._lod = lod
        self.lod_detail = lod[0]
        # Far out, antialiasing buys little and costs half the paint time of a large graph.
        self.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing, lod[1])
        for gfx in self.node_items.values():
            gfx.detail.setVisible(lod[0])
            if gfx.symbol_bg is not None:
                gfx.symbol_bg.setVisible(lod[1])
        for edge in self.edge_items.values():
            edge.label.setVisible(edge.want_label and lod[0])
        self._flush_pending()

    def select_node(self, node_id: int | None) -> None:
        self._selected = node_id
        for key, gfx in self.node_items.items():
            gfx.selection.setVisible(node_id is not None and self._display_of.get(node_id) == key)

    def set_caption_visible(self, visible: bool) -> None:
        self._caption_enabled = visible
        self.caption.setVisible(visible and self.replay is not None)

    def node_badge_text(self, node_id: int) -> str:
        self._flush_node(node_id)
        gfx = self.node_items.get(self._display_of.get(node_id))
        return gfx.badge_text.text() if gfx is not None and gfx.badge_text is not None else ""

    def node_value_text(self, node_id: int) -> str:
        self._flush_node(node_id)
        gfx = self.node_items.get(self._display_of.get(node_id))
        return gfx.value[1].text() if gfx is not None else ""

    def node_grad_text(self, node_id: int) -> str:
        self._flush_node(node_id)
        gfx = self.node_items.get(self._display_of.get(node_id))
        return gfx.grad[1].text() if gfx is not None and gfx.grad is not None else ""

    def node_scene_rect(self, node_id: int) -> QtCore.QRectF:
        gfx = self.node_items[self._display_of[node_id]]
        return gfx.root.sceneBoundingRect()

    def visible_node_count(self) -> int:
        return len(self.node_items)

    def export_png(self, path: str, scale: float = 2.0) -> bool:
        image = self._render(scale)
        return image.save(str(path), "PNG")

    def export_svg(self, path: str) -> bool:
        from PySide6 import QtSvg
        rect = self._export_rect()
        gen = QtSvg.QSvgGenerator()
        gen.setFileName(str(path))
        gen.setSize(QtCore.QSize(int(rect.width()), int(rect.height())))
        gen.setViewBox(QtCore.QRectF(0, 0, rect.width(), rect.height()))
        gen.setTitle("GradViz computation graph")
        painter = QtGui.QPainter()
        if not painter.begin(gen):
            return False
        self._show_all_detail(True)
        # Text items are cached as device pixmaps (fast repaints); drawn through the cache they would
        # land in the SVG as embedded bitmaps.  Uncached, they reach the generator as real <text>.
        cached = [item for item in self.scene().items() if item.cacheMode() != _NO_CACHE]
        for item in cached:
            item.setCacheMode(_NO_CACHE)
        try:
            painter.fillRect(QtCore.QRectF(0, 0, rect.width(), rect.height()), QtGui.QColor(T.BACKGROUND))
            painter.setRenderHints(QtGui.QPainter.RenderHint.Antialiasing | QtGui.QPainter.RenderHint.TextAntialiasing)
            self.scene().render(painter, QtCore.QRectF(0, 0, rect.width(), rect.height()), rect)
        finally:
            painter.end()
            for item in cached:
                item.setCacheMode(_CACHE)
            self._show_all_detail(False)
        return True

    def render_frame_image(self, width: int) -> QtGui.QImage:
        """The whole graph at the current frame, ``width`` pixels wide (for GIF export)."""
        rect = self._export_rect()
        return self._render(width / rect.width(), width=width)

    # -- building -----------------------------------------------------------------------------------
    def _on_replay_changed(self) -> None:
        replay = self.player.replay
        same_graph = (self.replay is not None and replay is not None
                      and self._graph_signature(self.replay) == self._graph_signature(replay))
        self.replay = replay
        if not same_graph:
            self._collapsed = self.default_collapsed(replay)
            self._auto_fit = True
        elif self.node_items and self._reuse_items(replay):
            return
        self._rebuild()
        self.caption.setVisible(self.replay is not None and getattr(self, "_caption_enabled", True))
        if self.replay is not None:
            self._update_caption(self.replay.frame(self.player.position))
            if self._auto_fit:
                self.fit_to_view()                        # again, now that the caption takes its room

    def _reuse_items(self, replay) -> bool:
        """The next iteration of the same graph: keep the items (and the zoom) when every node keeps
        its size; only their contents change."""
        specs = self._make_specs(replay, slack=False)
        if list(specs) != list(self.node_items) or not all(_fits(specs[k], g.spec) for k, g in self.node_items.items()):
            return False
        self._shown_nodes.clear()
        self._shown_edges.clear()
        self._prev_active = set(self._display_of)         # touch every node once
        self._prev_active_edges = set(replay.edges)
        self._pending.clear()
        self._visible_rect = None
        self._on_position_changed(self.player.position)
        return True

    @staticmethod
    def _graph_signature(replay):
        return tuple((n, i.label, tuple(i.inputs)) for n, i in replay.nodes.items())

    def _rebuild(self) -> None:
        scene = self.scene()
        scene.clear()
        self.node_items.clear()
        self.edge_items.clear()
        self._shown_nodes.clear()
        self._shown_edges.clear()
        self._prev_active, self._prev_active_edges = set(), set()
        self._pending.clear()
        self._visible_rect = None
        self._frame_index = -1
        replay = self.replay
        if replay is None:
            return
        specs = self._make_specs(replay)
        order = list(specs)
        self._edge_map = {}
        edges = []
        for src, dst in replay.edges:
            a, b = self._display_of[src], self._display_of[dst]
            if a != b:
                edges.append((a, b))
                self._edge_map.setdefault((a, b), []).append((src, dst))
        self.layout = layered_layout([LayoutNode(k, max(specs[k].width, specs[k].layout_w), specs[k].height)
                                      for k in order], edges, node_gap=NODE_GAP,
                                     layer_gap=self._layer_gap(len(specs)))
        for key in order:
            spec = specs[key]
            gfx = _NodeGfx(self, spec, self.fonts)
            cx, cy = self.layout.positions[key]
            gfx.root.setPos(cx - spec.width / 2, cy - spec.height / 2)
            scene.addItem(gfx.root)
            gfx.detail.setVisible(self._lod[0])
            if gfx.symbol_bg is not None:
                gfx.symbol_bg.setVisible(self._lod[1])
            self.node_items[key] = gfx
        label_chars = 13 if len(specs) <= SMALL_GRAPH else 9
        # Input ports: a node's incoming edges end at separate points of its left side, ordered by
        # where they come from, so that they neither cross nor merge into one arrow head.
        incoming: dict = {}
        for (a, b), route in self.layout.routes.items():
            incoming.setdefault(b, []).append((route[-2][1], a))
        port_y = {}
        for b, sources in incoming.items():
            sources.sort()
            spec = specs[b]
            cy = self.layout.positions[b][1] - spec.height / 2 + spec.body_h / 2
            step = min(14.0, (spec.body_h - 12) / max(len(sources) - 1, 1))
            for i, (_y, a) in enumerate(sources):
                port_y[(a, b)] = cy + (i - (len(sources) - 1) / 2) * step
        for (a, b), route in self.layout.routes.items():
            sa, sb = specs[a], specs[b]
            ax, ay = self.layout.positions[a]
            bx, _by = self.layout.positions[b]
            start = (ax + sa.width / 2, ay - sa.height / 2 + sa.body_h / 2)
            end = (bx - sb.width / 2 - 1, port_y[(a, b)])
            points = [start, *route[1:-1], end]
            self.edge_items[(a, b)] = _EdgeGfx(self, (a, b), points, self.fonts, label_chars)
        rect = QtCore.QRectF(0, 0, self.layout.width, self.layout.height).adjusted(-3000, -3000, 3000, 3000)
        scene.setSceneRect(rect)
        if self.player.replay is replay:
            self._on_position_changed(self.player.position)
        if self._selected is not None:
            self.select_node(self._selected)
        if self._auto_fit:
            self.fit_to_view()

    def _make_specs(self, replay, slack: bool = True) -> dict[int, _Spec]:
        """One spec per displayed node: sizes come from every value the node will show in this replay."""
        values: dict[int, list] = {n: [] for n in replay.nodes}
        grads: dict[int, list] = {n: [] for n in replay.nodes}
        accs: dict[int, list] = {n: [] for n in replay.nodes}
        first = replay.frame(0)
        for n, ns in first.nodes.items():
            if ns.value is not None:
                values[n].append(ns.value)
            if ns.grad_badge is not None:
                accs[n].append((None, ns.grad_badge, ns.grad_badge))
        for e in replay.events:
            if isinstance(e, _trace.ForwardEvent) and e.node in values:
                values[e.node].append(e.value)
            elif isinstance(e, _trace.BackwardEvent) and e.node in grads:
                grads[e.node].append(e.grad_output)
            elif isinstance(e, _trace.AccumulateEvent) and e.node in accs:
                accs[e.node].append((e.before, e.added, e.after))
            elif isinstance(e, _trace.StepEvent):
                for u in e.updates:
                    if u.node in values:
                        values[u.node].append(("step", u.before, u.after))

        specs: dict[int, _Spec] = {}
        self._display_of = {}
        boxes: dict[str, int] = {}
        loss_nodes = set(replay.loss_nodes)
        for nid, info in replay.nodes.items():
            module = replay.modules.get(nid, "")
            top = module.split(".")[0] if module else ""
            if top in self._collapsed:
                if top not in boxes:
                    boxes[top] = -(len(boxes) + 1)
                self._display_of[nid] = boxes[top]
                continue
            self._display_of[nid] = nid
            kind = info.kind if info.kind in ("op", "param", "input") else "input"
            if nid in replay.param_names:
                kind = "param"
            elif info.inputs:
                kind = "op"                    # an op on data only (1 - y): drawn as an op in grey
            size = int(np.prod(info.shape)) if info.shape else 1
            texts = []
            if size <= MAX_TEXT_ELEMS:        # a heat map anyway: formatting every element would be wasted
                for v in values[nid]:
                    if isinstance(v, tuple):
                        texts += [_fmt(v[1]) + " → " + _fmt(v[2])]
                    else:
                        texts.append("= " + _fmt(v))
                texts += ["∇ " + _fmt(g) for g in grads[nid]]
            lines = [line for t in texts for line in t.split("\n")]
            heat = (size > 1 and (any(len(line) > MAX_TEXT_CHARS for line in lines)
                                  or max((_num_lines(t) for t in texts), default=1) > 2)) or size > MAX_TEXT_ELEMS
            value_lines = 1 if heat else max((_num_lines(t) for t in texts), default=1)
            chars = max((len(line) for line in lines), default=8) if not heat else 0
            heat_chars = 0
            if heat:                                  # the text beside a heat map: its mean
                heat_chars = max([len(_step_heat_text(v[1], v[2])) if isinstance(v, tuple) else len(_mean_text(v))
                                  for v in values[nid]] + [2 + len(_mean_text(g)) for g in grads[nid]] + [8])
            title = replay.node_name(nid)
            if kind == "input" and not info.inputs and info.shape == () and _trace.is_number_label(title):
                title = "constant"                    # a Python number in the expression
            title_font = self.fonts[0 if kind == "op" else 1]
            title_w = QtGui.QFontMetricsF(title_font).horizontalAdvance(title if kind != "op" else info.label)
            shape = _shape_text(info.shape) if info.shape and math.prod(info.shape) > 1 else ""
            shape_w = QtGui.QFontMetricsF(self.fonts[0]).horizontalAdvance(shape) + 10 if shape else 0
            symbol = replay.symbol(nid) if kind == "op" else ""
            pill_w = self._pill_width(symbol) if kind == "op" else 0.0
            x0 = PAD + pill_w + PILL_GAP if kind == "op" else PAD
            # room for a sign or a digit more in a later iteration (a parameter's "before → after" two)
            extra = {"param": 2, "op": 1}.get(kind, 0) if slack else 0
            width = max(x0 + (chars + extra) * self.char_w + PAD if not heat else 0,
                        PAD + title_w + shape_w + PAD,
                        x0 + HEAT_W + 6 + (heat_chars + extra) * self.char_w + PAD if heat else 0,
                        {"op": 96.0, "param": 64.0}.get(kind, 56.0))
            width = math.ceil(width / 2) * 2
            row_h = HEAT_ROW_H if heat else self.line_h * value_lines
            grad_row = kind == "op" and info.requires_grad
            rows_h = row_h + (row_h + 1 if grad_row else 0)
            if kind == "op":
                rows_h = max(rows_h, PILL_H)
            body_h = ROWS_Y + rows_h + PAD - 1
            badge = nid in replay.badge_nodes
            badge_lines, layout_w, badge_h = 1, width, 0.0
            if badge:
                chars_b = self._badge_chars(width)
                texts_b = [badge_text(NodeState(grad_badge=a[2], accumulation=a), heat, chars_b)
                           for a in accs[nid]] + ["grad: None"]
                badge_lines = max(_num_lines(t) for t in texts_b)
                sizes = [self.badge_size(t) for t in texts_b]
                layout_w = max(width, math.ceil(max(w for w, _h in sizes)))
                badge_h = BADGE_GAP + max(h for _w, h in sizes)
            height = body_h + badge_h
            tip = (f"{title}\n{info.label if kind == 'op' else kind} · shape {tuple(info.shape)} · {info.dtype}"
                   + (f"\nmodule {module}" if module else ""))
            specs[nid] = _Spec(nid, kind, title if kind != "op" else info.label, symbol,
                               shape, heat, value_lines, grad_row, badge, badge_lines, nid in loss_nodes,
                               width, body_h, height, tooltip=tip, pill_w=pill_w, layout_w=layout_w)
        for module, key in boxes.items():
            members = tuple(replay.module_members(module))
            member_set = set(members)
            outs = [n for n in members if any(c not in member_set for c in replay.consumers.get(n, []))]
            output = max(outs) if outs else max(members)
            params = [replay.node_name(n) for n in members if n in replay.param_names]
            n_ops = sum(1 for n in members if replay.nodes[n].kind == "op")
            heat = True
            body_h = ROWS_Y + 2 * HEAT_ROW_H + 1 + PAD - 1
            label = self.module_label(module)
            ops_w = QtGui.QFontMetricsF(self.fonts[0]).horizontalAdvance(f"{n_ops} ops") + 10
            width = max(PAD + HEAT_W + 6 + 14 * self.char_w + PAD,
                        PAD + QtGui.QFontMetricsF(self.fonts[1]).horizontalAdvance(label) + ops_w + PAD)
            width = math.ceil(width / 2) * 2
            tip = f"{label}: {n_ops} ops, parameters {', '.join(params) or 'none'}\n(double-click to expand)"
            ops = f"{n_ops} op" + ("s" if n_ops != 1 else "")
            spec = _Spec(key, "module", label, "", ops, heat, 1, True, bool(params), max(1, len(params)),
                         False, width, body_h, 0.0, members, output, tip)
            sample = "\n".join(f"{p.split('.')[-1]}.grad: μ -0.0000" for p in params)
            bw, bh = self.badge_size(sample) if params else (0.0, 0.0)
            spec.height = body_h + (BADGE_GAP + bh if params else 0)
            spec.layout_w = max(width, math.ceil(bw))
            specs[key] = spec
        # keep the layout's initial order: nodes as the trace lists them, each box where its first member was
        order = []
        seen = set()
        for nid in replay.nodes:
            k = self._display_of[nid]
            if k not in seen:
                seen.add(k)
                order.append(k)
        return {k: specs[k] for k in order}

    def _layer_gap(self, n_nodes: int) -> float:
        """Room between columns: an arrow and a short gradient label.  Columns are kept close so that a
        small graph fits the panel at a readable zoom; a label too long for its gap shows only while
        its edge is active (drawn over the neighbouring boxes for that moment)."""
        return LAYER_GAP if n_nodes <= SMALL_GRAPH else LAYER_GAP_LARGE

    def badge_size(self, text: str) -> tuple[float, float]:
        """Width and height of a ``.grad`` badge showing ``text``, padding included (see _BadgeText)."""
        lines = text.split("\n")
        sum_at = _sum_start(lines)
        fm, bold = self._badge_metrics
        width = max((bold if sum_at is not None and i >= sum_at else fm).horizontalAdvance(line)
                    for i, line in enumerate(lines))
        height = (len(lines) * self.badge_line_h + (len(lines) - 1) * BADGE_LINE_GAP
                  + (BADGE_RULE_GAP if sum_at is not None else 0))
        return math.ceil(width) + 2 * BADGE_PAD_X, height + 2 * BADGE_PAD_Y

    def _badge_chars(self, width: float) -> int:
        """Characters a badge line may take: its node's width, or a little more under a narrow node."""
        return max(BADGE_MIN_CHARS, int((width - 2 * BADGE_PAD_X) / self.badge_char_w))

    def _pill_width(self, symbol: str) -> float:
        return max(PILL_MIN_W, math.ceil(QtGui.QFontMetricsF(self.symbol_font(symbol)).horizontalAdvance(symbol)) + 12)

    def symbol_font(self, symbol: str) -> QtGui.QFont:
        """The op symbol's font: big for a glyph (×, +, @), smaller for a word (tanh, mean, xWᵀ+b)."""
        font = QtGui.QFont(self.fonts[3])
        if len(symbol) > 2:
            font.setPixelSize(max(11, font.pixelSize() - 4))
        return font

    def badge_chars(self, spec: _Spec) -> int:
        return self._badge_chars(spec.width)

    # -- per frame ----------------------------------------------------------------------------------
    def _on_position_changed(self, position: int) -> None:
        replay = self.replay
        if replay is None or not self.node_items:
            return
        frame = replay.frame(position)
        self._frame_index = position
        self._visible_rect = None
        event = frame.event
        active = frame.active_nodes
        dirty = {n for n, ns in frame.nodes.items() if self._shown_nodes.get(n) is not ns}
        dirty |= active | self._prev_active
        boxes_dirty = set()
        display_of = self._display_of
        sel = self._selected
        for nid in dirty:
            key = display_of.get(nid)
            if key is None:
                continue
            if key < 0:
                boxes_dirty.add(key)
            else:
                self.node_items[key].update(frame.nodes[nid], nid in active, event, sel == nid)
            self._shown_nodes[nid] = frame.nodes[nid]
        for key in boxes_dirty:
            gfx = self.node_items[key]
            gfx.update(self._box_state(gfx.spec, frame), any(n in active for n in gfx.spec.members), event,
                       sel is not None and display_of.get(sel) == key)
        self._prev_active = set(active)

        edges_dirty = {k for k, es in frame.edges.items() if self._shown_edges.get(k) is not es}
        edges_dirty |= frame.active_edges | self._prev_active_edges
        touched = set()
        for k in edges_dirty:
            dk = (display_of.get(k[0]), display_of.get(k[1]))
            if dk in self.edge_items:
                touched.add(dk)
            self._shown_edges[k] = frame.edges.get(k)
        for dk in touched:
            under = self._edge_map[dk]
            if len(under) == 1:
                k = under[0]
                self.edge_items[dk].update(frame.edges[k], k in frame.active_edges)
            else:   # several edges drawn as one (into/out of a box): show the most recent
                states = [(frame.edges[k], k in frame.active_edges) for k in under]
                best = max(states, key=lambda s: (s[1], _EDGE_RANK[s[0].state]))
                self.edge_items[dk].update(*best)
        self._prev_active_edges = set(frame.active_edges)
        if self.follow_active and not self._auto_fit:
            self._follow(frame)
        self._update_caption(frame)

    def _follow(self, frame) -> None:
        """Zoomed in, keep the node the current event is about on screen."""
        nid = getattr(frame.event, "node", None)
        key = self._display_of.get(nid) if nid is not None else None
        if key is None:
            return
        rect = self.node_items[key].root.sceneBoundingRect()
        view = self.mapToScene(self.viewport().rect()).boundingRect()
        if not view.contains(rect):
            self.centerOn(rect.center())

    def _box_state(self, spec: _Spec, frame) -> NodeState:
        states = [frame.nodes[n] for n in spec.members]
        active = [n for n in spec.members if n in frame.active_nodes]
        if active:
            state = "backward" if any(frame.nodes[n].state == "backward" for n in active) else "forward"
        else:
            ranks = [_NODE_RANK[s.state] for s in states]
            state = _NODE_ORDER[max(ranks)]
        out = frame.nodes[spec.output]
        params = [n for n in spec.members if n in self.replay.param_names]
        badge = None
        if params:
            parts = []
            for n in params:
                g = frame.nodes[n].grad_badge
                name = self.replay.node_name(n).split(".")[-1]
                parts.append(f"{name}.grad: " + ("None" if g is None else _mean_text(g)))
            badge = "\n".join(parts)
        grad = out.grad
        if grad is None:        # before the output's backward: the latest gradient inside the box
            for n in spec.members:
                if frame.nodes[n].grad is not None and frame.nodes[n].state.startswith("backward"):
                    grad = frame.nodes[n].grad
        return _BoxState(state=state, value=out.value, grad=grad, box_badge=badge)

    def _update_caption(self, frame) -> None:
        if not self.caption.isVisible():
            return
        replay = self.replay
        phase = phase_label(frame.phase, frame.micro_batch, replay.micro_batches)
        self.caption.show_text(phase, T.PHASE_COLOURS.get(frame.phase, T.TEXT_MUTED),
                               f"iteration {replay.iteration} · event {frame.index}/{len(replay) - 1}",
                               frame.description)
        self._size_caption()

    def _size_caption(self) -> None:
        self.caption.fit(int(min(max(260, self.viewport().width() - 24), 720)))

    # -- rendering helpers ------------------------------------------------------------------------
    def _graph_rect(self) -> QtCore.QRectF:
        """The drawing's extent: the layout's box (stable from frame to frame, unlike the items' box,
        which grows while a halo or a wide label shows)."""
        if self.layout is None or not self.node_items:
            return self.scene().itemsBoundingRect()
        return QtCore.QRectF(0, 0, self.layout.width, self.layout.height).adjusted(-9, -12, 9, 12)

    def _export_rect(self) -> QtCore.QRectF:
        self._flush_pending(everything=True)         # exports show every node's text
        return self._graph_rect().adjusted(-16, -16, 16, 16)

    def _show_all_detail(self, show: bool) -> None:
        """Exports draw every label whatever the zoom; afterwards the level of detail is restored."""
        if show:
            for gfx in self.node_items.values():
                gfx.detail.setVisible(True)
                if gfx.symbol_bg is not None:
                    gfx.symbol_bg.setVisible(True)
            self.lod_detail = True
            for edge in self.edge_items.values():
                edge.label.setVisible(edge.want_label)
        else:
            self._lod = (None, None)
            self._apply_lod()

    def _render(self, scale: float, width: int | None = None) -> QtGui.QImage:
        self._show_all_detail(True)
        try:
            return self._render_scene(scale, width)
        finally:
            self._show_all_detail(False)

    def _render_scene(self, scale: float, width: int | None = None) -> QtGui.QImage:
        rect = self._export_rect()
        w = width or max(1, int(rect.width() * scale))
        h = max(1, int(round(rect.height() * (w / rect.width()))))
        image = QtGui.QImage(w, h, QtGui.QImage.Format.Format_ARGB32_Premultiplied)
        image.fill(QtGui.QColor(T.BACKGROUND))
        painter = QtGui.QPainter(image)
        painter.setRenderHints(QtGui.QPainter.RenderHint.Antialiasing | QtGui.QPainter.RenderHint.TextAntialiasing)
        self.scene().render(painter, QtCore.QRectF(0, 0, w, h), rect)
        painter.end()
        return image

    @staticmethod
    def _background_brush() -> QtGui.QBrush:
        size = 22
        pm = QtGui.QPixmap(size, size)
        pm.fill(QtGui.QColor(T.BACKGROUND))
        p = QtGui.QPainter(pm)
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(QtGui.QColor(T.CANVAS_DOT))
        p.drawEllipse(QtCore.QRectF(size / 2 - 1, size / 2 - 1, 2, 2))
        p.end()
        return QtGui.QBrush(pm)

    def _make_edge_pens(self) -> dict:
        pens = {}
        for state in ("idle", "forward", "forward_done", "backward", "backward_done"):
            for active in (False, True):
                if state == "forward" and active:
                    c, w = T.FORWARD, 2.6
                elif state == "backward" and active:
                    c, w = T.BACKWARD, 3.0
                elif state.startswith("backward"):
                    c, w = T.BACKWARD, 1.6
                elif state.startswith("forward"):
                    c, w = T.EDGE_DONE, 1.4
                else:
                    c, w = T.EDGE_IDLE, 1.2
                pens[(state, active)] = (_pen(c, w), QtGui.QColor(c))
        return pens

    # -- interaction --------------------------------------------------------------------------------
    def wheelEvent(self, event: QtGui.QWheelEvent) -> None:
        delta = event.angleDelta().y()
        if delta == 0:
            return
        factor = 1.0015 ** delta
        current = self.transform().m11()
        factor = max(0.05 / current, min(factor, 6.0 / current))
        self.scale(factor, factor)
        self._auto_fit = False
        self._apply_lod()
        event.accept()

    def mousePressEvent(self, event: QtGui.QMouseEvent) -> None:
        self._press_pos = event.position().toPoint()
        super().mousePressEvent(event)

    def mouseReleaseEvent(self, event: QtGui.QMouseEvent) -> None:
        super().mouseReleaseEvent(event)
        press, self._press_pos = self._press_pos, None
        if press is None or event.button() != Qt.MouseButton.LeftButton:
            return
        if (event.position().toPoint() - press).manhattanLength() > 4:
            self._auto_fit = False            # the user panned
            return
        key = self._key_at(press)
        if key is None:
            return
        if key >= 0:
            self.select_node(key)
            self.nodeClicked.emit(key)
        else:
            module = self._module_of_box(key)
            if module is not None:
                self.moduleClicked.emit(module)

    def mouseDoubleClickEvent(self, event: QtGui.QMouseEvent) -> None:
        key = self._key_at(event.position().toPoint())
        module = self._module_for_key(key)
        if module is not None:
            self.set_collapsed(module, not self.is_collapsed(module))
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def contextMenuEvent(self, event: QtGui.QContextMenuEvent) -> None:
        menu = QtWidgets.QMenu(self)
        key = self._key_at(event.pos())
        module = self._module_for_key(key)
        if module is not None:
            label = self.module_label(module)
            if self.is_collapsed(module):
                menu.addAction(f"Expand {label}", lambda: self.set_collapsed(module, False))
            else:
                menu.addAction(f"Collapse module {label}", lambda: self.set_collapsed(module, True))
            menu.addSeparator()
        modules = self.collapsible_modules()
        if modules:
            menu.addAction("Collapse all modules", lambda: [self.set_collapsed(m, True) for m in modules])
            menu.addAction("Expand all modules", lambda: [self.set_collapsed(m, False) for m in modules])
        menu.addAction("Fit to view", self._fit_and_follow)
        menu.exec(event.globalPos())

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        self._visible_rect = None
        self._flush_pending()
        if self.caption.isVisible() and self.replay is not None:
            self._size_caption()
        if self._auto_fit:
            self.fit_to_view()

    def _fit_and_follow(self) -> None:
        self._auto_fit = True
        self.fit_to_view()

    def _key_at(self, pos: QtCore.QPoint):
        for item in self.items(pos):
            while item is not None:
                key = item.data(0)
                if key is not None:
                    return int(key)
                item = item.parentItem()
        return None

    def _module_of_box(self, key: int) -> str | None:
        gfx = self.node_items.get(key)
        if gfx is None or not gfx.spec.members:
            return None
        return self.replay.modules[gfx.spec.members[0]].split(".")[0]

    def _module_for_key(self, key) -> str | None:
        if key is None or self.replay is None:
            return None
        if key < 0:
            return self._module_of_box(key)
        module = self.replay.modules.get(key, "")
        top = module.split(".")[0] if module else ""
        return top if top in self.replay.collapsible_modules() else None


class _Caption(QtWidgets.QFrame):
    """The phase, the position and one sentence about the current event, over the graph's corner.

    Plain-text labels with a height measured by font metrics: a rich-text QLabel re-laid out every
    frame costs about a millisecond."""

    def __init__(self, parent):
        super().__init__(parent)
        self.setObjectName("caption")
        self.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self.setStyleSheet(f"#caption {{ background: rgba(255,255,255,235); border: 1px solid {T.PANEL_BORDER};"
                           f" border-radius: 8px; }}")
        self.pill = QtWidgets.QLabel(self)
        self.pill.setFont(T.ui_font(9, bold=True))
        self.info = QtWidgets.QLabel(self)
        self.info.setStyleSheet(f"color: {T.TEXT_MUTED}")
        self.text = QtWidgets.QLabel(self)
        self.text.setWordWrap(True)
        self.text.setStyleSheet(f"color: {T.TEXT}")
        self.text.setTextFormat(Qt.TextFormat.PlainText)
        self._colour = None
        self._width = 0

    def show_text(self, phase: str, colour: str, info: str, text: str) -> None:
        if colour != self._colour:
            self._colour = colour
            self.pill.setStyleSheet(f"background: {colour}; color: white; border-radius: 4px; padding: 1px 6px;")
        if self.pill.text() != phase:
            self.pill.setText(phase)
            self.pill.adjustSize()
            self.info.move(10 + self.pill.width() + 8, 8)
        self.info.setText(info)
        self.info.adjustSize()
        self.text.setText(text)
        self._width = 0                    # re-measure

    def fit(self, width: int) -> None:
        inner = width - 20
        fm = self.text.fontMetrics()
        h = fm.boundingRect(QtCore.QRect(0, 0, inner, 10_000), int(Qt.TextFlag.TextWordWrap), self.text.text()).height()
        top = 8 + max(self.pill.sizeHint().height(), self.info.sizeHint().height()) + 4
        self.pill.move(10, 8)
        self.text.setGeometry(10, top, inner, h)
        size = QtCore.QSize(width, top + h + 8)
        if size != self.size():
            self.setFixedSize(size)


@dataclass(frozen=True)
class _BoxState:
    """A collapsed module's aggregate state (duck-types NodeState for ``_NodeGfx.update``)."""
    state: str = "idle"
    value: object = None
    grad: object = None
    box_badge: str | None = None
    grad_badge: object = None
    accumulation: object = None
    cleared: str = ""
    param_before: object = None
    stepped: bool = False


_NODE_ORDER = ("idle", "forward", "forward_done", "backward", "backward_done")
_NODE_RANK = {"idle": 0, "forward": 1, "forward_done": 2, "backward": 3, "backward_done": 4}
_EDGE_RANK = _NODE_RANK
