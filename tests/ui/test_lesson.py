"""The Lesson panel beside the graph: the scenario's title and description, and its guided tour.
Next/Back (buttons and Alt+→/Alt+←) move the player to each stop of every bundled lesson, select
the node the stop names, raise its plot and show its text."""
from __future__ import annotations

import re

import pytest
from PySide6 import QtCore, QtGui
from PySide6.QtCore import Qt

from gradviz.scenario import bundled, load
from gradviz.scenario.bundled import find_bundled, find_bundled_script
from gradviz.view.tour import resolve
from tests.ui.conftest import finish, screenshot

Key = Qt.Key
ALT = Qt.KeyboardModifier.AltModifier
TUTORIAL_SCRIPT = find_bundled_script("01_tutorial_loop")


def arrive(qtbot, window) -> None:
    """Wait until the Player stands at the lesson's current stop (its trace may come later)."""
    finish(window)
    qtbot.waitUntil(lambda: window.lesson.arrived, timeout=15000)


def current_tab(window) -> str:
    tabs = window.dashboards.tabs
    return tabs.tabText(tabs.currentIndex())


def check_stop(window, stop, index) -> None:
    """The window shows ``stop``: run, iteration, the frame the view model resolves, its text, its
    node selected, its plot in front."""
    lesson, replay = window.lesson, window.replay
    assert lesson.index == index
    assert window.view_state.iteration == stop.iteration
    names = [v.name for v in window.document.scenario.variants()]
    assert window.view_state.variant == (names.index(stop.run) if stop.run else 0)
    assert replay is not None and replay.iteration == stop.iteration
    place = resolve(replay, stop)
    assert window.player.position == place.frame
    if stop.event:
        assert window.player.frame.event_kind == stop.event
    if stop.node:
        assert window.view_state.selected_node == place.node
        assert replay.node_name(window.view_state.selected_node) == stop.node
    else:
        assert window.view_state.selected_node is None
    if stop.plot and stop.plot in [window.dashboards.tabs.tabText(i) for i in range(window.dashboards.tabs.count())]:
        assert current_tab(window) == stop.plot
    assert lesson.stop_title.text() == f"Stop {index + 1} of {len(lesson.stops)}"
    shown = " ".join(lesson.shown_text().split())
    assert shown == " ".join(re.sub(r"\*(\S[^*]*?)\*|`([^`]+)`", r"\1\2", stop.text).split())
    assert f"Iteration {stop.iteration}" in lesson.stop_where.text()


@pytest.mark.parametrize("path", bundled(), ids=lambda p: p.stem)
def test_every_stop_of_every_bundled_tour_moves_the_player_and_shows_its_text(qtbot, make_window, path):
    window = make_window(path)
    lesson = window.lesson
    scenario = load(path)
    assert lesson.stops == scenario.tour and lesson.index == -1
    assert lesson.title.text() == scenario.title
    assert "Guided tour" in lesson.stop_title.text() and "Next" in lesson.shown_text()
    for index, stop in enumerate(scenario.tour):
        qtbot.mouseClick(lesson.next_button, Qt.MouseButton.LeftButton)
        arrive(qtbot, window)
        check_stop(window, stop, index)
    assert not lesson.next_button.isEnabled() and lesson.back_button.isEnabled()
    if path.stem in ("02_forgot_zero_grad", "09_fp16_underflow"):
        screenshot(window, f"lesson_{path.stem}_last_stop")


def test_next_and_back_by_click_and_by_key(qtbot, make_window):
    window = make_window()                                       # the tutorial
    lesson = window.lesson
    stops = lesson.stops
    assert not lesson.back_button.isEnabled() and lesson.next_button.isEnabled()
    qtbot.keyClick(window.graph, Key.Key_Right, ALT)             # Alt+→: the first stop
    arrive(qtbot, window)
    check_stop(window, stops[0], 0)
    qtbot.keyClick(window.graph, Key.Key_Right, ALT)
    arrive(qtbot, window)
    check_stop(window, stops[1], 1)
    qtbot.keyClick(window.graph, Key.Key_Left, ALT)              # Alt+←: back
    arrive(qtbot, window)
    check_stop(window, stops[0], 0)
    qtbot.mouseClick(lesson.next_button, Qt.MouseButton.LeftButton)
    qtbot.mouseClick(lesson.next_button, Qt.MouseButton.LeftButton)
    arrive(qtbot, window)
    check_stop(window, stops[2], 2)
    qtbot.mouseClick(lesson.back_button, Qt.MouseButton.LeftButton)
    arrive(qtbot, window)
    check_stop(window, stops[1], 1)
    # the player's own keys still step: the tour does not take the arrows
    position = window.player.position
    qtbot.keyClick(window.graph, Key.Key_Right)
    assert window.player.position == position + 1 and lesson.index == 1


