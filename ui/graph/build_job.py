"""Building a large graph without blocking the window, and throwing an old one away likewise.

A graph of more than ``BUILD_AT_ONCE`` boxes (the graph-size limit draws about 1,300 boxes and 2,000
edges: 2.4-2.7 s to build at once, on a loaded 2-core machine) is built by a :class:`BuildJob` in
stages, a slice of at most ``SLICE_S`` per event-loop turn:

1. the boxes' sizes (``sizing.make_specs``, 8 boxes at a time);
2. the layout (``scene_update.layout_of``: pure Python, in a worker thread);
3. the items (``scene_update.place_steps``) in a scene of their own, not yet shown;
4. their state at the Player's frame (borders and glows now, text and heat maps when they show).

Meanwhile the view shows "Drawing the graph…" with the part done; when the last stage ends the new
scene replaces the old one in one step and the view carries on as if ``place`` had built it.

:func:`reap` swaps an empty scene in for a view's scene and deletes the old one's items a slice at a
time (``QGraphicsScene.clear()`` of the same graph took 0.37 s).
"""
from __future__ import annotations

import functools
import time

from PySide6 import QtCore

from ..run_thread import Job
from ..turn_budget import TURN
from .scene_update import PLACE_SLICE, layout_of, place_steps
from .sizing import make_specs

BUILD_AT_ONCE = 60        # boxes: a graph this small is built at once (under a frame or two)
SLICE_S = 0.008           # a slice runs this long before the event loop turns again
POLL_MS = 10              # how often the layout's worker is looked at
REAP_SLICE = 400          # top-level items: a graph with fewer goes at once; a larger one ...
REAP_SLICE_S = 0.006      # ... a slice of this long per event-loop turn (400 items took 12-50 ms)


class _Target:
    """What ``place_steps`` reads and fills, as the view has it, but with dictionaries of the job's own
    (the view takes them when the job is done; its items are drawn in the view's scene as they come)."""

    def __init__(self, view, folded):
        self._view = view
        self.folded = folded
        self.node_items: dict = {}
        self.edge_items: dict = {}
        self._pending: dict = {}
        self._lod, self.metrics, self.fonts, self.edge_pens = view._lod, view.metrics, view.fonts, view.edge_pens
        self._shown_nodes: dict = {}
        self._shown_edges: dict = {}
        self._prev_active: set = set()
        self._prev_active_edges: set = set()
        self._visible_rect = None
        self.layout = None

    def scene(self):
        return self._view.scene()


