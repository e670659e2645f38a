"""The dashboards on real widgets: the plots show the Histories and the Landscape the core computed,
follow the player, pick iterations on click, export faithfully, and stay responsive during long runs."""
from __future__ import annotations

import csv
import json
import time

import numpy as np
import pytest
from PySide6 import QtCore, QtWidgets

from gradviz.scenario import bundled_path, load
from gradviz.training.session import Session
from tests.ui.conftest import screenshot
from tests.ui.dashboard_rig import RUN_TIMEOUT_MS, original, rosenbrock, run_core


def scene_point(panel, plot, x: float, y: float) -> QtCore.QPoint:
    """Widget pixel of the data point (x, y) in ``plot`` of ``panel`` (view coordinates)."""
    # pyqtgraph applies a pending auto-range only when it next paints: paint first, or the mapping is
    # stale (e.g. right after set_log) and the click lands beside the plot
    panel.view.viewport().repaint()
    scene = plot.vb.mapViewToScene(QtCore.QPointF(x, y))
    return panel.view.mapFromScene(scene)


def test_every_variant_is_plotted_from_its_history(rig):
    r = rig(rosenbrock())
    histories = r.doc.histories
    assert len(histories) == 6
    for i, h in enumerate(histories):
        x, loss = original(r.dash.loss.curve("loss", i))
        np.testing.assert_array_equal(x, np.arange(h.steps))
        np.testing.assert_array_equal(loss, h.loss.astype(float))
        xs, ys = original(r.dash.space.trajectories[i])
        np.testing.assert_array_equal(xs, h.params["x"].astype(float))
        np.testing.assert_array_equal(ys, h.params["y"].astype(float))
    names = [label.text for _item, label in r.dash.space.legend.items]
    assert names == [v.name for v in r.doc.scenario.variants()]
    # parameters and gradients of the selected variant; the core's numbers, element for element
    main = run_core(r.doc.scenario)
    np.testing.assert_array_equal(original(r.dash.params.curve("param", "x"))[1], main.params["x"].astype(float))
    np.testing.assert_array_equal(original(r.dash.grads.curve("grad", "y"))[1], main.grads["y"].astype(float))
    # Adam's state is there with the others'; the current run (chosen in the toolbar) Adam
    assert {"exp_avg", "exp_avg_sq"} <= set(r.dash.state.keys)
    r.view_state.set_variant(3)
    adam = r.doc.histories[3]
    np.testing.assert_array_equal(original(r.dash.state.curve("exp_avg", "x"))[1],
                                  adam.state["x"]["exp_avg"].astype(float))
    step = np.abs(np.diff(adam.params["y"].astype(float)))
    np.testing.assert_allclose(original(r.dash.state.curve("step_size", "y"))[1], step)


def test_contour_plot_has_the_landscape_the_session_computed(rig):
    r = rig(rosenbrock())
    space = r.dash.space
    assert space.axes() == ("x", "y")
    ls = space.landscape
    assert ls is not None and (ls.p1, ls.p2) == ("x", "y")
    fresh = Session(r.doc.scenario).landscape("x", "y", n=len(ls.xs), x_range=(ls.xs[0], ls.xs[-1]),
                                              y_range=(ls.ys[0], ls.ys[-1]))
    np.testing.assert_array_equal(ls.z, fresh.z)
    np.testing.assert_array_equal(ls.xs, fresh.xs)
    # every trajectory lies inside the landscape (the range covers the race)
    for xs, ys in space._points:
        assert ls.xs[0] <= np.nanmin(xs) and np.nanmax(xs) <= ls.xs[-1]
        assert ls.ys[0] <= np.nanmin(ys) and np.nanmax(ys) <= ls.ys[-1]
    # Rosenbrock spans decades: log-spaced levels; the image covers the grid it was computed on
    assert space.log_levels
    ratios = space.levels[1:] / space.levels[:-1]
    np.testing.assert_allclose(ratios, ratios[0])
    rect = space.image.mapRectToParent(space.image.boundingRect())
    assert rect.left() < ls.xs[0] < ls.xs[1] and rect.right() > ls.xs[-1]
    assert rect.top() < ls.ys[0] and rect.bottom() > ls.ys[-1]
    assert len(space.isocurves) == len(space.levels) - 2
    # the filled bands are the landscape's values put in their level bands
    coarse = space.band_image[::4, ::4]
    band = np.clip(np.searchsorted(space.levels, ls.z, side="right") - 1, 0, len(space.levels) - 2)
    t = np.log10(space.levels)
    np.testing.assert_allclose(coarse, ((t[:-1] + t[1:]) / 2)[band])


