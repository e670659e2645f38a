"""The costly part of a box (its values, gradients, badge: ``NodeGfx.update_detail``), drawn only when
the box shows, and a slice at a time (``GraphView.details``).

A box outside the viewport (or every box when zoomed far out) keeps its new state in
``view._pending`` (node key -> (state, active, event kind)) until it scrolls into view. A frame
update that touches many boxes on screen at once (the next iteration of a large graph: every box has
new numbers) draws text for ``DETAIL_SLICE_S`` and leaves the rest pending; a zero-interval timer
draws them a slice per event-loop turn, so the window repaints and reacts in between (issue 12:
1,281 boxes' text took 72 ms in one go). Borders and glows change at once, whatever the budget.
A slice shares its turn's budget with the turn's other deferred work (``ui/turn_budget.py``): after
the player's tick or the dashboards' jobs in the same turn it gets what they left.
"""
from __future__ import annotations

import math
import time
from contextlib import contextmanager

from PySide6 import QtCore

from ui.turn_budget import TURN

DETAIL_SLICE_S = 0.006      # text drawn per event-loop turn when many boxes on screen change at once
VIEW_MARGIN = 60            # scene units around the viewport whose boxes count as showing


class Details:
    def __init__(self, view):
        self.view = view
        self.until = math.inf                        # text is drawn at once until then (``budget``)
        self.slice_end = 0.0                         # the end of this turn's slice (``next_slice``)
        self.sliced = False                          # this turn has had its slice (until ``_turn`` fires)
        self._turn = QtCore.QTimer(view)             # fires once the loop is back: a new turn
        self._turn.setSingleShot(True)
        self._turn.setInterval(0)
        self._turn.timeout.connect(self._new_turn)
        self.timer = QtCore.QTimer(view)
        self.timer.setSingleShot(True)
        self.timer.setInterval(0)
        self.timer.timeout.connect(self._on_timer)

    @contextmanager
    def budget(self):
        """Within: a frame update's slice (``DETAIL_SLICE_S``, which it gets as ``until``): the boxes on
        screen draw their text until then, the rest in the next turns."""
        self.until = self.slice_end = TURN.deadline(DETAIL_SLICE_S)
        self._mark_turn()
        try:
            yield self.until
        finally:
            self.until = math.inf

    def update_node(self, gfx, ns, active: bool, kind: str, selected: bool) -> None:
        """Border, glow and selection now; text now if the box shows (and the budget lasts), else later."""
        view = self.view
        gfx.update(ns, active, kind, selected)
        if view._visible_rect is None:
            view._visible_rect = view.mapToScene(view.viewport().rect()).boundingRect().adjusted(
                -VIEW_MARGIN, -VIEW_MARGIN, VIEW_MARGIN, VIEW_MARGIN)
        if view.lod_detail and _shows(gfx, view._visible_rect.getCoords()):
            if time.perf_counter() < self.until:
                view._pending.pop(gfx.spec.key, None)
                gfx.update_detail(ns, active, kind)
                return
            self.timer.start()                           # on screen but over the budget: next turn
        view._pending[gfx.spec.key] = (ns, active, kind)

    def update_nodes(self, frame, dirty, active, kind, sel, until: float) -> set:
        """The boxes of the ``dirty`` nodes show ``frame``, the active ones first, until ``until``
        (perf_counter): the nodes left for the next turn."""
        view = self.view
        display_of, boxes_dirty, left = view._display_of, {}, set()
        order = sorted(dirty, key=active.__contains__, reverse=True)
        for i, nid in enumerate(order):
            key = display_of.get(nid)
            if key is None:
                continue
            if i and time.perf_counter() > until:         # the rest next turn (one set, not a loop; at
                left = {n for n in order[i:] if n in display_of}      # least one node a turn)
                break
            gfx = view.node_items.get(key)
            if gfx is None:                               # not made yet (a refold placing a slice a turn):
                continue                                  # drawn once made (``place_steps``)
            if key < 0:
                boxes_dirty.setdefault(key, []).append(nid)
            else:
                self.update_node(gfx, frame.nodes[nid], nid in active, kind, sel == nid)
            view._shown_nodes[nid] = frame.nodes[nid]
        folds = view.folded.folds
        for j, key in enumerate(boxes_dirty):            # a folded module's box: its nodes' states together
            if j and time.perf_counter() > until:         # (the optimizer's step changed all 499 of the limit
                left.update(n for k in list(boxes_dirty)[j:] for n in boxes_dirty[k])    # graph's: 32 ms)
                break
            fold = folds[key]
            self.update_node(view.node_items[key], fold.state_at(frame), fold.is_active(frame), kind,
                             sel is not None and display_of.get(sel) == key)
        return left

    def flush(self, everything: bool = False, until: float = math.inf, one: bool = False) -> bool:
        """Draw the pending text of the boxes that show (``everything``: of all boxes, e.g. before an
        export) until ``until`` (perf_counter), at least ``one`` box; True when some are left for
        the next turn."""
        view = self.view
        pending = view._pending
        if not pending:
            return False
        view._visible_rect = None
        if not everything and not view.lod_detail:
            return False
        coords = view.mapToScene(view.viewport().rect()).boundingRect().adjusted(
            -VIEW_MARGIN, -VIEW_MARGIN, VIEW_MARGIN, VIEW_MARGIN).getCoords()
        items = view.node_items
        for key in list(pending):
            gfx = items.get(key)
            if gfx is None:
                del pending[key]
                continue
            if everything or _shows(gfx, coords):
                if time.perf_counter() >= until and not one:
                    return True
                one = False
                gfx.update_detail(*pending.pop(key))
        return False

    def flush_node(self, node_id: int) -> None:
        view = self.view
        key = view._display_of.get(node_id)
        if key in view._pending:
            view.node_items[key].update_detail(*view._pending.pop(key))

    def show_pending(self, everything: bool = False) -> None:
        """The pending text of every box at once (``everything``: an export), else of the boxes that
        show, a slice per turn (``next_slice``)."""
        if everything:
            self.flush(True)
        else:
            self.next_slice()

    def next_slice(self) -> None:
        """Draw the pending text of boxes that show, the rest in the next turns: boxes a scroll, zoom
        or resize brings into view (playing follows the active box: 64 boxes' text and heat maps at
        once took 34 ms of a 68-ms turn on the largest expression). One turn's calls share a slice:
        ``centerOn`` scrolls twice, a fit a dozen times, each of which asked for a slice of its own.
        Within a frame update's ``budget`` (playing follows the active box), the budget's slice: a
        scroll after it began a second slice of 10 ms in the same turn. A slice that is over is not
        renewed until the loop has come back (``sliced``): a fit that took longer than the slice
        between two of its scrolls drew 38 ms of text in one turn, a new slice at each."""
        end = self.until
        if end == math.inf:
            now = time.perf_counter()
            if now >= self.slice_end and not self.sliced:
                self.slice_end = TURN.deadline(DETAIL_SLICE_S)
                self._mark_turn()
            end = self.slice_end
        if self.flush(until=end):
            self.timer.start()

    def _mark_turn(self) -> None:
        self.sliced = True
        self._turn.start()

    def _new_turn(self) -> None:
        self.sliced = False

    def _on_timer(self) -> None:
        self.slice_end = TURN.deadline(DETAIL_SLICE_S)
        self._mark_turn()
        if self.flush(until=self.slice_end, one=True):          # one box at least: the text gets there
            self.timer.start()


def _shows(gfx, coords) -> bool:
    """The box (where ``place`` put it: no call into Qt) meets the rectangle ``(x0, y0, x1, y1)``."""
    x0, y0, x1, y1 = coords
    (x, y), spec = gfx.xy, gfx.spec
    return x < x1 and x + max(spec.width, spec.layout_w) > x0 and y < y1 and y + spec.height > y0