class BuildJob:
    """Builds ``folded`` (the view's replay, folded) in stages (module docstring); ``view._build_done(job)``
    is called once it is built. ``finish()`` completes it now (tests, exports)."""

    STAGES = ("specs", "layout", "items", "state", "edges", "done")

    def __init__(self, view, folded):
        self.view = view
        self.replay = view.replay
        self.folded = folded
        self.target = _Target(view, folded)
        self.keys = list(folded.keys)
        self.at = 0
        self.specs: dict = {}
        self.stage = "specs"
        self.layout_job: Job | None = None
        self.steps = None
        self.placed = 0
        self.deferred = False                         # its showing waited for a turn of its own
        self.state_keys: list = []
        self.timer = QtCore.QTimer(view)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.run)
        self.timer.start(0)
        # the view looks far away from the boxes appearing (at the last graph's zoom and place they
        # would show piecemeal behind the message) until they are all there
        view.setSceneRect(QtCore.QRectF(-1e7, -1e7, 1, 1))

    @staticmethod
    def wanted(folded) -> bool:
        return len(folded.keys) > BUILD_AT_ONCE

    @property
    def fraction(self) -> float:
        """How much is done, 0..1 (sizes a fifth, the layout a fifth, the items and their state the rest)."""
        n = max(1, len(self.keys))
        if self.stage == "specs":
            return 0.2 * self.at / n
        if self.stage == "layout":
            return 0.2 + 0.2 * (self.layout_job.fraction if self.layout_job is not None else 0.0)
        if self.stage == "items":
            return 0.4 + 0.5 * min(1.0, self.placed / (2 * n))
        return 0.9 if self.stage in ("state", "edges") else 1.0

    def text(self) -> str:
        return f"Drawing the graph: {len(self.keys):,} boxes… {int(100 * self.fraction)} %"

    def cancel(self) -> None:
        self.timer.stop()
        self.view.setSceneRect(QtCore.QRectF())
        if self.layout_job is not None:
            self.layout_job.cancel()
        if self.stage != "done":
            self.stage = "cancelled"
            _reap(self.target.scene(), list(self.target.node_items.values()),
                  list(self.target.edge_items.values()))

    def finish(self) -> None:
        """Do what is left now (waiting for the layout's worker)."""
        if self.stage in ("done", "cancelled"):
            return
        self.timer.stop()
        self.run(budget=None)

    def run(self, budget: float | None = SLICE_S) -> None:
        until = TURN.deadline(budget) if budget is not None else None    # shared with the turn's others

        def spent() -> bool:
            return until is not None and time.perf_counter() > until

        view, target = self.view, self.target
        if view.replay is not self.replay:
            self.cancel()                               # another replay since: its own build
            return
        while self.stage not in ("done", "cancelled"):
            if self.stage == "specs":
                chunk = self.keys[self.at:self.at + 8]
                self.specs.update(make_specs(self.replay, self.folded, view.metrics, keys=chunk))
                self.at += len(chunk)
                if self.at >= len(self.keys):
                    self.specs = {k: self.specs[k] for k in self.keys}
                    self.layout_job = Job(functools.partial(_layout, self.specs, list(self.folded.edges)))
                    self.stage = "layout"
            elif self.stage == "layout":
                job = self.layout_job
                if budget is not None and not job.ended.is_set():
                    self.timer.start(POLL_MS)
                    self._show_progress()
                    return
                job.join()
                if job.exception is not None:
                    raise job.exception
                self.steps = place_steps(target, self.specs, job.result)
                self.stage = "items"
            elif self.stage == "items":
                try:
                    next(self.steps)
                    self.placed += PLACE_SLICE
                except StopIteration:
                    self.stage = "state"
                    self.state_keys = list(self.folded.display_of.items())
            elif self.stage == "state":
                self._first_state(self.state_keys[:64])
                del self.state_keys[:64]
                if not self.state_keys:
                    self.stage = "edges"
                    self.state_keys = list(self.target.edge_items)
            elif self.stage == "edges":
                self._edge_state(self.state_keys[:64])
                del self.state_keys[:64]
                if not self.state_keys:
                    self.stage = "done"
            if spent() and self.stage not in ("done", "cancelled"):
                self._show_progress()
                self.timer.start(0)
                return
        if self.stage == "done" and spent() and not self.deferred:
            self.deferred = True                        # shown in a turn of its own (10-20 ms with
            self.timer.start(0)                         # the first frame's text and the fit), once
            return
        if self.stage == "done":
            view._build_done(self)

    def _show_progress(self) -> None:
        self.view.show_building(self.text())

    def _first_state(self, pairs) -> None:
        """Borders and glows at the Player's frame now; text and heat maps wait until shown
        (the view's ``_pending``, as for a node outside the viewport)."""
        frame = self.replay.frame(self.view.player.position)
        target, folds = self.target, self.folded.folds
        active, kind = frame.active_nodes, frame.event_kind
        selected = self.view.view_state.selected_node
        for nid, key in pairs:
            gfx = target.node_items.get(key)
            if gfx is None:
                continue
            if key < 0:
                fold = folds[key]
                ns, is_active = fold.state_at(frame), fold.is_active(frame)
                sel = selected is not None and self.folded.display_of.get(selected) == key
            else:
                ns, is_active, sel = frame.nodes[nid], nid in active, selected == nid
            gfx.update(ns, is_active, kind, sel)
            target._pending[key] = (ns, is_active, kind)
            if key >= 0:
                target._shown_nodes[nid] = ns
        target._prev_active = set(active)

    def _edge_state(self, keys) -> None:
        frame = self.replay.frame(self.view.player.position)
        target, folded, detail = self.target, self.folded, self.view.lod_detail
        for dk in keys:
            target.edge_items[dk].update(*folded.edge_state(dk, frame), detail)
            for under in folded.edges[dk]:
                target._shown_edges[under] = frame.edges.get(under)
        target._prev_active_edges = set(frame.active_edges)

    def install(self) -> None:
        """The view takes the job's items and their state (already in its scene) and shows the frame."""
        view, target = self.view, self.target
        view.setSceneRect(QtCore.QRectF())             # the scene's own rect again (place() set it)
        view.folded, view._display_of = self.folded, self.folded.display_of
        view.node_items, view.edge_items, view._pending = target.node_items, target.edge_items, target._pending
        view._shown_nodes, view._shown_edges = target._shown_nodes, target._shown_edges
        view._prev_active, view._prev_active_edges = target._prev_active, target._prev_active_edges
        view.layout = target.layout
        view._visible_rect = None
        if target._lod != view._lod:                     # zoomed meanwhile: the items at the view's detail
            for gfx in target.node_items.values():
                gfx.set_lod(view._lod[0])
            for edge in target.edge_items.values():
                edge.label.setVisible(edge.want_label and view.lod_detail)
                edge.head.setVisible(view._lod[1])
        view.pending_label.hide()
        view._after_place()