def test_cursor_and_current_step_follow_the_iteration(rig):
    r = rig(rosenbrock(100))
    r.dash.set_iteration(37)
    for panel in (r.dash.loss, r.dash.params, r.dash.grads):
        assert panel.plot.cursor.value() == 37
    assert all(p.cursor.value() == 37 for p in r.dash.state.cells.values())
    for i, (xs, ys) in enumerate(r.dash.space._points):
        mx, my = r.dash.space.current[i].getData()
        assert (mx[0], my[0]) == (xs[37], ys[37])


def test_clicking_a_plotted_point_picks_that_iteration(rig, qtbot):
    r = rig(rosenbrock(100))
    loss = r.dash.loss
    loss.set_log(False)
    h = r.doc.histories[0]
    pos = scene_point(loss, loss.plot, 42, float(h.loss[42]))
    qtbot.mouseClick(loss.view.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=pos)
    assert r.picks == [42]
    space = r.dash.space
    xs, ys = space._points[3]                      # Adam's trajectory
    pos = scene_point(space, space.plot, xs[60], ys[60])
    qtbot.mouseClick(space.view.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=pos)
    picked = r.picks[-1]
    # the nearest plotted point under the mouse (another variant may pass within a pixel)
    hit = [(i, j) for i, (px, py) in enumerate(space._points) for j in range(len(px))
           if j == picked and abs(px[j] - xs[60]) < 0.05 and abs(py[j] - ys[60]) < 0.05]
    assert hit, f"picked {picked}, not a point near Adam's step 60"


def test_hover_shows_exact_values(rig, qtbot):
    r = rig("01_tutorial_wx_b", grid=False)
    loss = r.dash.loss
    loss.log_box.setChecked(False)
    h = r.doc.histories[0]
    pos = scene_point(loss, loss.plot, 3, float(h.loss[3]))
    loss._on_mouse_moved(loss.view.mapToScene(pos))
    hover = loss._hovers[loss.plot]
    assert hover.isVisible()
    text = hover.textItem.toPlainText()
    assert "step 3" in text and f"{float(h.loss[3]):.8g}" in text
    r.dash.tabs.setCurrentWidget(r.dash.params)
    qtbot.wait(10)
    params = r.dash.params
    plot = params.plot_of("w")                          # every run's w at step 5, in w's own plot
    pos = scene_point(params, plot, 5, float(h.params["w"][5]))
    params._on_mouse_moved(params.view.mapToScene(pos))
    text = params._hovers[plot].textItem.toPlainText()
    assert "step 5 · w" in text and f"{r.doc.scenario.variants()[0].name}: {float(h.params['w'][5]):.8g}" in text


