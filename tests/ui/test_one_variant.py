"""One current variant, iteration and node across the main window, driven with the mouse: a variant
chosen in the one selector (the toolbar's), the graph's trace, the code panel, the plots and the
controls (whose "Edit" row names it) move together; a selected node stays
selected across a variant switch only when that run's graph has it.

The numbers are checked against the core's own run of each variant (a fresh ``Session``)."""
from __future__ import annotations

import numpy as np
from PySide6 import QtCore

from gradviz.scenario import bundled_path, load
from gradviz.training.session import Session
from gradviz.view.format import format_number
from tests.ui.conftest import screenshot
from tests.ui.dashboard_rig import original, type_into
from ui.code_view import scenario_program
from ui.graph import PRECISION

Qt = QtCore.Qt
NOTHING_SELECTED = "Click a node in the graph"


def choose_in(qtbot, combo, index: int) -> None:
    """Open the combo box's list and click item ``index``, as a user does."""
    combo.showPopup()
    view = combo.view()
    qtbot.waitUntil(view.isVisible)
    rect = view.visualRect(view.model().index(index, 0))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())
    qtbot.waitUntil(lambda: not view.isVisible())


def click_node(qtbot, window, node: int) -> None:
    rect = window.graph.node_scene_rect(node)
    pos = window.graph.mapFromScene(QtCore.QPointF(rect.center().x(), rect.top() + 12))
    qtbot.mouseClick(window.graph.viewport(), Qt.MouseButton.LeftButton, pos=pos)




def outlined(window) -> list[int]:
    """The nodes the graph outlines as selected."""
    return [key for key, gfx in window.graph.node_items.items() if gfx.selection.isVisible()]


def test_a_variant_chosen_in_the_toolbar_moves_every_view(qtbot, make_window):
    path = bundled_path("04_rosenbrock_race")
    window = make_window(path)
    scenario = load(path)
    dash, controls = window.dashboards, window.controls
    k = 5
    type_into(qtbot, window.iteration_box, str(k))
    assert window.replay.iteration == k
    for i in (3, 1, 0):                                     # Adam, SGD + momentum, the main run again
        choose_in(qtbot, window.variant_box, i)
        variant = scenario.variants()[i]
        assert window.variant_box.currentIndex() == i and variant.name in controls.run_label.text()
        assert window.variant == i and window.variant_label.text() == f"Run: {variant.name}"
        core = Session(scenario, i).run()
        # the graph animates this variant's trace of the same iteration: its step's new parameters
        assert window.replay.iteration == k and window.iteration_box.value() == k
        window.player.to_end()
        for name, node in window.replay.param_nodes.items():
            shown = window.graph.node_value_text(node).split()[-1]
            assert shown == format_number(core.params[name][k + 1], PRECISION), (variant.name, name)
        # the code panel shows this variant's loop
        assert window.code.toPlainText() == scenario_program(scenario, i)[0]
        # the plots' current run (drawn on top) is this variant's, their cursors at the iteration
        np.testing.assert_array_equal(original(dash.params.curve("param", "x"))[1], core.params["x"].astype(float))
        np.testing.assert_array_equal(original(dash.grads.curve("grad", "y"))[1], core.grads["y"].astype(float))
        assert dash.loss.plot.cursor.value() == k
        # and the controls edit it
        assert controls.kind_box.currentData() == variant.optimizer.kind
        assert float(controls.lr_edit.text()) == variant.optimizer.hyper["lr"]
    screenshot(window, "window_variant_chosen_in_toolbar")


def test_a_selected_node_stays_selected_across_variants_only_where_it_exists(qtbot, make_window):
    """Gradient accumulation traces four forward passes; the one-batch comparison traces one."""
    window = make_window(bundled_path("03_gradient_accumulation"))
    inspector = window.inspector
    window.player.to_end()
    w = window.replay.param_nodes["w"]
    nodes_accumulating = len(window.replay.nodes)
    click_node(qtbot, window, w)
    assert inspector.title.text() == "w" and outlined(window) == [w]

    choose_in(qtbot, window.variant_box, 1)                 # one batch of 32: w is in its graph too
    assert len(window.replay.nodes) < nodes_accumulating
    assert window.view_state.selected_node == w and outlined(window) == [w]
    assert inspector.title.text() == "w"
    assert inspector.replay is window.replay and inspector.frame_index == window.player.position

    choose_in(qtbot, window.variant_box, 0)
    later = max(key for key in window.graph.node_items if key >= 0)     # of a later micro-batch
    click_node(qtbot, window, later)
    assert inspector.title.text() == window.replay.node_name(later) and outlined(window) == [later]

    choose_in(qtbot, window.variant_box, 1)                 # a graph without it: nothing selected
    assert later not in window.replay.nodes
    assert window.view_state.selected_node is None and outlined(window) == []
    assert inspector.title.text() == NOTHING_SELECTED and inspector.fields["kind"].text() == "—"
    choose_in(qtbot, window.variant_box, 0)                 # and it does not come back
    assert window.view_state.selected_node is None and inspector.title.text() == NOTHING_SELECTED
