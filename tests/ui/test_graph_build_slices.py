"""A large graph is built a slice at a time and a replaced one deleted likewise (issue 12: the
1,281-box graph at the graph-size limit took 2.4-2.7 s to build at once, and 0.37 s to clear).

The window opens an expression written out term by term (over ``BUILD_AT_ONCE`` boxes); while the
graph is built the event loop keeps turning, the view says what it is doing, clicks on half-built
boxes do nothing, and when done every box is there, in its place, showing the Player's frame, as a
graph built at once would."""
from __future__ import annotations

import time

import numpy as np
from PySide6 import QtCore, QtWidgets

from gradviz.scenario import bundled_path
from gradviz.view.format import format_value
from tests.ui.conftest import finish
from ui.graph import build_job
from ui.graph.scene_update import place
from ui.graph.sizing import make_specs


def expression_file(tmp_path, terms: int = 40):
    expression = " + ".join(f"a{i}*tanh(b{i}*x + c{i})" for i in range(terms))
    rng = np.random.default_rng(0)
    values = "\n".join(f"a{i} = {rng.normal(0, 0.5):.4f}\nb{i} = {rng.normal(0, 2):.4f}\nc{i} = {rng.normal(0, 1):.4f}"
                       for i in range(terms))
    path = tmp_path / "terms.toml"
    path.write_text(f'[scenario]\ntitle = "{terms} tanh units"\nseed = 0\n\n[model]\nexpression = "{expression}"\n\n'
                    f'[model.parameters]\n{values}\n\n[data]\nkind = "linear"\nn = 50\nnoise = 0.1\n\n'
                    '[loss]\nkind = "mse"\n\n[optimizer]\nkind = "sgd"\nlr = 0.01\n\n[loop]\nsteps = 5\n')
    return path


def run_until(predicate, timeout: float = 60.0) -> list[float]:
    """Turn the event loop until ``predicate()``; the gaps a 5 ms timer saw meanwhile (seconds)."""
    gaps, last = [], [time.perf_counter()]

    def tick():
        now = time.perf_counter()
        gaps.append(now - last[0])
        last[0] = now

    timer = QtCore.QTimer()
    timer.timeout.connect(tick)
    timer.start(5)
    end = time.perf_counter() + timeout
    while not predicate() and time.perf_counter() < end:
        QtWidgets.QApplication.processEvents(QtCore.QEventLoop.ProcessEventsFlag.AllEvents, 5)
    timer.stop()
    assert predicate()
    return gaps


def building(make_window, tmp_path):
    """A window whose run ended and whose trace is there: its graph is being built."""
    window = make_window(expression_file(tmp_path), wait=False)
    window.document.finish_now()
    window.traces.wait()
    QtWidgets.QApplication.processEvents()
    return window, window.graph, window.graph._build_job


def test_a_large_graph_is_built_in_slices_and_shows_the_frame_when_done(qtbot, make_window, tmp_path):
    window, graph, job = building(make_window, tmp_path)
    assert job is not None, "a graph of more than BUILD_AT_ONCE boxes is built by a BuildJob"
    assert len(job.keys) > build_job.BUILD_AT_ONCE
    assert graph.pending_label.isVisible() and graph.pending_label.text().startswith("Drawing the graph: ")
    assert not graph.is_pending()                       # (not a run's message)
    gaps = run_until(lambda: graph._build_job is None)
    assert len(gaps) >= 3, "the event loop turned while the graph was built"
    assert not graph.pending_label.isVisible()
    # every box is there, where a graph built at once puts it, and shows the Player's frame
    folded = graph.folded
    assert sorted(graph.node_items) == sorted(folded.keys)
    specs = make_specs(graph.replay, folded, graph.metrics)
    for gfx in graph.node_items.values():
        assert gfx.root.scene() is graph.scene() and gfx.root.isVisible()
    assert {k: g.spec for k, g in graph.node_items.items()} == specs
    positions = dict(graph.layout.positions)
    loss = graph.replay.loss_node
    assert graph.node_value_text(loss) == ""            # frame 0: forward has not reached the loss
    window.player.seek(window.player.count - 1)         # the end of the iteration: every box updated
    loss_value = window.player.frame.nodes[loss].value  # (its text in this turn's slice or the next ones:
    qtbot.waitUntil(lambda: format_value(loss_value) in graph.node_value_text(loss), timeout=5000)  # details.py)
    # the same graph built at once (place) lays it out identically
    graph._clear_items()
    graph.folded, graph._display_of = folded, folded.display_of
    place(graph, specs)
    assert dict(graph.layout.positions) == positions


