"""Folding and unfolding the modules of a large graph never holds the window (issue 12).

At the graph-size limit one relayout took 135-145 ms and moving every box 90 ms more, and the context
menu's "Expand all modules" laid the graph out once per module. Now a graph of more than
``REFOLD_AT_ONCE`` boxes is laid out in a worker while the old one still shows, then placed a slice
per turn (``RefoldJob``); a fold that makes most boxes anew is built again by a ``BuildJob``, with its
progress; and "Expand all" / "Collapse all" are one fold.

The graph: a Sequential of 100 Linear(4, 4) + Tanh blocks, two recorded iterations (~400 boxes
expanded, ~200 folded)."""
from __future__ import annotations

import threading

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtTest, QtWidgets

import gradviz as gv
from gradviz import nn
from gradviz.optim import SGD
from gradviz.scenario import loads
from gradviz.training.session import Session
from gradviz.view.replay import Replay
from tests.core.test_replay import record_iteration
from tests.ui.test_graph_reuse import LARGE, expected_value_text, make_view
from ui.graph import build_job, refold_job, scene_update

BLOCKS = 100


@pytest.fixture(scope="module")
def deep_replays():
    gv.manual_seed(0)
    layers = []
    for _ in range(BLOCKS):
        layers += [nn.Linear(4, 4), nn.Tanh()]
    model = nn.Sequential(*layers, nn.Linear(4, 1))
    params = dict(model.named_parameters())
    opt = SGD(list(params.values()), lr=0.05, momentum=0.9)
    rng = np.random.default_rng(0)
    x = gv.tensor(rng.normal(size=(8, 4)).astype(np.float32))
    y = gv.tensor(rng.normal(size=(8, 1)).astype(np.float32))
    return [Replay(record_iteration(params, model, opt, [(x, y)], iteration=k)) for k in range(2)]


def record_layouts(monkeypatch) -> list:
    """The threads ``layered_layout`` runs in, one entry per layout."""
    threads = []
    real = scene_update.layered_layout

    def spy(*args, **kwargs):
        threads.append(threading.current_thread())
        return real(*args, **kwargs)
    monkeypatch.setattr(scene_update, "layered_layout", spy)
    return threads


def by_module(view) -> dict:
    """Each drawn box's items, named by what it stands for (a box's key changes with the folding)."""
    return {(view._module_of_box(key) if key < 0 else key): gfx for key, gfx in view.node_items.items()}


def assert_consistent(view, player) -> None:
    """What the view shows is one whole placement of its fold: a root item per box and nothing else,
    each where the layout put it, each edge ending at its box's side, the values of the frame shown."""
    assert not view.unplaced and view._refold_job is None
    assert sorted(view.node_items) == sorted(view.folded.keys)
    roots = [item for item in view.scene().items() if item.parentItem() is None and item.data(0) is not None]
    assert sorted(int(item.data(0)) for item in roots) == sorted(view.node_items)
    for key, gfx in view.node_items.items():
        cx, cy = view.layout.positions[key]
        assert abs(gfx.root.pos().x() + gfx.spec.width / 2 - cx) < 0.01
        assert abs(gfx.root.pos().y() + gfx.spec.height / 2 - cy) < 0.01
    assert sorted(view.edge_items) == sorted(view.layout.routes)
    for (_a, b), edge in view.edge_items.items():
        assert abs(edge.points[-1][0] - (view.node_items[b].root.pos().x() - 1)) < 0.01
    frame = player.frame
    for nid, key in view._display_of.items():
        if key >= 0 and view.replay.nodes[nid].kind == "op":
            assert view.node_value_text(nid) == expected_value_text(view.node_items[key], frame.nodes[nid])


def settle(qtbot, view) -> None:
    """Wait until the fold is placed, the frame's update (split over turns on a large graph) is done and
    the items of a graph drawn again are gone (deleted a slice at a time)."""
    qtbot.waitUntil(lambda: view._refold_job is None and view._build_job is None and not view._more.isActive()
                    and not build_job._reaping_in(view.scene()), timeout=30000)


def expanded_view(qtbot, replay):
    view, player = make_view(qtbot, replay)
    view.set_modules_collapsed(view.collapsible_modules(), False)
    view.wait_built()
    settle(qtbot, view)
    assert len(view.node_items) > refold_job.REFOLD_AT_ONCE
    player.seek(replay.phase_range("backward")[0] + 5)
    return view, player