def test_exports_match_the_history(rig, tmp_path, monkeypatch):
    from ui.dashboards import DashboardExporter, export_history, export_plot

    r = rig("03_gradient_accumulation")
    h = r.doc.histories[0]
    csv_path = export_history(h, tmp_path / "h.csv")
    with csv_path.open() as f:
        rows = list(csv.reader(f))
    columns = h.columns()
    assert rows[0] == list(columns)
    table = np.array(rows[1:], dtype=float)
    assert table.shape == (h.steps, len(columns))
    for j, values in enumerate(columns.values()):
        np.testing.assert_array_equal(table[:, j], values)
    data = json.loads(export_history(h, tmp_path / "h.json").read_text())
    assert data["steps"] == h.steps and data["accumulation_steps"] == 4
    np.testing.assert_array_equal(np.array(data["columns"]["loss"]), columns["loss"])
    np.testing.assert_array_equal(np.array(data["columns"]["grad.w"]), columns["grad.w"])

    png = export_plot(r.dash.loss, tmp_path / "loss.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    svg = export_plot(r.dash.space, tmp_path / "space.svg").read_text()
    assert "<svg" in svg and "</svg>" in svg

    # the interactive path: default names, suffix added, overwrite confirmed
    class Window(QtWidgets.QWidget):
        def show_error(self, message):
            raise AssertionError(message)
    window = Window()
    exporter = DashboardExporter(r.doc, r.dash, window)
    exporter.failed.connect(window.show_error)
    assert exporter.default_history_path("csv").name == \
        "03_gradient_accumulation_4_micro-batches_loss_4_correct_history.csv"      # the run named for the lesson
    assert exporter.default_plot_path("png").name.startswith("03_gradient_accumulation_")
    exporter.ask_path = lambda *a: str(tmp_path / "chosen")
    assert exporter.export_history("csv") == tmp_path / "chosen.csv"
    assert (tmp_path / "chosen.csv").read_text().splitlines()[0].startswith("step,loss")
    asked = []
    B = QtWidgets.QMessageBox.StandardButton
    monkeypatch.setattr(QtWidgets.QMessageBox, "question",
                        staticmethod(lambda *a, **k: asked.append(a[2]) or B.No))
    (tmp_path / "chosen.json").write_text("keep me")
    assert exporter.export_history("json") is None
    assert asked and "chosen.json" in asked[0]
    assert (tmp_path / "chosen.json").read_text() == "keep me"
    monkeypatch.setattr(QtWidgets.QMessageBox, "question", staticmethod(lambda *a, **k: B.Yes))
    assert exporter.export_history("json") == tmp_path / "chosen.json"
    assert json.loads((tmp_path / "chosen.json").read_text())["steps"] == h.steps
    assert exporter.export_plot("svg") == tmp_path / "chosen.svg"


def test_a_10000_step_rerun_keeps_the_event_loop_responsive(rig, qtbot):
    r = rig("01_tutorial_wx_b")
    ticks = []
    timer = QtCore.QTimer()
    timer.setInterval(10)
    timer.timeout.connect(lambda: ticks.append(time.perf_counter()))
    scenario = r.doc.editable_copy()
    scenario.loop.steps = 10_000
    refreshes = r.dash.loss.refreshes
    timer.start()
    start = time.perf_counter()
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        r.doc.edit(scenario)
    elapsed = time.perf_counter() - start
    timer.stop()
    assert elapsed > 0.3                           # really a long run, not a trivial one
    # an independent 10 ms timer keeps firing all along: the UI processes events while it runs
    gaps = np.diff([start] + ticks + [start + elapsed])
    assert len(ticks) >= max(20, 0.2 * elapsed / 0.010), (len(ticks), elapsed)
    assert np.percentile(gaps, 95) < 0.15, np.percentile(gaps, 95)   # never frozen for long
    live = r.dash.loss.refreshes - refreshes
    assert 2 <= live <= elapsed / 0.1 + 3          # live updates, at most ~10 Hz
    assert original(r.dash.loss.curve("loss", 0))[1].shape == (10_000,)


def test_live_refresh_shows_partial_runs(rig, qtbot):
    r = rig("01_tutorial_wx_b")
    scenario = r.doc.editable_copy()
    scenario.loop.steps = 5_000
    seen = []
    r.doc.runProgress.connect(lambda done, total: seen.append(
        len(original(r.dash.loss.curve("loss", 0))[1]) if r.dash.loss.curve("loss", 0) else 0))
    with qtbot.waitSignal(r.doc.runFinished, timeout=RUN_TIMEOUT_MS):
        r.doc.edit(scenario)
    partial = [n for n in seen if 0 < n < 5_000]
    assert partial, "no partial curve was drawn while running"


def test_tensor_models_offer_norms_and_elements(rig):
    r = rig("07_mlp_two_moons")
    labels = [s.label for s in r.dash.selection.series]
    assert "‖0.weight‖" in labels and "0.weight[15,1]" in labels
    assert r.dash.selection.labels[:2] == ["‖0.weight‖", "‖0.bias‖"]
    h = r.doc.histories[0]
    norm = np.linalg.norm(h.params["0.weight"].astype(float).reshape(h.steps + 1, -1), axis=1)
    np.testing.assert_allclose(original(r.dash.params.curve("param", "‖0.weight‖"))[1], norm)
    # pick one element in the Series menu
    next(a for a in r.dash.picker.actions_ if a.text() == "0.weight[3,1]").setChecked(True)
    np.testing.assert_array_equal(original(r.dash.params.curve("param", "0.weight[3,1]"))[1],
                                  h.params["0.weight"][:, 3, 1].astype(float))
    # parameter space over two weight elements, the others at their initial values
    assert r.dash.space.axes() == ("0.weight[0,0]", "0.weight[0,1]")
    assert r.dash.space.note.isVisibleTo(r.dash.space)


def test_screenshots(rig, qtbot):
    r = rig(load(bundled_path("04_rosenbrock_race")))
    r.dash.set_iteration(150)
    qtbot.wait(50)
    path = screenshot(r.window, "dash_rosenbrock_race")
    assert path.stat().st_size > 10_000
    r.dash.set_layout_mode("tabs")
    r.dash.tabs.setCurrentWidget(r.dash.space)
    qtbot.wait(50)
    screenshot(r.dash, "dash_rosenbrock_space")
    m = rig("07_mlp_two_moons")
    m.dash.set_iteration(150)
    qtbot.wait(50)
    screenshot(m.window, "dash_mlp_two_moons")


def test_repaint_soak(rig, qtbot):
    """Thousands of repaints of the real plots (the PySide6 6.12 + Python 3.11 abort showed up here)."""
    r = rig(rosenbrock(200))
    app = QtWidgets.QApplication.instance()
    for k in range(400):                          # 2,000 full repaints, each thousands of Qt calls
        r.dash.set_iteration(k % 200)
        for p in r.dash.panels:
            p.view.viewport().repaint()
        if k % 50 == 0:
            app.processEvents()


# -- in the main window ------------------------------------------------------------------------
@pytest.fixture
def window(make_window):
    return make_window(bundled_path("04_rosenbrock_race"))


def test_install_adds_docks_menus_and_wiring(window, qtbot):
    assert window.dashboards_dock.widget() is window.dashboards
    assert window.controls is not None
    texts = [a.text() for a in window.view_menu.actions()]
    assert "Dashboards" in texts and "Controls" in texts
    export = [a.menu() for a in window.file_menu.actions() if a.menu() and "Export" in a.menu().title()][0]
    assert {"Plot as P&NG…", "History as &CSV…"} <= {a.text() for a in export.actions()}
    window.set_iteration(17)
    assert window.dashboards.loss.plot.cursor.value() == 17


def test_the_windows_export_entries_write_and_report(window, tmp_path, no_dialogs):
    export = next(a.menu() for a in window.file_menu.actions() if a.menu() and "Export" in a.menu().title())
    entries = {a.text(): a for a in export.actions()}
    window.dashboard_exporter.ask_path = lambda *a: str(tmp_path / "race")
    entries["History as &CSV…"].trigger()
    assert (tmp_path / "race.csv").exists()
    assert window.statusBar().currentMessage() == f"Wrote {tmp_path / 'race.csv'}"
    window.dashboard_exporter.ask_path = lambda *a: str(tmp_path / "missing" / "race")
    entries["History as &JSON…"].trigger()
    assert len(no_dialogs) == 1 and "Could not write" in no_dialogs[0] and "race.json" in no_dialogs[0]


def test_the_grid_entry_and_the_grid_button_agree(window):
    dash = window.dashboards
    assert window.act_dash_grid in window.view_menu.actions()
    window.act_dash_grid.trigger()
    assert dash.layout_mode == "grid" and dash.grid_button.isChecked()
    dash.grid_button.click()
    assert dash.layout_mode == "tabs" and not window.act_dash_grid.isChecked()
    dash.set_layout_mode("grid")
    assert window.act_dash_grid.isChecked() and dash.grid_button.isChecked()


def test_clicking_a_plot_moves_the_player(window, qtbot):
    dash = window.dashboards
    window.dashboards_dock.show()
    dash.tabs.setCurrentWidget(dash.loss)
    dash.loss.set_log(False)
    qtbot.wait(20)
    h = window.document.histories[0]
    pos = scene_point(dash.loss, dash.loss.plot, 25, float(h.loss[25]))
    with qtbot.waitSignal(window.view_state.iterationChanged, timeout=5000) as blocker:
        qtbot.mouseClick(dash.loss.view.viewport(), QtCore.Qt.MouseButton.LeftButton, pos=pos)
    assert blocker.args == [25]
    assert window.iteration == 25
    assert window.replay is not None
    assert dash.loss.plot.cursor.value() == 25


def test_a_hidden_parameter_space_tab_computes_its_landscape_when_shown(rig, qtbot):
    """The landscape is a grid of forward passes: a hidden tab must not block the end of every run."""
    r = rig(load(bundled_path("04_rosenbrock_race")), grid=False)
    space = r.dash.space
    assert r.dash.tabs.currentWidget() is r.dash.loss and not space.isVisible()
    assert space.landscape is None
    r.dash.tabs.setCurrentWidget(space)
    qtbot.waitUntil(lambda: space.landscape is not None, timeout=10_000)
    ls = space.landscape
    fresh = Session(r.doc.scenario).landscape("x", "y", n=len(ls.xs), x_range=(ls.xs[0], ls.xs[-1]),
                                              y_range=(ls.ys[0], ls.ys[-1]))
    np.testing.assert_array_equal(ls.z, fresh.z)
