"""Re-colours what was built with the old palette when the theme switches between light and dark.

Plots and style sheets take their colours once, when an axis, legend, label or widget is made. On a
switch ``restyle_plots`` walks every pyqtgraph view of the application and gives each item that
wears a colour of the old palette the colour of the same name in the new one (the plot background,
axis pens and text, labels, text items, lines and curves), and ``restyle_style_sheets`` does the
same for the ``#rrggbb`` colours in widgets' style sheets; colours that are not the theme's (a
run's colour) stay. Views connected to ``theme.notifier.changed`` do the rest themselves.
"""
from __future__ import annotations

import re
import sys

from PySide6 import QtGui, QtWidgets


def colour_map(old: dict[str, str], new: dict[str, str]) -> dict[str, str]:
    """{old colour (#rrggbb): new colour} for every name of the palettes (the first name wins)."""
    mapping: dict[str, str] = {}
    for name, colour in old.items():
        if colour.startswith("#") and new.get(name, "").startswith("#"):
            mapping.setdefault(QtGui.QColor(colour).name(), new[name])
    return mapping


def _swap(colour: QtGui.QColor, mapping: dict[str, str]) -> QtGui.QColor | None:
    new = mapping.get(colour.name())
    if new is None:
        return None
    c = QtGui.QColor(new)
    c.setAlpha(colour.alpha())
    return c


def _swap_pen(pen: QtGui.QPen, mapping) -> QtGui.QPen | None:
    c = _swap(pen.color(), mapping)
    if c is None:
        return None
    pen = QtGui.QPen(pen)
    pen.setColor(c)
    return pen


def _swap_brush(brush: QtGui.QBrush, mapping) -> QtGui.QBrush | None:
    if brush.style() != QtGui.Qt.BrushStyle.SolidPattern:
        return None
    c = _swap(brush.color(), mapping)
    return None if c is None else QtGui.QBrush(c)


def restyle_plots(mapping: dict[str, str], background: str, foreground: str) -> int:
    """Re-colour every pyqtgraph view of the application by ``mapping``; new items take
    ``background``/``foreground`` as pyqtgraph's defaults. Returns how many views it touched."""
    pg = sys.modules.get("pyqtgraph")
    app = QtWidgets.QApplication.instance()
    if pg is None or app is None:
        return 0                           # no plot was ever made
    pg.setConfigOption("background", background)
    pg.setConfigOption("foreground", foreground)
    views = [w for w in app.allWidgets() if isinstance(w, pg.GraphicsView)]
    for view in views:
        restyle_view(view, mapping, pg)
    return len(views)


_HEX = re.compile(r"#[0-9a-fA-F]{6}\b")


def restyle_style_sheets(mapping: dict[str, str]) -> int:
    """Swap the palette's colours in every widget's own style sheet (and re-polish the widget:
    a widget with a style sheet does not follow a new application palette by itself)."""
    app = QtWidgets.QApplication.instance()
    if app is None:
        return 0
    count = 0
    for widget in app.allWidgets():
        sheet = widget.styleSheet()
        if not sheet:
            continue
        new = _HEX.sub(lambda m: mapping.get(m.group(0).lower(), m.group(0)), sheet)
        if new == sheet:
            widget.setStyleSheet("")          # setting the same sheet again would not re-polish
        widget.setStyleSheet(new)
        count += 1
    return count


def restyle_view(view, mapping: dict[str, str], pg) -> None:
    brush = _swap_brush(view.backgroundBrush(), mapping)
    if brush is not None:
        view.setBackground(brush.color())
    for item in view.scene().items():
        try:
            _restyle_item(item, mapping, pg)
        except (AttributeError, TypeError, RuntimeError):
            continue                       # an item of a kind we do not know: leave it as it is
    view.viewport().update()


def _restyle_item(item, mapping, pg) -> None:
    if isinstance(item, pg.AxisItem):
        pen = _swap_pen(item.pen(), mapping)
        if pen is not None:
            item.setPen(pen)
        text_pen = _swap_pen(item.textPen(), mapping)
        if text_pen is not None:
            item.setTextPen(text_pen)       # also the axis name's colour
    elif isinstance(item, pg.TextItem):
        colour = _swap(QtGui.QColor(item.color), mapping)
        if colour is not None:
            item.setColor(colour)
        fill = _swap_brush(item.fill, mapping)
        if fill is not None:
            item.fill = fill
        border = _swap_pen(item.border, mapping)
        if border is not None:
            item.border = border
        item.update()
    elif isinstance(item, pg.LabelItem):
        colour = item.opts.get("color")
        new = _swap(pg.mkColor(colour), mapping) if colour is not None else None
        if new is not None:
            item.setText(item.text, color=new.name())
    elif isinstance(item, pg.LegendItem):
        colour = _swap(pg.mkColor(item.opts.get("labelTextColor") or "k"), mapping)
        if colour is not None:
            item.setLabelTextColor(colour)
    elif isinstance(item, pg.InfiniteLine):
        pen = _swap_pen(item.pen, mapping)
        if pen is not None:
            item.setPen(pen)
    elif isinstance(item, pg.PlotCurveItem):
        pen = _swap_pen(pg.mkPen(item.opts["pen"]), mapping)
        if pen is not None:
            item.setPen(pen)
