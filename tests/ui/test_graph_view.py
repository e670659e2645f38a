"""ui.graph (and ui.inspector): built once per Replay, animated by the Player, driven with real
mouse events on the offscreen platform.  Screenshots land in test-artifacts/ for a human to look at."""
from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

import gradviz as gv
from gradviz import nn, trace
from gradviz.optim import SGD
from gradviz.view.format import format_number
from gradviz.view.replay import Replay
from tests.core.test_replay import FakeTrace, mlp, record_iteration, tutorial
from ui.document import Document
from ui.graph import PRECISION, GraphView
from ui.inspector import Inspector
from ui.player import Player
from ui.view_state import ViewState

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"


def new_view_state() -> ViewState:
    return ViewState(Document())


def make_inspector() -> Inspector:
    """An inspector on models of its own (the tests hand it a replay and a history directly)."""
    state = new_view_state()
    return Inspector(Player(), state, state.document)


def make_view(qtbot, tr, size=(1400, 800)):
    replay = Replay(tr)
    player = Player(replay)
    view = GraphView(player, new_view_state())
    qtbot.addWidget(view)
    view.resize(*size)
    view.show()
    qtbot.waitExposed(view)
    return view, player, replay


def save(view, name):
    ARTIFACTS.mkdir(exist_ok=True)
    view.fit_to_view()
    QtWidgets.QApplication.processEvents()
    assert view.grab().save(str(ARTIFACTS / f"graph_{name}.png"))


def test_one_item_per_node_and_edge(qtbot):
    tr, _, _ = tutorial()
    view, player, replay = make_view(qtbot, tr)
    assert view.visible_node_count() == len(tr.nodes) == len(view.node_items)
    assert len(view.edge_items) == len({(s, d) for d, i in tr.nodes.items() for s in i.inputs})
    # deterministic placement: a second view puts every node at the same place
    view2, _, _ = make_view(qtbot, tr)
    for nid in tr.nodes:
        assert view.node_items[nid].root.pos() == view2.node_items[nid].root.pos()
    # inputs left of the loss
    loss_x = view.node_scene_rect(tr.loss_node).center().x()
    assert all(view.node_scene_rect(n).center().x() < loss_x for n in tr.nodes if n != tr.loss_node)


@pytest.mark.parametrize("name,build", [("tutorial", lambda: tutorial()), ("mlp", lambda: mlp())])
def test_badge_shows_the_real_grad_and_screenshots(qtbot, name, build):
    built = build()
    tr = built[0]
    view, player, replay = make_view(qtbot, tr, (1600, 900))
    player.seek(replay.phase_range("loss")[1])            # forward pass done, loss computed
    save(view, f"{name}_forward")
    end_backward = replay.phase_range("backward")[1]
    player.set_speed(1000)
    player.seek(replay.phase_range("backward")[0])
    # play until the end of backward through the timer, as the user would
    with qtbot.waitSignal(player.positionChanged, timeout=5000,
                          check_params_cb=lambda i: i >= end_backward):
        player.play()
    player.pause()
    player.seek(end_backward)
    if name == "tutorial":
        w = built[1]
        wid = tr.param_nodes["w"]
        assert format_number(float(w.grad.data), PRECISION) in view.node_badge_text(wid)
        assert view.node_badge_text(wid).startswith("grad:")
    else:
        model = built[1]
        bid = tr.param_nodes["2.bias"]
        assert format_number(float(model[2].bias.grad.data[0]), PRECISION) in view.node_badge_text(bid)
    save(view, f"{name}_backward")
    player.to_end()
    save(view, f"{name}_step")


def second_accumulation(replay, node_id) -> int:
    """The first position where ``.grad`` of ``node_id`` accumulates onto an earlier gradient."""
    return next(i for i in range(len(replay)) if replay.frame(i).nodes[node_id].accumulation is not None
                and replay.frame(i).nodes[node_id].accumulation[0] is not None)


