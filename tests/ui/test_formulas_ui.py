"""Issue 11, the math of every event: the caption over the graph shows the current event's formula
with its numbers, the inspector has a Math section for the selected node (an element field for a
tensor, "Copy as LaTeX"), and hovering an edge shows the gradient it carries as a formula."""
from __future__ import annotations

from PySide6 import QtCore, QtGui, QtWidgets

from gradviz.scenario import bundled_path
from gradviz.view.formulas import formulas_for_frame
from tests.ui.conftest import screenshot
from tests.ui.test_polish_inspector import click_node
from ui.graph import edge_hover

FORGOT = bundled_path("02_forgot_zero_grad")


def seek(window, position: int) -> None:
    window.player.seek(position)
    QtWidgets.QApplication.processEvents()


def event_position(replay, kind: str, op: str | None = None) -> int:
    """The cursor position right after the first ``kind`` event (about an ``op`` node, if given)."""
    for frame in replay:
        if frame.event_kind == kind and (op is None or replay.nodes[frame.event_node].op == op):
            return frame.index
    raise LookupError(kind)


def plain(html: str) -> str:
    doc = QtGui.QTextDocument()
    doc.setHtml(html)
    return doc.toPlainText()


def math_texts(inspector) -> list[str]:
    return [plain(body.text()) for _title, body in inspector.math.items if body.isVisibleTo(inspector)]


def test_caption_shows_the_formula_of_each_event(qtbot, make_window):
    window = make_window(FORGOT)
    replay, caption = window.replay, window.graph.caption
    seek(window, event_position(replay, "backward", "mul"))
    assert caption.math.isVisibleTo(window)
    assert "∂L/∂w = Σ ∂L/∂out · ∂out/∂w = Σ ∂L/∂out · x = −4.0 · 2.0 = −8.0" in caption.math.text()
    assert caption.math.geometry().bottom() < caption.height()          # the caption grew to hold it
    screenshot(window, "formulas_caption_backward")
    seek(window, event_position(replay, "backward", "mse_loss"))
    assert caption.math.text() == "∂L/∂pred[0] = 2(pred − y)/N = 2(2.0 − 4.0)/1 = −4.0"
    seek(window, event_position(replay, "forward", "mul"))
    assert caption.math.text() == "out[0] = w · x[0] = 1.0 · 2.0 = 2.0"
    seek(window, 0)
    assert not caption.math.isVisibleTo(window)                           # nothing happened yet


def test_caption_shows_the_step_of_the_selected_parameter(qtbot, make_window):
    window = make_window(FORGOT)
    replay = window.replay
    seek(window, event_position(replay, "step"))
    assert window.graph.caption.math.text().startswith("w ← w − lr · w.grad = 1.0 − 0.01 · (−8.0) = 1.08")
    window.view_state.select_node(replay.param_nodes["b"])
    QtWidgets.QApplication.processEvents()
    assert window.graph.caption.math.text() == "b ← b − lr · b.grad = 0.0 − 0.01 · (−4.0) = 0.04"


def test_adam_step_in_the_caption_is_short_and_the_inspector_has_every_line(qtbot, make_window):
    window = make_window(bundled_path("07_mlp_two_moons"))
    replay = window.replay
    seek(window, event_position(replay, "step"))
    lines = window.graph.caption.math.text().split("\n")
    assert len(lines) == 2 and lines[0].startswith("m = ") and "m_hat = " in lines[0] and "v_hat = " in lines[0]
    assert " ← " in lines[1] and "m_hat/(√v_hat + ε)" in lines[1]
    click_node(qtbot, window, replay.param_nodes["0.weight"])
    inspector = window.inspector
    texts = math_texts(inspector)
    assert any(t.startswith("m ← β1 · m + (1 − β1) · 0.weight.grad") for t in texts), texts
    assert any("0.weight[" in t and "lr · m" in t for t in texts)
    assert inspector.math.element_row.isVisibleTo(inspector)              # a tensor: the element field
    screenshot(window, "formulas_inspector_adam")


