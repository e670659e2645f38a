"""Keeping the graph's scene in step with what is drawn, touching only what changed.

``place(view, specs)`` lays out the boxes ``specs`` (one relayout: ``gradviz.view.layout``) and makes
the scene show them: items whose key stays are kept (reshaped in place when their spec changed,
moved when their place did), items of keys that went away are removed, new keys get new items;
edges likewise (re-routed in place).  The GraphView calls it to build a graph, to fold or unfold a
module, and when the next iteration of the same graph needs bigger boxes.

``ModuleIndex`` answers the Replay's module questions (members, type) from one pass over the nodes,
so that folding a graph of hundreds of modules is linear, not quadratic, in its size.

``SpecJob`` sizes the boxes of the next iteration of the same graph (``sizing.grow``: sizes only
grow, so they settle after a few iterations) in time-budgeted slices on a large graph, so that an
iteration change never blocks the window; a small graph is sized at once.
"""
from __future__ import annotations

import math
import time
from types import SimpleNamespace

from PySide6 import QtCore

from gradviz.view.folding import FoldedGraph, default_collapsed
from gradviz.view.layout import LayoutNode, layered_layout
from gradviz.view.replay import Replay

from ..turn_budget import TURN
from . import bus
from .items import EdgeGfx, NodeGfx
from .sizing import NODE_GAP, SMALL_GRAPH, grow, layer_gap, make_specs

SLICE_S = 0.008             # a sizing slice runs this long before the event loop turns again
SIZE_AT_ONCE = 300          # graphs of up to this many boxes are sized at once
PLACE_SLICE = 4             # place_steps yields after this many new boxes (or edges)
MOVE_SLICE = 32             # ... and after this many boxes moved or edges rerouted
REMOVE_SLICE = 64           # ... and after this many boxes removed (four times as many items of edges)


class ModuleIndex:
    """A Replay whose ``module_members`` and ``module_type`` cost the module's size, not the graph's
    (the Replay's own walk every node per call); everything else is the Replay's."""

    def __init__(self, replay: Replay):
        self._replay = replay
        for name in ("trace", "nodes", "edges", "consumers", "modules", "param_names", "badge_nodes", "loss_nodes"):
            setattr(self, name, getattr(replay, name))          # read per node: no __getattr__ for them
        self._members: dict[str, list[int]] = {}
        for nid, module in replay.modules.items():
            if module:
                self._members.setdefault(module.split(".")[0], []).append(nid)
        self._types: dict[str, str] = {}

    def __getattr__(self, name):
        return getattr(self._replay, name)

    def module_members(self, module: str) -> list[int]:
        if "." in module:
            return self._replay.module_members(module)
        return list(self._members.get(module, ()))

    def module_type(self, module: str) -> str:
        if module not in self._types:
            members = self.module_members(module)
            replay = self._replay
            # the Replay's own rule, over the module's nodes only (the others never match it)
            only = SimpleNamespace(trace=replay.trace, nodes=replay.nodes, badge_nodes=replay.badge_nodes,
                                   modules={n: replay.modules[n] for n in members})
            self._types[module] = Replay.module_type(only, module)
        return self._types[module]


def folded_graph(index: ModuleIndex, collapsed) -> FoldedGraph:
    return FoldedGraph(index, collapsed)


def opening_collapsed(index: ModuleIndex) -> set[str]:
    return default_collapsed(index)


def refold(view) -> None:
    """The view's modules folded otherwise: boxes that stay keep their items (a module's box takes
    its new key: keys of boxes are numbered in order), new boxes are sized, then one ``place``."""
    folded = folded_graph(view._index, view._collapsed)
    renamed = box_renames(view.folded, folded)
    kept = kept_specs(view, folded, renamed)
    new = make_specs(view.replay, folded, view.metrics, keys=[k for k in folded.keys if k not in kept])
    switch_fold(view, folded, renamed)
    place(view, {k: kept[k] if k in kept else new[k] for k in folded.keys})


