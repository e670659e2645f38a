"""gradviz.view.data_fit: the Data view's model evaluation, checked without Qt against the core model
itself (the Sequential / expression the Session builds, with the History's parameters put back)."""
import contextlib

import numpy as np
import pytest

from gradviz import amp
from gradviz._tensor import from_array, no_grad
from gradviz.scenario import bundled_path, load, loads
from gradviz.training.build import build_model, prepare
from gradviz.training.session import Session
from gradviz.view.data_fit import GRID_N, DataFit, contour_segments

BLOBS = """
[scenario]
title = "three blobs"
seed = 3
[model]
layers = [2, 8, 3]
activation = "relu"
[data]
kind = "blobs"
n = 90
noise = 0.6
[loss]
kind = "cross_entropy"
[optimizer]
kind = "adam"
lr = 0.05
[loop]
steps = 60
"""


def core_output(session: Session, k: int, inputs: dict | None = None) -> np.ndarray:
    """What the core model computes at iteration k: a freshly built model (as the Session builds it),
    its parameters set to the History's row k, run on the data (or ``inputs``) as the engine runs it."""
    setup = prepare(session.scenario, session.variant_index)
    model = build_model(setup)
    h = session.history
    row = h.row(k)
    for name, p in zip(model.names, model.params):
        p.data = h.params[name][row].copy()
    feed = {name: from_array(v) for name, v in (inputs or session.data.inputs).items()}
    autocast = amp.autocast(dtype=setup.autocast_dtype) if setup.autocast_dtype else contextlib.nullcontext()
    with no_grad(), autocast:
        return np.asarray(model.forward(feed)._data)


def run(stem_or_text: str, variant: int = 0, **kw) -> Session:
    scenario = loads(stem_or_text) if "\n" in stem_or_text else load(bundled_path(stem_or_text))
    session = Session(scenario, variant, **kw)
    session.run()
    return session


@pytest.fixture(scope="module")
def moons():
    return run("07_mlp_two_moons")


@pytest.fixture(scope="module")
def blobs():
    return run(BLOBS)


def cells_of(fit, grid, X):
    """The grid sample nearest each point (column, row)."""
    col = np.rint((X[:, 0] - grid.xs[0]) / (grid.xs[1] - grid.xs[0])).astype(int)
    row = np.rint((X[:, 1] - grid.ys[0]) / (grid.ys[1] - grid.ys[0])).astype(int)
    return col, row


@pytest.mark.parametrize("when", ["first", "last"])
def test_two_moons_boundary_classifies_the_points_as_the_core_model_does(moons, when):
    fit = DataFit(moons)
    assert fit.kind == "binary" and fit.dims == 2
    k = 0 if when == "first" else moons.history.steps - 1
    logits = core_output(moons, k)[:, 0]
    core_class = (logits > 0).astype(int)
    points = fit.points(k)
    np.testing.assert_array_equal(points.predicted, core_class)          # bit for bit: every point
    np.testing.assert_array_equal(points.correct, core_class == moons.data.target[:, 0])
    # the classifier the grid draws is the same function: evaluated at the points it agrees exactly
    raw = fit.predict(k, fit.x)[:, 0]
    np.testing.assert_array_equal(raw > 0, logits > 0)
    # and the drawn map puts the boundary where the model has it: a point whose surrounding samples
    # all fall on one side lies on that side for the model
    grid = fit.grid(k)
    assert grid.values.shape == (GRID_N, GRID_N) and grid.classes is None
    above = grid.values > 0.5
    col = np.clip(np.searchsorted(grid.xs, fit.x[:, 0]) - 1, 0, GRID_N - 2)
    row = np.clip(np.searchsorted(grid.ys, fit.x[:, 1]) - 1, 0, GRID_N - 2)
    corners = np.stack([above[row, col], above[row, col + 1], above[row + 1, col], above[row + 1, col + 1]])
    settled = corners.all(axis=0) | ~corners.any(axis=0)
    assert settled.mean() > 0.9
    np.testing.assert_array_equal(corners[0][settled], core_class[settled].astype(bool))
    if when == "last":
        assert points.accuracy > 0.95
    # the grid's probabilities are the model's at the grid samples (numpy's float32 tanh for the
    # drawing: a few float32 ulps from the core's correctly rounded one)
    X = np.stack(np.meshgrid(grid.xs, grid.ys), axis=-1).reshape(-1, 2).astype(np.float32)
    expected = 1 / (1 + np.exp(-core_output(moons, k, {"x": X})[:, 0].astype(np.float64)))
    np.testing.assert_allclose(grid.values.ravel(), expected, rtol=2e-5, atol=1e-6)


