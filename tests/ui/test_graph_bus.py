"""A wide fan-out (a leaf read by every micro-batch) is drawn as a bus: one trunk from the source and
a short branch into each target (``ui/graph/bus.py``). Each stretch of trunk shows the strongest
state of the edges beyond it, kept incrementally as the player moves; hovering a branch still shows
its edge's formula; a narrow fan-out keeps its curves."""
from __future__ import annotations

import random

import pytest
from PySide6 import QtCore, QtWidgets

from tests.ui.micro_batches import micro_batch_toml
from ui.graph import bus as bus_mod
from ui.graph import edge_hover
from ui.graph.bus import BUS_MIN, Bus, Seat, strength

MICRO_BATCHES = 12

SCENARIO = micro_batch_toml(MICRO_BATCHES, steps=3, lr=0.1, noise=0.1)


def members(view) -> dict:
    """edge key -> EdgeGfx of the edges drawn on a bus."""
    return {key: edge for key, edge in view.edge_items.items() if edge.seat is not None}


def expected_styles(bus: Bus, member_styles: dict) -> dict:
    """(side, index) -> the style its stretch must show: the strongest of the members at or beyond it."""
    out = {}
    for side, n in ((s, len(v)) for s, v in bus.shown.items()):
        best = None
        for i in range(n - 1, -1, -1):
            style = member_styles[(side, i)]
            if best is None or strength(style) > strength(best):
                best = style
            out[(side, i)] = best
    return out


def check_buses(view) -> int:
    """Every stretch of every bus is drawn with the pen of the strongest state beyond it; returns how
    many stretches showed an active edge."""
    by_bus: dict = {}
    for edge in members(view).values():
        by_bus.setdefault(id(edge.seat.bus), []).append(edge)
    lit = 0
    for edges in by_bus.values():
        bus = edges[0].seat.bus
        styles = {(e.seat.side, e.seat.index): e._style for e in edges}
        want = expected_styles(bus, styles)
        for e in edges:
            seat = e.seat
            style = want[(seat.side, seat.index)]
            assert e.trunk[0].pen() == view.edge_pens[style][0], (seat.side, seat.index, style)
            assert e.lines[0].pen() == view.edge_pens[e._style][0]        # its branch: its own state
            lit += style[1]
        root = next(e for e in edges if e.seat.root)
        strongest = max(styles.values(), key=strength)
        assert root.trunk[1].pen() == view.edge_pens[strongest][0]
    return lit


@pytest.fixture
def fan_out(tmp_path):
    path = tmp_path / "twelve.toml"
    path.write_text(SCENARIO)
    return path


def test_a_wide_fan_out_is_a_trunk_with_a_branch_into_each_target(qtbot, make_window, fan_out):
    window = make_window(fan_out)
    view, replay = window.graph, window.replay
    on_bus = members(view)
    w, b = replay.param_nodes["w"], replay.param_nodes["b"]
    assert {key[0] for key in on_bus} == {w, b}
    assert sum(key[0] == w for key in on_bus) == MICRO_BATCHES >= BUS_MIN
    for source in (w, b):
        edges = [e for key, e in on_bus.items() if key[0] == source]
        assert len({id(e.seat.bus) for e in edges}) == 1 and sum(e.seat.root for e in edges) == 1
        for side in (1, -1):
            chain = sorted((e for e in edges if e.seat.side == side), key=lambda e: e.seat.index)
            y = chain[0].seat.y0 if chain else None
            for e in chain:                       # the stretches join up, from the source outwards
                seat = e.seat
                assert seat.y_from == y and (seat.y1 - seat.y0) * side >= 0
                y = seat.y1
                path = e.lines[0].path()          # the branch ends at the target's port
                end = path.pointAtPercent(1.0)
                assert (end.x(), end.y()) == pytest.approx(e.points[-1])
                assert e.lines[0].data(1) == e.key and e.trunk[0].data(1) is None
    # a narrow fan-out keeps its curves
    window.open_default()
    QtWidgets.QApplication.processEvents()
    from tests.ui.conftest import finish
    finish(window)
    assert not members(window.graph) and all(not e.trunk for e in window.graph.edge_items.values())