def test_a_stop_selects_its_node_raises_its_plot_and_shows_another_run(qtbot, make_window):
    window = make_window(find_bundled("09_fp16_underflow"))
    lesson = window.lesson
    window.dashboards.tabs.setCurrentIndex(0)
    lesson.go(0)                                                 # the weight's gradient underflows
    arrive(qtbot, window)
    node = window.view_state.selected_node
    assert window.replay.node_name(node) == "0.weight" and current_tab(window) == "Gradients"
    frame = window.player.frame
    assert frame.event_kind == "accumulate" and float(frame.nodes[node].grad_badge.ravel()[0]) == 0.0
    assert window.inspector_dock.isVisible()                     # the selected node's numbers
    lesson.go(4)                                                 # the scaler's step, in the other run
    arrive(qtbot, window)
    assert window.view_state.variant == 1 and window.variant_box.currentText() == "loss scaling on"
    assert window.player.frame.event_kind == "scaler" and window.view_state.selected_node is None
    assert "65536 → 32768" in lesson.shown_text()
    assert "run “loss scaling on”" in lesson.stop_where.text()
    screenshot(window, "lesson_fp16_scaler_stop")


def test_the_lesson_shows_title_and_description_beside_the_graph(qtbot, make_window):
    window = make_window(find_bundled("02_forgot_zero_grad"))
    lesson, scenario = window.lesson, window.document.scenario
    assert window.lesson_dock.isVisible() and window.lesson_dock.windowTitle() == "Lesson"
    assert window.dockWidgetArea(window.lesson_dock) == Qt.DockWidgetArea.RightDockWidgetArea
    assert window.lesson_dock.geometry().bottom() < window.controls_dock.geometry().top()   # above the controls
    assert lesson.title.text() == "Forgot zero_grad()" and lesson.title.isVisible()
    text = lesson.description.toPlainText()
    assert text.startswith("The tutorial example again") and "Compare with the correct run" in text
    assert lesson.tour_box.isVisible() and lesson.stop_title.text() == f"Guided tour · {len(scenario.tour)} stops"
    assert window.variant_box.itemText(0) == "forgot zero_grad() (bug)"      # the lesson's run names
    window.open_default()
    finish(window)
    assert lesson.title.text() == "w·x + b: the classic" and lesson.index == -1
    assert lesson.stops == window.document.scenario.tour


def test_another_scenario_starts_its_tour_from_the_beginning(qtbot, make_window):
    window = make_window()
    window.lesson.go(2)
    arrive(qtbot, window)
    window.open_path(find_bundled("02_forgot_zero_grad"), confirm=False)
    finish(window)
    assert window.lesson.index == -1 and window.lesson.stops[0].iteration == 0
    assert not window.lesson.back_button.isEnabled()


def test_a_script_lesson_shows_its_header_comment_and_tours_traces_that_arrive_later(qtbot, make_window):
    window = make_window(TUTORIAL_SCRIPT, wait=False)
    window.document.trace_budget = 1                             # keep (almost) no traces: they come later
    window.document.run()
    finish(window)
    lesson = window.lesson
    assert lesson.title.text() == "The tutorial loop: w * x + b"
    assert lesson.description.toPlainText().startswith("The loop every PyTorch tutorial starts with")
    assert "tour:" not in lesson.description.toPlainText()
    assert len(lesson.stops) == 4
    for index, stop in enumerate(lesson.stops):
        lesson.next()
        qtbot.waitUntil(lambda: lesson.arrived, timeout=15000)
        check_stop(window, stop, index)
    assert window.code.toPlainText().count("# tour:") == 4       # the tour lives in the script's comments


