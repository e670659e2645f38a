"""Issue 13, "Larger graphs stay readable" and the graph's part of "stale graph during a run": what the
user sees of the graph -- text size on screen, where a module stays when it opens, the find field,
the "computing" message, the whole-graph fit.  Screenshots land in test-artifacts/."""
from __future__ import annotations

import pytest
from PySide6 import QtCore, QtWidgets

from gradviz.scenario import bundled_path
from gradviz.scenario.bundled import bundled
from gradviz.view.replay import Replay
from tests.core.test_replay import mlp
from tests.ui.conftest import screenshot
from tests.ui.test_graph_view import new_view_state
from ui.graph import GraphView
from ui.graph.sizing import MIN_TEXT_PX
from ui.player import Player

Qt = QtCore.Qt
SIZES = ((1400, 860), (800, 600))


def text_items(view):
    """Every text the user can see in the graph: visible, not empty, (partly) inside the viewport."""
    on_screen = view.mapToScene(view.viewport().rect()).boundingRect()
    for item in view.scene().items():
        if (isinstance(item, QtWidgets.QGraphicsSimpleTextItem) and item.isVisible() and item.text()
                and item.sceneBoundingRect().intersects(on_screen)):
            yield item


def smallest_text_px(view) -> float:
    """The smallest on-screen pixel size of a visible text (font pixel size x the view's scale)."""
    return min(item.font().pixelSize() * view.zoom() for item in text_items(view))


def view_point(view, scene_point: QtCore.QPointF) -> QtCore.QPointF:
    return view.viewportTransform().map(scene_point)


def viewport_centre(view) -> QtCore.QPointF:
    return QtCore.QPointF(view.viewport().width() / 2, view.viewport().height() / 2)


def near(a: QtCore.QPointF, b: QtCore.QPointF, tolerance: float = 3.0) -> bool:
    return abs(a.x() - b.x()) <= tolerance and abs(a.y() - b.y()) <= tolerance


def settle():
    for _ in range(3):
        QtWidgets.QApplication.processEvents()


def mlp_view(qtbot, size=(1000, 600)):
    tr, _model = mlp()
    player = Player(Replay(tr))
    view = GraphView(player, new_view_state())
    qtbot.addWidget(view)
    view.resize(*size)
    view.show()
    qtbot.waitExposed(view)
    return view, player


# -- readable text ----------------------------------------------------------------------------------
@pytest.mark.parametrize("path", bundled(), ids=lambda p: p.stem)
def test_every_scenario_opens_with_readable_text(make_window, path):
    """At the opening zoom every node shows its text, none of it below MIN_TEXT_PX on screen, and the
    loss is on screen; at 800x600 too (the graph then scrolls instead of shrinking)."""
    window = make_window(path)
    view = window.graph
    for size in SIZES:
        window.resize(*size)
        settle()
        view.fit_to_view()                      # as a new run's end does
        settle()
        assert view.lod_level() == 2, (size, view.zoom())
        assert any(True for _ in text_items(view)), size
        assert smallest_text_px(view) >= MIN_TEXT_PX - 0.01, (size, view.zoom())
        loss = view.node_scene_rect(view.replay.loss_nodes[0])
        assert view.viewport().rect().intersects(view.mapFromScene(loss).boundingRect()), size
        if path.stem[:2] in ("01", "03", "07"):
            screenshot(window, f"polish_graph_{path.stem[:2]}_{size[0]}x{size[1]}")


def test_zoomed_out_text_is_replaced_not_shrunk(qtbot):
    """Zooming out hides values and badges before they read below MIN_TEXT_PX, then shows each node's
    name (or op symbol) large, then only boxes: at no zoom is a visible text too small."""
    view, _player = mlp_view(qtbot)
    levels = set()
    for zoom in (1.2, 0.8, 0.7, 0.6, 0.5, 0.45, 0.3, 0.1):
        view.set_zoom(zoom)
        level = view.lod_level()
        levels.add(level)
        texts = list(text_items(view))
        if level:
            assert texts, zoom
            assert smallest_text_px(view) >= MIN_TEXT_PX - 0.01, zoom
        else:
            assert not texts, zoom
        if level == 1:                           # only the names: "w"-like titles and op symbols
            shown = {t.text() for t in texts}
            assert "x" in shown and "tanh" in shown and not any("grad" in t for t in shown), shown
    assert levels == {0, 1, 2}