def test_collapsing_a_module_of_a_large_graph_lays_out_in_a_worker_and_keeps_the_items(
        qtbot, deep_replays, monkeypatch):
    view, player = expanded_view(qtbot, deep_replays[0])
    threads = record_layouts(monkeypatch)
    gate = threading.Event()                                 # the layout's worker waits for the test
    real_layout = refold_job._layout
    monkeypatch.setattr(refold_job, "_layout", lambda *args: gate.wait(30) and real_layout(*args))
    module = view.collapsible_modules()[40]
    members = set(deep_replays[0].module_members(module))
    before = by_module(view)
    keys = sorted(view.node_items)

    view.set_collapsed(module, True)
    assert view.is_collapsed(module)
    assert view._refold_job is not None and not threads     # nothing laid out in the click's turn ...
    assert sorted(view.node_items) == keys                   # ... and the graph shown as it was
    gate.set()
    positions = iter(range(player.position, len(player.replay)))
    while view._refold_job is not None:                      # the player plays on meanwhile
        player.seek(next(positions))
        qtbot.wait(1)
    settle(qtbot, view)

    assert len(threads) == 1 and threads[0] is not threading.main_thread()   # one layout, in a worker
    after = by_module(view)
    assert module in after and not members & after.keys()
    for name, gfx in before.items():
        if name not in members:
            assert after[name] is gfx, name                  # the other boxes' items are kept
    assert_consistent(view, player)

    view.set_collapsed(module, False)                        # and back
    settle(qtbot, view)
    assert len(threads) == 2 and threads[1] is not threading.main_thread()
    again = by_module(view)
    assert all(again[name] is gfx for name, gfx in before.items() if name not in members)
    assert_consistent(view, player)


def test_a_second_fold_or_the_next_iteration_during_a_refold_ends_in_one_whole_placement(
        qtbot, deep_replays, monkeypatch):
    # the stages held where the test wants them: the layout's worker waits for ``gate``, and a
    # placement's first slice comes in a later turn, not at once
    gate = threading.Event()
    real_layout = refold_job._layout
    monkeypatch.setattr(refold_job, "_layout", lambda *args: gate.wait(30) and real_layout(*args))
    monkeypatch.setattr(scene_update.PlaceJob, "start", lambda self: self.timer.start())

    def fold_held_at(module, stage: str):
        gate.clear()
        view.set_collapsed(module, True)
        job = view._refold_job
        if stage == "place":                       # the layout made, the poll now: placing begins
            gate.set()
            job.layout_job.join()
            job.run()
        assert job.stage == stage
        return job

    view, player = expanded_view(qtbot, deep_replays[0])
    modules = view.collapsible_modules()
    for stage in ("layout", "place"):
        job = fold_held_at(modules[10], stage)
        view.set_collapsed(modules[60], True)               # a second fold on top of the first
        assert job.stage == "cancelled"
        gate.set()
        settle(qtbot, view)
        assert view.is_collapsed(modules[10]) and view.is_collapsed(modules[60])
        assert {modules[10], modules[60]} <= set(by_module(view))
        assert_consistent(view, player)
        view.set_modules_collapsed([modules[10], modules[60]], False)
        settle(qtbot, view)
        assert_consistent(view, player)
    # the next iteration while a fold is being placed: the view shows that iteration, folded so
    job = fold_held_at(modules[30], "place")
    player.set_replay(deep_replays[1], player.position)
    assert job.stage == "cancelled"
    gate.set()
    view.wait_built()
    qtbot.waitUntil(lambda: view._refold_job is None and view._build_job is None
                    and (view._spec_job is None or view._spec_job.done()), timeout=20000)
    view.wait_built()
    settle(qtbot, view)
    assert view.replay is deep_replays[1] and modules[30] in by_module(view)
    assert_consistent(view, player)


def choose_from_context_menu(view, text: str) -> None:
    """Right-click the graph and choose ``text``: the menu's entry made active, then Return."""
    chosen = []

    def choose() -> None:
        menu = QtWidgets.QApplication.activePopupWidget()
        if menu is None:                                  # not open yet
            QtCore.QTimer.singleShot(10, choose)
            return
        action = next(a for a in menu.actions() if a.text() == text)
        chosen.append(action)
        menu.setActiveAction(action)
        QtTest.QTest.keyClick(menu, QtCore.Qt.Key.Key_Return)
    QtCore.QTimer.singleShot(0, choose)
    centre = view.viewport().rect().center()
    view.contextMenuEvent(QtGui.QContextMenuEvent(QtGui.QContextMenuEvent.Reason.Mouse, centre,
                                                  view.viewport().mapToGlobal(centre)))
    assert chosen