def test_the_trunk_shows_the_strongest_state_beyond_each_stretch_as_the_player_moves(qtbot, make_window, fan_out):
    window = make_window(fan_out)
    view, replay, player = window.graph, window.replay, window.player
    on_bus = members(view)
    lit_frames = 0
    positions = list(range(0, len(replay), max(1, len(replay) // 150)))
    positions += [len(replay) - 1, 0, len(replay) // 2, 3]               # jumps back and forth
    for position in positions:
        player.seek(position)
        QtWidgets.QApplication.processEvents()
        view._flush_pending(everything=True)
        lit = check_buses(view)
        frame = replay.frame(position)
        active = [k for k in frame.active_edges if k in on_bus]
        assert bool(lit) == bool(active)
        if active:
            lit_frames += 1
            (key,) = active
            seat = on_bus[key].seat                 # lit from the source to the active edge's branch
            assert lit == seat.index + 1
            assert on_bus[key].lines[0].pen().widthF() > view.edge_pens[("backward_done", False)][0].widthF()
    assert lit_frames >= 4


def test_hovering_a_branch_shows_its_edges_formula(qtbot, make_window, fan_out):
    window = make_window(fan_out)
    view, replay = window.graph, window.replay
    w = replay.param_nodes["w"]
    key, edge = next((k, e) for k, e in members(view).items() if k[0] == w and e.seat.index == 2)
    backward = next(f.index for f in replay if f.event_kind == "backward" and key in f.active_edges)
    window.player.seek(backward)
    QtWidgets.QApplication.processEvents()
    point = edge.lines[0].path().pointAtPercent(0.8)
    view.centerOn(point)
    QtWidgets.QApplication.processEvents()
    assert edge_hover.edge_at(view, view.mapFromScene(point)) == key
    assert "MulBackward0 → w" in edge_hover.tooltip_html(view, key)
    stretch = edge.trunk[0].path().pointAtPercent(0.5)       # the trunk is shared: no one edge's formula
    assert edge_hover.edge_at(view, view.mapFromScene(stretch)) != key


class _Item:
    def __init__(self):
        self.pen = None

    def setPen(self, pen):  # noqa: N802 (Qt's name)
        self.pen = pen


def test_random_changes_keep_every_stretch_the_strongest_beyond_it():
    """The incremental update against the definition, over random state changes of a two-sided bus."""
    states = list(bus_mod.STRENGTH)
    pens = {(s, a): (f"{s}/{a}", None) for s in states for a in (False, True)}
    sizes = {1: 9, -1: 5}
    bus = Bus(pens, sizes)
    rng = random.Random(0)
    items, styles = {}, {}
    root = _Item()
    for side, n in sizes.items():
        for i in range(n):
            seat = Seat(bus, side, i, 0, 0, 10, 0, 0, 20, 0, 0, side == 1 and i == 0)
            items[(side, i)] = _Item()
            styles[(side, i)] = None
            bus.attach(seat, items[(side, i)], root if seat.root else None, None)
    for _ in range(2000):
        place = rng.choice(list(items))
        styles[place] = (rng.choice(states), rng.random() < 0.1)
        bus.set_style(*place, styles[place])
        want = expected_styles(bus, styles)
        for where, item in items.items():
            assert item.pen == pens[want[where] or ("idle", False)][0]
        strongest = max(styles.values(), key=strength)
        assert root.pen == pens[strongest or ("idle", False)][0]


def test_the_scene_under_one_screen_holds_a_few_edges_not_the_whole_fan_out(qtbot, make_window, fan_out):
    """What a repaint strokes: around one target, the bus's items there, not every edge of the
    fan-out (each of which, as a curve, ran the whole column's height)."""
    window = make_window(fan_out)
    view = window.graph
    edge = max(members(view).values(), key=lambda e: e.seat.index)       # the farthest branch
    box = QtCore.QRectF(edge.points[-1][0] - 80, edge.points[-1][1] - 40, 160, 80)
    items = set(view.scene().items(box))
    drawn = [e for e in view.edge_items.values() if e.seat is not None and items & set(e.items())]
    assert 1 <= len(drawn) <= 3