# -- expanding a module -----------------------------------------------------------------------------
def test_collapsing_and_expanding_keep_the_zoom_and_the_module_in_place(qtbot):
    view, player = mlp_view(qtbot)
    player.seek(len(player.replay) - 1)
    view.set_zoom(0.9)
    view.centerOn(view.module_scene_rect("0").center())
    settle()
    for collapse in (True, False):
        scale = view.transform().m11()
        before = view_point(view, view.module_scene_rect("0").center())
        if collapse:
            view.set_collapsed("0", True)
        else:                                    # a double-click on the box, as the user does
            box = view.module_scene_rect("0")
            qtbot.mouseDClick(view.viewport(), Qt.MouseButton.LeftButton, pos=view.mapFromScene(box.center()))
        assert view.is_collapsed("0") == collapse
        assert view.transform().m11() == pytest.approx(scale)
        assert near(view_point(view, view.module_scene_rect("0").center()), before), collapse
        assert view.lod_level() == 2


def test_expanding_a_module_in_the_main_window(make_window):
    """Linear 0 of the MLP, folded, then expanded: the zoom, the place and the labels stay."""
    window = make_window(bundled_path("07_mlp_two_moons"))
    view = window.graph
    for size in SIZES:
        window.resize(*size)
        settle()
        view.fit_to_view()
        if not view.is_collapsed("0"):
            view.set_collapsed("0", True)
        view.centerOn(view.module_scene_rect("0").center())
        settle()
        screenshot(window, f"polish_graph_mlp_{size[0]}x{size[1]}_folded")
        scale = view.zoom()
        before = view_point(view, view.module_scene_rect("0").center())
        view.set_collapsed("0", False)
        settle()
        assert view.zoom() == pytest.approx(scale)
        assert near(view_point(view, view.module_scene_rect("0").center()), before)
        assert smallest_text_px(view) >= MIN_TEXT_PX - 0.01
        screenshot(window, f"polish_graph_mlp_{size[0]}x{size[1]}_expanded")


# -- finding a node ---------------------------------------------------------------------------------
def selected(window):
    return window.view_state.selected_node


def test_find_a_parameter_and_an_op_by_name(make_window, qtbot):
    window = make_window()                          # the tutorial: w * x + b
    view, replay = window.graph, window.player.replay
    view.set_zoom(2.5)                              # the nodes far apart: each find has to move the view
    w = replay.param_nodes["w"]
    assert view.find_node("w")
    assert selected(window) == w
    assert near(view_point(view, view.node_scene_rect(w).center()), viewport_centre(view))
    assert view.node_items[w].selection.isVisible()

    assert view.find_node("MulBackward0")
    mul = selected(window)
    assert replay.nodes[mul].label == "MulBackward0"
    assert near(view_point(view, view.node_scene_rect(mul).center()), viewport_centre(view))
    assert not view.find_node("no such node")

    # the find field: Ctrl+F focuses it, typing finds, Enter goes to the next match, Esc back to the graph
    window.activateWindow()
    view.setFocus()
    qtbot.waitUntil(lambda: view.hasFocus())
    qtbot.keyClick(view, Qt.Key.Key_F, Qt.KeyboardModifier.ControlModifier)
    field = view.search_box.field
    qtbot.waitUntil(lambda: field.hasFocus())
    qtbot.keyClicks(field, "backward")
    first = selected(window)
    assert replay.nodes[first].label.endswith("Backward0")
    assert view.search_box.count.text().startswith("1/")
    qtbot.keyClick(field, Qt.Key.Key_Return)
    assert selected(window) != first and replay.nodes[selected(window)].label.endswith("Backward0")
    assert view.search_box.count.text().startswith("2/")
    assert near(view_point(view, view.node_scene_rect(selected(window)).center()), viewport_centre(view))
    qtbot.keyClick(field, Qt.Key.Key_Escape)
    qtbot.waitUntil(lambda: view.hasFocus())
    screenshot(window, "polish_graph_find")


