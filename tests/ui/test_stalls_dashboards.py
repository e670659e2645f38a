"""The dashboards never hold the event loop long (issue 12): the window opens with the first tab's panel
only (the others are made when first shown), the grid shows its panels one per turn of the event loop
(each refreshing in a turn of its own), and the landscape's progress box reads in both themes."""
from __future__ import annotations

import threading

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6 import QtCore, QtGui, QtWidgets

from gradviz.scenario import bundled_path
from gradviz.view.series import completed
from tests.ui.dashboard_rig import RUN_TIMEOUT_MS, original


def plot_items(widget) -> list[pg.PlotItem]:
    return [item for view in widget.findChildren(pg.GraphicsView) for item in view.scene().items()
            if isinstance(item, pg.PlotItem)]


def click_tab(qtbot, tabs: QtWidgets.QTabWidget, title: str) -> None:
    bar = tabs.tabBar()
    index = next(i for i in range(tabs.count()) if tabs.tabText(i) == title)
    qtbot.mouseClick(bar, QtCore.Qt.MouseButton.LeftButton, pos=bar.tabRect(index).center())


def test_the_window_opens_with_the_first_tab_only_and_makes_a_tab_when_it_is_first_shown(qtbot, make_window):
    from ui.dashboards.container import PanelPlaceholder

    window = make_window(bundled_path("04_rosenbrock_race"), wait=False)
    window.document.finish_now()
    QtWidgets.QApplication.processEvents()
    dash = window.dashboards
    # the Loss tab is shown complete; no other panel (nor any of its plots) exists yet
    assert list(dash._made) == ["loss"] and dash.panels_made == 1
    pages = [dash.tabs.widget(i) for i in range(dash.tabs.count())]
    assert pages[0] is dash._made["loss"] and all(isinstance(p, PanelPlaceholder) for p in pages[1:])
    assert [dash.tabs.tabText(i) for i in range(dash.tabs.count())] == [
        "Loss", "Parameters", "Gradients", "Parameter space", "Optimizer state", "LR and clipping", "Data"]
    assert len(plot_items(dash)) == 1
    loss = dash._made["loss"]
    h = window.document.histories[0]
    np.testing.assert_allclose(original(loss.curve("loss", 0))[1], h.loss[:completed(h)])

    # a click on the Parameter space tab: its placeholder shows in this turn, the panel comes in the next
    click_tab(qtbot, dash.tabs, "Parameter space")
    assert "space" not in dash._made and isinstance(dash.tabs.currentWidget(), PanelPlaceholder)
    qtbot.waitUntil(lambda: "space" in dash._made and dash.tabs.currentWidget() is dash._made["space"],
                    timeout=RUN_TIMEOUT_MS)
    space = dash._made["space"]
    assert dash.tabs.tabText(dash.tabs.currentIndex()) == "Parameter space" and space.isVisible()
    qtbot.waitUntil(lambda: space.landscape is not None, timeout=RUN_TIMEOUT_MS)
    xs, ys = space._points[0]                           # the main run's trajectory (drawn thinned)
    np.testing.assert_allclose(xs, h.params["x"].astype(float))
    np.testing.assert_allclose(ys, h.params["y"].astype(float))
    assert space.trajectories[0].getData()[0][-1] == xs[-1]
    assert set(dash._made) == {"loss", "space"} and dash.panels_made == 2    # nothing else was made

    # asking for a panel by name makes it in its tab; every tab is then the panel itself
    assert dash.tabs.indexOf(dash.data) == 6 and "data" in dash._made
    assert dash.panels == [dash.tabs.widget(i) for i in range(dash.tabs.count())]


