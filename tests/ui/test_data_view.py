"""The Data tab on real widgets: the moons and the decision boundary, a regression's curve, neuron
maps, and a scenario without data saying why there is nothing to draw."""
import threading

import numpy as np
from PySide6 import QtCore, QtWidgets

from gradviz.scenario import bundled_path
from tests.ui.conftest import screenshot
from tests.ui.dashboard_rig import type_into


def open_data_tab(qtbot, window):
    """Click the Data tab, as a user does."""
    dash = window.dashboards
    bar = dash.tabs.tabBar()
    index = dash.tabs.indexOf(dash.data)
    assert bar.tabText(index) == "Data"
    qtbot.mouseClick(bar, QtCore.Qt.MouseButton.LeftButton, pos=bar.tabRect(index).center())
    QtWidgets.QApplication.processEvents()
    assert dash.tabs.currentWidget() is dash.data and dash.data.isVisible()
    return dash.data


def go_to(window, k: int):
    window.view_state.set_iteration(k)
    QtWidgets.QApplication.processEvents()


def type_iteration(qtbot, window, k: int):
    """Type the iteration into the toolbar's box, as a user does."""
    type_into(qtbot, window.iteration_box, str(k))
    QtWidgets.QApplication.processEvents()
    assert window.view_state.iteration == k


def pixel_values(view, xy: np.ndarray) -> np.ndarray:
    """The heat map's value under each point, read through the image item's own placement."""
    image = view.heat.image
    out = []
    for x, y in xy:
        p = view.heat.mapFromView(QtCore.QPointF(float(x), float(y)))
        out.append(image[int(p.y()), int(p.x())])          # row-major: [row, column]
    return np.array(out)


def test_two_moons_probability_map_follows_the_iteration(qtbot, make_window):
    window = make_window(bundled_path("07_mlp_two_moons"))
    view = open_data_tab(qtbot, window)
    fit = view.fit
    assert fit is not None and fit.kind == "binary"
    last = window.view_state.steps - 1
    images = {}
    for k in (0, last):
        type_iteration(qtbot, window, k)
        assert view.drawn_iteration == k
        extent, shape = view._view_grid()
        expected = fit.grid(k, extent=extent, shape=shape).values
        np.testing.assert_array_equal(view.heat.image, expected)
        images[k] = view.heat.image.copy()
        points = fit.points(k)
        # the map under each point classifies it as the model does (where the map is not on the fence)
        under = pixel_values(view, fit.x)
        sure = np.abs(points.output - 0.5) > 0.1
        np.testing.assert_array_equal(under[sure] > 0.5, points.predicted[sure] == 1)
        # rings: exactly the misclassified points
        rings = np.array(view.wrong.getData()).T
        np.testing.assert_array_equal(rings, fit.x[~points.correct])
        # the boundary line is drawn
        assert len(view.boundary.getData()[0]) > 20
        assert f"iteration {k}" in view.info.text() and "accuracy" in view.info.text()
        screenshot(window.dashboards, f"data_view_moons_{k}")
    assert not np.array_equal(images[0], images[last])
    assert "misclassified" in view.key.text() and "class 1" in view.key.text()
    # the points wear their labels' colours
    brushes = [b.color().name() for b in view.points.data["brush"]]
    assert len(set(brushes)) == 2


def test_playing_across_iterations_redraws_each_one(qtbot, make_window):
    window = make_window(bundled_path("07_mlp_two_moons"))
    view = open_data_tab(qtbot, window)
    draws = view.draws
    for k in range(10, 15):
        go_to(window, k)
        assert view.drawn_iteration == k
    assert view.draws >= draws + 5


def test_regression_curve_goes_through_the_model_predictions(qtbot, make_window):
    window = make_window(bundled_path("03_gradient_accumulation"))
    view = open_data_tab(qtbot, window)
    fit = view.fit
    assert fit.kind == "regression"
    h = window.document.histories[0]
    for k in (0, 20):
        go_to(window, k)
        x, y = view.model_curve.getData()
        w, b = float(h.params["w"][k]), float(h.params["b"][k])
        np.testing.assert_allclose(y, w * x + b, rtol=1e-5, atol=1e-6)
        assert x.min() < fit.x.min() and x.max() > fit.x.max()
        px, py = view.points.getData()
        np.testing.assert_array_equal(px, fit.x[:, 0])
        np.testing.assert_array_equal(py, fit.y)
        # a residual from every point to the curve
        rx, ry = view.residuals.getData()
        np.testing.assert_allclose(ry[1::2], w * rx[1::2] + b, rtol=1e-5, atol=1e-6)
    assert not view.show_box.isVisible()             # no layers to pick
    screenshot(window.dashboards, "data_view_regression")