def test_find_opens_a_collapsed_module(make_window):
    window = make_window(bundled_path("07_mlp_two_moons"))
    view, replay = window.graph, window.player.replay
    view.set_collapsed("0", True)
    view.fit()                                       # far out: the find zooms in to a readable zoom
    assert view.find_node("0.weight")
    assert not view.is_collapsed("0")
    node = replay.param_nodes["0.weight"]
    assert selected(window) == node
    assert near(view_point(view, view.node_scene_rect(node).center()), viewport_centre(view))
    assert view.lod_level() == 2                     # found at a zoom where its text reads


# -- a run in progress ------------------------------------------------------------------------------
def test_show_pending_replaces_the_old_trace_until_the_next_one(make_window):
    window = make_window()
    view, player = window.graph, window.player
    trace = player.replay
    assert view.scene().items()
    view.show_pending("Running MLP on two moons… 40%")
    settle()
    assert not view.scene().items() and view.visible_node_count() == 0
    assert view.pending_label.isVisible() and view.pending_label.text() == "Running MLP on two moons… 40%"
    assert view.caption.isVisible() and "40%" in view.caption.text.text()
    label = view.pending_label.geometry().center()
    assert abs(label.x() - view.viewport().geometry().center().x()) <= 2
    assert not view.find_node("w")                  # nothing to find in a trace no longer shown
    view.show_pending("Running MLP on two moons… 80%")
    assert view.pending_label.text().endswith("80%") and "80%" in view.caption.text.text()
    player.seek(3)                                  # the old trace's cursor moving draws nothing
    assert not view.scene().items()
    screenshot(window, "polish_graph_pending")
    player.set_replay(None)                         # no trace yet: the message stays
    assert view.pending_label.isVisible()
    player.set_replay(trace)                        # the run's trace arrives
    settle()
    assert not view.pending_label.isVisible()
    assert view.visible_node_count() > 0 and view.lod_level() == 2
    assert view.caption.pill.text() != "no trace yet"


def test_end_pending_shows_the_players_trace_again(make_window):
    window = make_window()
    view = window.graph
    n = view.visible_node_count()
    view.show_pending("Running… 10%")
    view.end_pending()
    assert not view.pending_label.isVisible() and view.visible_node_count() == n


# -- fit ----------------------------------------------------------------------------------------------
def test_fit_after_zooming_shows_the_whole_graph(make_window):
    window = make_window(bundled_path("07_mlp_two_moons"))
    view = window.graph
    window.resize(800, 600)
    settle()
    view.set_zoom(2.0)
    view.fit()
    settle()
    viewport = QtCore.QRectF(view.viewport().rect()).adjusted(-1, -1, 1, 1)
    for key in view.node_items:
        rect = view.mapFromScene(view.node_items[key].root.sceneBoundingRect()).boundingRect()
        assert viewport.contains(QtCore.QRectF(rect)), key
    caption_bottom = view.caption.geometry().bottom()
    top = min(view.mapFromScene(g.root.sceneBoundingRect()).boundingRect().top() for g in view.node_items.values())
    assert top >= caption_bottom - view.viewport().geometry().top() - 1   # nothing under the caption
    texts = list(text_items(view))
    assert not texts or smallest_text_px(view) >= MIN_TEXT_PX - 0.01
    screenshot(window, "polish_graph_mlp_fit_800x600")
    window.resize(1400, 860)                          # fitting follows the resize
    settle()
    assert all(QtCore.QRectF(view.viewport().rect()).adjusted(-1, -1, 1, 1).contains(
        QtCore.QRectF(view.mapFromScene(g.root.sceneBoundingRect()).boundingRect())) for g in view.node_items.values())