def test_clicks_on_a_graph_being_built_do_nothing_and_another_file_cancels_it(qtbot, make_window, tmp_path):
    window, graph, job = building(make_window, tmp_path)
    run_until(lambda: job.stage in ("items", "state", "edges", "done"))
    if job.target.node_items:                            # a box already drawn, not yet clickable
        key, gfx = next(iter(job.target.node_items.items()))
        graph.centerOn(gfx.root.sceneBoundingRect().center())
        pos = graph.mapFromScene(gfx.root.sceneBoundingRect().center())
        assert graph._key_at(pos) is None
    window.open_path(bundled_path("01_tutorial_wx_b"))   # another file while building
    finish(window)
    assert job.stage == "cancelled" and graph._build_job is None
    # the cancelled graph's items leave the scene a slice at a time; the tutorial's stay
    run_until(lambda: len(graph.scene().items()) < 300, timeout=30)
    roots = {item for item in graph.scene().items() if item.parentItem() is None}
    mine = {g.root for g in graph.node_items.values()} | {i for e in graph.edge_items.values() for i in e.items()}
    assert roots <= mine | {item for item in roots if item.data(0) is None and item.data(1) is None}
    window.player.seek(window.player.count - 1)
    QtWidgets.QApplication.processEvents()
    loss = window.replay.loss_node
    assert format_value(window.player.frame.nodes[loss].value) in graph.node_value_text(loss)


def test_an_export_waits_for_the_graph_to_be_built(qtbot, make_window, tmp_path):
    window = make_window(expression_file(tmp_path), wait=False)
    window.document.finish_now()
    window.traces.wait()
    QtWidgets.QApplication.processEvents()
    assert window.graph._build_job is not None
    out = tmp_path / "graph.png"
    assert window.graph.export_png(str(out), scale=0.5)
    assert window.graph._build_job is None and out.stat().st_size > 1000


def test_a_zoom_during_the_build_shows_the_boxes_at_the_zoom_reached(qtbot, make_window, tmp_path):
    window, graph, job = building(make_window, tmp_path)
    assert job is not None and graph._lod[0] == 2
    graph.set_zoom(0.05)                                 # far out: boxes only
    assert graph._lod[0] == 0
    graph.wait_built()
    assert not any(gfx.detail.isVisible() for gfx in graph.node_items.values())
    graph.set_zoom(1.0)
    assert all(gfx.detail.isVisible() for gfx in graph.node_items.values())


