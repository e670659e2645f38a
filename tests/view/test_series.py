"""gradviz.view.series: what the dashboards plot, checked without Qt against plain numpy on real
Histories (a tensor model and the scalar Rosenbrock race)."""
import numpy as np
import pytest

from gradviz.training.history import element_names, parse_element
from gradviz.view.series import (
    CONTOUR_LEVELS,
    MAX_DEFAULT_SERIES,
    MAX_ELEMENTS_LISTED,
    SeriesCache,
    available_series,
    completed,
    contour_levels,
    default_series,
    element_values,
    fill_non_finite,
    filled_bands,
    finite,
    nice_range,
    spans_decades,
    thinned,
    trajectory_extent,
    upsample,
)
from tests.core.test_history_derived import run


@pytest.fixture(scope="module")
def mlp():
    return run("07_mlp_two_moons", 6)


@pytest.fixture(scope="module")
def race():
    return run("04_rosenbrock_race", 30)


# -- series ---------------------------------------------------------------------------------------
def test_every_scalar_and_tensor_is_offered_with_the_one_element_spelling(mlp):
    series = available_series(mlp)
    for name in mlp.param_names:
        shape = mlp.params[name].shape[1:]
        mine = [s for s in series if s.param == name]
        if int(np.prod(shape)) == 1:
            assert [(s.label, s.kind) for s in mine] == [(name, "value")]
            continue
        assert mine[0].kind == "norm" and mine[0].label == f"‖{name}‖"
        elements = mine[1:]
        assert [s.label for s in elements] == element_names(name, shape)[:MAX_ELEMENTS_LISTED]
        for s in elements:
            assert parse_element(s.label) == (name, s.index)


def test_a_series_is_the_value_norm_or_element_of_the_history(mlp):
    for s in available_series(mlp):
        arr = mlp.params[s.param]
        flat = arr.astype(np.float64).reshape(len(arr), -1)
        expected = {"value": flat[:, 0], "norm": np.linalg.norm(flat, axis=1),
                    "element": arr[(slice(None),) + s.index].astype(np.float64)}[s.kind]
        np.testing.assert_allclose(s.of(arr), expected, rtol=1e-12)
        if s.kind != "norm":                       # a norm is not an element to read by name
            np.testing.assert_array_equal(element_values(mlp, s.label, len(arr)), expected)


def test_the_default_series_are_the_first_scalars_and_norms(mlp, race):
    for h in (mlp, race):
        series = available_series(h)
        chosen = default_series(series)
        assert chosen == [s.label for s in series if s.kind in ("value", "norm")][:MAX_DEFAULT_SERIES]
    assert default_series(available_series(race)) == ["x", "y"]
    assert available_series(None) == [] and completed(None) == 0 and completed(race) == race.steps


def test_element_values_reads_scalars_and_elements_by_name(mlp, race):
    np.testing.assert_array_equal(element_values(race, "x", 5), race.params["x"][:5].astype(np.float64))
    np.testing.assert_array_equal(element_values(mlp, "0.weight[3,1]", mlp.steps + 1),
                                  mlp.params["0.weight"][:, 3, 1].astype(np.float64))


def test_the_cache_computes_only_new_rows_and_restarts_on_a_new_run():
    asked = []

    def compute(a, b):
        asked.append((a, b))
        return np.arange(a, b, dtype=np.float64)

    cache = SeriesCache()
    np.testing.assert_array_equal(cache.get("k", 3, compute), [0, 1, 2])
    np.testing.assert_array_equal(cache.get("k", 5, compute), [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(cache.get("k", 5, compute), [0, 1, 2, 3, 4])
    np.testing.assert_array_equal(cache.get("k", 2, compute), [0, 1])        # shorter: a new run
    assert asked == [(0, 3), (3, 5), (0, 2)]
    cache.clear()
    cache.get("k", 2, compute)
    assert asked[-1] == (0, 2)


# -- axes -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("arrays, expected", [
    ([[1.0, 100.0]], True),
    ([[1.0, 99.0]], False),
    ([[2.0, 3.0], [250.0]], True),                  # over several curves together
    ([[-1.0, 1000.0]], False),                      # not all positive
    ([[np.inf, 1.0, 10.0]], False),                 # a divergence does not count
    ([[]], False),
    ([], False),
])
def test_log_y_when_positive_values_span_two_decades(arrays, expected):
    assert spans_decades(arrays) is expected


@pytest.mark.parametrize("lo, hi", [(0.0, 1.0), (-1.5, 2.0), (0.3, 0.3000001), (-1234.0, 17.0), (5.0, 5.0)])
def test_nice_range_covers_the_values_with_a_margin_on_round_numbers(lo, hi):
    a, b = nice_range(lo, hi)
    assert a < lo and b > hi
    step = 10.0 ** np.floor(np.log10(b - a)) / 4
    for edge in (a, b):
        assert abs(edge / step - round(edge / step)) < 1e-6