def test_boundary_segments_lie_on_probability_one_half(moons):
    fit = DataFit(moons)
    k = moons.history.steps - 1
    segments = fit.boundary(k)
    assert len(segments) > 20
    ends = segments.reshape(-1, 2)
    p = 1 / (1 + np.exp(-fit.predict(k, ends)[:, 0]))
    # linear interpolation between samples 1/99 of the range apart: close to 0.5, not exact
    assert np.abs(p - 0.5).max() < 0.1 and np.median(np.abs(p - 0.5)) < 0.02


def test_regression_curve_and_points_are_the_model_predictions():
    session = run("03_gradient_accumulation")
    fit = DataFit(session)
    assert fit.kind == "regression" and fit.dims == 1
    for k in (0, 5, session.history.steps - 1):
        curve = fit.curve(k)
        assert curve.x.shape == curve.y.shape == (200,)
        assert curve.x[0] < fit.x.min() and curve.x[-1] > fit.x.max()
        w, b = (float(session.history.params[n][k]) for n in ("w", "b"))
        expected = core_output(session, k, {"x": curve.x.astype(np.float32)})
        np.testing.assert_array_equal(curve.y, expected.astype(np.float64))
        np.testing.assert_allclose(curve.y, w * curve.x + b, rtol=1e-5, atol=1e-6)
        points = fit.points(k)
        np.testing.assert_array_equal(points.output, core_output(session, k).astype(np.float64))
        assert points.predicted is None and points.correct is None and points.accuracy is None
    np.testing.assert_array_equal(fit.y, session.data.target.astype(np.float64))


def test_float16_run_is_evaluated_under_autocast_as_trained():
    session = run("12_clipping_scaled_gradients")
    fit = DataFit(session)
    for k in (0, session.history.steps - 1):
        logits = core_output(session, k)
        assert logits.dtype == np.float16
        np.testing.assert_array_equal(fit.points(k).predicted, (logits[:, 0] > 0).astype(int))


def test_class_regions_are_the_argmax_of_the_model(blobs):
    fit = DataFit(blobs)
    assert fit.kind == "multiclass" and fit.classes == 3
    for k in (0, blobs.history.steps - 1):
        core = core_output(blobs, k)
        points = fit.points(k)
        np.testing.assert_array_equal(points.predicted, np.argmax(core, axis=1))
        np.testing.assert_array_equal(points.correct, np.argmax(core, axis=1) == blobs.data.target)
        grid = fit.grid(k, 60)
        assert grid.classes.shape == grid.values.shape == (60, 60)
        assert ((grid.values >= 1 / 3 - 1e-9) & (grid.values <= 1)).all()     # p of the winning class
        X = np.stack(np.meshgrid(grid.xs, grid.ys), axis=-1).reshape(-1, 2).astype(np.float32)
        np.testing.assert_array_equal(grid.classes.ravel(), np.argmax(core_output(blobs, k, {"x": X}), axis=1))
    assert set(np.unique(fit.grid(blobs.history.steps - 1).classes)) == {0, 1, 2}
    assert fit.points(blobs.history.steps - 1).accuracy > 0.9


def test_unit_maps_are_each_hidden_unit_over_the_plane(moons):
    fit = DataFit(moons)
    assert [c.module for c in fit.layers] == ["0", "1", "2", "3", "4"]
    assert fit.layers[1].title == "1 · Tanh: 16 units"
    assert fit.layers[0].title == "0 · Linear: 16 units (before tanh)"
    assert fit.layers[-1].title == "4 · Linear: 1 unit (the output logit)"
    k = 7
    maps = fit.unit_maps(k, "1")
    assert maps.values.shape == (16, 50, 50) and maps.levels == (-1.0, 1.0)
    # unit j of Tanh 1 = tanh(0.weight[j] . x + 0.bias[j]) at each sample
    p = fit.params_at(k)
    X, Y = np.meshgrid(maps.xs, maps.ys)
    for j in (0, 5, 15):
        expected = np.tanh(p["0.weight"][j, 0] * X + p["0.weight"][j, 1] * Y + p["0.bias"][j])
        np.testing.assert_allclose(maps.values[j], expected, atol=1e-5)
    pre = fit.unit_maps(k, "0")
    np.testing.assert_allclose(np.tanh(pre.values), maps.values, atol=1e-6)
    assert pre.levels[0] == -pre.levels[1] and pre.levels[1] >= np.abs(pre.values).max() - 1e-9
    out = fit.unit_maps(k, "4")
    logit = np.log(fit.grid(k).values / (1 - fit.grid(k).values))
    np.testing.assert_allclose(out.values[0], logit[::2, ::2], rtol=1e-3, atol=1e-3)
    assert fit.hidden_layer("3").kind == "Tanh" and fit.hidden_layer("loss") is None