def test_the_grid_shows_its_panels_one_per_turn_and_all_are_drawn(qtbot, make_window, monkeypatch):
    from ui.dashboards import container, panel
    from ui.dashboards.container import Dashboards, PanelPlaceholder

    window = make_window(bundled_path("07_mlp_two_moons"))       # finished: every panel made, in tabs
    dash = window.dashboards
    assert dash.layout_mode == "tabs" and dash.panels_made == 7
    # another choice of series while the tabs are hidden: their refreshes wait until they are shown
    labels = [s.label for s in dash.selection.series if s.kind == "element"][:4]
    dash.selection.set_labels(labels)
    hidden = [p for p in dash.panels if not p.isVisible()]
    assert hidden and all(p._deferred for p in hidden if p.defer_when_hidden)

    slices = panel.slices()
    shown_in: list[int] = []          # the turn each panel came into the grid
    refreshed_in: list[int] = []      # the turn of each panel's refresh
    place = Dashboards._place
    monkeypatch.setattr(Dashboards, "_place", lambda self, name: (shown_in.append(slices.turns),
                                                                  place(self, name)))
    refresh = panel.PlotPanel.refresh

    def recorded(self) -> None:
        if self.isVisible():                 # (hidden, a refresh is only noted)
            refreshed_in.append(slices.turns)
        refresh(self)
    monkeypatch.setattr(panel.PlotPanel, "refresh", recorded)
    refreshes = [p.refreshes for p in dash.panels]
    qtbot.mouseClick(dash.grid_button, QtCore.Qt.MouseButton.LeftButton)
    # the click's own turn: every cell shows its placeholder, no panel is shown or refreshed in it
    assert dash.layout_mode == "grid" and dash.grid_button.isChecked()
    assert all(isinstance(dash.grid_layout.itemAtPosition(*container.GRID_SPOTS[name][:2]).widget(),
                                  PanelPlaceholder) for name, _cls in container.PANELS)
    assert not any(p.isVisible() for p in dash.panels) and not shown_in and not refreshed_in
    assert [p.refreshes for p in dash.panels] == refreshes
    assert slices.jobs                                          # the work is queued

    def all_drawn() -> bool:
        return (all(p.isVisible() for p in dash.panels) and not slices.jobs
                and not any(h.isVisible() for h in dash._holders.values()))
    qtbot.waitUntil(all_drawn, timeout=RUN_TIMEOUT_MS)
    # one panel per turn, each refreshed after the turn that showed it, never two things in one turn
    assert len(shown_in) == 7 and len(set(shown_in)) == 7
    assert len(refreshed_in) == len(set(refreshed_in)) and min(refreshed_in) > min(shown_in)
    assert not set(shown_in) & set(refreshed_in)
    assert not any(p._deferred for p in dash.panels)
    # every panel shows the new choice, cells at their places
    for name, _cls in container.PANELS:
        p = getattr(dash, name)
        assert dash.grid_layout.itemAtPosition(*container.GRID_SPOTS[name][:2]).widget() is p
    h = window.document.histories[0]
    assert list(dash.params._made_cells()) == labels and dash.params.pending == 0
    series = next(s for s in dash.selection.series if s.label == labels[0])
    np.testing.assert_allclose(original(dash.params.curve("param", labels[0], 0))[1],
                               series.of(h.params[series.param]))
    assert dash.state.pending == 0 and dash.grads.pending == 0
    qtbot.waitUntil(lambda: dash.space.landscape is not None, timeout=RUN_TIMEOUT_MS)
    assert dash.data.drawn_iteration == window.view_state.iteration

    # back to tabs and to the grid again: nothing to make, the panels still come one per turn
    made = dash.panels_made
    dash.set_layout_mode("tabs")
    shown_in.clear()
    dash.set_layout_mode("grid")
    assert not any(p.isVisible() for p in dash.panels)
    qtbot.waitUntil(all_drawn, timeout=RUN_TIMEOUT_MS)
    assert len(shown_in) == 7 and len(set(shown_in)) == 7 and dash.panels_made == made