def test_nice_range_of_nothing_finite_is_the_unit_square():
    assert nice_range(np.nan, 1.0) == (-1.0, 1.0) == nice_range(0.0, np.inf)


def test_trajectory_extent_keeps_the_start_and_drops_a_divergence_tail():
    calm = np.linspace(-1.0, 1.0, 200)
    assert trajectory_extent([calm]) == (-1.0, 1.0)
    flown = np.r_[calm, [1e6, 1e12, np.inf, np.nan]]
    lo, hi = trajectory_extent([flown])
    assert lo <= -1.0 and hi < 1e3                       # the start is in, the far tail is not
    assert trajectory_extent([]) == (-1.0, 1.0) == trajectory_extent([np.array([np.nan])])


@pytest.mark.parametrize("n, limit", [(10, 20), (2000, 2000), (2001, 2000), (100_000, 2000)])
def test_thinned_keeps_first_and_last_evenly(n, limit):
    idx = thinned(n, limit)
    assert idx[0] == 0 and idx[-1] == n - 1 and len(idx) <= limit + 1
    assert np.all(np.diff(idx) > 0)
    if n <= limit:
        np.testing.assert_array_equal(idx, np.arange(n))


def test_finite_turns_infinities_into_gaps():
    np.testing.assert_array_equal(finite([1, np.inf, -np.inf, np.nan, 2]), [1, np.nan, np.nan, np.nan, 2])


# -- contours -------------------------------------------------------------------------------------
def rosenbrock_grid(n=40):
    xs, ys = np.linspace(-2, 2, n), np.linspace(-1, 3, n)
    x, y = np.meshgrid(xs, ys)
    return (1 - x) ** 2 + 100 * (y - x ** 2) ** 2


def test_a_loss_spanning_decades_gets_log_levels():
    z = rosenbrock_grid()
    levels, log = contour_levels(z)
    assert log and len(levels) == CONTOUR_LEVELS + 1
    ratios = levels[1:] / levels[:-1]
    np.testing.assert_allclose(ratios, ratios[0])
    assert levels[-1] == pytest.approx(z.max())
    linear, log = contour_levels(z, "linear")
    assert not log
    np.testing.assert_allclose(linear, np.linspace(z.min(), z.max(), CONTOUR_LEVELS + 1))


def test_a_flat_or_empty_landscape_still_has_levels():
    levels, log = contour_levels(np.full((3, 3), 2.0))
    assert not log and levels[0] == 2.0 and levels[-1] == 3.0
    levels, log = contour_levels(np.full((3, 3), np.nan))
    np.testing.assert_array_equal(levels, np.linspace(0, 1, CONTOUR_LEVELS + 1))


def test_upsampling_is_bilinear_and_keeps_the_samples():
    r, c = np.mgrid[0:5, 0:7].astype(np.float64)
    z = 1.0 + 2.0 * r - 0.5 * c + 0.25 * r * c            # bilinear: interpolation reproduces it
    fine = upsample(z, 4)
    assert fine.shape == (17, 25)
    np.testing.assert_array_equal(fine[::4, ::4], z)
    fr, fc = np.mgrid[0:17, 0:25] / 4.0
    np.testing.assert_allclose(fine, 1.0 + 2.0 * fr - 0.5 * fc + 0.25 * fr * fc)
    assert upsample(z, 1) is z


def test_non_finite_losses_become_the_highest_value():
    z = np.array([[1.0, np.inf], [np.nan, 3.0]])
    np.testing.assert_array_equal(fill_non_finite(z), [[1.0, 3.0], [3.0, 3.0]])
    np.testing.assert_array_equal(fill_non_finite(np.full((2, 2), np.nan)), np.zeros((2, 2)))


@pytest.mark.parametrize("mode", ["log", "linear"])
def test_filled_bands_put_every_sample_at_the_centre_of_its_band(mode):
    z = rosenbrock_grid(25)
    z[0, 0] = np.inf
    levels, log = contour_levels(z, mode)
    image, scaled = filled_bands(z, levels, log, 4)
    assert image.shape == ((25 - 1) * 4 + 1,) * 2
    expected_scale = np.log10(levels) if log else levels
    np.testing.assert_allclose(scaled, expected_scale)
    zf = np.where(np.isfinite(z), z, np.nanmax(z[np.isfinite(z)]))
    band = np.clip(np.searchsorted(levels, zf, side="right") - 1, 0, len(levels) - 2)
    np.testing.assert_allclose(image[::4, ::4], ((scaled[:-1] + scaled[1:]) / 2)[band])
