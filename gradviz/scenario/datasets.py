"""Seeded toy data sets for scenarios: a line to fit and five 2-D classification problems.

``make_dataset(kind, n, noise, seed, **options) -> (X, y)``. All randomness comes from one
``np.random.default_rng(seed)``, so the same arguments give identical arrays. ``noise`` is the
standard deviation of Gaussian noise added to y (``linear``) or to each coordinate (the rest).

Labels: ``linear`` gives float64 targets of shape (n, 1); two-class kinds give float64 0/1 of
shape (n, 1) (for ``BCEWithLogitsLoss``); ``blobs`` gives int64 class indices of shape (n,)
(for ``CrossEntropyLoss``). Points are shuffled so the classes are interleaved.
"""
from __future__ import annotations

import inspect
import math
import numbers

import numpy as np

MAX_POINTS = 100_000

DATASET_DESCRIPTIONS = {
    "linear": "Points on a noisy line y = slope * x + intercept (regression).",
    "xor": "Four Gaussian clusters in the corners; opposite corners share a class.",
    "moons": "Two interleaving half circles.",
    "circles": "A small circle inside a larger one.",
    "spirals": "Two spirals winding around each other.",
    "blobs": "Gaussian blobs arranged on a circle, one class per blob.",
}
DATASETS = tuple(DATASET_DESCRIPTIONS)


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise ValueError(message)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _two_classes(n: int) -> np.ndarray:
    """n // 2 zeros then the rest ones, as a float64 column."""
    return (np.arange(n) >= n // 2).astype(np.float64).reshape(n, 1)


def _linear(rng, n, noise, *, slope=2.0, intercept=1.0, x_min=-1.0, x_max=1.0):
    """x uniform in [x_min, x_max]; y = slope * x + intercept + noise * N(0, 1)."""
    for name, value in dict(slope=slope, intercept=intercept, x_min=x_min, x_max=x_max).items():
        _require(_is_real(value), f"linear: {name} must be a finite number, got {value!r}")
    _require(x_min < x_max, f"linear: x_min ({x_min}) must be less than x_max ({x_max})")
    x = rng.uniform(x_min, x_max, size=(n, 1))
    return x, slope * x + intercept + noise * rng.standard_normal((n, 1))


def _xor(rng, n, noise):
    """Gaussian clusters at (+-1, +-1); label 1 where the corner's coordinates differ in sign."""
    corners = np.array([[1.0, 1.0], [-1.0, -1.0], [-1.0, 1.0], [1.0, -1.0]])
    corner = np.arange(n) % 4
    X = corners[corner] + noise * rng.standard_normal((n, 2))
    return X, (corner >= 2).astype(np.float64).reshape(n, 1)


def _moons(rng, n, noise):
    """sklearn's make_moons: an upper half circle (class 0) and a shifted lower one (class 1)."""
    t_outer, t_inner = np.linspace(0, np.pi, n // 2), np.linspace(0, np.pi, n - n // 2)
    X = np.concatenate([np.stack([np.cos(t_outer), np.sin(t_outer)], axis=1),
                        np.stack([1 - np.cos(t_inner), 0.5 - np.sin(t_inner)], axis=1)])
    return X + noise * rng.standard_normal((n, 2)), _two_classes(n)


def _circles(rng, n, noise, *, factor=0.5):
    """sklearn's make_circles: the unit circle (class 0) around one of radius ``factor`` (class 1)."""
    _require(_is_real(factor) and 0 < factor < 1, f"circles: factor must be in (0, 1), got {factor!r}")
    t_outer = np.linspace(0, 2 * np.pi, n // 2, endpoint=False)
    t_inner = np.linspace(0, 2 * np.pi, n - n // 2, endpoint=False)
    X = np.concatenate([np.stack([np.cos(t_outer), np.sin(t_outer)], axis=1),
                        factor * np.stack([np.cos(t_inner), np.sin(t_inner)], axis=1)])
    return X + noise * rng.standard_normal((n, 2)), _two_classes(n)


def _spirals(rng, n, noise, *, turns=1.5):
    """Two spirals of ``turns`` revolutions, the second rotated by half a turn."""
    _require(_is_real(turns) and turns > 0, f"spirals: turns must be positive, got {turns!r}")
    arms = []
    for count, offset in ((n // 2, 0.0), (n - n // 2, np.pi)):
        radius = np.linspace(0.1, 1.0, count)
        angle = radius * turns * 2 * np.pi + offset
        arms.append(np.stack([radius * np.cos(angle), radius * np.sin(angle)], axis=1))
    return np.concatenate(arms) + noise * rng.standard_normal((n, 2)), _two_classes(n)


def _blobs(rng, n, noise, *, centers=3):
    """``centers`` Gaussian blobs of std ``noise`` evenly spaced on a circle of radius 2."""
    _require(isinstance(centers, numbers.Integral) and not isinstance(centers, bool) and centers >= 1,
             f"blobs: centers must be a positive integer, got {centers!r}")
    label = np.arange(n, dtype=np.int64) % centers
    angle = 2 * np.pi * label / centers
    X = 2.0 * np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return X + noise * rng.standard_normal((n, 2)), label


_GENERATORS = {"linear": _linear, "xor": _xor, "moons": _moons, "circles": _circles,
               "spirals": _spirals, "blobs": _blobs}


def generator_options(kind: str) -> dict:
    """The keyword options of data set ``kind`` with their defaults (``{"factor": 0.5}``)."""
    return {p.name: p.default for p in inspect.signature(_GENERATORS[kind]).parameters.values()
            if p.kind is inspect.Parameter.KEYWORD_ONLY}


def make_dataset(kind: str, n: int, noise: float, seed: int,
                 **options) -> tuple[np.ndarray, np.ndarray]:
    """Generate ``n`` points of data set ``kind`` (one of DATASETS); see the module docstring."""
    _require(kind in _GENERATORS,
             f"unknown data set {kind!r}; expected one of: {', '.join(DATASETS)}")
    _require(isinstance(n, numbers.Integral) and not isinstance(n, bool) and 1 <= n <= MAX_POINTS,
             f"n must be an integer from 1 to {MAX_POINTS}, got {n!r}")
    _require(_is_real(noise) and noise >= 0, f"noise must be a finite number >= 0, got {noise!r}")
    _require(isinstance(seed, numbers.Integral) and not isinstance(seed, bool) and seed >= 0,
             f"seed must be a non-negative integer, got {seed!r}")
    generator = _GENERATORS[kind]
    allowed = list(generator_options(kind))
    unknown = sorted(set(options) - set(allowed))
    _require(not unknown, f"{kind}: unknown option(s) {', '.join(unknown)}; "
                          f"allowed: {', '.join(allowed) or '(none)'}")
    rng = np.random.default_rng(int(seed))
    X, y = generator(rng, int(n), float(noise), **options)
    order = rng.permutation(int(n))
    return np.ascontiguousarray(X[order], dtype=np.float64), y[order]
