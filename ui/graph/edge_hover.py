"""Hovering an edge shows the formula it carries (``gradviz.view.formulas.edge_formula``) as a tooltip:
the gradient its head sent back to its tail, with this iteration's numbers, or before backward the
forward formula of the op it feeds."""
from __future__ import annotations

import html

from PySide6 import QtCore, QtGui, QtWidgets

from gradviz.view.formulas import edge_formula

HIT_PX = 5            # how close (in screen pixels) the mouse must be to an edge's line


def edge_at(view, pos: QtCore.QPoint) -> tuple | None:
    """The displayed key ``(src, dst)`` of the edge whose line passes within ``HIT_PX`` of ``pos``."""
    scene_pt = view.mapToScene(pos)
    r = HIT_PX / max(view.transform().m11(), 1e-6)
    rect = QtCore.QRectF(scene_pt.x() - r, scene_pt.y() - r, 2 * r, 2 * r)
    stroker = QtGui.QPainterPathStroker()
    stroker.setWidth(2 * r)
    for item in view.scene().items(rect):
        key = item.data(1)
        if key is None or not isinstance(item, QtWidgets.QGraphicsPathItem):
            continue
        if stroker.createStroke(item.path()).contains(scene_pt):
            return tuple(key)
    return None


def tooltip_html(view, key) -> str | None:
    """The rich text of edge ``key``'s formula at the Player's position (None: nothing to show, e.g.
    an edge of a folded module's box or an edge backward never used)."""
    replay = view.replay
    if replay is None or key is None or min(key) < 0:
        return None
    position = view.player.position
    if not 0 <= position < len(replay):
        return None
    formula = edge_formula(replay, replay.frame(position), key[0], key[1])
    if formula is None:
        return None
    return (f"<p style='white-space:pre'><b>{html.escape(formula.title)}</b><br>{formula.symbolic_html}"
            + (f"<br>{formula.numeric_html}" if formula.numeric_html else "") + "</p>")


def show_tooltip(view, event: QtGui.QHelpEvent) -> bool:
    """Show the formula of the edge under a tooltip event; False when there is none (the view then
    handles the event as usual: a node's own tooltip)."""
    text = tooltip_html(view, edge_at(view, event.pos()))
    if not text:
        return False
    QtWidgets.QToolTip.showText(event.globalPos(), text, view.viewport())
    return True