def test_a_frame_that_changes_every_box_is_drawn_a_slice_per_turn_and_ends_as_one_update(
        qtbot, make_window, tmp_path, monkeypatch):
    """The next iteration of a large graph (or a jump from the end of an iteration to its start)
    changes every box and edge: borders, glows and text are drawn for a slice
    (``details.DETAIL_SLICE_S``), the active boxes first, and the rest in the next turns (issue 12:
    1,281 boxes at once took 56-72 ms). In the end every box and edge shows the frame exactly as an
    update of all of them at once does."""
    from ui.graph import details

    window = make_window(expression_file(tmp_path))
    graph, player = window.graph, window.player
    settled = lambda: not graph._more.isActive() and not graph.details.timer.isActive()   # noqa: E731
    player.seek(player.count - 1)                        # every box shows values and gradients
    run_until(settled)
    monkeypatch.setattr(details, "DETAIL_SLICE_S", 0.0005)   # a slice far too short for the graph
    player.seek(0)
    frame = player.frame
    left = [n for n in graph._display_of if graph._shown_nodes.get(n) is not frame.nodes[n]]
    assert left and graph._more.isActive(), "boxes left for the next turn"
    assert all(graph._shown_nodes.get(n) is frame.nodes[n] for n in frame.active_nodes), "active first"
    gaps = run_until(settled)
    assert len(gaps) >= 2, "the event loop turned between the slices"
    assert all(graph._shown_nodes.get(n) is frame.nodes[n] for n in graph._display_of)
    looks = {k: g._look for k, g in graph.node_items.items()}
    styles = {k: e._style for k, e in graph.edge_items.items()}
    texts = {n: (graph.node_value_text(n), graph.node_grad_text(n)) for n in graph._display_of}
    assert any(value for value, _grad in texts.values())     # (the inputs and parameters show values)
    # the same frame drawn at once, every box and edge touched: nothing changes
    monkeypatch.setattr(details, "DETAIL_SLICE_S", 60.0)
    graph._shown_nodes.clear()
    graph._shown_edges.clear()
    graph._prev_active, graph._prev_active_edges = set(graph._display_of), set(graph.replay.edges)
    graph._on_position_changed(player.position)
    assert not graph._more.isActive()
    assert {k: g._look for k, g in graph.node_items.items()} == looks
    assert {k: e._style for k, e in graph.edge_items.items()} == styles
    assert {n: (graph.node_value_text(n), graph.node_grad_text(n)) for n in graph._display_of} == texts


def test_boxes_a_large_graph_outgrew_are_placed_a_slice_per_turn_as_at_once(qtbot, make_window, tmp_path, monkeypatch):
    """The next iteration's values outgrow some boxes of a large graph: the new layout is made in a
    worker and the boxes moved and edges rerouted a slice per turn (``scene_update.PlaceJob``; at
    once, 36-47 ms at 1,281 boxes), with the same items; in the end every box sits where the layout
    puts it and every edge ends at its box, as ``place`` at once does."""
    import dataclasses

    from ui.graph import scene_update

    window = make_window(expression_file(tmp_path))
    graph = window.graph
    items = dict(graph.node_items)
    edges = dict(graph.edge_items)
    grown = {k: dataclasses.replace(g.spec, width=g.spec.width + 40) if i % 5 == 0 else g.spec
             for i, (k, g) in enumerate(graph.node_items.items())}
    grown = {k: grown[k] for k in graph.folded.keys}
    monkeypatch.setattr(scene_update, "SLICE_S", 0.0005)        # many slices
    graph._apply_grown(grown)
    gaps = run_until(lambda: graph._relayout is None and graph._spec_job is not None and graph._spec_job.done())
    assert len(gaps) >= 3, "the event loop turned while the boxes were placed"
    assert graph.node_items == items and graph.edge_items == edges          # the same items
    expected = scene_update.layout_of(grown, graph.folded.edges)
    assert dict(graph.layout.positions) == dict(expected.positions)
    for key, gfx in graph.node_items.items():
        assert gfx.spec == grown[key]
        cx, cy = expected.positions[key]
        assert abs(gfx.root.pos().x() + gfx.spec.width / 2 - cx) < 0.01
        assert abs(gfx.root.pos().y() + gfx.spec.height / 2 - cy) < 0.01
    for (_a, b), edge in graph.edge_items.items():
        assert abs(edge.points[-1][0] - (graph.node_items[b].root.pos().x() - 1)) < 0.01