def test_hidden_units_are_shown_for_a_chosen_layer_and_a_selected_node(qtbot, make_window):
    window = make_window(bundled_path("07_mlp_two_moons"))
    view = open_data_tab(qtbot, window)
    box = view.show_box
    assert box.isVisible() and box.itemText(0) == "Fit: decision boundary"
    titles = [box.itemText(i) for i in range(box.count())]
    assert "Units of 1 · Tanh: 16 units" in titles
    box.setFocus()
    qtbot.keyClick(box, QtCore.Qt.Key.Key_Down)      # to "Units of 0 · Linear"
    qtbot.keyClick(box, QtCore.Qt.Key.Key_Down)      # to "Units of 1 · Tanh"
    if view.mode != "1":                              # some styles need the popup to commit
        box.activated.emit(box.currentIndex())
    QtWidgets.QApplication.processEvents()
    assert view.mode == "1" and view.stack.currentWidget() is view.units_view
    k = window.view_state.iteration
    maps = view.fit.unit_maps(k, "1")
    assert len(view.unit_boxes) == 16

    def coloured(values):           # the unit's values through the map's colours (levels -1 .. 1)
        return view._unit_lut[np.clip((values + 1) * 127.5, 0, 255).astype(int)]
    for j in (0, 9, 15):
        image = view.unit_boxes[j][1].image
        np.testing.assert_array_equal(image, coloured(maps.values[j]))
        # blue where the unit is high (near +1), orange where it is low
        high, low = maps.values[j] > 0.8, maps.values[j] < -0.8
        blue, red = image[..., 2].astype(int), image[..., 0].astype(int)
        assert (blue[high] > red[high]).all() and (red[low] > blue[low]).all()
    go_to(window, 3)
    np.testing.assert_array_equal(view.unit_boxes[4][1].image, coloured(view.fit.unit_maps(3, "1").values[4]))
    assert [label.toPlainText() for _vb, _image, label in view.unit_boxes[:2]] == ["1[0]", "1[1]"]
    assert "low (-1)" in view.key.text()
    screenshot(window.dashboards, "data_view_units")
    # selecting a node of the second Linear in the graph shows that layer's units
    replay = window.player.replay
    node = next(n for n, m in replay.modules.items() if m == "2")
    window.view_state.select_node(node)
    QtWidgets.QApplication.processEvents()
    assert view.mode == "2" and box.currentData() == "2"
    # and back to the fit
    view.show_layer(None)
    assert view.stack.currentWidget() is view.view


def test_an_objective_scenario_explains_what_the_tab_would_show(qtbot, make_window):
    window = make_window(bundled_path("04_rosenbrock_race"))
    view = open_data_tab(qtbot, window)
    assert view.stack.currentWidget() is view.explanation and view.explanation.isVisible()
    text = view.explanation.text()
    assert "objective" in text and "no data" in text and "Parameter space" in text
    assert not view.show_box.isVisible()
    screenshot(window.dashboards, "data_view_objective")


def test_hovering_a_point_describes_it(qtbot, make_window):
    window = make_window(bundled_path("07_mlp_two_moons"))
    view = open_data_tab(qtbot, window)
    go_to(window, 0)
    fit = view.fit
    points = fit.points(0)
    i = int(np.flatnonzero(~points.correct)[0])
    scene = view.plot.vb.mapViewToScene(QtCore.QPointF(*fit.x[i]))
    qtbot.mouseMove(view.view.viewport(), view.view.mapFromScene(scene))
    QtWidgets.QApplication.processEvents()
    hover = view._hovers[view.plot]
    assert hover.isVisible()
    text = hover.textItem.toPlainText()
    assert f"label {int(fit.y[i])}" in text and "misclassified" in text


