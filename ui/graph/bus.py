"""A wide fan-out drawn as a bus: one trunk from the source with a short branch to each target.

A leaf read by every micro-batch (``w`` and ``b`` of the most micro-batches file: 222 each) fans out
to a whole column of boxes in the next layer. Drawn as one curve per edge, the curves lie on top of
each other along the column: every repaint stroked all 444 of them whatever part was in view (a band
of orange 20 px wide; 22-46 ms a paint while playing). As a bus, each stretch of the trunk is drawn
once, and only the stretches and branches in view are painted.

The trunk between two branches carries the edges of the branches beyond it, so it shows the
"strongest" of their states (the active edge first, then backward over forward, running over done):
while micro-batch 74's gradient travels back to ``w``, the trunk is lit from its box to ``w``.

Every stretch of trunk belongs to one member edge (``EdgeGfx.trunk``), so the view adds, moves and
removes it with that edge's items; no item overrides ``paint`` (see ``items.py``).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from PySide6 import QtCore, QtGui

BUS_MIN = 8          # edges from one source to the next layer: from this many on, they form a bus
BEND = 14.0          # radius of a branch's turn off the trunk (scene units)
KAPPA = 0.5523       # a quarter circle as a cubic

# how strong a state is on a shared trunk (active: + ACTIVE)
STRENGTH = {"idle": 0, "forward_done": 1, "forward": 2, "backward_done": 3, "backward": 4}
ACTIVE = 10
NO_STYLE = ("idle", False)


def strength(style) -> int:
    if style is None:
        return -1
    state, active = style
    return STRENGTH.get(state, 0) + (ACTIVE if active else 0)


@dataclass(frozen=True)
class Seat:
    """Where one member edge sits on its bus, and the geometry it draws (compared to reuse items)."""

    bus: Bus = field(compare=False, repr=False)
    side: int                  # +1: below the source, -1: above it
    index: int                 # 0: the branch nearest the source on its side
    x0: float                  # the source's port
    y0: float
    xt: float                  # the trunk's x
    y_from: float              # this member's stretch of trunk: from here ...
    y_end: float               # ... to here
    x1: float                  # the target's port
    y1: float
    r: float                   # the branch's turn
    root: bool                 # this member draws the stretch from the source to the trunk

    def branch(self) -> QtGui.QPainterPath:
        xt, y1, r, s = self.xt, self.y1, self.r, self.side
        if r < 0.5:
            path = QtGui.QPainterPath(QtCore.QPointF(xt, y1))
        else:
            path = QtGui.QPainterPath(QtCore.QPointF(xt, y1 - s * r))
            path.cubicTo(xt, y1 - s * r * (1 - KAPPA), xt + r * KAPPA, y1, xt + r, y1)
        path.lineTo(self.x1, y1)
        return path

    def stretch(self) -> QtGui.QPainterPath:
        path = QtGui.QPainterPath(QtCore.QPointF(self.xt, self.y_from))
        path.lineTo(self.xt, self.y_end)
        return path

    def root_path(self) -> QtGui.QPainterPath:
        path = QtGui.QPainterPath(QtCore.QPointF(self.x0, self.y0))
        path.lineTo(self.xt, self.y0)
        return path

    def label_pos(self) -> QtCore.QPointF:
        return QtCore.QPointF((self.xt + self.r + self.x1) / 2, self.y1)


class Bus:
    """The trunk's stretches of one source's fan-out and the state each shows: a stretch shows the
    strongest state of the edges beyond it (kept incrementally as members change)."""

    def __init__(self, pens: dict, sizes: dict):
        self.pens = pens
        self.strength = {side: [-1] * n for side, n in sizes.items()}     # each member's own
        self.shown = {side: [-1] * n for side, n in sizes.items()}        # each stretch's
        self.stretches = {side: [None] * n for side, n in sizes.items()}
        self.root = None
        self.root_shown = None
        self._styles = {strength(None): NO_STYLE}

    def attach(self, seat: Seat, stretch, root, style) -> None:
        """``seat``'s member draws ``stretch`` (and ``root``, the source's stretch) with ``style`` now."""
        self.stretches[seat.side][seat.index] = stretch
        self._pen(stretch, self.shown[seat.side][seat.index])
        if root is not None:
            self.root = root
            self.root_shown = None
            self._restyle_root()
        self.set_style(seat.side, seat.index, style)

    def set_style(self, side: int, index: int, style) -> None:
        s = strength(style)
        self._styles[s] = style if style is not None else NO_STYLE
        own, shown, items = self.strength[side], self.shown[side], self.stretches[side]
        if own[index] == s:
            return
        own[index] = s
        beyond = shown[index + 1] if index + 1 < len(shown) else -1
        for i in range(index, -1, -1):          # towards the source, while the stretches change
            new = max(own[i], beyond)
            if new == shown[i]:
                return
            shown[i] = new
            if items[i] is not None:
                self._pen(items[i], new)
            beyond = new
        self._restyle_root()

    def style_of(self, side: int, index: int):
        """The (state, active) the stretch ``index`` of ``side`` shows."""
        return self._styles[self.shown[side][index]]

    def root_style(self):
        return self._styles[self._root_strength()]

    def _root_strength(self) -> int:
        return max((shown[0] for shown in self.shown.values() if shown), default=-1)

    def _restyle_root(self) -> None:
        if self.root is None:
            return
        s = self._root_strength()
        if s != self.root_shown:
            self.root_shown = s
            self._pen(self.root, s)

    def _pen(self, item, s: int) -> None:
        item.setPen(self.pens[self._styles.get(s, NO_STYLE)][0])


def plan(routes: dict, pens: dict) -> dict:
    """edge key -> ``Seat`` for the edges drawn as a bus: those from one source straight to the next
    layer (a two-point route), from ``BUS_MIN`` of them on. ``routes``: key -> [port, ..., port]."""
    by_source: dict = {}
    for key, points in routes.items():
        if len(points) == 2:
            by_source.setdefault(key[0], []).append(key)
    seats = {}
    for keys in by_source.values():
        if len(keys) < BUS_MIN:
            continue
        x0, y0 = routes[keys[0]][0]
        x_in = min(routes[k][-1][0] for k in keys)
        if x_in - x0 < 2 * BEND:
            continue
        xt = x0 + (x_in - x0) / 2
        below = sorted((k for k in keys if routes[k][-1][1] >= y0), key=lambda k: routes[k][-1][1])
        above = sorted((k for k in keys if routes[k][-1][1] < y0), key=lambda k: -routes[k][-1][1])
        sides = {side: members for side, members in ((1, below), (-1, above)) if members}
        bus = Bus(pens, {side: len(members) for side, members in sides.items()})
        root_key = (below or above)[0]
        for side, members in sides.items():
            y_from = y0
            for i, key in enumerate(members):
                x1, y1 = routes[key][-1]
                r = min(BEND, abs(y1 - y0), x1 - xt)
                y_end = y1
                if i == len(members) - 1:         # the last branch: the trunk ends where it turns
                    y_end = max(y_from, y1 - r) if side > 0 else min(y_from, y1 + r)
                seats[key] = Seat(bus, side, i, x0, y0, xt, y_from, y_end, x1, y1, r, key == root_key)
                y_from = y1
    return seats