def test_the_grid_keeps_its_cells_in_place_while_panels_arrive(qtbot, make_window):
    """Equal cells whatever is in them: a panel swapped in for its placeholder moves no other panel
    (each move lays out and paints that panel again)."""
    from ui.dashboards import container

    window = make_window(bundled_path("01_tutorial_wx_b"))
    dash = window.dashboards
    dash.set_layout_mode("grid")
    QtWidgets.QApplication.processEvents()
    cells = {name: dash._holders[name].geometry() for name, _cls in container.PANELS}
    dash.finish_pending()
    QtWidgets.QApplication.processEvents()
    assert {name: getattr(dash, name).geometry() for name, _cls in container.PANELS} == cells
    widths = {cells[name].width() for name in ("loss", "params", "grads", "data")}
    assert max(widths) - min(widths) <= 1


def test_finish_pending_makes_and_shows_every_panel_at_once(qtbot, make_window):
    window = make_window(bundled_path("04_rosenbrock_race"), wait=False)
    window.document.finish_now()
    dash = window.dashboards
    dash.set_layout_mode("grid")
    dash.finish_pending()
    assert dash.panels_made == 7 and all(p.isVisible() for p in dash.panels)
    assert not any(h.isVisible() for h in dash._holders.values())
    assert dash.space.landscape is not None and len(dash.space.trajectories) == len(window.document.histories)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_the_landscape_progress_reads_over_the_trajectories_in_both_themes(qtbot, make_window, monkeypatch,
                                                                         scheme):
    """"Computing the loss landscape… N %" in a box of the theme's hover colours, above the
    trajectories (they ran through the bare text)."""
    from gradviz.training import landscape as landscape_module
    from ui import theme
    from ui.dashboards import param_space

    before = theme.scheme()
    theme.apply(QtWidgets.QApplication.instance(), scheme)
    try:
        window = make_window(bundled_path("01_tutorial_wx_b"))
        space = window.dashboards.space
        window.dashboards.tabs.setCurrentWidget(space)
        qtbot.waitUntil(lambda: space.landscape is not None, timeout=RUN_TIMEOUT_MS)
        monkeypatch.setattr(param_space, "SYNC_LANDSCAPE_S", -1.0)
        monkeypatch.setattr(landscape_module, "LANDSCAPE_BLOCK", 1)
        release = threading.Event()
        real = window.session.landscape

        def slow(*args, progress=None, **kwargs):       # the worker waits half-way until released
            def gate(done, total):
                if threading.current_thread() is not threading.main_thread() and done * 2 > total:
                    release.wait(30)
                if progress is not None:
                    progress(done, total)
            return real(*args, progress=gate, **kwargs)
        monkeypatch.setattr(window.session, "landscape", slow)
        space._axes_changed()
        message = space.message
        qtbot.waitUntil(lambda: message.isVisible() and "%" in message.toPlainText(), timeout=RUN_TIMEOUT_MS)
        assert message.toPlainText().startswith("Computing the loss landscape")
        assert message.fill.style() != QtCore.Qt.BrushStyle.NoBrush
        fill = message.fill.color()
        assert fill.rgb() == QtGui.QColor(theme.PLOT_HOVER_FILL).rgb() and fill.alpha() > 200
        assert message.color.rgb() == QtGui.QColor(theme.PLOT_FOREGROUND).rgb()
        assert message.zValue() > max(t.zValue() for t in space.trajectories + space.current)
        # readable: the text's colour stands out from the box's
        text, box = QtGui.QColor(theme.PLOT_FOREGROUND), QtGui.QColor(theme.PLOT_HOVER_FILL)
        assert abs(text.lightness() - box.lightness()) > 100
        # the box follows a theme switch while it shows
        other = "dark" if scheme == "light" else "light"
        theme.apply(QtWidgets.QApplication.instance(), other)
        assert message.fill.color().rgb() == QtGui.QColor(theme.PLOT_HOVER_FILL).rgb()
        assert message.color.rgb() == QtGui.QColor(theme.PLOT_FOREGROUND).rgb()
        release.set()
        qtbot.waitUntil(lambda: space.landscape is not None, timeout=RUN_TIMEOUT_MS)
        assert not message.isVisible()
    finally:
        theme.apply(QtWidgets.QApplication.instance(), before)