def box_renames(old: FoldedGraph | None, folded: FoldedGraph) -> dict:
    """Box key in ``old`` -> key of the same module's box in ``folded`` (boxes of modules no longer
    folded are not in it)."""
    if old is None:
        return {}
    by_module = {fold.module: key for key, fold in folded.folds.items()}
    return {key: by_module[fold.module] for key, fold in old.folds.items() if fold.module in by_module}


def kept_specs(view, folded: FoldedGraph, renamed: dict) -> dict:
    """Key in ``folded`` -> the spec of the view's item that stays as that box (under its new key)."""
    shown = set(folded.keys)
    kept = {}
    for key, gfx in view.node_items.items():
        new_key = renamed.get(key) if key < 0 else key
        if new_key is not None and new_key in shown:
            kept[new_key] = gfx.spec
    return kept


def switch_fold(view, folded: FoldedGraph, renamed: dict) -> None:
    """The view draws ``folded`` from now on: the items of boxes that stay take their new keys, those
    of modules no longer folded go (with their edges); ``place`` then makes, moves and removes the rest."""
    old = view.folded
    view.folded = folded
    view._display_of = folded.display_of
    if any(a != b for a, b in renamed.items()) or len(renamed) < len(old.folds if old is not None else ()):
        scene, items = view.scene(), view.node_items
        boxes = {k: items.pop(k) for k in [k for k in items if k < 0]}
        for key, gfx in boxes.items():                   # the boxes: renamed, or gone (expanded)
            if key not in renamed:
                scene.removeItem(gfx.root)
                continue
            if renamed[key] != key:
                gfx.spec.key = renamed[key]                  # (each item has a spec of its own)
                gfx.root.setData(0, renamed[key])
            items[renamed[key]] = gfx
        edges = {}
        for (a, b), edge in view.edge_items.items():
            if (a < 0 and a not in renamed) or (b < 0 and b not in renamed):
                for item in edge.items():
                    if item.scene() is not None:
                        scene.removeItem(item)
                continue
            edge.rekey((renamed.get(a, a), renamed.get(b, b)))
            edges[edge.key] = edge
        view.edge_items = edges
    # text not drawn yet (boxes off screen) stays pending under the box's new key; a box that goes
    # takes its own with it (dropping all of it left those boxes showing an older frame's text)
    shown, pending = set(folded.keys), dict(view._pending)
    view._pending.clear()
    for key, value in pending.items():
        new_key = renamed.get(key) if key < 0 else key
        if new_key in shown:
            view._pending[new_key] = value


def place(view, specs: dict, layout=None) -> None:
    """Lay out ``specs`` (in the folded graph's order) and make the scene show them (module docstring)."""
    for _ in place_steps(view, specs, layout):
        pass


def layout_of(specs: dict, edges):
    """The layered layout of boxes ``specs`` joined by ``edges`` (pure Python: a worker may run it)."""
    return layered_layout([LayoutNode(k, max(s.width, s.layout_w), s.height) for k, s in specs.items()],
                          list(edges), node_gap=NODE_GAP, layer_gap=layer_gap(len(specs)))


