"""Folding or unfolding modules of a large graph without blocking the window.

``scene_update.refold`` lays out the whole graph again and moves every box at once. At the
graph-size limit (about 2,000 boxes) the layout took 135-145 ms and moving the boxes and rerouting
the edges another 90 ms: collapsing one module held the window for 0.1-0.15 s, and "Expand all
modules" (1,500 new boxes) for 1.3-1.6 s. On a graph of more than ``REFOLD_AT_ONCE`` boxes, or a fold
that makes more than ``NEW_NOW`` new boxes:

- a fold that makes at most ``NEW_AT_ONCE`` new boxes is a :class:`RefoldJob`: the new boxes are
  sized a slice at a time and the layout is made in a worker while the view still shows the old
  graph; then the boxes that stay take their new keys (``scene_update.switch_fold``) and a
  ``PlaceJob`` moves them, makes the new ones and reroutes the edges a slice per turn (frames go on
  meanwhile; a box not made yet is drawn once it is);
- one that makes more (expanding or collapsing many modules) is built again by a ``BuildJob``, with
  its progress shown ("Drawing the graph: 1,998 boxes… 40 %").
"""
from __future__ import annotations

import functools
import math
import time

from PySide6 import QtCore

from ..run_thread import Job
from ..turn_budget import TURN
from .build_job import POLL_MS, _layout
from .scene_update import PlaceJob, SpecJob, box_renames, folded_graph, kept_specs, place, refold, switch_fold
from .sizing import make_specs

REFOLD_AT_ONCE = 300      # boxes: a graph this small is refolded at once (14 ms at 590 boxes) ...
NEW_NOW = 16              # ... when it makes at most this many new boxes (a Linear over 32 micro-batches:
                          # 34 new boxes, 74-93 ms at once)
NEW_AT_ONCE = 240         # new boxes a RefoldJob makes; more, and the graph is built again (BuildJob)
SLICE_S = 0.008           # a sizing slice runs this long before the event loop turns again


def fold_modules(view, modules, collapsed: bool) -> None:
    """``view.set_modules_collapsed``: ``modules`` folded (or unfolded), one relayout; the zoom stays,
    and a single module stays where it was on screen."""
    if view.replay is None:
        return
    foldable = view.replay.collapsible_modules()
    modules = [m for m in modules if m in foldable and collapsed != (m in view._collapsed)]
    if not modules:
        return
    module = modules[0] if len(modules) == 1 else None
    before = view.module_scene_rect(module) if module is not None else None
    anchor = view.viewportTransform().map(before.center()) if before is not None else None
    (view._collapsed.update if collapsed else view._collapsed.difference_update)(modules)
    view._auto_fit = False                               # keep the zoom ...

    def keep_in_place():
        after = view.module_scene_rect(module) if module is not None else None
        if anchor is not None and after is not None:     # ... and the module where it was on screen
            view._put_scene_point_at(after.center(), anchor)
    refold_view(view, keep_in_place)
    view.collapsedChanged.emit()


def refold_view(view, then=None) -> None:
    """``view`` folded as ``view._collapsed`` says, the boxes that stay keeping their items: at once
    (``scene_update.refold``), by a RefoldJob, or by a BuildJob when most boxes are new; then ``then()``."""
    if view._build_job is not None:                      # still being built: build it folded so
        view._rebuild()
        return
    unsized = (view._spec_job is not None and not view._spec_job.done()) or \
        (view._refold_job is not None and view._refold_job.unsized)
    view._cancel_spec_job()
    view._cancel_refold_job()
    folded = folded_graph(view._index, view._collapsed)
    how = RefoldJob.wanted(view, folded)
    if how == "build":
        view._rebuild(folded)
        return

    def placed():
        if then is not None:
            then()
        view._after_place()
        if unsized:                                      # the iteration's values: size the boxes kept
            view._spec_job = SpecJob(view)
            view._spec_job.start()
    if how == "now":
        refold(view)
        return placed()
    view._refold_job = RefoldJob(view, folded, placed)
    view._refold_job.unsized = unsized
    view._refold_job.start()