def test_a_placement_under_way_is_cancelled_by_another_iteration_and_finished_by_wait_built(
        qtbot, make_window, tmp_path, monkeypatch):
    import dataclasses

    from ui.graph import scene_update

    window = make_window(expression_file(tmp_path))
    graph = window.graph
    grown = {k: dataclasses.replace(graph.node_items[k].spec, width=graph.node_items[k].spec.width + 30)
             for k in graph.folded.keys}
    monkeypatch.setattr(scene_update, "SLICE_S", 0.0)
    graph._apply_grown(grown)
    run_until(lambda: graph._relayout is None)
    job = graph._spec_job
    assert isinstance(job, scene_update.PlaceJob) and not job.done()
    graph.wait_built()                                   # an export or a test: placed now
    assert job.done() and all(g.spec == grown[k] for k, g in graph.node_items.items())
    graph._apply_grown({k: dataclasses.replace(s, width=s.width + 30) for k, s in grown.items()})
    run_until(lambda: graph._relayout is None)
    job = graph._spec_job
    assert not job.done()
    graph._cancel_spec_job()                             # (what another iteration or a fold does)
    assert not job.timer.isActive() and not job.done() and graph.unplaced
    # the next iteration's sizing finds nothing grown, but the half-done placement is done again
    graph._spec_job = scene_update.SpecJob(graph)
    graph._spec_job.start()
    run_until(lambda: graph._relayout is None and graph._spec_job.done())
    graph.wait_built()
    assert not graph.unplaced
    for key, gfx in graph.node_items.items():
        cx, _cy = graph.layout.positions[key]
        assert abs(gfx.root.pos().x() + gfx.spec.width / 2 - cx) < 0.01
    for (_a, b), edge in graph.edge_items.items():
        assert abs(edge.points[-1][0] - (graph.node_items[b].root.pos().x() - 1)) < 0.01


def test_a_small_graph_replaced_while_a_large_one_is_being_reaped_leaves_the_rest_to_the_slices(
        qtbot, make_window, tmp_path):
    """A small graph's items went with ``scene.clear()``, which also deleted at once whatever a reap
    under way still had to remove (a replaced large graph, a cancelled build): 48 ms of a turn on
    the largest expression. Now the reap goes on a slice per turn, and in the end only the current
    graph's items are in the scene."""
    window = make_window(expression_file(tmp_path))
    graph = window.graph
    assert len(graph.node_items) > build_job.BUILD_AT_ONCE
    window.open_path(bundled_path("01_tutorial_wx_b"))   # the large graph is reaped a slice at a time
    finish(window)
    assert build_job._reaping_in(graph.scene()), "(some of the large graph's items are still there)"
    cleared = []
    scene = graph.scene()
    scene.clear = lambda: cleared.append(True)           # (would have deleted the reap's items at once)
    window.open_path(bundled_path("02_forgot_zero_grad"))  # a small graph replaces a small one, mid-reap
    finish(window)
    assert not cleared, "the reap's items were not deleted at once"
    run_until(lambda: not build_job._reaping_in(scene), timeout=30)
    roots = {item for item in scene.items() if item.parentItem() is None}
    mine = {g.root for g in graph.node_items.values()} | {i for e in graph.edge_items.values() for i in e.items()}
    assert roots == mine


def test_a_replaced_large_graph_leaves_the_scene_by_slices_of_time(qtbot, make_window, tmp_path, monkeypatch):
    """A slice of a reap is timed (``REAP_SLICE_S``), not counted: 400 items a turn took 12-50 ms."""
    window = make_window(expression_file(tmp_path))
    graph = window.graph
    scene = graph.scene()
    before = {item for item in scene.items() if item.parentItem() is None}
    monkeypatch.setattr(build_job, "REAP_SLICE_S", 0.0)    # the least a slice does: 16 boxes or edges
    window.open_path(bundled_path("01_tutorial_wx_b"))
    finish(window)
    left = {item for item in scene.items() if item.parentItem() is None} & before
    assert left and build_job._reaping_in(scene)
    counts = []
    while build_job._reaping_in(scene) and len(counts) < 5:
        QtWidgets.QApplication.processEvents()
        now = len({item for item in scene.items() if item.parentItem() is None} & before)
        counts.append(len(left) - now)
        left = {item for item in scene.items() if item.parentItem() is None} & before
    assert counts and max(counts) <= 2 * 16 * 4, counts    # a turn or two of 16 (an edge has up to 4 roots)
    run_until(lambda: not build_job._reaping_in(scene), timeout=60)
    assert not {item for item in scene.items() if item.parentItem() is None} & before