def test_accumulation_badge_shows_old_plus_new(qtbot):
    tr, w, b = tutorial(accumulation_steps=2)
    view, player, replay = make_view(qtbot, tr)
    wid = tr.param_nodes["w"]
    second = second_accumulation(replay, wid)
    player.seek(second)
    before, added, after = replay.frame(second).nodes[wid].accumulation
    text = view.node_badge_text(wid)
    assert " + " in text and " = " in text
    assert format_number(float(w.grad.data), PRECISION) in text
    save(view, "tutorial_accumulate")


def test_value_and_grad_text_follow_the_cursor(qtbot):
    tr, w, b = tutorial()
    view, player, replay = make_view(qtbot, tr)
    loss = tr.loss_node
    assert view.node_value_text(loss) == ""                 # not computed yet
    player.seek(replay.phase_range("loss")[1])
    value = replay.frame(player.position).nodes[loss].value
    assert format_number(float(value), PRECISION) in view.node_value_text(loss)
    assert view.node_grad_text(loss) == ""
    player.seek(replay.phase_range("backward")[0] + 1)      # the loss node's own backward
    assert "1.0" in view.node_grad_text(loss)
    player.to_start()                                        # and back: values disappear again
    assert view.node_value_text(loss) == ""


def test_click_emits_node_id(qtbot):
    tr, _, _ = tutorial()
    view, player, replay = make_view(qtbot, tr)
    wid = tr.param_nodes["w"]
    for nid in (wid, tr.loss_node):
        pos = view.mapFromScene(view.node_scene_rect(nid).center())
        with qtbot.waitSignal(view.nodeClicked, timeout=1000) as blocker:
            qtbot.mouseClick(view.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=pos)
        assert blocker.args == [nid]


def test_collapse_and_expand_modules(qtbot):
    tr, model = mlp()
    view, player, replay = make_view(qtbot, tr)
    n = view.visible_node_count()
    assert view.collapsible_modules() == ["0", "2"]
    assert view.module_label("0") == "Linear 0"
    player.seek(replay.phase_range("backward")[1])
    view.set_collapsed("0", True)
    assert view.is_collapsed("0")
    members = len(replay.module_members("0"))
    assert view.visible_node_count() == n - members + 1
    box = next(g for k, g in view.node_items.items() if k < 0)
    assert box.spec.title == "Linear 0"
    assert "weight.grad" in box.badge_text.text()
    save(view, "mlp_collapsed")
    # double-click on the box expands it again
    pos = view.mapFromScene(box.root.sceneBoundingRect().center())
    qtbot.mouseDClick(view.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=pos)
    assert not view.is_collapsed("0")
    assert view.visible_node_count() == n
    view.set_collapsed("0", True)
    view.set_collapsed("2", True)
    assert view.visible_node_count() == n - members - len(replay.module_members("2")) + 2
    player.to_start()
    player.to_end()                                          # boxes animate too


def test_exports(qtbot, tmp_path):
    tr, _ = mlp()
    view, player, replay = make_view(qtbot, tr)
    player.seek(replay.phase_range("backward")[1])
    png, svg = tmp_path / "g.png", tmp_path / "g.svg"
    assert view.export_png(str(png))
    assert view.export_svg(str(svg))
    assert png.stat().st_size > 1000
    assert svg.stat().st_size > 1000 and "<svg" in svg.read_text()[:2000]
    img = view.render_frame_image(640)
    assert img.width() == 640 and img.height() > 10


def test_soak_repaint_while_playing(qtbot):
    """3,000 repaints of the real widget (the PySide6 6.12 / Python 3.11 None-refcount fault aborts
    well before that)."""
    tr, _ = mlp((2, 8, 8, 1))
    view, player, replay = make_view(qtbot, tr, (900, 600))
    app = QtWidgets.QApplication.instance()
    for k in range(3000):
        player.seek(k % len(replay))
        view.viewport().repaint()
        app.processEvents()
    assert view.visible_node_count() == len(tr.nodes)