def place_steps(view, specs: dict, layout=None):
    """``place`` as a generator that yields every ``PLACE_SLICE`` new items (a ``BuildJob`` runs it a
    slice at a time); ``layout`` is ``layout_of(specs, view.folded.edges)`` when already made."""
    scene = view.scene()
    folded = view.folded
    view.layout = layout = layout_of(specs, folded.edges) if layout is None else layout
    view.unplaced = True                             # until the end: a cancelled placement is redone
    items = view.node_items
    for n, key in enumerate([k for k in items if k not in specs], 1):
        scene.removeItem(items.pop(key).root)
        view._pending.pop(key, None)
        if n % REMOVE_SLICE == 0:                    # (430 boxes went in one slice: 12-20 ms)
            yield
    changed = set()                                  # keys whose items are new or made again
    moved = 0                                        # items moved (or edges rerouted) so far
    for key, spec in specs.items():
        gfx = items.get(key)
        if gfx is None:
            gfx = items[key] = NodeGfx(spec, view.metrics)
            scene.addItem(gfx.root)
            gfx.set_lod(view._lod[0])
            changed.add(key)
            if len(changed) % PLACE_SLICE == 0:
                yield
        elif gfx.spec != spec:
            gfx.reshape(spec)
            gfx.set_lod(view._lod[0])
            view._pending.pop(key, None)
            changed.add(key)
        cx, cy = layout.positions[key]
        xy = (cx - spec.width / 2, cy - spec.height / 2)
        if gfx.xy != xy:
            gfx.xy = xy
            gfx.root.setPos(*xy)
            moved += 1
            if moved % MOVE_SLICE == 0:                  # (a PlaceJob's slice may end here)
                yield
    label_chars = 13 if len(specs) <= SMALL_GRAPH else 9
    # Input ports: a node's incoming edges end at separate points of its left side, ordered by
    # where they come from, so that they neither cross nor merge into one arrow head.
    incoming: dict = {}
    for (a, b), route in layout.routes.items():
        incoming.setdefault(b, []).append((route[-2][1], a))
    port_y = {}
    for b, sources in incoming.items():
        sources.sort()
        spec = specs[b]
        cy = layout.positions[b][1] - spec.height / 2 + spec.body_h / 2
        step = min(14.0, (spec.body_h - 12) / max(len(sources) - 1, 1))
        for i, (_y, a) in enumerate(sources):
            port_y[(a, b)] = cy + (i - (len(sources) - 1) / 2) * step
    edge_items = view.edge_items
    changed_edges = set()
    gone = 0
    for key in [k for k in edge_items if k not in layout.routes]:
        for item in edge_items.pop(key).items():
            if item.scene() is not None:
                scene.removeItem(item)
                gone += 1
        if gone >= 4 * REMOVE_SLICE:                 # (3,150 items of edges: 15 ms)
            gone = 0
            yield
    routes = {}
    for (a, b), route in layout.routes.items():
        sa, sb = specs[a], specs[b]
        ax, ay = layout.positions[a]
        bx, _by = layout.positions[b]
        routes[(a, b)] = [(ax + sa.width / 2, ay - sa.height / 2 + sa.body_h / 2), *route[1:-1],
                          (bx - sb.width / 2 - 1, port_y[(a, b)])]
    seats = bus.plan(routes, view.edge_pens)          # wide fan-outs: a trunk and branches
    for (a, b), points in routes.items():
        seat = seats.get((a, b))
        edge = edge_items.get((a, b))
        if edge is not None and edge.label_chars == label_chars:
            if points != edge.points or seat != edge.seat:
                for item in edge.set_points(points, seat):
                    scene.addItem(item)
                moved += 1
                if moved % MOVE_SLICE == 0:
                    yield
            elif seat is not None:
                edge.set_points(points, seat)            # (its bus, planned again)
            if a in changed or b in changed:
                changed_edges.add((a, b))
            continue
        changed_edges.add((a, b))
        if len(changed_edges) % PLACE_SLICE == 0:
            yield
        if edge is not None:
            for item in edge.items():
                scene.removeItem(item)
        edge = edge_items[(a, b)] = EdgeGfx((a, b), points, view.fonts[5], label_chars, view.edge_pens, seat)
        for item in edge.items():
            scene.addItem(item)
        edge.label.setVisible(False)
        edge.head.setVisible(view._lod[1] is not False)
    rect = QtCore.QRectF(0, 0, layout.width, layout.height).adjusted(-3000, -3000, 3000, 3000)
    scene.setSceneRect(rect)
    view._visible_rect = None
    # the new and remade items show their state at the next frame update; the others show it already
    shown, display_of = view._shown_nodes, folded.display_of
    if len(changed) == len(specs):
        shown.clear()
        view._prev_active = set(display_of)
    else:
        for nid, key in display_of.items():
            if key in changed:
                shown.pop(nid, None)
    shown_edges = view._shown_edges
    for key in changed_edges:
        for under in folded.edges[key]:
            shown_edges.pop(under, None)
    view._prev_active_edges |= {under for key in changed_edges for under in folded.edges[key]}
    view.unplaced = False


