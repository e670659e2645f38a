"""The transport toolbar's icons, drawn once with QPainter so that they form one set.

The platform's standard pixmaps have no "to start"/"to end" of the right kind and mix styles (a
media seek next to a plain arrow), so every transport button is drawn here, on a 24-unit grid, in
one colour:

    step (one event)   ▶|       phase (next phase)   ▶▶       end of the iteration   ▶▶|
    iteration          ↻ (one more turn of the training loop)  play ▶   pause ❚❚

The backward versions are mirror images.
"""
from __future__ import annotations

import math

from PySide6 import QtCore, QtGui

from . import theme as T

GRID = 24.0
SIZES = (16, 20, 24, 32, 48)
NAMES = ("play", "pause", "step_forward", "step_back", "next_phase", "prev_phase", "to_end", "to_start",
         "next_iteration", "prev_iteration")


def _triangle(x: float, width: float, top: float = 6.0, bottom: float = 18.0) -> QtGui.QPainterPath:
    path = QtGui.QPainterPath()
    path.addPolygon(QtGui.QPolygonF([QtCore.QPointF(x, top), QtCore.QPointF(x + width, (top + bottom) / 2),
                                     QtCore.QPointF(x, bottom), QtCore.QPointF(x, top)]))
    return path


def _bar(x: float, width: float = 2.6, top: float = 6.0, bottom: float = 18.0) -> QtGui.QPainterPath:
    path = QtGui.QPainterPath()
    path.addRoundedRect(QtCore.QRectF(x, top, width, bottom - top), 0.8, 0.8)
    return path


def _loop_arrow() -> tuple[QtGui.QPainterPath, QtGui.QPainterPath]:
    """A clockwise circular arrow (↻), open at the top: the arc (stroked) and its head (filled)."""
    start, sweep = 55.0, -270.0            # Qt's angles turn anticlockwise: a negative sweep is clockwise
    arc = QtGui.QPainterPath()
    box = QtCore.QRectF(5.0, 5.5, 14.0, 14.0)
    arc.arcMoveTo(box, start)
    arc.arcTo(box, start, sweep)
    end = arc.currentPosition()
    theta = math.radians(start + sweep)
    along = QtCore.QPointF(math.sin(theta), math.cos(theta))     # clockwise tangent, y pointing down
    across = QtCore.QPointF(-along.y(), along.x())
    head = QtGui.QPainterPath()
    head.addPolygon(QtGui.QPolygonF([end + along * 5.5, end + across * 4.0 - along * 1.5,
                                     end - across * 4.0 - along * 1.5, end + along * 5.5]))
    return arc, head


def _shapes(name: str) -> tuple[list[QtGui.QPainterPath], list[QtGui.QPainterPath]]:
    """(filled paths, stroked paths) of the forward version of ``name``."""
    base = name.replace("back", "forward").replace("prev", "next").replace("to_start", "to_end")
    if base == "play":
        return [_triangle(7.0, 12.0, 4.5, 19.5)], []
    if base == "pause":
        return [_bar(6.5, 4.0, 5.0, 19.0), _bar(13.5, 4.0, 5.0, 19.0)], []
    if base == "step_forward":
        return [_triangle(6.0, 9.5), _bar(16.0)], []
    if base == "next_phase":
        return [_triangle(3.5, 8.5), _triangle(12.0, 8.5)], []
    if base == "to_end":
        return [_triangle(2.5, 7.5), _triangle(10.0, 7.5), _bar(18.2)], []
    if base == "next_iteration":
        arc, head = _loop_arrow()
        return [head], [arc]
    raise KeyError(name)


def _mirrored(name: str) -> bool:
    return any(word in name for word in ("back", "prev", "to_start"))


def draw(name: str, size: int, colour: str = T.TEXT_MUTED) -> QtGui.QPixmap:
    """``name``'s icon as a ``size``×``size`` pixmap (transparent background)."""
    pixmap = QtGui.QPixmap(size, size)
    pixmap.fill(QtCore.Qt.GlobalColor.transparent)
    painter = QtGui.QPainter(pixmap)
    painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    painter.scale(size / GRID, size / GRID)
    if _mirrored(name):
        painter.translate(GRID, 0)
        painter.scale(-1, 1)
    filled, stroked = _shapes(name)
    painter.setPen(QtCore.Qt.PenStyle.NoPen)
    painter.setBrush(QtGui.QColor(colour))
    for path in filled:
        painter.drawPath(path)
    pen = QtGui.QPen(QtGui.QColor(colour), 2.6)
    pen.setCapStyle(QtCore.Qt.PenCapStyle.RoundCap)
    painter.setPen(pen)
    painter.setBrush(QtCore.Qt.BrushStyle.NoBrush)
    for path in stroked:
        painter.drawPath(path)
    painter.end()
    return pixmap


_cache: dict[str, QtGui.QIcon] = {}


def icon(name: str) -> QtGui.QIcon:
    """The transport icon ``name`` (one of ``NAMES``), drawn at every toolbar size once per process."""
    if name not in _cache:
        result = QtGui.QIcon()
        for size in SIZES:
            result.addPixmap(draw(name, size))
        _cache[name] = result
    return _cache[name]
