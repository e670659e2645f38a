"""The graphics items of the graph: a node's box (body, glow, rows, symbol pill, ``.grad`` badge), the
badge's text, and an edge (curve, arrow head, gradient label; a wide fan-out's edges share a trunk:
``bus.py``).

Everything is made of Qt's built-in items (rect/path/text/pixmap): no Python ``paint()`` overrides,
which are slow and, under PySide6 6.12 with Python 3.11, crash on a None refcount fault.  Items are
built once per Replay; ``update`` touches only what changed.
"""
from __future__ import annotations

import itertools

from PySide6 import QtCore, QtGui, QtWidgets

from gradviz.view.replay import EdgeState, NodeState

from .. import theme as T
from . import text
from .sizing import (
    BADGE_GAP,
    BADGE_LINE_GAP,
    BADGE_PAD_X,
    BADGE_PAD_Y,
    BADGE_RULE_GAP,
    CAPTION_H,
    HEAT_H,
    HEAT_ROW_H,
    HEAT_W,
    PAD,
    PILL_GAP,
    PILL_H,
    ROWS_Y,
    Metrics,
    Spec,
)

Qt = QtCore.Qt
EDGE_PIECE = 4              # route segments per path item


class NodeGfx:
    """The Qt items of one displayed node and how they change with its state."""

    def __init__(self, spec: Spec, metrics: Metrics):
        self.metrics = metrics
        self.root = QtWidgets.QGraphicsPathItem()
        self.root.setZValue(10)
        self.xy = (0.0, 0.0)                        # where the root is (what scene_update.place last set)
        self._build(spec)

    def reshape(self, spec: Spec) -> None:
        """Show ``spec`` (another size, or a heat map instead of text) in the same root item: its
        children are made again, the root (what the scene, the layout and the tests hold) stays."""
        scene = self.root.scene()
        for child in self.root.childItems():
            if scene is not None:
                scene.removeItem(child)
            else:
                child.setParentItem(None)
        self._build(spec)

    def _build(self, spec: Spec) -> None:
        self.spec = spec
        metrics = self.metrics
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
        self.root.setPath(path)
        self.root.setBrush(QtGui.QColor(fill))
        self.root.setData(0, spec.key)
        self.root.setToolTip(spec.tooltip)
        self.root.setOpacity(1.0)
        self.pens = {
            "base": pen(border, 2.0 if spec.loss or kind == "param" else 1.2),
            "forward": pen(T.FORWARD, 2.6), "backward": pen(T.BACKWARD, 2.6),
            "backward_done": pen(T.BACKWARD, 1.6) if kind in ("op", "module") and not spec.loss else None,
            "step": pen(T.STEP, 2.6), "zero": pen(T.ZERO, 2.6),
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

        f_caption, f_title, f_mono = metrics.fonts[:3]
        self.detail = container(self.root)          # hidden when zoomed far out
        self.symbol_bg = self.loss_tab = None         # (shown with the detail, but drawn outside the body)
        row_h = HEAT_ROW_H if spec.heat else metrics.line_h * spec.value_lines
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
            font = metrics.symbol_font(spec.symbol)
            sym = text_item(self.symbol_bg, font, T.LOSS if spec.loss else T.OP_SYMBOL_TEXT, spec.symbol)
            br = sym.boundingRect()
            sym.setPos((pw - br.width()) / 2, (ph - br.height()) / 2)
            x0 = PAD + pw + PILL_GAP
            title_font, title_colour = f_caption, T.TEXT_MUTED
        else:
            title_font = f_title
            title_colour = {"param": T.PARAM_TEXT, "input": T.TEXT_MUTED, "module": T.MODULE_TEXT}[kind]
        self.x0 = x0
        title = text_item(self.detail, title_font, T.LOSS if spec.loss else title_colour, spec.title)
        title.setPos(PAD, (CAPTION_H - title.boundingRect().height()) / 2 + 2)
        if spec.shape:
            shape = text_item(self.detail, f_caption, T.TEXT_FAINT, spec.shape)
            shape.setPos(w - PAD - shape.boundingRect().width(), (CAPTION_H - shape.boundingRect().height()) / 2 + 2)
        if spec.loss:                                   # a tab on the top edge says which node is the loss
            tab_text = text_item(None, metrics.fonts[6], T.ON_ACCENT, "loss")
            br = tab_text.boundingRect()
            tw, th = br.width() + 12, br.height() + 2
            tp = QtGui.QPainterPath()
            tp.addRoundedRect(QtCore.QRectF(0, 0, tw, th), th / 2, th / 2)
            tab = self.loss_tab = QtWidgets.QGraphicsPathItem(tp, self.root)
            tab.setPen(Qt.PenStyle.NoPen)
            tab.setBrush(QtGui.QColor(T.LOSS))
            tab.setPos(w - tw - 10, -th / 2 - 1)
            tab_text.setParentItem(tab)
            tab_text.setPos(6, 1)

        # Zoomed out, the detail hides and the node shows only its name (an op its symbol), large.
        overview = spec.symbol if kind == "op" and spec.symbol else spec.title
        fm = QtGui.QFontMetricsF(metrics.fonts[7])
        overview = fm.elidedText(overview, Qt.TextElideMode.ElideRight, w - 2 * PAD)
        self.overview = None
        if overview and overview != "…":
            colour = title_colour if kind != "op" else T.TEXT_MUTED if data_op else T.OP_SYMBOL_TEXT
            self.overview = text_item(self.root, metrics.fonts[7], T.LOSS if spec.loss else colour, overview)
            br = self.overview.boundingRect()
            self.overview.setPos((w - br.width()) / 2, (h - br.height()) / 2)
            self.overview.setVisible(False)

        self.value = self._row(x0, ROWS_Y, f_mono, T.TEXT, spec.heat)
        self.grad = self._row(x0, ROWS_Y + row_h + 1, f_mono, T.BACKWARD, spec.heat) if spec.grad_row else None

        self.badge = self.badge_text = None
        if spec.badge:
            self.badge = QtWidgets.QGraphicsPathItem(self.detail)
            self.badge.setPos(0, h + BADGE_GAP)
            self.badge_text = BadgeText(metrics, self.badge)
            self._badge_key = None
        self.texts: dict[str, str] = {}
        self.images: dict[str, object] = {}          # row -> the array its heat map shows
        self.selection = QtWidgets.QGraphicsPathItem(self.root)
        sp = QtGui.QPainterPath()
        sp.addRoundedRect(QtCore.QRectF(-3, -3, w + 6, h + 6), radius + 3, radius + 3)
        self.selection.setPath(sp)
        dashed = pen(T.TEXT, 1.4)
        dashed.setStyle(Qt.PenStyle.DashLine)
        self.selection.setPen(dashed)
        self.selection.setVisible(False)
        self._look = None
        self._value_sig = self._badge_sig = (object(),)
        self._grad_sig = object()

    def set_lod(self, level: int) -> None:
        """What shows at a zoom: 2 = everything, 1 = only the name (or op symbol), 0 = only the box
        (see ``GraphView.lod_level``)."""
        self.detail.setVisible(level == 2)
        for item in (self.symbol_bg, self.loss_tab):
            if item is not None:
                item.setVisible(level == 2)
        if self.overview is not None:
            self.overview.setVisible(level == 1)

    def _row(self, x, y, font, colour, heat):
        if heat:
            pix = QtWidgets.QGraphicsPixmapItem(self.detail)
            pix.setTransformationMode(Qt.TransformationMode.FastTransformation)
            pix.setPos(x, y + (HEAT_ROW_H - HEAT_H) / 2)
            frame = QtWidgets.QGraphicsRectItem(QtCore.QRectF(0, 0, HEAT_W, HEAT_H), pix)
            frame.setPen(pen(T.INPUT_BORDER, 0.8))
            label = text_item(self.detail, font, colour)
            label.setPos(x + HEAT_W + 6, y + (HEAT_ROW_H - self.metrics.line_h) / 2)
            pix.setVisible(False)
            return pix, label
        label = text_item(self.detail, font, colour)
        label.setPos(x, y)
        return None, label

    # -- updates ----------------------------------------------------------------------------------
    def _set_text(self, item, key, text, colour=None):
        if self.texts.get(key) != text:
            self.texts[key] = text
            item.setText(text)
        if colour is not None and self.texts.get(key + ".c") != colour:
            self.texts[key + ".c"] = colour
            item.setBrush(QtGui.QColor(colour))

    def _set_row(self, row, key, a, prefix, colour, empty=""):
        pix, label = row
        if a is None:
            if pix is not None:
                pix.setVisible(False)
            self._set_text(label, key, empty, colour)
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
            self._set_text(label, key, prefix + text.mean_text(a), colour)
        else:
            self._set_text(label, key, text.indent(prefix, text.value_text(a)), colour)

    def update(self, ns: NodeState, active: bool, kind: str, selected: bool) -> None:
        """Border, glow and selection for ``ns`` (a NodeState, or a FoldedState for a module box) at an
        event of ``kind`` (``Frame.event_kind``); these change at once, the text in ``update_detail``."""
        spec = self.spec
        state = ns.state
        # border and glow
        halo = None
        if active:
            if kind == "zero_grad":
                halo, border = T.ZERO, "zero"
            elif kind == "step":
                halo, border = T.STEP, "step"
            elif state == "backward":
                halo, border = T.BACKWARD, "backward"
            else:
                halo, border = T.FORWARD, "forward"
        elif state == "backward_done" and self.pens["backward_done"] is not None:
            border = "backward_done"
        else:
            border = "base"
        faded = state == "idle" and not active and spec.kind == "op"
        look = (border, halo, faded, selected)
        if look != self._look:
            self._look = look
            self.root.setPen(self.pens[border])
            if halo != self.halo_colour:
                self.halo_colour = halo
                for item, alpha in self.halos:
                    item.setVisible(halo is not None)
                    if halo is not None:
                        item.setPen(QtGui.QPen(T.colour(halo, alpha), 4.0))
            self.root.setOpacity(T.IDLE_ALPHA if faded else 1.0)
            self.selection.setVisible(selected)

    def update_detail(self, ns, active: bool, kind: str) -> None:
        """Values, gradients and the badge: the costly part, which the view defers while the node is
        not on screen.  Each part is skipped when what it shows is unchanged (compared by identity:
        frames share unchanged arrays)."""
        spec = self.spec
        value = ns.value
        stepped = spec.kind == "param" and ns.param_before is not None and ns.stepped
        sig = (value, ns.param_before if stepped else None)
        if not same(sig, self._value_sig):
            self._value_sig = sig
            if stepped:
                if spec.heat:
                    self._set_row(self.value, "value", value, "", T.STEP)
                    self._set_text(self.value[1], "value", text.step_heat_text(ns.param_before, value), T.STEP)
                else:
                    self._set_text(self.value[1], "value", text.step_text(ns.param_before, value), T.STEP)
            else:
                missing = "" if spec.kind in ("op", "module") else f"{spec.shape or 'scalar'} (value not recorded)"
                self._set_row(self.value, "value", value, "= " if spec.kind == "op" and not spec.heat else "",
                              T.TEXT if spec.kind != "input" else T.TEXT_MUTED, empty=missing)
        if self.grad is not None and ns.grad is not self._grad_sig:
            self._grad_sig = ns.grad
            self._set_row(self.grad, "grad", ns.grad, "∇ ", T.BACKWARD)
        if self.badge is not None:
            highlight = active and kind in ("accumulate", "zero_grad")
            sig = (ns.grad_badge, ns.accumulation, ns.cleared, highlight, getattr(ns, "param_grads", None))
            if not same(sig, self._badge_sig):
                self._badge_sig = sig
                self._update_badge(ns, highlight)

    def _update_badge(self, ns, highlight: bool) -> None:
        if self.spec.kind == "module":
            badge = text.folded_badge_text(ns.param_grads)
            style = "none" if all(g is None for _name, g in ns.param_grads) else "grad"
        else:
            badge = text.badge_text(ns, self.spec.heat, self.metrics.badge_chars(self.spec.width))
            if ns.grad_badge is None and ns.accumulation is None:
                style = "none"
            elif ns.cleared == "zeros":
                style = "zero"
            else:
                style = "grad"
        key = (badge, style, highlight)
        if key == self._badge_key:
            return
        self._badge_key = key
        fill, border, colour = {
            "none": (T.BADGE_FILL, T.INPUT_BORDER, T.TEXT_FAINT),
            "zero": (T.ZERO_SOFT, T.ZERO, T.ZERO),
            "grad": (T.BACKWARD_SOFT, T.BACKWARD, T.GRAD_TEXT),
        }[style]
        if highlight:
            fill = T.ZERO_SOFT if style != "grad" else T.GRAD_HIGHLIGHT
        tw, bh = self.badge_text.set(badge, colour, border)
        bw = max(tw, min(64.0, self.spec.width))
        path = QtGui.QPainterPath()
        path.addRoundedRect(QtCore.QRectF(0, 0, bw, bh), 7, 7)
        self.badge.setPath(path)
        self.badge.setPos((self.spec.width - bw) / 2, self.spec.body_h + BADGE_GAP)
        self.badge.setBrush(QtGui.QColor(fill))
        outline = pen(border, 2.0 if highlight else 1.0)
        if style == "none":
            outline.setStyle(Qt.PenStyle.DashLine)
        self.badge.setPen(outline)


def same(a: tuple, b: tuple) -> bool:
    return len(a) == len(b) and all(x is y for x, y in zip(a, b))


class BadgeText:
    """The text of a ``.grad`` badge, one item per line with a little extra leading.  An accumulation
    reads like a sum written on paper: ``grad: old`` / ``+ new``, a rule, then ``= sum`` in bold.
    ``text()`` is the whole text, lines joined by newlines."""

    def __init__(self, metrics: Metrics, parent):
        self.metrics = metrics
        self.parent = parent
        self.items: list[QtWidgets.QGraphicsSimpleTextItem] = []
        self.rule = QtWidgets.QGraphicsPathItem(parent)
        self.rule.setVisible(False)
        self._text = ""

    def text(self) -> str:
        return self._text

    def set(self, badge: str, colour: str, rule_colour: str) -> tuple[float, float]:
        """Show ``badge``; returns the badge's size (padding included), as ``Metrics.badge_size``."""
        self._text = badge
        lines = badge.split("\n")
        metrics = self.metrics
        while len(self.items) < len(lines):
            self.items.append(text_item(self.parent, metrics.fonts[4], colour))
        for i, item in enumerate(self.items):
            item.setVisible(i < len(lines))
        y = BADGE_PAD_Y
        sum_at = text.sum_start(lines)
        brush = QtGui.QColor(colour)
        for i, line in enumerate(lines):
            item = self.items[i]
            summed = sum_at is not None and i >= sum_at
            if i == sum_at:
                y += BADGE_RULE_GAP
            item.setFont(metrics.badge_bold if summed else metrics.fonts[4])
            item.setText(line)
            item.setBrush(brush)
            item.setPos(BADGE_PAD_X, y)
            y += metrics.badge_line_h + BADGE_LINE_GAP
        w, h = metrics.badge_size(badge)
        if sum_at is not None:
            op = lines[sum_at]
            x0 = BADGE_PAD_X + (len(op) - len(op.lstrip())) * metrics.badge_char_w
            ry = self.items[sum_at].pos().y() - BADGE_RULE_GAP / 2 - BADGE_LINE_GAP / 2
            path = QtGui.QPainterPath(QtCore.QPointF(x0, ry))
            path.lineTo(w - BADGE_PAD_X, ry)
            self.rule.setPath(path)
            self.rule.setPen(pen(rule_colour, 0.9))
        self.rule.setVisible(sum_at is not None)
        return w, h


CACHE = QtWidgets.QGraphicsItem.CacheMode.DeviceCoordinateCache
NO_CACHE = QtWidgets.QGraphicsItem.CacheMode.NoCache


def text_item(parent, font, colour, label: str = "") -> QtWidgets.QGraphicsSimpleTextItem:
    """A text item cached as a pixmap at device resolution: repaints blit it instead of laying out glyphs."""
    item = QtWidgets.QGraphicsSimpleTextItem(label, parent)
    item.setFont(font)
    item.setBrush(QtGui.QColor(colour))
    item.setCacheMode(CACHE)
    return item


def container(parent) -> QtWidgets.QGraphicsPathItem:
    """An invisible parent for items that are shown or hidden together (level of detail)."""
    item = QtWidgets.QGraphicsPathItem(parent)
    item.setFlag(QtWidgets.QGraphicsItem.GraphicsItemFlag.ItemHasNoContents)
    return item


def pen(colour: str, width: float) -> QtGui.QPen:
    p = QtGui.QPen(QtGui.QColor(colour), width)
    p.setCosmetic(False)
    p.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    p.setCapStyle(Qt.PenCapStyle.RoundCap)
    return p


class EdgeGfx:
    """An edge: a curve through the layout's route, an arrow head, and a gradient label."""

    def __init__(self, key, points, font: QtGui.QFont, label_chars: int, pens: dict, seat=None):
        self.key = key
        self.pens = pens
        self.points = None
        self.lines = []                 # the path items of the edge's own line (they know its key)
        self.seat = seat                # on a bus (bus.py): its branch in ``lines``, its stretch of
        self.trunk = []                 # the bus's trunk (and the source's, if it draws it) here
        self.head = QtWidgets.QGraphicsPolygonItem()
        self.head.setZValue(1)
        self.head.setPen(Qt.PenStyle.NoPen)
        self.label_pos = QtCore.QPointF()
        self._style = None
        self._route(points)
        self.line = self.lines[0]
        self.label = QtWidgets.QGraphicsPathItem()
        self.label.setZValue(20)
        self.label.setPen(pen(T.BACKWARD, 1.4))
        self.label.setBrush(QtGui.QColor(T.EDGE_LABEL_BG))
        self.label_text = text_item(self.label, font, T.BACKWARD)
        self.label.setVisible(False)
        self.label_chars = label_chars
        self.want_label = False
        self._text = None

    def items(self):
        return (*self.lines, *self.trunk, self.head, self.label)

    def rekey(self, key) -> None:
        """The edge now joins boxes known by other keys (a module folded or unfolded elsewhere)."""
        self.key = key
        for line in self.lines:
            line.setData(1, key)

    def set_points(self, points, seat=None) -> list:
        """Follow a new route (after a relayout) with the same items; returns line items it had to add
        (the caller puts them in the scene) -- a route keeps its number of points unless the graph changed.
        ``seat``: its place on a bus (``bus.plan``), or None."""
        if points == self.points and seat == self.seat:
            if seat is not None and seat.bus is not self.seat.bus:      # the same geometry, planned again
                self.seat = seat
                seat.bus.attach(seat, self.trunk[0], self.trunk[1] if seat.root else None, self._style)
            return []
        self.seat = seat
        return self._route(points)

    def _paths(self, points) -> list:
        if self.seat is not None:
            return [self.seat.branch()]
        # A long edge is drawn in pieces: a path far longer than the screen would be stroked whole on
        # every repaint that touches any part of it; pieces outside the view are skipped.
        paths = []
        for start in range(0, len(points) - 1, EDGE_PIECE):
            piece = points[start:start + EDGE_PIECE + 1]
            path = QtGui.QPainterPath(QtCore.QPointF(*piece[0]))
            for (x0, y0), (x1, y1) in itertools.pairwise(piece):
                mx = (x0 + x1) / 2
                path.cubicTo(mx, y0, mx, y1, x1, y1)
            paths.append(path)
        return paths

    def _route(self, points) -> list:
        self.points = points
        added, n = [], 0
        for path in self._paths(points):
            if n < len(self.lines):
                self.lines[n].setPath(path)
            else:
                line = QtWidgets.QGraphicsPathItem(path)
                line.setZValue(1)
                line.setData(1, self.key)    # the edge under the mouse (its formula's tooltip: edge_hover.py)
                if self.lines:
                    line.setPen(self.lines[0].pen())
                self.lines.append(line)
                added.append(line)
            n += 1
        for line in self.lines[n:]:          # a shorter route: drop the pieces it no longer needs
            if line.scene() is not None:
                line.scene().removeItem(line)
        del self.lines[n:]
        added += self._route_trunk()
        ex, ey = points[-1]
        self.head.setPolygon(QtGui.QPolygonF([QtCore.QPointF(ex + 1, ey), QtCore.QPointF(ex - 8, ey - 4.5),
                                              QtCore.QPointF(ex - 8, ey + 4.5)]))
        if self.seat is not None:
            self.label_pos = self.seat.label_pos()
        else:
            (x0, y0), (x1, y1) = points[0], points[1]
            self.label_pos = QtCore.QPointF((x0 + x1) / 2, (y0 + y1) / 2)
        if getattr(self, "label", None) is not None:
            self.label.setPos(self.label_pos)
        return added

    def _route_trunk(self) -> list:
        """Its stretch of its bus's trunk (and the source's stretch, if it draws it), or none."""
        seat = self.seat
        paths = [] if seat is None else [seat.stretch()] + ([seat.root_path()] if seat.root else [])
        added = []
        for i, path in enumerate(paths):
            if i < len(self.trunk):
                self.trunk[i].setPath(path)
            else:
                item = QtWidgets.QGraphicsPathItem(path)
                item.setZValue(1)
                self.trunk.append(item)
                added.append(item)
        for item in self.trunk[len(paths):]:
            if item.scene() is not None:
                item.scene().removeItem(item)
        del self.trunk[len(paths):]
        if seat is not None:
            seat.bus.attach(seat, self.trunk[0], self.trunk[1] if seat.root else None, self._style)
        return added

    def update(self, es: EdgeState, active: bool, lod_detail: bool) -> None:
        state = es.state
        style = (state, active)
        if style != self._style:
            self._style = style
            line_pen, colour = self.pens[(state, active)]
            for line in self.lines:
                line.setPen(line_pen)
            self.head.setBrush(colour)
            if self.seat is not None:
                self.seat.bus.set_style(self.seat.side, self.seat.index, style)
        # The label shows while the gradient travels along the edge; afterwards the edge stays orange
        # and the numbers live on in the nodes' ∇ rows and .grad badges (columns are too close to keep
        # a label on every edge legible).
        show = es.grad is not None and active and state == "backward"
        if show:
            label = "∇ " + text.edge_label(es.grad, self.label_chars)
            if label != self._text:
                self._text = label
                self.label_text.setText(label)
                br = self.label_text.boundingRect()
                w, h = br.width() + 10, br.height() + 2
                p = QtGui.QPainterPath()
                p.addRoundedRect(QtCore.QRectF(-w / 2, -h / 2, w, h), h / 2, h / 2)
                self.label.setPath(p)
                self.label_text.setPos(-br.width() / 2, -br.height() / 2)
                self.label.setPos(self.label_pos)
        self.want_label = show
        self.label.setVisible(show and lod_detail)


def edge_pens() -> dict:
    """(state, active) -> (pen, colour) of an edge's line and arrow head."""
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
            pens[(state, active)] = (pen(c, w), QtGui.QColor(c))
    return pens