@dataclass
class FakeHistory:
    params: dict
    grads: dict
    steps: int


def test_inspector_shows_node_state_and_history(qtbot):
    tr, w, b = tutorial(iterations=3)
    replay = Replay(tr)
    steps = 5
    history = FakeHistory({"w": np.linspace(0.5, 2.0, steps + 1), "b": np.zeros(steps + 1)},
                          {"w": np.linspace(-5, -1, steps), "b": np.zeros(steps)}, steps)
    ins = make_inspector()
    qtbot.addWidget(ins)
    ins.show()
    wid = tr.param_nodes["w"]
    end = replay.phase_range("backward")[1]
    ins.show_node(replay, end, wid, history)
    assert ins.title.text() == "w"
    assert ins.fields["kind"].text() == "parameter"
    assert str(np.asarray(w.grad.data).item())[:4] in ins.grad_text.toPlainText()
    assert ins.plot.isVisibleTo(ins)
    x, y = ins.value_curve.getData()
    assert list(x) == [0, 1, 2] and np.allclose(y, history.params["w"][:3])
    ins.show_node(replay, len(replay) - 1, wid, history)
    assert "before" in ins.value_label.text()
    op = next(n for n, i in tr.nodes.items() if i.op == "mul")
    ins.show_node(replay, end, op)
    assert ins.fields["op"].text() == "MulBackward0"
    assert not ins.plot.isVisibleTo(ins)
    assert "[" in ins.grad_text.toPlainText()


def test_next_iteration_reuses_the_items(qtbot):
    """The window calls set_replay with the next iteration's trace: same graph, same items, new numbers."""
    w = None
    traces = []
    for k in (1, 2):
        tr, w, b = tutorial(iterations=k)
        traces.append((tr, float(w.grad.data)))
    view, player, replay = make_view(qtbot, traces[0][0])
    items = dict(view.node_items)
    player.set_replay(Replay(traces[1][0]))
    assert view.node_items == items                       # not rebuilt
    player.seek(player.replay.phase_range("backward")[1])
    wid = traces[1][0].param_nodes["w"]
    assert format_number(traces[1][1], PRECISION) in view.node_badge_text(wid)


def test_inspector_screenshot(qtbot):
    tr, w, b = tutorial(accumulation_steps=2)
    replay = Replay(tr)
    ins = make_inspector()
    qtbot.addWidget(ins)
    ins.resize(420, 720)
    ins.show()
    steps = 30
    xs = np.arange(steps + 1)
    history = FakeHistory({"w": 2 - 1.5 * np.exp(-xs / 8), "b": 1 - np.exp(-xs / 6)},
                          {"w": -3 * np.exp(-xs[:-1] / 8), "b": -2 * np.exp(-xs[:-1] / 6)}, steps)
    tr.iteration = replay.iteration = 20
    second = [i for i in range(len(replay)) if replay.frame(i).nodes[tr.param_nodes["w"]].accumulation is not None][-1]
    ins.show_node(replay, second, tr.param_nodes["w"], history)
    QtWidgets.QApplication.processEvents()
    ARTIFACTS.mkdir(exist_ok=True)
    assert ins.grab().save(str(ARTIFACTS / "inspector_w.png"))
    assert " + " in ins.grad_text.toPlainText()


def test_wheel_zooms_under_the_mouse(qtbot):
    from PySide6 import QtGui
    tr, _ = mlp()
    view, player, replay = make_view(qtbot, tr)
    before = view.zoom()
    centre = view.viewport().rect().center()
    event = QtGui.QWheelEvent(QtCore.QPointF(centre), QtCore.QPointF(view.viewport().mapToGlobal(centre)),
                              QtCore.QPoint(), QtCore.QPoint(0, 240), QtCore.Qt.MouseButton.NoButton,
                              QtCore.Qt.KeyboardModifier.NoModifier, QtCore.Qt.ScrollPhase.NoScrollPhase, False)
    QtWidgets.QApplication.sendEvent(view.viewport(), event)
    assert view.zoom() > before * 1.3
    view.set_zoom(1.0)
    assert view.zoom() == pytest.approx(1.0)
    view.fit_to_view()
    assert view.zoom() == pytest.approx(before)