def test_the_fit_follows_the_chosen_run(qtbot, make_window):
    """float16 underflow: without loss scaling the weight never moves (a flat line through the data);
    with it the line tilts. Choosing the run in the toolbar switches the Data tab to it."""
    window = make_window(bundled_path("09_fp16_underflow"))
    view = open_data_tab(qtbot, window)
    last = window.view_state.steps - 1
    go_to(window, last)
    slopes = {}
    for variant in (0, 1):
        window.view_state.set_variant(variant)
        QtWidgets.QApplication.processEvents()
        assert view.fit.session is window.document.sessions[variant]
        x, y = view.model_curve.getData()
        np.testing.assert_array_equal(y, view.fit.curve(view.iteration).y)
        slopes[variant] = (y[-1] - y[0]) / (x[-1] - x[0])
    assert slopes[0] == 0 and slopes[1] > 1.0


def test_several_classes_show_class_regions(qtbot, make_window, tmp_path):
    from tests.view.test_data_fit import BLOBS
    path = tmp_path / "blobs.toml"
    path.write_text(BLOBS)
    window = make_window(path)
    view = open_data_tab(qtbot, window)
    fit = view.fit
    assert fit.kind == "multiclass" and view.regions.isVisible() and not view.heat.isVisible()
    go_to(window, window.view_state.steps - 1)
    extent, shape = view._view_grid()
    grid = fit.grid(view.iteration, extent=extent, shape=shape)
    rgba = view.regions.image
    assert rgba.shape == grid.values.shape + (4,)
    # each region wears its class's colour: the class colour nearest to every pixel is the argmax
    from PySide6 import QtGui

    from ui.dashboards.data_view import class_colours
    colours = np.array([[c.red(), c.green(), c.blue()] for c in map(QtGui.QColor, class_colours()[:3])], float)
    bg = QtGui.QColor(view.view.backgroundBrush().color())
    base = np.array([bg.red(), bg.green(), bg.blue()], float)
    direction = rgba[..., :3].astype(float) - base
    towards = np.stack([(direction * (c - base)).sum(-1) / np.linalg.norm(c - base) ** 2 for c in colours], -1)
    nearest = np.argmin(np.stack([np.linalg.norm(direction - t[..., None] * (c - base), axis=-1)
                                  for t, c in zip(np.moveaxis(towards, -1, 0), colours)], -1), axis=-1)
    assert (nearest == grid.classes).mean() > 0.99
    assert "class 2" in view.key.text()
    screenshot(window.dashboards, "data_view_classes")


def test_a_large_data_sets_fit_is_evaluated_in_a_worker_and_drawn_when_ready(qtbot, make_window, monkeypatch):
    """``DataFit.expensive`` (points x widest layer over ``EXPENSIVE``: 100,000 moons through 256
    units): the model is evaluated off the UI thread, the header says so meanwhile, and what is drawn
    then is what the UI thread would have drawn."""
    from gradviz.view import data_fit

    monkeypatch.setattr(data_fit, "EXPENSIVE", 0)          # the bundled MLP counts as large
    window = make_window(bundled_path("07_mlp_two_moons"))
    view = open_data_tab(qtbot, window)
    fit = view.fit
    assert fit.expensive
    qtbot.waitUntil(lambda: view.drawn_iteration == window.view_state.iteration, timeout=30_000)
    last = window.view_state.steps - 1
    gate = threading.Event()                # the worker waits until the header was looked at
    start = view._jobs.start
    monkeypatch.setattr(view._jobs, "start",
                        lambda fn, key: start(lambda progress: (gate.wait(30), fn(progress))[1], key))
    go_to(window, last)
    assert view.drawn_iteration != last and view._jobs.job is not None
    assert "evaluating the model on 200 points at iteration" in view.info.text()
    gate.set()
    qtbot.waitUntil(lambda: view.drawn_iteration == last, timeout=30_000)
    extent, shape = view._view_grid()
    np.testing.assert_array_equal(view.heat.image, fit.grid(last, extent=extent, shape=shape).values)
    rings = np.array(view.wrong.getData()).T
    np.testing.assert_array_equal(rings, fit.x[~fit.points(last).correct])
    assert "accuracy" in view.info.text()