def test_scenarios_without_a_drawable_fit_say_why():
    objective = DataFit(run("04_rosenbrock_race"))
    assert objective.kind == "" and "objective" in objective.why_not and "Parameter space" in objective.why_not
    surface = DataFit(run("08_tanh_neuron"))
    assert surface.kind == "surface" and surface.grid(0).values.shape == (GRID_N, GRID_N)
    wide = loads(BLOBS.replace("layers = [2, 8, 3]", "layers = [3, 8, 3]")
                 .replace('kind = "blobs"', 'kind = "inline"')
                 .replace("n = 90\nnoise = 0.6", "x = [[0.0, 1.0, 2.0], [1.0, 0.0, 2.0]]\ny = [0, 2]"))
    fit = DataFit(Session(wide))
    assert fit.kind == "" and "3 inputs" in fit.why_not


def test_a_reduced_history_shows_the_nearest_kept_step():
    session = run("07_mlp_two_moons", history_budget=60_000)
    h = session.history
    assert h.stride > 1
    fit = DataFit(session)
    k = h.stride + 1
    assert fit.shown_step(k) == h.stride
    np.testing.assert_array_equal(fit.params_at(k)["0.weight"], h.params["0.weight"][1])
    assert fit.shown_step(0) == 0


def test_contour_segments_of_simple_fields():
    xs = np.linspace(0, 1, 11)
    ys = np.linspace(0, 2, 21)
    X, Y = np.meshgrid(xs, ys)
    plane = contour_segments(X, 0.55, xs, ys)
    assert len(plane) == 20
    np.testing.assert_allclose(plane[..., 0], 0.55)
    circle = contour_segments(np.hypot(X - 0.5, Y - 1), 0.3, xs, ys)
    r = np.hypot(circle[..., 0] - 0.5, circle[..., 1] - 1)
    assert len(circle) > 10 and np.abs(r - 0.3).max() < 0.03
    assert contour_segments(np.zeros((5, 5)), 1.0, xs[:5], ys[:5]).shape == (0, 2, 2)
    saddle = contour_segments(np.array([[1.0, 0.0], [0.0, 1.0]]), 0.5, np.array([0.0, 1.0]), np.array([0.0, 1.0]))
    assert saddle.shape == (2, 2, 2)


def test_a_script_run_says_its_data_is_in_its_code():
    from types import SimpleNamespace

    from gradviz.scenario.schema import Scenario
    run_of_script = SimpleNamespace(scenario=Scenario(title="a script", script="import torch\n"), data=None,
                                    variant_index=0, history=None)
    fit = DataFit(run_of_script)
    assert fit.kind == "" and "script" in fit.why_not and fit.why_not_heading


def test_one_input_two_classes_draw_the_probability_curve():
    session = run("""
[scenario]
title = "logistic regression"
seed = 1
[model]
layers = [1, 1]
[data]
x = [-2.0, -1.5, -1.0, -0.6, -0.2, 0.1, 0.3, 0.8, 1.2, 1.9]
y = [0, 0, 0, 1, 0, 1, 0, 1, 1, 1]
[loss]
kind = "bce_with_logits"
[optimizer]
kind = "sgd"
lr = 0.5
[loop]
steps = 50
""")
    fit = DataFit(session)
    assert fit.kind == "binary" and fit.dims == 1 and fit.layers == []
    k = 49
    curve = fit.curve(k)
    logits = core_output(session, k, {"x": curve.x[:, None].astype(np.float32)})[:, 0]
    np.testing.assert_allclose(curve.y, 1 / (1 + np.exp(-logits.astype(np.float64))), rtol=1e-12)
    points = fit.points(k)
    np.testing.assert_array_equal(points.predicted, (core_output(session, k)[:, 0] > 0).astype(int))
    assert points.accuracy == pytest.approx(0.8)
