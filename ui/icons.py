"""The transport toolbar's icons, drawn with QPainter so that they form one set.

The platform's standard pixmaps have no "to start"/"to end" of the right kind and mix styles (a
media seek next to a plain arrow), so every transport button is drawn here, on a 24-unit grid, in
one colour:

    step (one event)   ▶|       phase (next phase)   ▶▶       end of the iteration   ▶▶|
    iteration          ↻ (one more turn of the training loop)  play ▶   pause ❚❚

The backward versions are mirror images. An icon is drawn when Qt asks for it, at the size and
device pixel ratio of the screen (crisp on a high-dpi screen) and in the current theme's colour.
"""
from __future__ import annotations

import math

from PySide6 import QtCore, QtGui

from . import theme as T

GRID = 24.0
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


def paint(painter: QtGui.QPainter, rect: QtCore.QRectF, name: str, colour: str) -> None:
    """Draw ``name`` into ``rect`` with ``painter``: vector paths, crisp at any device pixel ratio."""
    painter.save()
    painter.setRenderHint(QtGui.QPainter.RenderHint.Antialiasing)
    side = min(rect.width(), rect.height())
    painter.translate(rect.x() + (rect.width() - side) / 2, rect.y() + (rect.height() - side) / 2)
    painter.scale(side / GRID, side / GRID)
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
    painter.restore()


def draw(name: str, size: int, colour: str | None = None, ratio: float = 1.0) -> QtGui.QPixmap:
    """``name``'s icon as a ``size``×``size`` (device-independent) pixmap at device pixel ratio
    ``ratio``, transparent around the shape, in ``colour`` (default: the theme's muted text)."""
    pixels = max(1, round(size * ratio))
    pixmap = QtGui.QPixmap(pixels, pixels)
    pixmap.fill(QtCore.Qt.GlobalColor.transparent)
    painter = QtGui.QPainter(pixmap)
    paint(painter, QtCore.QRectF(0, 0, pixels, pixels), name, colour or T.TEXT_MUTED)
    painter.end()
    pixmap.setDevicePixelRatio(ratio)
    return pixmap


def _colour(mode: QtGui.QIcon.Mode) -> str:
    return T.TEXT_FAINT if mode == QtGui.QIcon.Mode.Disabled else T.TEXT_MUTED


class _Engine(QtGui.QIconEngine):
    """Draws the icon when Qt asks, at the size and device pixel ratio asked for and in the current
    theme's colour: crisp on a high-dpi screen, and right after a light/dark switch without the
    toolbar having to set its icons again."""

    def __init__(self, name: str):
        super().__init__()
        self.name = name

    def paint(self, painter, rect, mode, state) -> None:
        paint(painter, QtCore.QRectF(rect), self.name, _colour(mode))

    def pixmap(self, size, mode, state) -> QtGui.QPixmap:
        # Qt asks in device pixels (the logical size times the screen's ratio) and sets the ratio on
        # the pixmap it returns, so drawing at ``size`` is drawing at full resolution
        side = min(size.width(), size.height())
        key = (self.name, side, mode == QtGui.QIcon.Mode.Disabled, T.scheme())
        if key not in _pixmaps:
            if len(_pixmaps) > 512:
                _pixmaps.clear()
            _pixmaps[key] = draw(self.name, side, _colour(mode))
        return QtGui.QPixmap(_pixmaps[key])

    def clone(self) -> QtGui.QIconEngine:
        return _Engine(self.name)


_pixmaps: dict[tuple, QtGui.QPixmap] = {}
_cache: dict[str, QtGui.QIcon] = {}


def icon(name: str) -> QtGui.QIcon:
    """The transport icon ``name`` (one of ``NAMES``), drawn on demand at any size and pixel ratio."""
    if name not in NAMES:
        raise KeyError(name)
    if name not in _cache:
        _cache[name] = QtGui.QIcon(_Engine(name))
    return _cache[name]
