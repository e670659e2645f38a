"""Issue 13, item 5: the inspector is one structured, scrollable panel that reads numbers as the graph
does, empties itself on another scenario, shows a folded module on a single click, and shows what an
op sent back to each of its inputs."""
from __future__ import annotations

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from gradviz import trace as T
from gradviz.scenario import bundled_path
from gradviz.view.format import format_value
from tests.ui.conftest import finish, screenshot
from ui.inspector import EMPTY_HINT, NOTHING_SELECTED

Qt = QtCore.Qt


def shown_labels(inspector) -> list[str]:
    """The text of every label the user can see in the inspector (hidden ones and empty ones left out)."""
    return [w.text() for w in inspector.body.findChildren(QtWidgets.QLabel)
            if w.isVisibleTo(inspector) and w.text()]


def click_at(qtbot, window, rect: QtCore.QRectF) -> None:
    view = window.graph
    pos = view.mapFromScene(QtCore.QPointF(rect.center().x(), rect.top() + 12))
    qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=pos)


def click_node(qtbot, window, node: int) -> None:
    window.graph.centerOn(window.graph.node_scene_rect(node).center())
    with qtbot.waitSignal(window.graph.nodeClicked, timeout=2000):
        click_at(qtbot, window, window.graph.node_scene_rect(node))


def end_of_backward(window) -> int:
    replay = window.replay
    end = next(pos for pos, phase, _mb in replay.phase_starts() if phase == "step") - 1
    window.player.seek(end)
    QtWidgets.QApplication.processEvents()
    return end


def fold_box(window, module: str) -> int:
    window.graph.set_collapsed(module, True)
    QtWidgets.QApplication.processEvents()
    return next(key for key, fold in window.graph.folded.folds.items() if fold.module == module)


def test_another_scenario_leaves_only_the_empty_state(qtbot, make_window):
    window = make_window()
    inspector = window.inspector
    assert shown_labels(inspector) == [NOTHING_SELECTED, EMPTY_HINT]
    window.player.to_end()                                 # after the step: "before → after" headings
    click_node(qtbot, window, window.replay.param_nodes["w"])
    shown = shown_labels(inspector)
    assert shown[0] == "w" and any("before → after" in t for t in shown) and ".grad" in shown

    window.open_path(bundled_path("08_tanh_neuron"))
    finish(window)
    assert shown_labels(inspector) == [NOTHING_SELECTED, EMPTY_HINT]
    assert not any(s.isVisibleTo(inspector) for s in inspector.sections)
    assert not inspector.plot.isVisibleTo(inspector)


def test_another_scenario_also_forgets_a_folded_module(qtbot, make_window):
    window = make_window(bundled_path("07_mlp_two_moons"))
    window.player.to_end()
    window.inspector.select_module("0")
    assert window.inspector.title.text() == "Linear 0"
    window.open_path(bundled_path("01_tutorial_wx_b"))
    finish(window)
    assert shown_labels(window.inspector) == [NOTHING_SELECTED, EMPTY_HINT]


def test_a_single_click_on_a_folded_module_fills_the_inspector(qtbot, make_window):
    window = make_window(bundled_path("07_mlp_two_moons"))
    inspector = window.inspector
    end_of_backward(window)
    key = fold_box(window, "0")
    rect = window.graph.node_items[key].root.sceneBoundingRect()
    window.graph.centerOn(rect.center())
    with qtbot.waitSignal(window.graph.moduleClicked, timeout=2000) as clicked:
        click_at(qtbot, window, rect)
    assert clicked.args == ["0"]
    assert window.inspector_dock.isVisible() and not inspector.visibleRegion().isEmpty()
    assert inspector.title.text() == "Linear 0" and inspector.fields["kind"].text() == "module"
    params = [r.caption.text() for r in inspector.params_section.rows if r.isVisibleTo(inspector)]
    assert [c.split()[0] for c in params] == ["0.weight", "0.weight.grad", "0.bias", "0.bias.grad"]
    values = [r.caption.text() for r in inspector.value_section.rows if r.isVisibleTo(inspector)]
    assert values[0].startswith("in: ") and values[-1].startswith("out: ")
    # a tensor too large to read whole: its summary, a heat map, its first elements
    x_view = inspector.value_section.rows[0].view
    text = x_view.toPlainText()
    assert "min " in text and "mean " in text and "max " in text and "first: [" in text
    assert x_view.heat.isVisibleTo(inspector) and not x_view.heat.pixmap().isNull()
    weight = window.replay.frame(window.player.position).nodes[window.replay.param_nodes["0.weight"]].value
    weight_text = inspector.params_section.rows[0].view.toPlainText()
    assert f"first: [{format_value(np.asarray(weight).ravel()[0])}" in weight_text

    window.graph.set_collapsed("0", False)                  # a node after a module: that node again
    QtWidgets.QApplication.processEvents()
    loss = window.replay.loss_node
    click_node(qtbot, window, loss)
    assert inspector.title.text() == window.replay.node_name(loss)
    assert not inspector.params_section.isVisibleTo(inspector)


