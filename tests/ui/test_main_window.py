"""The main window driven as a person would: File menu actions, keys, mouse clicks and drops on the
real widgets (file and message dialogs patched), asserting on what the window shows.

Numbers on screen are checked against the core computed independently of the window (a fresh
``Session`` of the same scenario, or the tutorial's gradient worked out by hand); screenshots of the
main states land in ``test-artifacts/window_*.png`` for a human to look at.
"""
from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from gradviz import trace as T
from gradviz.codegen import export_torch
from gradviz.scenario import DEFAULT_SCENARIO, bundled, bundled_path, load
from gradviz.training.session import Session
from gradviz.view.format import format_array, format_number
from gradviz.view.phases import micro_batch_label
from tests.ui.conftest import finish
from tests.ui.conftest import screenshot as _screenshot
from ui.graph import PRECISION
from ui.graph.export import FRAME_MS
from ui.main_window import settings

Qt = QtCore.Qt
Key = Qt.Key
SHIFT = Qt.KeyboardModifier.ShiftModifier
CTRL = Qt.KeyboardModifier.ControlModifier
B = QtWidgets.QMessageBox.StandardButton
REAL_WARNING = QtWidgets.QMessageBox.warning            # before ``no_dialogs`` patches it

# what the highlighted line of the code panel must say at the start of each phase
PHASE_CODE = {"zero_grad": ("zero_grad()",), "zero_grad_after": ("zero_grad()",),
              "forward": ("pred =", "loss ="), "loss": ("loss",), "backward": (".backward()",),
              "step": (".step(",)}


def screenshot(widget, name: str):
    """Let pending layout requests run first (a label's new text resizes it only then)."""
    QtWidgets.QApplication.processEvents()
    return _screenshot(widget, name)


# ------------------------------------------------------------------------------------------ helpers


def menu_action(menu: QtWidgets.QMenu, text: str) -> QtGui.QAction:
    """The action whose text (without & and …) starts with ``text``, searched through submenus."""
    for action in menu.actions():
        if action.menu() is not None:
            try:
                return menu_action(action.menu(), text)
            except LookupError:
                pass
        if action.text().replace("&", "").replace("…", "").startswith(text):
            return action
    raise LookupError(f"no menu item {text!r} in {menu.title()!r}")


def patch_open_dialog(monkeypatch, path) -> list:
    """QFileDialog.getOpenFileName answers ``path``; returns the list of (caption, dir, filter) asked."""
    asked = []

    def ask(parent, caption="", directory="", filt="", *a, **k):
        asked.append((caption, directory, filt))
        return str(path), filt
    monkeypatch.setattr(QtWidgets.QFileDialog, "getOpenFileName", staticmethod(ask))
    return asked


def patch_save_dialog(monkeypatch, *paths) -> list:
    """QFileDialog.getSaveFileName answers ``paths`` in turn; returns what it was asked."""
    answers, asked = list(paths), []

    def ask(parent, caption="", directory="", filt="", *a, **k):
        asked.append((caption, directory, filt))
        return (str(answers.pop(0)) if answers else ""), filt
    monkeypatch.setattr(QtWidgets.QFileDialog, "getSaveFileName", staticmethod(ask))
    return asked


def open_through_file_menu(window, monkeypatch, path) -> list:
    asked = patch_open_dialog(monkeypatch, path)
    menu_action(window.file_menu, "Open").trigger()
    finish(window)
    return asked


def key(qtbot, window, k, modifier=Qt.KeyboardModifier.NoModifier, times: int = 1) -> None:
    for _ in range(times):
        qtbot.keyClick(window, k, modifier)


def step_start(window) -> int:
    return next(pos for pos, phase, _mb in window.replay.phase_starts() if phase == "step")


def play_to_end_of_backward(qtbot, window) -> int:
    """Home, Space at the top speed until backward is over, Space again, Left back to its last event."""
    end = step_start(window) - 1
    window.speed_box.setCurrentIndex(window.speed_box.count() - 1)
    key(qtbot, window, Key.Key_Home)
    assert window.player.position == 0
    key(qtbot, window, Key.Key_Space)
    assert window.player.playing
    qtbot.waitUntil(lambda: window.player.position >= end, timeout=15000)
    if window.player.playing:
        key(qtbot, window, Key.Key_Space)
    assert not window.player.playing
    while window.player.position > end:
        key(qtbot, window, Key.Key_Left)
    assert window.player.position == end
    assert window.replay.frame(end).phase == "backward"
    return end


def param_node(window, name: str) -> int:
    return window.replay.param_nodes[name]


def badge(window, name: str) -> str:
    return window.graph.node_badge_text(param_node(window, name))


_NUMBER = re.compile(r"-?(?:\d+\.?\d*(?:e[-+]?\d+)?|inf|nan)")


def badge_numbers(text: str) -> list[float]:
    return [float(x) for x in _NUMBER.findall(text)]


def shown_grad(text: str) -> str:
    """The ``.grad`` a badge shows now: the sum after ``=`` when it shows an accumulation."""
    body = text.split("=")[-1] if "=" in text else text.split(":", 1)[1]
    body = body.replace("(new)", "").replace("(zeroed)", "")
    return " ".join(body.split())


def expected_grad(text: str, grad) -> str:
    """What the badge must show for the core's ``grad``: the numbers, or their mean on a heat map."""
    grad = np.asarray(grad)
    if np.isnan(np.asarray(grad, dtype=np.float64)).all():
        return "None"
    if text.startswith("grad mean"):
        return format_number(np.mean(grad.astype(np.float64)), 2)
    return " ".join(format_array(grad, max_elems=10 ** 9, precision=PRECISION, sep=" ").split())


