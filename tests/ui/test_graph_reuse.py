"""The graph view updates its items in place (issue 12): changing iteration on a large graph keeps
every item and shows the new iteration's values in it; expanding or collapsing a module lays out once
and keeps the items of the boxes that stay; a box the new values outgrow is resized in place.

The large graph is a generated layers scenario, 2-64-64-64-1 with 32 micro-batches (~400 traced
nodes), traced by its Session as the main window does."""
from __future__ import annotations

import numpy as np
import pytest

import gradviz as gv
from gradviz import nn
from gradviz.optim import SGD
from gradviz.scenario import loads
from gradviz.training.session import Session
from gradviz.view.replay import Replay
from tests.core.test_replay import record_iteration
from ui.document import Document
from ui.graph import GraphView, scene_update, text
from ui.player import Player
from ui.view_state import ViewState

LARGE = """
[scenario]
title = "large"
seed = 0

[model]
layers = [2, 64, 64, 64, 1]
activation = "tanh"

[data]
kind = "moons"
n = 256
noise = 0.1

[loss]
kind = "mse"

[optimizer]
kind = "sgd"
lr = 0.5
momentum = 0.9

[loop]
steps = 4
accumulation_steps = 32
"""


@pytest.fixture(scope="module")
def large_replays():
    session = Session(loads(LARGE))
    return [Replay(session.trace_iteration(k)) for k in range(3)]


def make_view(qtbot, replay, size=(1400, 800)):
    player = Player(replay)
    view = GraphView(player, ViewState(Document()))
    qtbot.addWidget(view)
    view.resize(*size)
    view.show()
    qtbot.waitExposed(view)
    view.wait_built()                    # (a graph of more than BUILD_AT_ONCE boxes is built in slices)
    return view, player


def sized(qtbot, view) -> None:
    """Wait until the view has sized the boxes of its iteration (in slices on a large graph)."""
    qtbot.waitUntil(lambda: view._spec_job is None or view._spec_job.done(), timeout=20000)
    view.wait_built()                    # (grown boxes of a large graph: laid out in a worker)


def item_ids(view) -> dict:
    return {key: (id(gfx), id(gfx.root)) for key, gfx in view.node_items.items()}


def expected_value_text(gfx, ns) -> str:
    """What a node's value row shows for ``ns``, by the rules of the node's look (items.NodeGfx)."""
    spec = gfx.spec
    if ns.value is None:
        return ""
    if spec.heat:
        return text.mean_text(ns.value)
    return text.indent("= " if spec.kind == "op" else "", text.value_text(ns.value))


def test_iteration_change_keeps_every_item_and_shows_the_new_values(qtbot, large_replays):
    first, second, third = large_replays
    assert len(first.nodes) > 300 and first.nodes.keys() == second.nodes.keys()
    view, player = make_view(qtbot, first)
    view.set_modules_collapsed(view.collapsible_modules(), False)          # every node its own box
    view.wait_built()
    assert view.visible_node_count() == len(first.nodes)
    view.set_zoom(1.0)
    sized(qtbot, view)
    ids, edges = item_ids(view), {k: id(e) for k, e in view.edge_items.items()}
    for replay in (second, third):
        player.set_replay(replay)
        sized(qtbot, view)
        assert item_ids(view) == ids                                        # same objects, every one
        assert {k: id(e) for k, e in view.edge_items.items()} == edges
        end = replay.phase_range("backward")[1]                             # before the step
        player.seek(end)
        frame = replay.frame(end)
        shown = 0
        for nid, gfx in view.node_items.items():
            ns = frame.nodes[nid]
            assert view.node_value_text(nid) == expected_value_text(gfx, ns), nid
            shown += ns.value is not None
            if gfx.grad is not None and ns.grad is not None:
                shows = text.mean_text(ns.grad) if gfx.spec.heat else text.value_text(ns.grad)
                assert view.node_grad_text(nid) == text.indent("∇ ", shows), nid
        assert shown > 100
        for name, nid in replay.param_nodes.items():                       # the badges: this iteration's grads
            badge = view.node_badge_text(nid)
            grad = frame.nodes[nid].grad_badge
            heat = view.node_items[nid].spec.heat
            assert grad is not None and (text.mean_number(grad) if heat else text.value_text(grad)) in badge, name
    assert view.node_items[first.loss_node].spec.heat is False


def test_values_differ_between_iterations_and_the_view_follows(qtbot, large_replays):
    """The same item shows iteration 0's loss, then iteration 2's (they differ), as the replay says."""
    first, _, third = large_replays
    view, player = make_view(qtbot, first)
    view.set_modules_collapsed(view.collapsible_modules(), False)
    view.wait_built()
    loss = first.loss_nodes[0]                                              # the first micro-batch's
    end = first.phase_range("loss")[1]
    player.seek(end)
    gfx = view.node_items[view._display_of[loss]]
    before = view.node_value_text(loss)
    player.set_replay(third, end)
    sized(qtbot, view)
    assert view.node_items[view._display_of[loss]] is gfx
    after = view.node_value_text(loss)
    assert before and before != after
    assert after == "= " + text.value_text(third.frame(end).nodes[loss].value)