def test_inspector_math_section_and_copy_as_latex(qtbot, make_window):
    window = make_window(FORGOT)
    replay, inspector = window.replay, window.inspector
    seek(window, len(replay) - 1)
    click_node(qtbot, window, replay.param_nodes["w"])
    assert inspector.math.isVisibleTo(inspector) and inspector.math.heading.text() == "Math"
    texts = math_texts(inspector)
    assert "w.grad ← ∂L/∂w\n= −8.0" in texts and "w ← w − lr · w.grad\n= 1.0 − 0.01 · (−8.0) = 1.08" in texts
    assert not inspector.math.element_row.isVisibleTo(inspector)         # a scalar has no element to pick
    QtWidgets.QApplication.clipboard().clear()
    qtbot.mouseClick(inspector.math.copy_button, QtCore.Qt.MouseButton.LeftButton)
    copied = QtWidgets.QApplication.clipboard().text()
    assert copied == inspector.math.latex()
    assert "\\frac{\\partial L}{\\partial w}" in copied and "w \\leftarrow w - \\mathrm{lr} \\cdot" in copied
    assert copied.count("\n") == 1                                         # one formula a line
    screenshot(window, "formulas_inspector_w")
    window.open_path(bundled_path("08_tanh_neuron"))
    from tests.ui.conftest import finish
    finish(window)
    assert not inspector.math.isVisibleTo(inspector)                       # the empty state


def test_inspector_element_field_picks_the_element(qtbot, make_window):
    window = make_window(bundled_path("07_mlp_two_moons"))
    replay, inspector = window.replay, window.inspector
    seek(window, event_position(replay, "step"))
    window.view_state.select_node(replay.param_nodes["2.weight"])
    QtWidgets.QApplication.processEvents()
    inspector.math.element_edit.setFocus()
    qtbot.keyClicks(inspector.math.element_edit, "3,1")
    qtbot.keyClick(inspector.math.element_edit, QtCore.Qt.Key.Key_Return)
    titles = [t.text() for t, _b in inspector.math.items if t.isVisibleTo(inspector)]
    # the accumulation's title, then the step's (its later lines show only their notes)
    assert "2.weight.grad: accumulation, element [3,1]" in titles[0] and "element [3,1] of (16, 16)" in titles[1]
    assert all("[3,1]" in f.title for f in inspector.math.formulas)
    expected = formulas_for_frame(replay, replay.frame(window.player.position), node=replay.param_nodes["2.weight"],
                                  element=(3, 1))
    assert [f.latex for f in inspector.math.formulas] == [f.latex for f in expected]
    window.view_state.select_node(replay.param_nodes["0.bias"])          # another node: back to auto
    QtWidgets.QApplication.processEvents()
    assert inspector.math.element_edit.text() == ""


def test_hovering_an_edge_shows_its_gradient_formula(qtbot, make_window):
    window = make_window(FORGOT)
    replay, view = window.replay, window.graph
    w = replay.param_nodes["w"]
    mul = next(n for n, i in replay.nodes.items() if i.op == "mul")
    seek(window, event_position(replay, "backward", "mul"))
    edge = view.edge_items[(w, mul)]
    scene_point = edge.line.path().pointAtPercent(0.5)
    view.centerOn(scene_point)
    QtWidgets.QApplication.processEvents()
    pos = view.mapFromScene(scene_point)
    assert edge_hover.edge_at(view, pos) == (w, mul)
    text = edge_hover.tooltip_html(view, (w, mul))
    assert "−4.0 · 2.0 = −8.0" in plain(text) and "MulBackward0 → w" in plain(text)
    event = QtGui.QHelpEvent(QtCore.QEvent.Type.ToolTip, pos, view.viewport().mapToGlobal(pos))
    QtWidgets.QApplication.sendEvent(view.viewport(), event)
    assert "−8.0" in plain(QtWidgets.QToolTip.text())
    QtWidgets.QToolTip.hideText()
    far = view.mapFromScene(scene_point + QtCore.QPointF(0, 60))
    assert edge_hover.edge_at(view, far) != (w, mul)
