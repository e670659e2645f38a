"""Fitting the graph to the view: the whole of it, or the opening view (``GraphView.fit``,
``GraphView.fit_to_view``)."""
from __future__ import annotations

from PySide6 import QtCore


def fit(view, whole: bool, margin: float, max_zoom: float) -> None:
    """Fit the graph to the view (``GraphView.fit``, ``fit_to_view``): whole, or at the readable zoom
    showing the loss when the whole would not read."""
    rect = view._graph_rect().adjusted(-margin, -margin, margin, margin)
    if rect.isEmpty():
        return
    top = view._top_margin()                       # keep the caption from covering the graph's top
    view.resetTransform()
    avail = QtCore.QRectF(view.viewport().rect()).adjusted(0, top, 0, 0)
    scale = min(avail.width() / rect.width(), avail.height() / rect.height(), max_zoom)
    if whole or scale >= view.readable_zoom():
        view.scale(scale, scale)
        view.centerOn(rect.center() - QtCore.QPointF(0, top / 2 / scale))
    else:
        scale = view.readable_zoom()
        view.scale(scale, scale)
        view.centerOn(_opening_centre(view, rect, avail, scale) - QtCore.QPointF(0, top / 2 / scale))
    view._apply_lod()

def _opening_centre(view, rect: QtCore.QRectF, avail: QtCore.QRectF, scale: float) -> QtCore.QPointF:
    """Where the part of the graph below the caption is centred when the graph does not fit: on
    the (first) loss, the window kept inside the drawing -- the loss is the last column, so
    this shows the right end, and the top when the loss sits high."""
    target = QtCore.QPointF(rect.right(), rect.top())
    loss = next((view._display_of.get(n) for n in view.replay.loss_nodes), None) if view.replay else None
    if loss in view.node_items:
        target = view.node_items[loss].root.sceneBoundingRect().center()
    w, h = avail.width() / scale, avail.height() / scale

    def place(centre: float, low: float, high: float, size: float) -> float:
        if size >= high - low:
            return (low + high) / 2
        return min(max(centre, low + size / 2), high - size / 2)

    return QtCore.QPointF(place(target.x(), rect.left(), rect.right(), w),
                          place(target.y(), rect.top(), rect.bottom(), h))