def test_a_bad_tour_comment_in_a_script_says_what_is_wrong_in_the_panel(qtbot, make_window, tmp_path):
    from ui.dialogs import settings, trust
    path = tmp_path / "lesson.py"
    source = ("# My lesson\nimport torch\nw = torch.tensor(1.0, requires_grad=True)\n"
              "# tour: iteration=0 plot=Los\n#   text\n"
              "opt = torch.optim.SGD([w], lr=0.1)\nfor i in range(3):\n    opt.zero_grad()\n"
              "    (w * w).backward()\n    opt.step()\n")
    path.write_text(source)
    trust(settings(), path, source)
    window = make_window(path)
    lesson = window.lesson
    assert lesson.stops == [] and lesson.tour_box.isVisible()
    assert "lesson.py:4: [tour[0].plot]" in lesson.shown_text() and "did you mean 'Loss'" in lesson.shown_text()
    assert not lesson.next_button.isVisible()


def test_a_short_window_shows_the_tour_alone(qtbot, make_window):
    window = make_window()
    window.resize(800, 600)
    qtbot.waitUntil(lambda: window.size() == QtCore.QSize(800, 600), timeout=2000)
    finish(window)
    qtbot.wait(50)
    lesson = window.lesson
    if lesson.compact:                                   # the column is too short for everything
        assert not lesson.description.isVisible() and lesson.tour_box.isVisible()
        assert lesson.stop_title.text() == "w·x + b: the classic"
        assert "One example (x = 2, target y = 4)" in lesson.shown_text()
    lesson.next()
    arrive(qtbot, window)
    check_stop(window, lesson.stops[0], 0)
    assert lesson.next_button.isVisible() and lesson.back_button.isVisible()
    screenshot(window, "lesson_800x600")


def test_reset_layout_puts_the_lesson_back_on_top_of_the_right_column(qtbot, make_window):
    window = make_window()
    window.lesson_dock.setFloating(True)
    window.lesson_dock.hide()
    window.reset_layout()
    finish(window)
    qtbot.wait(20)
    dock = window.lesson_dock
    assert dock.isVisible() and not dock.isFloating()
    assert window.dockWidgetArea(dock) == Qt.DockWidgetArea.RightDockWidgetArea
    assert dock.geometry().bottom() < window.controls_dock.geometry().top()
    assert window.controls_dock in window.tabifiedDockWidgets(window.inspector_dock)
    column = dock.height() + window.controls_dock.height()
    assert abs(dock.height() - column / 2) < 0.1 * column            # about half of the column


def test_a_layout_saved_before_the_lesson_existed_gets_the_lesson_on_top(qtbot, make_window):
    from ui.app import make_window as build
    from ui.dialogs import settings
    from ui.main_window import LESSON_LAYOUT_KEY

    first = make_window()
    first.close()
    settings().remove(LESSON_LAYOUT_KEY)             # as an older GradViz saved it
    second = build(None)
    try:
        second.show()
        qtbot.waitExposed(second)
        finish(second)
        assert second.lesson_dock.isVisible()
        front = next(d for d in (second.controls_dock, second.inspector_dock) if not d.visibleRegion().isEmpty())
        assert second.lesson_dock.geometry().bottom() < front.geometry().top()
        assert second.controls_dock in second.tabifiedDockWidgets(second.inspector_dock)
    finally:
        second.document.modified = False
        second.close()
        second.deleteLater()


def test_the_lesson_texts_scroll_bars_are_drawn_in_the_windows_style(qtbot, make_window):
    """The description's scroll bar had a black groove (a style sheet on the text made Qt draw its
    scroll bars in the style sheet's fallback look): its pixels are the window's, not black."""
    window = make_window()
    window.resize(1280, 800)
    lesson = window.lesson
    bar = lesson.description.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.isVisible() and bar.maximum() > 0, timeout=5000)
    for browser in (lesson.description, lesson.stop_text):
        assert browser.styleSheet() == ""
    image = bar.grab().toImage()
    dark = sum(QtGui.QColor(image.pixel(x, y)).lightness() < 60
               for x in range(image.width()) for y in range(image.height()))
    assert dark < 0.05 * image.width() * image.height(), f"{dark} dark pixels in the scroll bar"