def test_expand_all_and_collapse_all_from_the_context_menu_are_one_fold_with_progress(
        qtbot, deep_replays, monkeypatch):
    view, player = make_view(qtbot, deep_replays[0])
    modules = view.collapsible_modules()
    assert all(view.is_collapsed(m) for m in modules)       # a large graph opens folded
    threads = record_layouts(monkeypatch)
    changes = []
    view.collapsedChanged.connect(lambda: changes.append(1))

    choose_from_context_menu(view, "Expand all modules")
    assert changes == [1] and not any(view.is_collapsed(m) for m in modules)
    assert view._build_job is not None and view.pending_label.isVisible()     # most boxes are new:
    assert view.pending_label.text().startswith("Drawing the graph")          # built again, with progress
    settle(qtbot, view)
    assert len(threads) == 1 and not view.pending_label.isVisible()
    assert not any(k < 0 for k in view.node_items) and len(view.node_items) == len(deep_replays[0].nodes)
    assert_consistent(view, player)

    choose_from_context_menu(view, "Collapse all modules")
    assert changes == [1, 1] and all(view.is_collapsed(m) for m in modules)
    settle(qtbot, view)
    assert len(threads) == 2
    assert set(by_module(view)) >= set(modules)
    assert_consistent(view, player)


def test_find_opens_the_module_of_a_folded_node_at_once(qtbot, deep_replays):
    view, player = expanded_view(qtbot, deep_replays[0])
    module = view.collapsible_modules()[20]
    view.set_collapsed(module, True)
    settle(qtbot, view)
    node = deep_replays[0].module_members(module)[0]
    view.go_to_node(node)                                     # (Find): the module opened, the node centred
    assert not view.is_collapsed(module) and node in view.node_items
    assert view.view_state.selected_node == node
    assert_consistent(view, player)


def test_expanding_a_module_of_many_boxes_in_a_small_graph_is_not_done_at_once(qtbot):
    """A folded graph of few boxes whose module holds many (one Linear over 32 micro-batches): made at
    once it took 74-93 ms; the new boxes are made a slice per turn."""
    replay = Replay(Session(loads(LARGE)).trace_iteration(0))
    view, player = make_view(qtbot, replay)
    settle(qtbot, view)
    assert len(view.node_items) <= refold_job.REFOLD_AT_ONCE
    module = max(view.collapsible_modules(), key=lambda m: len(replay.module_members(m)))
    assert view.is_collapsed(module) and len(replay.module_members(module)) > refold_job.NEW_NOW
    view.set_collapsed(module, False)
    assert view._refold_job is not None
    settle(qtbot, view)
    assert set(replay.module_members(module)) <= set(view.node_items)
    assert_consistent(view, player)


def test_a_frame_that_changes_every_folded_module_is_drawn_a_slice_per_turn(qtbot, deep_replays, monkeypatch):
    """The optimizer's step changes every parameter: with the modules folded, every module's box.
    Those boxes were drawn all in one turn whatever the slice (at the graph-size limit, 499 boxes:
    32-38 ms of a player's tick); now a slice (``details.DETAIL_SLICE_S``), the rest in the next
    turns, and in the end each box looks as an update of all of them at once makes it. (Every
    parameter is active in that frame: with more active nodes than a slice draws, each turn drew the
    same first ones again, never the rest, and the updates never ended.)"""
    from ui.graph import details

    view, player = make_view(qtbot, deep_replays[0])
    assert view.visible_node_count() < 300 and len(view.folded.folds) == BLOCKS + 1     # folded
    player.seek(player.replay.phase_range("step")[0] - 1)
    settled = lambda: not view._more.isActive() and not view.details.timer.isActive()   # noqa: E731
    qtbot.waitUntil(settled, timeout=10000)
    looks = lambda: {k: g._look for k, g in view.node_items.items() if k < 0}            # noqa: E731
    before = looks()
    monkeypatch.setattr(details, "DETAIL_SLICE_S", 0.0005)   # a slice far too short for 101 boxes
    player.seek(player.count - 1)                            # after the step: every module's box changed
    first = looks()
    changed = {k for k in first if first[k] != before[k]}
    assert view._more.isActive() and 0 < len(changed) < len(first) / 2, len(changed)
    qtbot.waitUntil(settled, timeout=10000)
    after = looks()
    assert sum(after[k] != before[k] for k in after) > len(after) / 2
    monkeypatch.setattr(details, "DETAIL_SLICE_S", 60.0)     # the same frame drawn at once: nothing changes
    view._shown_nodes.clear()
    view._prev_active = set(view._display_of)
    view._on_position_changed(player.position)
    assert looks() == after and not view._more.isActive()