def test_expanding_a_module_lays_out_once_and_keeps_the_other_items(qtbot, large_replays, monkeypatch):
    first = large_replays[0]
    view, player = make_view(qtbot, first)
    player.seek(first.phase_range("backward")[1])
    calls = []
    real = scene_update.layered_layout
    monkeypatch.setattr(scene_update, "layered_layout", lambda *a, **k: calls.append(1) or real(*a, **k))
    folded = [m for m in view.collapsible_modules() if view.is_collapsed(m)]
    assert len(folded) >= 3

    def by_module():
        """Each drawn box's items, named by what it stands for (a box's key changes with the folding)."""
        out = {}
        for key, gfx in view.node_items.items():
            out[view._module_of_box(key) if key < 0 else key] = gfx
        return out

    module = folded[1]
    members = set(first.module_members(module))
    before = by_module()
    view.set_collapsed(module, False)
    view.wait_built()                          # (many new boxes: a RefoldJob's, laid out in a worker)
    assert len(calls) == 1                                                  # one relayout
    after = by_module()
    assert module not in after and members <= after.keys()
    for name, gfx in before.items():
        if name != module:
            assert after[name] is gfx, name                                 # not rebuilt
    assert sorted(int(item.data(0)) for item in view.scene().items()
                  if item.parentItem() is None and item.data(0) is not None) == sorted(view.node_items)
    for nid in members:                                                     # the new boxes show the frame
        ns = player.frame.nodes[nid]
        assert view.node_value_text(nid) == expected_value_text(view.node_items[nid], ns)
    calls.clear()
    view.set_collapsed(module, True)
    view.wait_built()
    assert len(calls) == 1
    again = by_module()
    assert all(again[name] is gfx for name, gfx in before.items() if name != module)
    # nothing left behind: one root item per box, the edges' items and nothing else
    roots = [item for item in view.scene().items() if item.parentItem() is None and item.data(0) is not None]
    assert sorted(int(item.data(0)) for item in roots) == sorted(view.node_items)
    lines = [item for item in view.scene().items() if item.data(1) is not None]
    assert len(lines) == sum(len(edge.lines) for edge in view.edge_items.values())
    # every box sits where the layout put it, its edges end at its side
    for key, gfx in view.node_items.items():
        cx, cy = view.layout.positions[key]
        rect = gfx.root.sceneBoundingRect()
        assert abs(gfx.root.pos().x() + gfx.spec.width / 2 - cx) < 0.01 and rect.width() > 0
    for (_a, b), edge in view.edge_items.items():
        x_end = edge.points[-1][0]
        assert abs(x_end - (view.node_items[b].root.pos().x() - 1)) < 0.01
    # expanding several modules at once: still one relayout
    calls.clear()
    view.set_modules_collapsed(folded, False)
    view.wait_built()                          # (a large graph: in slices, by a RefoldJob or a BuildJob)
    assert len(calls) == 1 and not any(view.is_collapsed(m) for m in folded)


def test_a_box_the_new_values_outgrow_is_resized_in_place(qtbot, monkeypatch):
    """w = 0.5 shows "0.5"; the next iteration's w = -0.1234567 needs a wider box: the same items,
    reshaped, one relayout, and the text inside the box."""
    def iteration(w0, k):
        w = nn.Parameter(gv.tensor(w0))
        b = nn.Parameter(gv.tensor(0.0))
        w.name, b.name = "w", "b"
        x, y = gv.tensor(np.float32(2.0)), gv.tensor(np.float32(1.0))
        x.name, y.name = "x", "y"
        return Replay(record_iteration({"w": w, "b": b}, lambda x: w * x + b, SGD([w, b], lr=0.1), [(x, y)],
                                       iteration=k))

    first, second = iteration(0.5, 0), iteration(-0.1234567, 1)
    view, player = make_view(qtbot, first)
    wid = first.param_nodes["w"]
    gfx = view.node_items[wid]
    ids, width = item_ids(view), gfx.spec.width
    calls = []
    real = scene_update.layered_layout
    monkeypatch.setattr(scene_update, "layered_layout", lambda *a, **k: calls.append(1) or real(*a, **k))
    player.set_replay(second)
    sized(qtbot, view)
    end = len(second) - 1                                                   # after the step: before → after
    player.seek(end)
    assert item_ids(view) == ids
    assert gfx.spec.width > width and len(calls) == 1
    value = gfx.value[1]
    assert "-0.1235" in view.node_value_text(wid)
    assert value.mapRectToScene(value.boundingRect()).right() <= gfx.root.sceneBoundingRect().right()
    # and back: the box keeps its size (sizes never shrink), no relayout
    calls.clear()
    player.set_replay(first)
    sized(qtbot, view)
    assert gfx.spec.width > width and not calls and item_ids(view) == ids