def test_no_replay(qtbot):
    player = Player()
    view = GraphView(player, new_view_state())
    qtbot.addWidget(view)
    view.show()
    assert view.visible_node_count() == 0 and player.count == 0 and player.frame is None
    player.play()                                           # nothing to play: no error, no timer
    assert not player.playing
    player.set_replay(Replay(tutorial()[0]))
    assert view.visible_node_count() > 0
    player.set_replay(None)
    assert view.visible_node_count() == 0 and not view.caption.isVisible()


def test_frame_images_keep_their_size(qtbot):
    """GIF export renders every event: the frames must not change size when halos or labels show."""
    tr, _, _ = tutorial(accumulation_steps=2)
    view, player, replay = make_view(qtbot, tr)
    sizes = set()
    for i in range(0, len(replay), 3):
        player.seek(i)
        img = view.render_frame_image(480)
        sizes.add((img.width(), img.height()))
    assert len(sizes) == 1


# ------------------------------------------------------------------------------- legibility


def _text_items(item):
    for child in item.childItems():
        if isinstance(child, QtWidgets.QGraphicsSimpleTextItem):
            yield child
        yield from _text_items(child)


def assert_drawn_cleanly(view):
    """Node boxes and badges do not overlap one another, and every text sits inside its box."""
    boxes = []
    for key, gfx in view.node_items.items():
        body = gfx.root.sceneBoundingRect()
        boxes.append((key, body))
        badge = None
        if gfx.badge is not None and gfx.badge.isVisible():
            badge = gfx.badge.sceneBoundingRect()
            boxes.append((key, badge))
        for text in _text_items(gfx.detail):
            if not text.text() or not text.isVisible():
                continue
            inside = badge if gfx.badge is not None and gfx.badge.isAncestorOf(text) else body
            r = text.sceneBoundingRect()
            assert inside.adjusted(-0.5, -0.5, 0.5, 0.5).contains(r), (key, text.text(), r, inside)
    for i, (ka, a) in enumerate(boxes):
        for kb, b in boxes[i + 1:]:
            if ka != kb:
                assert not a.intersects(b), (ka, kb, a, b)


def graph_fonts_on_screen(view) -> float:
    """The smallest on-screen pixel size of the node titles, grad_fn names, values and badges."""
    return view.zoom() * min(view.fonts[i].pixelSize() for i in (0, 1, 2, 4))


@pytest.mark.parametrize("name, scenario", [("tutorial", None), ("mlp", "07_mlp_two_moons"),
                                            ("tanh", "08_tanh_neuron")])
def test_main_window_graph_is_legible_and_screenshots(make_window, name, scenario):
    from gradviz.scenario import bundled_path
    window = make_window(bundled_path(scenario) if scenario else None)
    view, player = window.graph, window.player
    replay = player.replay
    for position in (replay.phase_range("loss")[1], len(replay) - 1, replay.phase_range("backward")[1]):
        player.seek(position)
        QtWidgets.QApplication.processEvents()
        view._flush_pending(everything=True)
        assert_drawn_cleanly(view)
    if name == "tutorial":                       # the tutorial fits the panel with text of >= 10 px
        assert graph_fonts_on_screen(view) >= 10.0, (view.zoom(), view.viewport().size())
    ARTIFACTS.mkdir(exist_ok=True)
    assert window.grab().save(str(ARTIFACTS / f"window_{name}.png"))