def core_history(scenario_or_path, variant: int = 0):
    """The core's own run, independent of the window's Document."""
    scenario = load(scenario_or_path) if isinstance(scenario_or_path, (str, Path)) else scenario_or_path
    return Session(scenario, variant).run()


def grad_after_backward(history, name: str, k: int):
    """``.grad`` right after backward() of step k: the History's (unscaled) grad times the loss scale."""
    g = history.grads[name][k]
    return g * history.grad_scale[k] if history.grad_scale[k] != 1 else g


def code_line(window) -> str:
    line = window.code.current_line
    return window.code.line_text(line) if line is not None else ""


def check_code_panel_follows_phases(qtbot, window) -> list[str]:
    """Home, then Shift+Right through every phase: the lit line of the loop is that phase's."""
    key(qtbot, window, Key.Key_Home)
    seen = []
    for pos, phase, _mb in window.replay.phase_starts():
        key(qtbot, window, Key.Key_Right, SHIFT)
        assert window.player.position == pos
        want = phase          # the Session marks a zero_grad placed after step() as "zero_grad_after"
        assert window.code.current_phase == want
        if want in window.code.lines:
            assert any(s in code_line(window) for s in PHASE_CODE[want]), (phase, code_line(window))
        seen.append(phase)
    return seen


def bad_file(tmp_path, kind: str) -> Path:
    path = tmp_path / f"broken_{kind}.toml"
    if kind == "syntax":
        path.write_text('[scenario]\ntitle = "never closed\n')
    else:                                        # valid TOML that the loader's schema refuses
        text = bundled_path(DEFAULT_SCENARIO).read_text().replace('kind = "sgd"', 'kind = "sgdd"')
        path.write_text(text)
    return path