class PlaceJob:
    """Boxes a large graph's next iteration outgrew, reshaped and moved to their new layout (made in a
    worker: ``build_job.relayout``) a slice of ``SLICE_S`` per event-loop turn (``place_steps``; at once
    it took 36-47 ms at 1,281 boxes), then ``then()``. Held as the view's ``_spec_job``: cancelled
    with it (another iteration, a fold, a new graph), and ``done`` only once placed."""

    def __init__(self, view, specs: dict, layout, then):
        self.steps = place_steps(view, specs, layout)
        self.then = then
        self.ended = False
        self.timer = QtCore.QTimer(view)
        self.timer.setSingleShot(True)
        self.timer.setInterval(0)
        self.timer.timeout.connect(self.run)

    def start(self) -> None:
        self.run()

    def done(self) -> bool:
        return self.ended

    def cancel(self) -> None:
        self.timer.stop()
        self.steps.close()

    def finish(self) -> None:
        """Place the rest now (tests, exports: ``GraphView.wait_built``)."""
        if not self.ended and self.steps.gi_frame is not None:
            self.timer.stop()
            self.run(budget=None)

    def run(self, budget: float | None = SLICE_S) -> None:
        start = time.perf_counter()
        for _ in self.steps:
            if budget is not None and time.perf_counter() - start > budget:
                self.timer.start()
                return
        self.ended = True
        self.then()


class SpecJob:
    """Sizes every box of ``view.replay`` against the box it has (``sizing.grow``), a slice at a time
    on a large graph; when done, ``place`` shows the grown boxes (one relayout) if any grew."""

    def __init__(self, view):
        self.view = view
        self.replay = view.replay
        self.keys = list(view.folded.keys)
        self.at = 0
        self.grown: dict = {}
        self.timer = QtCore.QTimer(view)
        self.timer.setSingleShot(True)
        self.timer.setInterval(0)
        self.timer.timeout.connect(self.run)

    def start(self) -> None:
        if len(self.keys) <= SIZE_AT_ONCE:
            self.run(budget=None)
        else:
            self.timer.start()

    def cancel(self) -> None:
        self.timer.stop()
        self.keys = []

    def done(self) -> bool:
        return self.at >= len(self.keys)

    def run(self, budget: float | None = SLICE_S) -> None:
        view = self.view
        if view.replay is not self.replay or view.folded is None:
            return                                       # another graph since: its own job sizes it
        until = TURN.deadline(budget) if budget is not None else math.inf   # shared with the turn's others
        items, folded, metrics = view.node_items, view.folded, view.metrics
        while self.at < len(self.keys):
            chunk = self.keys[self.at:self.at + 4]
            self.at += len(chunk)
            for key, new in make_specs(self.replay, folded, metrics, slack=False, keys=chunk).items():
                gfx = items.get(key)
                if gfx is not None:
                    spec = grow(gfx.spec, new, metrics)
                    if spec != gfx.spec:
                        self.grown[key] = spec
            if time.perf_counter() > until:
                self.timer.start()
                return
        if self.grown or getattr(view, "unplaced", False):     # (or a placement was cancelled half way)
            specs = {k: self.grown.get(k, g.spec) for k, g in items.items()}
            missing = [k for k in folded.keys if k not in specs]     # (a refold's placement cancelled)
            if missing:
                specs.update(make_specs(self.replay, folded, metrics, keys=missing))
            specs = {k: specs[k] for k in folded.keys}
            view._apply_grown(specs)