def test_tutorial_reads_at_ten_pixels_in_a_panel_800_wide(qtbot):
    """The first scenario (w·x + b on one example), in a graph panel the size the main window gives it."""
    w, b = nn.Parameter(gv.tensor(1.0)), nn.Parameter(gv.tensor(0.0))
    w.name, b.name = "w", "b"
    x, y = gv.tensor([2.0]), gv.tensor([4.0])
    x.name, y.name = "x", "y"
    tr = record_iteration({"w": w, "b": b}, lambda x: w * x + b, SGD([w, b], lr=0.1), [(x, y)])
    view, player, replay = make_view(qtbot, tr, (800, 480))
    player.seek(replay.phase_range("backward")[1])
    assert graph_fonts_on_screen(view) >= 10.0
    assert_drawn_cleanly(view)


def test_a_tiny_graph_is_drawn_larger_than_life(qtbot):
    from ui.graph import FIT_MAX_ZOOM
    w = gv.tensor(2.0, requires_grad=True)
    w.name = "w"
    with trace.record() as rec:
        rec.phase("forward")
        loss = w * w
        rec.phase("backward")
        loss.backward()
    tr = FakeTrace(0, dict(rec.nodes), list(rec.events), {"w": rec.find(w)}, rec.find(loss),
                   {"w": None}, {"w": np.array(2.0)}, {"w": np.array(2.0)})
    view, player, replay = make_view(qtbot, tr, (900, 600))
    assert 1.0 < view.zoom() <= FIT_MAX_ZOOM
    view.set_zoom(0.5)
    view.fit_to_view()
    assert view.zoom() == pytest.approx(FIT_MAX_ZOOM)


def test_a_transposed_weight_sits_next_to_its_matmul(qtbot):
    """``x @ w.T``: the permute is fed only by a leaf, and the layout puts it (and w) right before the
    matmul, however deep the matmul is; no layout-only edges are added."""
    gv.manual_seed(0)
    x = gv.tensor(np.ones((2, 3)))
    ws = [nn.Parameter(gv.tensor(np.full((3, 3), 0.1 * (k + 1)))) for k in range(4)]
    with trace.record() as rec:
        rec.phase("forward")
        h = x
        for w in ws:
            h = (h @ w.T).tanh()
        loss = h.sum()
        rec.phase("backward")
        loss.backward()
    names = {f"w{k}": rec.find(w) for k, w in enumerate(ws)}
    tr = FakeTrace(0, dict(rec.nodes), list(rec.events), names, rec.find(loss), dict.fromkeys(names),
                   {n: w.detach().numpy().copy() for n, w in zip(names, ws)},
                   {n: w.detach().numpy().copy() for n, w in zip(names, ws)})
    view, player, replay = make_view(qtbot, tr)
    layer_of = {v: k for k, ids in enumerate(view.layout.layers) for v in ids}
    for nid in names.values():
        permute = replay.consumers[nid][0]
        matmul = replay.consumers[permute][0]
        assert replay.nodes[permute].op == "permute" and replay.nodes[matmul].op == "matmul"
        assert layer_of[nid] + 1 == layer_of[permute] == layer_of[matmul] - 1
    assert sorted(view.layout.edges) == sorted(replay.edges)


def test_svg_export_writes_text_as_text(qtbot, tmp_path):
    """Text items are cached as pixmaps for speed; the SVG must still get real <text>, not bitmaps."""
    import xml.etree.ElementTree as ET
    tr, w, b = tutorial()
    view, player, replay = make_view(qtbot, tr)
    player.seek(replay.phase_range("backward")[1])
    svg = tmp_path / "graph.svg"
    assert view.export_svg(str(svg))
    root = ET.parse(svg).getroot()
    ns = "{http://www.w3.org/2000/svg}"
    texts = ["".join(t.itertext()).strip() for t in root.iter(ns + "text")]
    assert "w" in texts
    grad = format_number(float(np.asarray(w.grad.data)), PRECISION)
    assert any(grad in t for t in texts), (grad, texts)
    heat_maps = [i for i in view.scene().items() if isinstance(i, QtWidgets.QGraphicsPixmapItem) and i.isVisible()]
    assert len(list(root.iter(ns + "image"))) == len(heat_maps)        # the only bitmaps are heat maps
    # the items are cached again afterwards (repaints stay fast)
    assert all(item.cacheMode() != QtWidgets.QGraphicsItem.CacheMode.NoCache
               for item in view.scene().items() if isinstance(item, QtWidgets.QGraphicsSimpleTextItem))