def compose_with_dialog(window, dialog) -> QtGui.QPixmap:
    """The window with a (separate, top-level) dialog drawn over it where the screen shows it."""
    shot = window.grab()
    painter = QtGui.QPainter(shot)
    painter.fillRect(shot.rect(), QtGui.QColor(0, 0, 0, 60))
    top_left = window.mapFromGlobal(dialog.frameGeometry().topLeft())
    if not shot.rect().contains(QtCore.QRect(top_left, dialog.size())):
        top_left = QtCore.QPoint((shot.width() - dialog.width()) // 2, (shot.height() - dialog.height()) // 3)
    painter.drawPixmap(top_left, dialog.grab())
    painter.end()
    return shot


# ------------------------------------------------------------------------------- opening and playing


def test_with_no_argument_the_tutorial_is_open(make_window):
    window = make_window()
    tutorial = load(bundled_path(DEFAULT_SCENARIO))
    assert window.document.path == bundled_path(DEFAULT_SCENARIO)
    assert tutorial.title in window.windowTitle()
    assert window.title_label.text() == tutorial.title
    assert window.graph.visible_node_count() == len(window.replay.nodes) > 0
    assert "loss.backward()" in window.code.toPlainText()
    assert window.iteration_total.text().strip() == f"of {tutorial.loop.steps}"


@pytest.mark.parametrize("path", bundled(), ids=lambda p: p.stem)
def test_every_bundled_scenario_opens_from_the_file_menu_and_plays_to_the_end_of_backward(
        qtbot, make_window, no_dialogs, monkeypatch, path):
    window = make_window()
    asked = open_through_file_menu(window, monkeypatch, path)
    assert asked and "*.toml" in asked[0][2]                         # the dialog is filtered to scenarios
    scenario = load(path)
    assert window.document.path == path and scenario.title in window.windowTitle()
    assert window.graph.visible_node_count() > 0

    play_to_end_of_backward(qtbot, window)
    assert "backward" in window.phase_label.text()
    assert ".backward()" in code_line(window)
    history = core_history(path)
    # with clipping the History keeps the clipped grads step() saw, not what backward() left in .grad
    clipped = scenario.loop.clip_grad_norm is not None
    for name in window.replay.param_nodes if not clipped else ():
        text = badge(window, name)
        assert text.startswith("grad"), (name, text)
        assert shown_grad(text) == expected_grad(text, grad_after_backward(history, name, 0)), (name, text)
    screenshot(window, f"window_{path.stem}")

    phases = check_code_panel_follows_phases(qtbot, window)
    assert phases[-1] in ("step", "zero_grad") and "backward" in phases
    assert no_dialogs == []                                          # nothing went wrong on the way


def test_tutorial_end_of_forward_backward_and_step(qtbot, make_window):
    """The classic: the shown numbers are the ones worked out by hand from the scenario file."""
    window = make_window()
    scenario = load(bundled_path(DEFAULT_SCENARIO))
    w0, b0 = (float(scenario.model.parameters[n].value) for n in ("w", "b"))
    x, y, lr = scenario.data.x[0], scenario.data.y[0], scenario.optimizer.hyper["lr"]
    dloss_dpred = 2 * (w0 * x + b0 - y)                               # mse on one point

    key(qtbot, window, Key.Key_Home)
    while window.player.frame.phase != "backward":                    # Shift+Right to backward()
        key(qtbot, window, Key.Key_Right, SHIFT)
    key(qtbot, window, Key.Key_Left)                                  # the last event of the forward side
    assert window.player.frame.phase == "loss"
    loss_node = window.replay.loss_node
    assert window.graph.node_value_text(loss_node).split()[-1] == format_number((w0 * x + b0 - y) ** 2, PRECISION)
    assert badge(window, "w") == "grad: None"                        # zero_grad(set_to_none=True)
    screenshot(window, "window_tutorial_end_of_forward")

    play_to_end_of_backward(qtbot, window)
    assert shown_grad(badge(window, "w")) == format_number(dloss_dpred * x, PRECISION)
    assert shown_grad(badge(window, "b")) == format_number(dloss_dpred, PRECISION)
    assert "loss.backward()" in code_line(window)
    screenshot(window, "window_tutorial_end_of_backward")

    key(qtbot, window, Key.Key_End)
    assert window.player.at_end and window.player.frame.phase == "step"
    assert "optimizer.step()" in code_line(window)
    wid = param_node(window, "w")
    assert window.graph.node_value_text(wid).split()[-1] == format_number(w0 - lr * dloss_dpred * x, PRECISION)
    assert window.replay.frame(window.player.position).nodes[wid].stepped
    screenshot(window, "window_tutorial_after_step")


def test_transport_keys_and_jump_to_iteration(qtbot, make_window):
    window = make_window(bundled_path("08_tanh_neuron"))
    player, starts = window.player, [pos for pos, _p, _mb in window.replay.phase_starts()]
    key(qtbot, window, Key.Key_Right, times=3)
    assert player.position == 3
    key(qtbot, window, Key.Key_Left)
    assert player.position == 2
    key(qtbot, window, Key.Key_Right, SHIFT)
    assert player.position == next(p for p in starts if p > 2)
    key(qtbot, window, Key.Key_Right, SHIFT)
    at = player.position
    key(qtbot, window, Key.Key_Left, SHIFT)                           # to the start of the previous phase
    assert player.position == max(p for p in starts if p < at)
    key(qtbot, window, Key.Key_End)
    assert player.at_end and window.scrubber.value() == player.position
    key(qtbot, window, Key.Key_Home)
    assert player.position == 0 and window.scrubber.value() == 0
    assert f"event 0/{player.count - 1}" in window.iteration_label.text()

    with qtbot.waitSignal(player.playingChanged, timeout=2000):
        key(qtbot, window, Key.Key_Space)
    assert player.playing and window.act_play.text() == "Pause"
    qtbot.waitUntil(lambda: player.position > 0, timeout=5000)
    key(qtbot, window, Key.Key_Space)
    assert not player.playing and window.act_play.text() == "Play"

    key(qtbot, window, Key.Key_PageDown)
    assert window.iteration == 1 and window.replay.iteration == 1
    key(qtbot, window, Key.Key_PageUp)
    assert window.iteration == 0

    # jump to iteration k: type it into the Iteration box and press Enter
    history = core_history(bundled_path("08_tanh_neuron"))
    box = window.iteration_box
    box.setFocus()
    box.selectAll()
    qtbot.keyClicks(box, "17")
    qtbot.keyClick(box, Key.Key_Return)
    assert window.iteration == 17 and window.replay.iteration == 17
    assert window.iteration_label.text().startswith("Iteration 17 /")
    assert not box.hasFocus()                                         # the transport keys work again
    play_to_end_of_backward(qtbot, window)
    for name in window.replay.param_nodes:
        text = badge(window, name)
        assert shown_grad(text) == expected_grad(text, grad_after_backward(history, name, 17))
    box.setFocus()
    box.selectAll()
    qtbot.keyClicks(box, "9999")                          # the box takes no more than the last iteration
    qtbot.keyClick(box, Key.Key_Return)
    assert window.iteration == history.steps - 1


def test_bundled_scenario_dialog_lists_titles_and_descriptions(qtbot, make_window, no_dialogs):
    window = make_window()
    target = bundled_path("07_mlp_two_moons")
    checked = {}

    def choose():
        dialog = QtWidgets.QApplication.activeModalWidget()
        titles = [dialog.list.item(i).text() for i in range(dialog.list.count())]
        checked["titles"] = titles
        row = dialog.paths.index(target)
        dialog.list.setCurrentRow(row)
        checked["about"] = dialog.about.toPlainText()
        screenshot(dialog, "window_bundled_dialog")
        buttons = dialog.findChild(QtWidgets.QDialogButtonBox)
        qtbot.mouseClick(buttons.button(QtWidgets.QDialogButtonBox.StandardButton.Open), Qt.MouseButton.LeftButton)

    QtCore.QTimer.singleShot(0, choose)
    menu_action(window.file_menu, "Open bundled scenario").trigger()
    finish(window)
    scenarios = [load(p).title for p in bundled()]
    assert checked["titles"][:len(scenarios)] == scenarios
    scripts = checked["titles"][len(scenarios):]               # then the PyTorch scripts, marked as such
    assert scripts and all(title.endswith("(script)") for title in scripts)
    assert checked["about"] == load(target).description
    assert window.document.path == target
    assert window.title_label.text() == load(target).title


@pytest.mark.parametrize("onto", ["graph", "plot", "window"])
def test_drag_and_drop_of_a_scenario_file_opens_it(qtbot, make_window, onto):
    window = make_window()
    path = bundled_path("05_ill_conditioned_bowl")
    mime = QtCore.QMimeData()
    mime.setUrls([QtCore.QUrl.fromLocalFile(str(path))])
    plots = window.dashboards.findChildren(QtWidgets.QGraphicsView)
    target = {"graph": window.graph.viewport(), "plot": plots[0].viewport() if plots else None,
              "window": window}[onto]
    pos = QtCore.QPoint(target.width() // 2, target.height() // 2)
    copy = Qt.DropAction.CopyAction
    enter = QtGui.QDragEnterEvent(pos, copy, mime, Qt.MouseButton.LeftButton, Qt.KeyboardModifier.NoModifier)
    QtWidgets.QApplication.sendEvent(target, enter)
    assert enter.isAccepted()
    drop = QtGui.QDropEvent(QtCore.QPointF(pos), copy, mime, Qt.MouseButton.LeftButton,
                            Qt.KeyboardModifier.NoModifier)
    QtWidgets.QApplication.sendEvent(target, drop)
    finish(window)
    assert window.document.path == path
    assert load(path).title in window.windowTitle()


# --------------------------------------------------------------------------- what the numbers show


def test_forgot_zero_grad_keeps_every_old_gradient_in_grad(qtbot, make_window):
    path = bundled_path("02_forgot_zero_grad")
    window = make_window(path)
    history = core_history(path)
    assert "zero_grad" not in window.code.lines                      # the loop shows no zero_grad() line
    for k in range(4):
        window.set_iteration(k) if k == 0 else key(qtbot, window, Key.Key_PageDown)
        assert window.iteration == k
        assert not any(isinstance(e, T.ZeroGradEvent) for e in window.replay.events)
        key(qtbot, window, Key.Key_Home)
        if k > 0:                                                     # last iteration's grad is still there
            assert shown_grad(badge(window, "w")) == expected_grad("grad", history.grads["w"][k - 1])
        play_to_end_of_backward(qtbot, window)
        for name in ("w", "b"):
            text = badge(window, name)
            assert shown_grad(text) == expected_grad(text, history.grads[name][k])
            if k > 0:                                                 # before + added = after
                before, added, after = badge_numbers(text.split(":", 1)[1])
                assert format_number(before, PRECISION) == expected_grad(text, history.grads[name][k - 1])
                assert before + added == pytest.approx(after, rel=2e-3, abs=1e-3)   # shown to 4 digits
        if k == 2:
            screenshot(window, "window_forgot_zero_grad_iteration_2")


def test_turning_zero_grad_off_in_the_controls_makes_the_shown_grads_grow(qtbot, make_window):
    """The tutorial with a small lr: with zero_grad() the shown .grad shrinks as the fit improves;
    switch zero_grad to "never" in the Controls and it grows, iteration after iteration."""
    window = make_window()
    controls = window.controls
    controls.lr_edit.selectAll()
    qtbot.keyClicks(controls.lr_edit, "0.01")
    qtbot.keyClick(controls.lr_edit, Key.Key_Return)
    finish(window)
    assert window.document.scenario.optimizer.hyper["lr"] == 0.01
    assert window.document.modified and window.windowTitle().startswith("*")

    def shown_over_iterations():
        window.graph.setFocus()
        shown = []
        for k in range(3):
            if k:
                key(qtbot, window, Key.Key_PageDown)
            assert window.iteration == k
            play_to_end_of_backward(qtbot, window)
            shown.append(abs(float(shown_grad(badge(window, "w")))))
        key(qtbot, window, Key.Key_PageUp, times=2)
        return shown

    with_zero_grad = shown_over_iterations()
    assert with_zero_grad[0] > with_zero_grad[1] > with_zero_grad[2]

    box = controls.zero_grad_box
    box.setCurrentIndex(box.findData("never"))
    box.activated.emit(box.currentIndex())
    finish(window)
    assert window.document.scenario.loop.zero_grad == "never"
    assert "zero_grad" not in window.code.lines
    without = shown_over_iterations()
    assert without[0] < without[1] < without[2]
    history = core_history(window.document.editable_copy())
    assert without == [abs(float(format_number(g, PRECISION))) for g in history.grads["w"][:3]]
    screenshot(window, "window_tutorial_zero_grad_never")


def test_accumulation_shows_the_sum_over_micro_batches(qtbot, make_window):
    path = bundled_path("03_gradient_accumulation")
    window = make_window(path)
    history = core_history(path)
    acc = load(path).loop.accumulation_steps
    assert window.replay.accumulation_steps == acc
    key(qtbot, window, Key.Key_Home)
    shown = {"w": [], "b": []}
    while window.player.frame.phase != "backward":
        key(qtbot, window, Key.Key_Right, SHIFT)
    assert badge(window, "w") == badge(window, "b") == "grad: None"      # zero_grad(set_to_none=True)
    for j in range(acc):
        while not (window.player.frame.phase == "backward" and window.player.frame.micro_batch == j):
            key(qtbot, window, Key.Key_Right, SHIFT)
        assert micro_batch_label(j, acc) in window.phase_label.text()
        assert ".backward()" in code_line(window)
        key(qtbot, window, Key.Key_Right, SHIFT)                      # the next phase starts ...
        key(qtbot, window, Key.Key_Left)                              # ... one event after this backward ends
        assert window.player.frame.phase == "backward" and window.player.frame.micro_batch == j
        for name in shown:
            shown[name].append(badge(window, name))
        if j == 2:
            # the moment w's .grad takes micro-batch 2's contribution: highlighted, with the sum
            at = next(i + 1 for i, e in enumerate(window.replay.events)
                      if isinstance(e, T.AccumulateEvent) and e.node == param_node(window, "w")
                      and window.replay.frame(i + 1).micro_batch == 2)
            window.player.seek(at)
            QtWidgets.QApplication.processEvents()
            for label in (window.iteration_label, window.phase_label):       # not squeezed by the long
                assert label.width() >= label.sizeHint().width(), label.text()  # event sentence
            screenshot(window, "window_accumulation_mid_backward")
            window.player.seek(window.replay.phase_range("backward", 2)[1])
    for name, texts in shown.items():
        assert "+" not in texts[0]                        # None before it: .grad is the first micro-batch's
        added = [badge_numbers(texts[0].split(":", 1)[1])[0]]
        for j in range(1, acc):
            before, plus, after = badge_numbers(texts[j].split(":", 1)[1])
            assert format_number(before, PRECISION) == shown_grad(texts[j - 1])   # carries on from the last
            assert before + plus == pytest.approx(after, abs=2e-3)
            added.append(plus)
        assert shown_grad(texts[-1]) == expected_grad(texts[-1], history.grads[name][0])
        assert sum(added) == pytest.approx(float(history.grads[name][0]), abs=2e-3)


def test_clicking_a_node_fills_the_inspector(qtbot, make_window):
    window = make_window()
    play_to_end_of_backward(qtbot, window)
    view = window.graph

    def click(node_id):
        rect = view.node_scene_rect(node_id)
        point = view.mapFromScene(QtCore.QPointF(rect.center().x(), rect.top() + 12))
        with qtbot.waitSignal(view.nodeClicked, timeout=2000) as blocker:
            qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=point)
        assert blocker.args == [node_id]

    assert window.inspector.title.text() == "Click a node in the graph"
    wid = param_node(window, "w")
    click(wid)
    inspector = window.inspector
    assert window.inspector_dock.isVisible() and not inspector.visibleRegion().isEmpty()
    assert inspector.title.text() == "w"
    assert inspector.fields["kind"].text() == "parameter"
    assert float(inspector.grad_text.toPlainText().split()[0]) == float(shown_grad(badge(window, "w")))

    mul = next(n for n, info in window.replay.nodes.items() if info.kind == "op" and info.op == "mul")
    click(mul)
    assert inspector.title.text() == window.replay.nodes[mul].label
    assert inspector.fields["op"].text() == window.replay.nodes[mul].label == "MulBackward0"
    assert inspector.fields["kind"].text() == "operation"
    # the inspector follows the cursor: at the end of the iteration the state says so
    key(qtbot, window, Key.Key_End)
    assert inspector.frame_index == window.player.position
    screenshot(window, "window_tutorial_inspector")


def test_opening_another_file_starts_at_its_first_iteration_with_a_clear_inspector(qtbot, make_window,
                                                                                   monkeypatch):
    window = make_window()
    key(qtbot, window, Key.Key_PageDown, times=3)
    assert window.iteration == 3
    play_to_end_of_backward(qtbot, window)
    rect = window.graph.node_scene_rect(param_node(window, "w"))
    qtbot.mouseClick(window.graph.viewport(), Qt.MouseButton.LeftButton,
                     pos=window.graph.mapFromScene(QtCore.QPointF(rect.center().x(), rect.top() + 12)))
    assert window.inspector.title.text() == "w"
    open_through_file_menu(window, monkeypatch, bundled_path("08_tanh_neuron"))
    assert window.iteration == 0 and window.iteration_box.value() == 0 and window.replay.iteration == 0
    assert window.inspector.title.text() == "Click a node in the graph"


def test_an_edit_clears_the_selection_in_the_graph_too(qtbot, make_window):
    """After a re-run the inspector is cleared; the graph must not keep highlighting the old node."""
    window = make_window()
    play_to_end_of_backward(qtbot, window)
    wid = param_node(window, "w")
    rect = window.graph.node_scene_rect(wid)
    qtbot.mouseClick(window.graph.viewport(), Qt.MouseButton.LeftButton,
                     pos=window.graph.mapFromScene(QtCore.QPointF(rect.center().x(), rect.top() + 12)))
    assert window.inspector.title.text() == "w" and window.graph.node_items[wid].selection.isVisible()
    window.controls.lr_edit.setText("0.05")
    window.controls.lr_edit.editingFinished.emit()
    finish(window)
    assert window.inspector.title.text() == "Click a node in the graph"
    assert not any(g.selection.isVisible() for g in window.graph.node_items.values())


# ---------------------------------------------------------------------------------- errors


@pytest.mark.parametrize("kind", ["syntax", "schema"])
def test_a_malformed_file_shows_its_error_and_keeps_the_scenario(make_window, no_dialogs, monkeypatch,
                                                                  tmp_path, kind):
    window = make_window(bundled_path("08_tanh_neuron"))
    title, path_before = window.windowTitle(), window.document.path
    nodes, iteration = window.graph.visible_node_count(), window.iteration
    bad = bad_file(tmp_path, kind)
    open_through_file_menu(window, monkeypatch, bad)
    assert len(no_dialogs) == 1
    message = no_dialogs[0]
    assert "\n" not in message and bad.name in message                # the loader's one-line error
    assert ("sgdd" in message) if kind == "schema" else ("TOML" in message)
    assert window.windowTitle() == title and window.document.path == path_before
    assert window.graph.visible_node_count() == nodes and window.iteration == iteration
    assert window.statusBar().currentMessage() == message
    assert str(bad.resolve()) not in (settings().value("recent") or [])


def test_the_error_dialog_as_the_user_sees_it(qtbot, make_window, monkeypatch, tmp_path):
    """The real QMessageBox this time, screenshotted over the window, then dismissed with OK."""
    window = make_window()
    bad = bad_file(tmp_path, "syntax")
    seen = []

    def dismiss():
        box = QtWidgets.QApplication.activeModalWidget()
        seen.append(box.text())
        compose_with_dialog(window, box).save(str(screenshot(window, "window_error_dialog")))
        qtbot.mouseClick(box.button(B.Ok), Qt.MouseButton.LeftButton)

    def warning(parent, title, text, *a, **k):
        QtCore.QTimer.singleShot(50, dismiss)
        return REAL_WARNING(parent, title, text, *a, **k)
    monkeypatch.setattr(QtWidgets.QMessageBox, "warning", staticmethod(warning))
    open_through_file_menu(window, monkeypatch, bad)
    assert len(seen) == 1 and bad.name in seen[0]
    assert window.document.path == bundled_path(DEFAULT_SCENARIO)


@pytest.mark.parametrize("kind", ["syntax", "missing"])
def test_a_bad_file_on_the_command_line_opens_the_tutorial_with_the_error(qtbot, make_window, no_dialogs,
                                                                          tmp_path, kind):
    bad = bad_file(tmp_path, kind) if kind != "missing" else tmp_path / "nowhere.toml"
    window = make_window(bad)
    qtbot.waitUntil(lambda: len(no_dialogs) == 1, timeout=2000)
    assert bad.name in no_dialogs[0] and "\n" not in no_dialogs[0]
    assert window.document.path == bundled_path(DEFAULT_SCENARIO)
    assert load(bundled_path(DEFAULT_SCENARIO)).title in window.windowTitle()
    assert window.graph.visible_node_count() > 0


# ------------------------------------------------------------------------------- saving and files


def test_unsaved_edits_prompt_before_being_discarded(make_window, monkeypatch, tmp_path):
    window = make_window()
    edited = window.document.editable_copy()
    edited.optimizer.hyper["lr"] = 0.05
    window.document.edit(edited)
    finish(window)
    assert window.windowTitle().startswith("*")
    asked, answers = [], [B.Cancel, B.Save, B.Discard]

    def question(parent, title, text, *a, **k):
        asked.append(text)
        return answers.pop(0)
    monkeypatch.setattr(QtWidgets.QMessageBox, "question", staticmethod(question))
    other = bundled_path("06_saddle_point")

    open_through_file_menu(window, monkeypatch, other)               # Cancel: nothing happens
    assert len(asked) == 1 and window.document.scenario.title in asked[0]
    assert window.document.path == bundled_path(DEFAULT_SCENARIO) and window.document.modified

    saved = tmp_path / "edited.toml"                                 # Save: Save As first, then open
    save_asked = patch_save_dialog(monkeypatch, saved)
    open_through_file_menu(window, monkeypatch, other)
    assert len(asked) == 2 and len(save_asked) == 1
    assert load(saved).optimizer.hyper["lr"] == 0.05
    assert window.document.path == other and not window.document.modified

    window.document.edit(window.document.editable_copy())            # Discard: opens without saving
    open_through_file_menu(window, monkeypatch, bundled_path(DEFAULT_SCENARIO))
    assert len(asked) == 3 and window.document.path == bundled_path(DEFAULT_SCENARIO)
    assert not window.document.modified

    window.document.edit(window.document.editable_copy())            # closing asks too; Cancel keeps it open
    monkeypatch.setattr(QtWidgets.QMessageBox, "question", staticmethod(lambda *a, **k: B.Cancel))
    window.act_quit.trigger()
    assert window.isVisible()


def test_save_as_save_and_recent_files(make_window, monkeypatch, tmp_path):
    window = make_window()
    target = tmp_path / "my_tutorial"
    asked = patch_save_dialog(monkeypatch, target)
    menu_action(window.file_menu, "Save").trigger()                  # a bundled file: Save asks where
    assert window.files.saving               # in a worker, even a small file (it is loaded back to check)
    window.files.wait()
    saved = target.with_suffix(".toml")
    assert len(asked) == 1 and "*.toml" in asked[0][2] and saved.exists()
    assert window.document.path == saved and saved.name in window.windowTitle()
    assert load(saved).title == load(bundled_path(DEFAULT_SCENARIO)).title

    edited = window.document.editable_copy()
    edited.optimizer.hyper["lr"] = 0.02
    window.document.edit(edited)
    finish(window)
    menu_action(window.file_menu, "Save").trigger()                  # now it saves in place, no dialog
    window.files.wait()
    assert len(asked) == 1 and load(saved).optimizer.hyper["lr"] == 0.02
    assert not window.windowTitle().startswith("*")

    other = tmp_path / "copy.toml"
    patch_save_dialog(monkeypatch, other)
    menu_action(window.file_menu, "Save As").trigger()
    window.files.wait()
    assert other.exists() and window.document.path == other

    open_through_file_menu(window, monkeypatch, bundled_path("06_saddle_point"))
    window.recent_menu.aboutToShow.emit()
    names = [a.text() for a in window.recent_menu.actions()]
    assert names[:3] == ["06_saddle_point.toml", "copy.toml", "my_tutorial.toml"]
    next(a for a in window.recent_menu.actions() if a.text() == "my_tutorial.toml").trigger()
    finish(window)
    assert window.document.path.resolve() == saved.resolve()
    assert window.document.scenario.optimizer.hyper["lr"] == 0.02


def test_a_single_recent_file_read_back_as_text_stays_one_entry(make_window, monkeypatch):
    """An INI file gives a one-entry list back as a plain string: it must not become its letters."""
    window = make_window()
    first, second = bundled_path("06_saddle_point").resolve(), bundled_path("05_ill_conditioned_bowl").resolve()
    real = QtCore.QSettings.value
    monkeypatch.setattr(QtCore.QSettings, "value",
                        lambda self, key, *a, **k: str(first) if key == "recent" else real(self, key, *a, **k))
    window.add_recent(second)
    monkeypatch.setattr(QtCore.QSettings, "value", real)
    assert list(settings().value("recent")) == [str(second), str(first)]


def test_exports_write_png_svg_gif_and_a_pytorch_script(qtbot, make_window, monkeypatch, tmp_path):
    from PIL import Image

    window = make_window()
    play_to_end_of_backward(qtbot, window)
    png, svg, gif, script = (tmp_path / f"out.{s}" for s in ("png", "svg", "gif", "py"))
    asked = patch_save_dialog(monkeypatch, png, svg, gif, script)
    for text in ("Graph as PNG", "Graph as SVG", "Iteration as animated GIF", "Scenario as PyTorch script"):
        menu_action(window.file_menu, text).trigger()
    assert [a[2].split()[0] for a in asked] == ["PNG", "SVG", "GIF", "Python"]

    image = QtGui.QImage(str(png))
    assert not image.isNull() and image.width() > 200 and image.height() > 100
    drawing = svg.read_text()
    assert drawing.lstrip().startswith("<?xml") and "<svg" in drawing
    assert drawing.count("<path") + drawing.count("<image") >= len(window.replay.nodes)   # not an empty page
    with Image.open(gif) as animation:
        assert animation.n_frames > window.player.count // 2          # Pillow merges identical frames ...
        durations = []
        for i in range(animation.n_frames):
            animation.seek(i)
            durations.append(animation.info["duration"])
        assert sum(durations) == FRAME_MS * (window.player.count + 5)      # ... adding up their durations
        animation.seek(0)
        first = np.asarray(animation.convert("RGB"))
        animation.seek(animation.n_frames - 1)
        last = np.asarray(animation.convert("RGB"))
    assert first.shape == last.shape and (first != last).any()
    assert window.player.position == step_start(window) - 1          # the export put the cursor back
    source = script.read_text()
    compile(source, str(script), "exec")
    assert source == export_torch(window.document.scenario, 0).source
    assert "loss.backward()" in source and "optimizer.step()" in source
    visible = [w for w in QtWidgets.QApplication.topLevelWidgets()
               if isinstance(w, QtWidgets.QProgressDialog) and w.isVisible()]
    assert not visible                                                # the progress dialog went away


# -------------------------------------------------------------------------------- the window itself


def test_layout_is_remembered_between_runs(qtbot, make_window):
    from ui.app import make_window as build

    first = make_window()
    size = QtCore.QSize(760, 740)                  # inside the offscreen screen (800 × 800): no clamping
    first.code_dock.hide()
    first.addDockWidget(Qt.DockWidgetArea.BottomDockWidgetArea, first.inspector_dock)
    first.resize(size)
    qtbot.waitUntil(lambda: first.size() == size, timeout=2000)
    first.close()
    assert not first.isVisible()

    second = build(None)                                             # the next run of the app
    try:
        second.show()
        qtbot.waitExposed(second)
        assert second.size() == size
        assert not second.code_dock.isVisible()
        assert second.dockWidgetArea(second.inspector_dock) == Qt.DockWidgetArea.BottomDockWidgetArea
    finally:
        second.document.modified = False
        second.close()
        second.deleteLater()


def test_quit_is_ctrl_q(qtbot, make_window):
    window = make_window()
    assert window.act_quit.shortcut().toString() == "Ctrl+Q"
    assert menu_action(window.file_menu, "Quit") is window.act_quit
    qtbot.keyClick(window, Key.Key_Q, CTRL)
    assert not window.isVisible()


def test_file_menu_has_every_item(make_window):
    window = make_window()
    texts = [a.text().replace("&", "") for a in window.file_menu.actions() if not a.isSeparator()]
    for want in ("Open…", "Open bundled scenario…", "Open recent", "Save", "Save As…", "Export", "Quit"):
        assert want in texts
    assert window.act_open.shortcut() == QtGui.QKeySequence(QtGui.QKeySequence.StandardKey.Open)
    assert window.act_save.shortcut() == QtGui.QKeySequence(QtGui.QKeySequence.StandardKey.Save)


def test_the_saved_layout_is_restored_once_and_draws_no_stray_tab_bar(qtbot, make_window, monkeypatch):
    """A second restoreState (the dashboards restored it again) left a stale copy of the tabbed
    Inspector/Controls tab bar drawn over the menu bar (seen with some saved layouts)."""
    from ui.app import make_window as build
    from ui.main_window import MainWindow

    make_window().close()                                            # saves the layout
    restores = []
    real = MainWindow.restoreState
    monkeypatch.setattr(MainWindow, "restoreState", lambda self, *a: restores.append(1) or real(self, *a))
    second = build(None)
    try:
        second.show()
        qtbot.waitExposed(second)
        assert len(restores) == 1
        top = second.menuBar().geometry().united(second.transport.geometry())
        for bar in second.findChildren(QtWidgets.QTabBar):
            if bar.parent() is second and bar.isVisible():
                assert not bar.geometry().intersects(top), [bar.tabText(i) for i in range(bar.count())]
    finally:
        second.document.modified = False
        second.close()
        second.deleteLater()


# ---------------------------------------------------------------------------------------- the polish


def test_selecting_a_parameter_keeps_the_window_size_and_fits_the_inspector(qtbot, make_window):
    """Selecting w (its history plot shows) once made the window grow to 992 px; the inspector now
    scrolls inside its dock, and a short .grad sits in a box as tall as its lines."""
    window = make_window(bundled_path("03_gradient_accumulation"))
    size = window.size()
    play_to_end_of_backward(qtbot, window)
    view = window.graph
    rect = view.node_scene_rect(param_node(window, "w"))
    point = view.mapFromScene(QtCore.QPointF(rect.center().x(), rect.top() + 12))
    with qtbot.waitSignal(view.nodeClicked, timeout=2000):
        qtbot.mouseClick(view.viewport(), Qt.MouseButton.LeftButton, pos=point)
    for _ in range(3):
        QtWidgets.QApplication.processEvents()
    inspector = window.inspector
    assert inspector.title.text() == "w" and inspector.plot.isVisibleTo(inspector)
    assert window.size() == size
    for box in (inspector.value_text, inspector.grad_text):      # whole text, in no scroll box of its own
        assert box.toPlainText() and not box.findChildren(QtWidgets.QAbstractScrollArea), box.toPlainText()
    assert " + " in inspector.grad_text.toPlainText()                            # the accumulation
    key(qtbot, window, Key.Key_End)                                              # after the step
    QtWidgets.QApplication.processEvents()
    assert window.size() == size
    screenshot(window, "window_accumulation_inspector")


def test_transport_buttons_are_one_set_of_icons(make_window):
    window = make_window()
    actions = [a for a in window.transport.actions() if not a.isSeparator() and a.text() and
               not isinstance(a, QtWidgets.QWidgetAction)]
    assert window.act_start in actions and window.act_end in actions
    images = set()
    for action in actions:
        button = window.transport.widgetForAction(action)
        assert isinstance(button, QtWidgets.QToolButton)
        assert button.toolButtonStyle() == Qt.ToolButtonStyle.ToolButtonIconOnly
        assert not action.icon().isNull(), action.text()
        assert re.search(r"\(.+\)$", action.toolTip()), action.toolTip()       # the shortcut is named
        image = action.icon().pixmap(24, 24).toImage()
        images.add(bytes(image.constBits()))
    assert len(images) == len(actions)                                           # all different


def test_choosing_a_variant_animates_it_in_the_graph_and_the_code(qtbot, make_window):
    path = bundled_path("04_rosenbrock_race")
    window = make_window(path)
    scenario = load(path)
    names = [v.name for v in scenario.variants()]
    adam = names.index("Adam")
    assert window.variant == 0 and "torch.optim.SGD" in window.code.toPlainText()
    dash = window.dashboards
    window.variant_box.setCurrentIndex(adam)
    window.variant_box.activated.emit(adam)                    # chosen in the toolbar (the one chooser)
    assert window.variant == adam and dash.selection.variant == adam
    assert "Adam" in window.variant_label.text()
    assert "torch.optim.Adam" in window.code.toPlainText()
    k = 3
    window.iteration_box.setValue(k)
    history = Session(scenario, adam).run()
    step = next(i for i in range(len(window.replay)) if isinstance(window.replay.frame(i).event, T.StepEvent))
    window.player.seek(step)
    assert window.code.current_phase == "step" and ".step(" in code_line(window)
    for u in window.replay.frame(step).event.updates:
        name = window.replay.node_name(u.node)
        assert np.allclose(u.after, history.params[name][k + 1])                # Adam's update
        assert window.graph.node_value_text(u.node).split()[-1] == format_number(u.after, PRECISION)
    screenshot(window, "window_rosenbrock_adam_step")
    # and back: the dashboards follow
    window.variant_box.setCurrentIndex(0)
    window.variant_box.activated.emit(0)
    assert window.variant == 0 and dash.selection.variant == 0
    assert "torch.optim.SGD" in window.code.toPlainText()
    assert window.replay.iteration == k


@pytest.mark.parametrize("stem", ["04_rosenbrock_race", "03_gradient_accumulation", "09_fp16_underflow"])
def test_the_code_panel_shows_whole_lines_at_the_default_width(qtbot, make_window, stem):
    """Long lines wrap instead of running off the narrow panel."""
    from gradviz.codegen import program
    from ui.main_window import CODE_DOCK_WIDTH
    window = make_window(bundled_path(stem))
    code = window.code
    assert code.width() <= CODE_DOCK_WIDTH
    assert code.horizontalScrollBar().maximum() == 0
    window.player.seek(window.replay.phase_range("forward")[0])
    line = code_line(window)
    assert any(s in line for s in PHASE_CODE["forward"]), line
    script = program(window.document.scenario, window.variant)
    assert line in script.source.splitlines()                  # the whole line, as the program has it
    block = code.document().findBlockByNumber(code.current_line - 1)
    right = code.blockBoundingRect(block).right()
    assert right <= code.viewport().width() + 1
    assert "optimizer = torch.optim." in code.toPlainText()   # what the loop's optimizer is
    screenshot(code, f"code_{stem}")


def test_an_iteration_asked_for_during_a_run_is_shown_when_the_run_ends(qtbot, make_window):
    """Typing an iteration while the document is still running is remembered, not dropped."""
    window = make_window()
    window.document.rerun()                       # a run in progress, as after an edit
    assert window.document.running
    window.set_iteration(7)
    finish(window)
    assert window.iteration == 7 and window.replay.iteration == 7
    assert window.iteration_box.value() == 7


def test_a_file_named_on_the_command_line_goes_into_recent_files(qtbot, make_window, tmp_path):
    from gradviz.scenario import bundled_path
    path = tmp_path / "lesson.toml"
    path.write_text(bundled_path("08_tanh_neuron").read_text())
    window = make_window(path)
    window._fill_recent()
    assert [a.text() for a in window.recent_menu.actions()][0] == "lesson.toml"
