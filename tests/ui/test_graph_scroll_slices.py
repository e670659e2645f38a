"""Boxes a scroll brings into view get their text a slice per event-loop turn (issue 12).

Playing a large graph follows the active box (``centerOn``): each scroll drew the text and heat maps
of every box it brought into view at once (64 boxes, 34 ms of a 68-ms turn on the largest
expression), and the dozen scrolls of one fit each took a slice of their own."""
from __future__ import annotations

from PySide6 import QtWidgets

from tests.ui.test_graph_build_slices import expression_file, run_until


def test_boxes_scrolled_into_view_get_their_text_a_slice_per_turn(qtbot, make_window, tmp_path, monkeypatch):
    from ui.graph import details

    window = make_window(expression_file(tmp_path))
    graph, player = window.graph, window.player
    settled = lambda: not graph._more.isActive() and not graph.details.timer.isActive()   # noqa: E731
    window.resize(1600, 1000)
    graph.set_zoom(graph.metrics.detail_zoom)           # the text shows; a part of the graph does
    player.seek(player.count - 1)
    run_until(settled)
    assert graph.lod_detail
    items = graph.node_items
    boxes = sorted(items.values(), key=lambda g: (g.xy[0], g.xy[1]))
    graph.centerOn(boxes[0].root.sceneBoundingRect().center())      # one end of the graph
    run_until(settled)
    player.seek(0)                                      # new text for every box; the far ones wait
    run_until(settled)
    far = boxes[-1]
    assert far.spec.key in graph._pending, "a box out of view keeps its text for later"

    monkeypatch.setattr(details, "DETAIL_SLICE_S", 0.0)    # one box per turn (the timer's)
    graph.details.slice_end = 0.0                       # a new turn (the last slice may not be over)
    drawn = []
    original = type(far).update_detail

    def counting(gfx, *args):
        drawn.append(gfx.spec.key)
        return original(gfx, *args)

    monkeypatch.setattr(type(far), "update_detail", counting)
    target = far.root.sceneBoundingRect().center()
    graph.centerOn(target)                              # the other end: many boxes come into view
    graph.centerOn(target + type(target)(1, 1))         # a second scroll in the same turn
    m = details.VIEW_MARGIN                             # boxes this near the view count as showing
    coords = graph.mapToScene(graph.viewport().rect()).boundingRect().adjusted(-m, -m, m, m).getCoords()
    in_view = [k for k, g in items.items() if k in graph._pending and details._shows(g, coords)]
    assert in_view, "boxes in view left for the next turns"
    assert drawn == [], "the scrolls draw nothing past the turn's slice (none here)"
    assert graph.details.timer.isActive()
    waiting = lambda: [k for k in graph._pending if details._shows(items[k], coords)]   # noqa: E731
    for _ in range(200):                                # turns until the timer's first slice
        QtWidgets.QApplication.processEvents()
        if len(waiting()) < len(in_view):
            break
    assert 1 <= len(drawn) == len(in_view) - len(waiting()) <= 2, "a box or so per turn"
    run_until(settled)
    assert not waiting()
    # the text is what a box drawn at once shows
    monkeypatch.setattr(details, "DETAIL_SLICE_S", 60.0)
    texts = {n: (graph.node_value_text(n), graph.node_grad_text(n)) for n in graph._display_of}
    graph._shown_nodes.clear()
    graph._prev_active = set(graph._display_of)
    graph._on_position_changed(player.position)
    graph._flush_pending(everything=True)
    assert {n: (graph.node_value_text(n), graph.node_grad_text(n)) for n in graph._display_of} == texts


def test_a_scroll_within_a_frame_update_shares_its_slice(qtbot, monkeypatch):
    """Playing follows the active box: the frame update draws text for its slice, then scrolls.
    The scroll's boxes wait for the next turns once the update's slice is used up; they had a second
    slice of their own in the same turn."""
    import time

    from PySide6 import QtCore

    from ui.graph import details

    owner = QtCore.QObject()
    d = details.Details(owner)
    asked = []
    monkeypatch.setattr(d, "flush", lambda until=0.0, **_: asked.append(until) or True)
    with d.budget() as until:
        time.sleep(details.DETAIL_SLICE_S * 1.5)        # the update used its slice up
        d.next_slice()                                  # the follow's scroll
    assert asked == [until] and until < time.perf_counter() and d.timer.isActive()
    d.timer.stop()
    qtbot.waitUntil(lambda: not d.sliced, timeout=2000)    # the next turn
    d.next_slice()                                      # a scroll of its own (the user's): a slice
    assert asked[-1] > time.perf_counter()
    d.timer.stop()


def test_scrolls_after_the_turns_slice_is_over_wait_for_the_next_turn(qtbot, monkeypatch):
    """A fit scrolls a dozen times; when it takes longer than the slice between two of them, each
    later scroll began a slice of its own: 38 ms of text in one turn on the largest expression."""
    import time

    from PySide6 import QtCore

    from ui.graph import details

    owner = QtCore.QObject()
    d = details.Details(owner)
    ends = []
    monkeypatch.setattr(d, "flush", lambda until=0.0, **_: ends.append(until) or False)
    d.next_slice()                                      # the first scroll of a turn: a slice
    assert ends[-1] > time.perf_counter()
    time.sleep(details.DETAIL_SLICE_S * 1.5)            # the fit goes on past the slice
    d.next_slice()
    d.next_slice()
    assert ends[1] == ends[2] == ends[0] < time.perf_counter(), "no new slice in the same turn"
    qtbot.waitUntil(lambda: not d.sliced, timeout=2000)    # the loop came back: a new turn
    d.next_slice()
    assert ends[-1] > time.perf_counter()
    d.timer.stop()