@pytest.mark.parametrize("name, expected", [("loss", "4.0"), ("w.grad", "-8.0")])
def test_numbers_read_as_on_the_graph(qtbot, make_window, name, expected):
    """The tutorial's loss 4.0 and w.grad -8.0 read "4.0" and "-8.0" in both (numpy wrote "4." and "-8.")."""
    window = make_window()
    end_of_backward(window)
    replay, inspector = window.replay, window.inspector
    if name == "loss":
        node = replay.loss_node
        click_node(qtbot, window, node)
        graph_text = window.graph.node_value_text(node).split()[-1]
        shown = inspector.value_text.toPlainText()
    else:
        node = replay.param_nodes["w"]
        click_node(qtbot, window, node)
        graph_text = window.graph.node_badge_text(node).split()[-1]
        shown = inspector.grad_text.toPlainText().split()[0]
    assert shown == graph_text == expected


def test_an_op_shows_what_it_sent_to_each_input(qtbot, make_window):
    window = make_window()
    end = end_of_backward(window)
    replay, inspector = window.replay, window.inspector
    frame = replay.frame(end)
    node = replay.loss_node                                  # MSE of (w·x + b) and y
    info = replay.nodes[node]
    click_node(qtbot, window, node)
    event = next(e for e in replay.events if isinstance(e, T.BackwardEvent) and e.node == node)
    rows = [r for r in inspector.sent_section.rows if r.isVisibleTo(inspector)]
    assert inspector.sent_section.isVisibleTo(inspector) and "input" in inspector.sent_label.text()
    assert [r.caption.text() for r in rows] == ["to " + replay.node_name(i) for i in info.inputs]
    for row, src, g in zip(rows, event.inputs, event.grad_inputs):
        if replay.nodes[src].requires_grad:
            assert row.view.toPlainText() == format_value(g) == format_value(frame.edges[(src, node)].grad)
        else:
            assert "requires_grad=False" in row.view.toPlainText()
    assert inspector.grad_text.toPlainText() == format_value(event.grad_output)      # what it received
    assert "∂L/∂out" in inspector.grad_label.text()


def test_one_scroll_area_and_selectable_text(qtbot, make_window):
    window = make_window(bundled_path("03_gradient_accumulation"))
    inspector = window.inspector
    window.player.to_end()
    click_node(qtbot, window, window.replay.param_nodes["w"])
    assert inspector.plot.isVisibleTo(inspector)
    assert not inspector.findChildren(QtWidgets.QPlainTextEdit) and not inspector.findChildren(QtWidgets.QTextEdit)
    assert inspector.findChildren(QtWidgets.QScrollArea) == [inspector.scroll]
    for area in inspector.findChildren(QtWidgets.QAbstractScrollArea):     # the history plot scrolls nothing
        if area is not inspector.scroll:
            assert area.verticalScrollBarPolicy() == Qt.ScrollBarPolicy.ScrollBarAlwaysOff
    flags = inspector.value_text.text.textInteractionFlags()
    assert flags & Qt.TextInteractionFlag.TextSelectableByMouse


@pytest.mark.parametrize("size", [(800, 600), (1400, 860)])
def test_screenshots_of_the_inspector(qtbot, make_window, size):
    window = make_window(bundled_path("07_mlp_two_moons"))
    window.resize(*size)
    end_of_backward(window)
    inspector = window.inspector
    op = max(n for n, i in window.replay.nodes.items() if i.kind == "op" and len(i.inputs) == 2)
    window.view_state.select_node(op)
    window.inspector_dock.raise_()
    QtWidgets.QApplication.processEvents()
    assert inspector.sent_section.isVisibleTo(inspector)
    # nothing is cut off: the panel is as wide as its dock, or scrolls
    assert inspector.body.width() <= inspector.scroll.viewport().width() \
        or inspector.scroll.horizontalScrollBar().maximum() > 0
    screenshot(window.inspector_dock, f"inspector_op_{size[0]}x{size[1]}")
    window.inspector.select_module("0")
    QtWidgets.QApplication.processEvents()
    screenshot(window.inspector_dock, f"inspector_module_{size[0]}x{size[1]}")