def _layout(specs, edges, progress):
    return layout_of(specs, edges)


_reaping: set = set()      # the timers of the reaps in progress


def _reap(scene, nodes: list, edges: list) -> None:
    """Remove the items of the boxes ``nodes`` (NodeGfx) and ``edges`` (EdgeGfx) from ``scene`` and
    delete them, a slice at a time (their Python wrappers are let go with them)."""
    timer = QtCore.QTimer(scene)
    _reaping.add(timer)

    def step() -> None:
        end = time.perf_counter() + REAP_SLICE_S
        count = 0
        while (nodes or edges) and (count < 16 or time.perf_counter() < end):      # 16 at least
            roots = (nodes.pop().root,) if nodes else edges.pop().items()
            for item in roots:
                try:
                    if item.scene() is scene:
                        scene.removeItem(item)       # Python owns it now: deleted as ``roots`` goes
                except RuntimeError:                 # already deleted (a scene.clear() since)
                    pass
            count += 1
        if not nodes and not edges:
            _reaping.discard(timer)
            timer.stop()
            timer.deleteLater()

    timer.timeout.connect(step)
    timer.start(0)


def _reaping_in(scene) -> bool:
    for timer in list(_reaping):
        try:
            parent = timer.parent()
        except RuntimeError:                 # its scene was deleted, the timer with it
            _reaping.discard(timer)
            continue
        if parent == scene:
            return True
    return False


def reap(view) -> None:
    """Take the view's items out of its scene and give it empty ``node_items`` and ``edge_items``: at
    once for a small graph, else a slice at a time. Not at once while a reap is under way (a large
    graph just replaced, a cancelled build's boxes): ``scene.clear()`` deleted those with the small
    graph's, 48 ms of a turn when the largest expression's next iteration was being built."""
    scene = view.scene()
    nodes, edges = list(view.node_items.values()), list(view.edge_items.values())
    view.node_items, view.edge_items = {}, {}
    if len(nodes) + 4 * len(edges) <= REAP_SLICE and not _reaping_in(scene):
        scene.clear()
    else:
        _reap(scene, nodes, edges)


def relayout(view, specs: dict, then) -> bool:
    """A large graph's boxes grew (the next iteration's values): make their layout in a worker and call
    ``then(specs, layout)`` on the UI thread when it is there, unless the view shows another graph
    by then (True); a small graph's is made at once by the caller (False)."""
    if len(specs) <= BUILD_AT_ONCE:
        return False
    folded, replay = view.folded, view.replay
    job = Job(functools.partial(_layout, specs, list(folded.edges)))
    timer = QtCore.QTimer(view)

    def poll() -> None:
        if not job.ended.is_set() or view._relayout is not pending:
            return
        view._relayout = None
        timer.stop()
        timer.deleteLater()
        if job.exception is None and view.folded is folded and view.replay is replay and view._build_job is None:
            then(specs, job.result)

    pending = view._relayout = (job, poll)          # (``GraphView.wait_built`` finishes it now)
    timer.timeout.connect(poll)
    timer.start(POLL_MS)
    return True


def finish_relayout(view) -> None:
    """The layout ``relayout`` makes in a worker: wait for it and place it now (tests, exports)."""
    if view._relayout is not None:
        job, poll = view._relayout
        job.join()
        poll()
    if hasattr(view._spec_job, "finish"):            # a PlaceJob: the grown boxes placed now
        view._spec_job.finish()