def test_an_accumulation_badge_reads_like_a_written_sum(qtbot):
    """grad: old / + new, a rule, then = sum in bold: lines apart, inside the badge, nothing overlapping."""
    tr, w, b = tutorial(accumulation_steps=2)
    view, player, replay = make_view(qtbot, tr)
    wid = tr.param_nodes["w"]
    second = second_accumulation(replay, wid)
    player.seek(second)
    view._flush_pending(everything=True)
    gfx = view.node_items[wid]
    lines = [item for item in gfx.badge_text.items if item.isVisible()]
    text = view.node_badge_text(wid)
    assert [item.text() for item in lines] == text.split("\n") and len(lines) == 3
    assert lines[-1].text().lstrip().startswith("= ") and lines[-1].font().bold()
    assert not any(item.font().bold() for item in lines[:-1])
    rects = [item.sceneBoundingRect() for item in lines]
    for upper, lower in zip(rects, rects[1:]):
        assert lower.top() - upper.bottom() >= 2.0             # leading between the lines
    rule = gfx.badge_text.rule
    assert rule.isVisible()
    y = rule.sceneBoundingRect().center().y()
    assert rects[-2].bottom() < y < rects[-1].top()            # the rule sits between "+ new" and "= sum"
    badge = gfx.badge.sceneBoundingRect()
    for r in rects:
        assert badge.adjusted(4, 2, -4, -2).contains(r)        # padded inside the badge
    assert_drawn_cleanly(view)


def test_large_tensors_are_heat_maps_without_formatting_every_element(qtbot, monkeypatch):
    """A value with more than MAX_TEXT_ELEMS elements is drawn as a heat map whatever its text, so
    sizing its node must not format it element by element (it made every iteration change slow)."""
    from ui.graph import sizing, text
    formatted = []
    real_fmt = text.value_text          # every value the graph formats as text goes through this one
    monkeypatch.setattr(text, "value_text", lambda a: formatted.append(np.size(a)) or real_fmt(a))
    tr, _ = mlp((2, 8, 1), batch=16)
    view, _player, replay = make_view(qtbot, tr)
    big = [n for n, info in replay.nodes.items() if int(np.prod(info.shape or (1,))) > sizing.MAX_TEXT_ELEMS]
    assert big, "the trace should hold tensors larger than MAX_TEXT_ELEMS"
    shown = {nid for key, gfx in view.node_items.items() for nid in (gfx.spec.members or (key,))}
    assert all(view.node_items[n].spec.heat for n in big if n in view.node_items)
    assert any(n in shown for n in big)
    assert formatted, "sizing formats the small values"
    assert max(formatted, default=0) <= sizing.MAX_TEXT_ELEMS


def test_the_rest_of_a_frame_waits_for_a_tick_due_in_the_same_pass(qtbot, monkeypatch):
    """``_more`` (the rest of a frame update a turn later) gives way to the player's tick due in the
    same pass: the tick's update draws whatever differs. Without a tick due, it updates."""
    from ui import turn_budget
    tr, _, _ = tutorial()
    view, player, replay = make_view(qtbot, tr)
    calls = []
    monkeypatch.setattr(view, "_on_position_changed", lambda position: calls.append(position))
    monkeypatch.setattr(turn_budget.TURN, "tick_at", time.perf_counter())
    view._on_more()
    assert calls == [] and view._more.isActive()           # again next pass
    view._more.stop()
    monkeypatch.setattr(turn_budget.TURN, "tick_at", None)
    view._on_more()
    assert calls == [player.position]
