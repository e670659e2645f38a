"""Seeded toy data sets: shapes, labels, determinism and validation."""
import numpy as np
import pytest

from gradviz.scenario.datasets import DATASET_DESCRIPTIONS, DATASETS, MAX_POINTS, make_dataset

# kind, options, y shape (for n points), y dtype, allowed label values (None: regression)
CASES = [
    ("linear", {}, lambda n: (n, 1), np.float64, None),
    ("xor", {}, lambda n: (n, 1), np.float64, {0.0, 1.0}),
    ("moons", {}, lambda n: (n, 1), np.float64, {0.0, 1.0}),
    ("circles", {"factor": 0.3}, lambda n: (n, 1), np.float64, {0.0, 1.0}),
    ("spirals", {"turns": 2}, lambda n: (n, 1), np.float64, {0.0, 1.0}),
    ("blobs", {}, lambda n: (n,), np.int64, {0, 1, 2}),
    ("blobs", {"centers": 5}, lambda n: (n,), np.int64, {0, 1, 2, 3, 4}),
]


def test_every_kind_is_tested_and_described():
    assert {case[0] for case in CASES} == set(DATASETS) == set(DATASET_DESCRIPTIONS)
    assert all(text and "\n" not in text for text in DATASET_DESCRIPTIONS.values())


@pytest.mark.parametrize("kind, options, y_shape, y_dtype, labels", CASES)
@pytest.mark.parametrize("n", [1, 2, 7, 200])
def test_shapes_dtypes_and_labels(kind, options, y_shape, y_dtype, labels, n):
    X, y = make_dataset(kind, n, 0.1, seed=0, **options)
    assert X.shape == (n, 1 if kind == "linear" else 2) and X.dtype == np.float64
    assert y.shape == y_shape(n) and y.dtype == y_dtype
    assert np.all(np.isfinite(X)) and np.all(np.isfinite(y))
    if labels is not None:
        assert set(np.unique(y).tolist()) <= labels
        if n >= 200:   # balanced classes, and shuffled so they interleave
            counts = np.unique(y, return_counts=True)[1]
            assert set(np.unique(y).tolist()) == labels and counts.max() - counts.min() <= 1
            assert 0 < np.mean(y.ravel()[: n // 2] == y.ravel()[0]) < 1


@pytest.mark.parametrize("kind", DATASETS)
def test_same_seed_same_arrays_different_seed_different(kind):
    first, again, other = (make_dataset(kind, 50, 0.2, seed) for seed in (3, 3, 4))
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(first[0], other[0])


def test_linear_follows_its_line():
    X, y = make_dataset("linear", 500, 0.0, 1, slope=-3.0, intercept=0.5, x_min=2, x_max=4)
    np.testing.assert_allclose(y, -3.0 * X + 0.5)
    assert X.min() >= 2 and X.max() <= 4
    _, noisy = make_dataset("linear", 5000, 0.5, 1)
    X, _ = make_dataset("linear", 5000, 0.0, 1)
    assert np.std(noisy - (2.0 * X + 1.0)) == pytest.approx(0.5, rel=0.05)


@pytest.mark.parametrize("kind, check", [
    ("xor", lambda X, y: np.all((X[:, 0] * X[:, 1] < 0) == (y[:, 0] == 1))),
    ("circles", lambda X, y: np.allclose(np.hypot(*X.T), np.where(y[:, 0] == 1, 0.5, 1.0))),
    ("moons", lambda X, y: np.allclose(np.hypot(X[:, 0] - y[:, 0], X[:, 1] - 0.5 * y[:, 0]), 1.0)),
    ("blobs", lambda X, y: np.allclose(X, 2 * np.stack([np.cos(2 * np.pi * y / 3),
                                                         np.sin(2 * np.pi * y / 3)], axis=1))),
])
def test_noise_free_geometry(kind, check):
    X, y = make_dataset(kind, 100, 0.0, 0)
    assert check(X, y)


@pytest.mark.parametrize("args, options, message", [
    (("mnist", 10, 0.1, 0), {}, "unknown data set 'mnist'; expected one of: linear, xor, moons"),
    (("moons", 0, 0.1, 0), {}, "n must be an integer from 1 to 100000"),
    (("moons", MAX_POINTS + 1, 0.1, 0), {}, "n must be"),
    (("moons", 2.5, 0.1, 0), {}, "n must be"),
    (("moons", True, 0.1, 0), {}, "n must be"),
    (("moons", 10, -0.1, 0), {}, "noise must be a finite number >= 0"),
    (("moons", 10, float("nan"), 0), {}, "noise must be"),
    (("moons", 10, float("inf"), 0), {}, "noise must be"),
    (("moons", 10, "0.1", 0), {}, "noise must be"),
    (("moons", 10, 0.1, -1), {}, "seed must be a non-negative integer"),
    (("moons", 10, 0.1, None), {}, "seed must be"),
    (("moons", 10, 0.1, 0), {"factor": 0.5}, "moons: unknown option.s. factor; allowed: .none."),
    (("linear", 10, 0.1, 0), {"slop": 1, "bias": 2},
     "unknown option.s. bias, slop; allowed: slope, intercept"),
    (("linear", 10, 0.1, 0), {"x_min": 1, "x_max": 1}, "x_min .1. must be less than x_max"),
    (("linear", 10, 0.1, 0), {"slope": float("inf")}, "slope must be a finite number"),
    (("circles", 10, 0.1, 0), {"factor": 1.0}, r"factor must be in \(0, 1\)"),
    (("spirals", 10, 0.1, 0), {"turns": 0}, "turns must be positive"),
    (("blobs", 10, 0.1, 0), {"centers": 0}, "centers must be a positive integer"),
    (("blobs", 10, 0.1, 0), {"centers": 2.0}, "centers must be"),
])
def test_validation(args, options, message):
    with pytest.raises(ValueError, match=message):
        make_dataset(*args, **options)


def test_max_points_is_allowed():
    X, y = make_dataset("blobs", MAX_POINTS, 0.1, 0, centers=4)
    assert X.shape == (MAX_POINTS, 2) and np.bincount(y).tolist() == [MAX_POINTS // 4] * 4