class RefoldJob:
    """Shows ``view`` folded as ``view._collapsed`` says (module docstring), then calls ``then()``.
    Held as the view's ``_refold_job``; ``cancel()`` drops it (the view then still shows the graph it
    showed, or, once placing has begun, the new fold with some boxes not placed: ``view.unplaced``,
    which the next placement completes). ``finish()`` does the rest now (tests, exports, find)."""

    def __init__(self, view, folded, then):
        self.view = view
        self.replay = view.replay
        self.old = view.folded
        self.folded = folded
        self.then = then
        self.renamed = box_renames(self.old, folded)
        self.kept = kept_specs(view, folded, self.renamed)
        self.keys = [k for k in folded.keys if k not in self.kept]
        self.new: dict = {}
        self.at = 0
        self.specs: dict = {}
        self.stage = "specs"
        self.layout_job: Job | None = None
        self.place_job: PlaceJob | None = None
        self.unsized = False                            # the boxes kept still need sizing for the iteration
        self.finishing = False                          # finish(): everything now
        self.timer = QtCore.QTimer(view)
        self.timer.setSingleShot(True)
        self.timer.timeout.connect(self.run)

    @staticmethod
    def wanted(view, folded) -> str:
        """How ``view`` shows ``folded``: "now" (a small graph), "job" (a RefoldJob) or "build" (a BuildJob)."""
        shown = set(view.node_items)
        kept_boxes = set(box_renames(view.folded, folded).values())
        new = sum(1 for k in folded.keys if (k < 0 and k not in kept_boxes) or (k >= 0 and k not in shown))
        if len(folded.keys) <= REFOLD_AT_ONCE and len(shown) <= REFOLD_AT_ONCE and new <= NEW_NOW:
            return "now"
        return "job" if new <= NEW_AT_ONCE else "build"

    def start(self) -> None:
        self.run()

    def done(self) -> bool:
        return self.stage == "done"

    def cancel(self) -> None:
        self.timer.stop()
        if self.layout_job is not None:
            self.layout_job.cancel()
        if self.place_job is not None:
            self.place_job.cancel()
        if self.stage != "done":
            self.stage = "cancelled"

    def finish(self) -> None:
        """Do what is left now (waiting for the layout's worker)."""
        if self.stage in ("done", "cancelled"):
            return
        self.timer.stop()
        self.finishing = True
        self.run(budget=None)

    def _valid(self) -> bool:
        view = self.view
        if self.stage in ("place", "placed"):
            return view.replay is self.replay and view.folded is self.folded
        return view.replay is self.replay and view.folded is self.old and view._build_job is None

    def run(self, budget: float | None = SLICE_S) -> None:
        if self.stage in ("done", "cancelled"):
            return
        if not self._valid():                           # another graph or fold since: its own job draws it
            self.cancel()
            return
        view = self.view
        if self.stage == "placed":
            return self._shown()
        until = TURN.deadline(budget) if budget is not None else math.inf   # shared with the turn's others
        if self.stage == "specs":
            while self.at < len(self.keys):
                chunk = self.keys[self.at:self.at + 8]
                self.new.update(make_specs(self.replay, self.folded, view.metrics, keys=chunk))
                self.at += len(chunk)
                if time.perf_counter() > until and self.at < len(self.keys):
                    self.timer.start(0)
                    return
            self.specs = {k: self.kept[k] if k in self.kept else self.new[k] for k in self.folded.keys}
            self.layout_job = Job(functools.partial(_layout, self.specs, list(self.folded.edges)))
            self.stage = "layout"
        if self.stage == "layout":
            job = self.layout_job
            if budget is not None and not job.ended.is_set():
                self.timer.start(POLL_MS)
                return
            job.join()
            switch_fold(view, self.folded, self.renamed)
            if job.exception is not None:              # (never seen) the layout made here, at once
                place(view, self.specs)
                return self._shown()
            self.stage = "place"
            self.place_job = PlaceJob(view, self.specs, job.result, self._placed)
            if budget is None:
                self.place_job.finish()
            else:
                self.place_job.start()
        elif self.stage == "place" and budget is None:
            self.place_job.finish()

    def _placed(self) -> None:
        """Every box placed: the frame, the text on screen and the view's place follow in a turn of
        their own (with the last slice of the placement and the paint, they took 50-70 ms at the
        graph-size limit)."""
        self.stage = "placed"
        if self.finishing:
            self._shown()
        else:
            self.timer.start(0)

    def _shown(self) -> None:
        self.stage = "done"
        if self.view._refold_job is self:
            self.view._refold_job = None
        self.then()
