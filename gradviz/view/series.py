"""What the dashboards plot, derived from a History without Qt: series, ranges and contour bands.

A parameter of any shape becomes lines on a 2-D plot through a :class:`Series` (a scalar's value,
a tensor's L2 norm, or one element named as everywhere else: ``0.weight[1,0]``). The rest is the
arithmetic behind the plots' axes: log or linear y, the range a landscape is computed over, the
contour levels and the filled bands drawn between them.
"""
from __future__ import annotations

import functools
import itertools
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from gradviz.summary import distinct_sorted
from gradviz.training.history import element_name, parse_element

__all__ = ["Series", "SeriesCache", "available_series", "completed", "contour_levels", "default_series",
           "element_values", "fill_non_finite", "filled_bands", "finite", "grad_label", "nice_range", "param_steps",
           "reduction", "row_steps", "rows_between", "spans_decades", "state_keys_of_runs", "thinned",
           "trajectory_extent", "upsample"]

MAX_ELEMENTS_LISTED = 64       # tensor elements offered per parameter in the series picker
MAX_DEFAULT_SERIES = 8         # series shown before the user picks
CONTOUR_LEVELS = 14


def completed(history) -> int:
    """Optimizer steps ``history`` holds so far (0 for no history)."""
    return 0 if history is None else int(getattr(history, "steps", 0) or 0)


def param_steps(history) -> np.ndarray:
    """The x of a parameter plot: the step each row of ``history.params`` is the value before
    (``0..steps`` for a full History; every ``stride``-th step and the final one when reduced)."""
    if history is None:
        return np.arange(0)
    if getattr(history, "stride", 1) > 1:
        return history.param_row_steps()
    return np.arange(completed(history) + 1)


def row_steps(history) -> np.ndarray:
    """The x of a gradient or optimizer-state plot: the step each row of ``history.grads`` and
    ``history.state`` holds (``0..steps-1`` for a full History)."""
    if history is None:
        return np.arange(0)
    if getattr(history, "stride", 1) > 1:
        return history.row_steps()
    return np.arange(completed(history))


def rows_between(steps: np.ndarray, lo: int, hi: int) -> slice:
    """The rows whose step (``steps``, ascending: :func:`param_steps` or :func:`row_steps`) is in
    ``[lo, hi]``."""
    return slice(int(np.searchsorted(steps, lo, "left")), int(np.searchsorted(steps, hi, "right")))


def reduction(history) -> str:
    """One line for a plot of a reduced History ("parameters, gradients and optimizer state every
    4th step: …"), "" when it keeps every step."""
    return "" if history is None else str(getattr(history, "reduction", "") or "")


def finite(y) -> np.ndarray:
    """float64 copy with ±inf (a diverged run) replaced by nan, so ranges and paths stay sane."""
    y = np.asarray(y, dtype=np.float64)
    return np.where(np.isfinite(y), y, np.nan)


# -- series: what "a parameter" means on a 2-D plot ---------------------------------------------
class Series(NamedTuple):
    """One plottable line derived from a per-step array ``(T, *shape)``.

    ``kind``: ``"value"`` (a scalar parameter), ``"norm"`` (L2 norm over the tensor's elements)
    or ``"element"`` (one element, ``index``). A named tuple: a model of 499 Linear(4, 4) lists 10,978
    of them: 11-12 ms to make as frozen dataclasses, 8-9 ms as named tuples.
    """
    label: str
    param: str
    kind: str
    index: tuple = ()

    def of(self, arr: np.ndarray) -> np.ndarray:
        arr = np.asarray(arr)
        t = arr.shape[0]
        if self.kind == "value":
            return arr.reshape(t).astype(np.float64)
        if self.kind == "element":
            return arr[(slice(None),) + self.index].astype(np.float64)
        flat = arr.reshape(t, -1).astype(np.float64)
        return np.sqrt(np.einsum("ij,ij->i", flat, flat))


def available_series(history) -> list[Series]:
    """Every scalar parameter; for each tensor its norm and its first elements."""
    out: list[Series] = []
    if history is None:
        return out
    for name in history.param_names:
        shape = tuple(np.shape(history.params[name])[1:])
        size = int(np.prod(shape)) if shape else 1
        if size == 1:
            out.append(Series(name, name, "value"))
            continue
        out.append(Series(f"‖{name}‖", name, "norm"))
        out.extend(Series(name + suffix, name, "element", index) for index, suffix in _listed_elements(shape))
    return out


@functools.lru_cache(maxsize=256)
def _listed_elements(shape: tuple) -> tuple:
    """The first ``MAX_ELEMENTS_LISTED`` indices of a tensor of ``shape`` in C order, each with its
    ``[i,j]`` (as ``element_name`` spells it). Made once per shape: with 998 tensors of 4 x 4 and 4
    (499 Linear(4, 4)), listing the series one by one (``np.unravel_index`` per element) took 29-40 ms
    of the turn in which a script's History first showed; now 8-9 ms."""
    indices = itertools.islice(itertools.product(*(range(d) for d in shape)), MAX_ELEMENTS_LISTED)
    return tuple((index, element_name("", index)) for index in indices)


def grad_label(series: Series) -> str:
    """The name of ``series``' gradient as PyTorch spells it: ``w.grad``, ``0.weight.grad[1,0]``,
    ``‖0.weight.grad‖``."""
    if series.kind == "norm":
        return f"‖{series.param}.grad‖"
    if series.kind == "element":
        return element_name(f"{series.param}.grad", series.index)
    return f"{series.param}.grad"


def state_keys_of_runs(histories) -> tuple[list[str], dict[str, list[int]]]:
    """Every optimizer-state buffer any run keeps (in the order the runs first have them), and for
    each the runs (indices of ``histories``) that keep none: SGD without momentum keeps no
    ``exp_avg``, Adam no ``momentum_buffer``. Runs without a History yet are left out of both."""
    keys: list[str] = []
    kept: dict[int, set] = {}
    for i, h in enumerate(histories):
        if h is None or not getattr(h, "params", None):
            continue
        own = h.state_keys()
        kept[i] = set(own)
        keys.extend(k for k in own if k not in keys)
    return keys, {k: [i for i in kept if k not in kept[i]] for k in keys}


def default_series(series: list[Series]) -> list[str]:
    """The labels drawn before the user picks: scalars and norms, the first few of them."""
    picked = [s.label for s in series if s.kind in ("value", "norm")]
    return picked[:MAX_DEFAULT_SERIES]


class SeriesCache:
    """Derived series grow with the History; only the new rows are computed on a live refresh."""

    def __init__(self):
        self._store: dict = {}

    def clear(self) -> None:
        self._store.clear()

    def get(self, key, n: int, compute: Callable[[int, int], np.ndarray]) -> np.ndarray:
        """The first ``n`` values of ``key``; ``compute(a, b)`` gives rows ``a:b`` not yet cached."""
        done, values = self._store.get(key, (0, np.empty(0)))
        if n < done:                       # a new run: start again
            done, values = 0, np.empty(0)
        if n > done:
            values = np.concatenate([values[:done], compute(done, n)])
            self._store[key] = (n, values)
        return values[:n]


def element_values(history, text: str, rows: int) -> np.ndarray:
    """The first ``rows`` values of a scalar parameter or tensor element (``0.weight[1,0]``): rows
    of ``history.params``, at the steps :func:`param_steps` gives."""
    name, index = (text, ()) if text in history.params else parse_element(text)
    values = np.asarray(history.params[name][:rows])
    return values[(slice(None),) + index].astype(np.float64).reshape(len(values))


# -- axes ---------------------------------------------------------------------------------------
def spans_decades(arrays) -> bool:
    """Log y suits values that are all positive and span two decades or more (a falling loss)."""
    arrays = [np.asarray(a, dtype=np.float64) for a in arrays if len(a)]
    if not arrays:
        return False
    y = np.concatenate(arrays)
    y = y[np.isfinite(y)]
    return bool(len(y) and y.min() > 0 and y.max() / y.min() >= 100)


def nice_range(lo: float, hi: float, margin: float = 0.12) -> tuple[float, float]:
    """Pad [lo, hi] and round outwards to a round step, so small changes reuse the landscape."""
    if not np.isfinite(lo) or not np.isfinite(hi):
        return (-1.0, 1.0)
    span = hi - lo
    if span <= 1e-12 * max(1.0, abs(lo), abs(hi)):
        span = max(abs(lo) * 0.5, 1.0)
        lo, hi = lo - span / 2, hi + span / 2
    lo, hi = lo - margin * span, hi + margin * span
    step = 10.0 ** np.floor(np.log10(hi - lo)) / 4
    return float(np.floor(lo / step) * step), float(np.ceil(hi / step) * step)


def trajectory_extent(points: list[np.ndarray]) -> tuple[float, float]:
    """Range of the finite trajectory coordinates, ignoring the far tail of a divergence."""
    values = np.concatenate([p[np.isfinite(p)] for p in points]) if points else np.empty(0)
    if not len(values):
        return (-1.0, 1.0)
    lo, hi = float(values.min()), float(values.max())
    start = float(values[0])
    span0 = max(np.percentile(values, 95) - np.percentile(values, 5), 1e-9)
    if hi - lo > 50 * span0:                      # a run flew off: keep the part worth looking at
        lo, hi = float(np.percentile(values, 2)), float(np.percentile(values, 98))
        lo, hi = min(lo, start), max(hi, start)
    return lo, hi


def thinned(n: int, limit: int) -> np.ndarray:
    """Indices of at most ``limit`` (+1) evenly spaced points of ``n``, the first and last included."""
    if n <= limit:
        return np.arange(n)
    return distinct_sorted(np.r_[np.linspace(0, n - 1, limit).astype(int), n - 1])


# -- contours -----------------------------------------------------------------------------------
def contour_levels(z: np.ndarray, mode: str = "auto") -> tuple[np.ndarray, bool]:
    """Band edges for the filled contours; log-spaced when the loss spans decades (Rosenbrock)."""
    finite_z = z[np.isfinite(z)]
    if not len(finite_z):
        return np.linspace(0, 1, CONTOUR_LEVELS + 1), False
    lo, hi = float(finite_z.min()), float(finite_z.max())
    positive = finite_z[finite_z > 0]
    use_log = mode == "log" or (mode == "auto" and lo >= 0 and len(positive)
                                and hi / max(np.median(positive), 1e-300) > 8)
    if use_log and len(positive):
        floor = max(float(positive.min()), hi * 1e-7)
        return np.geomspace(floor, hi, CONTOUR_LEVELS + 1), True
    if hi <= lo:
        hi = lo + 1.0
    return np.linspace(lo, hi, CONTOUR_LEVELS + 1), False


def upsample(z: np.ndarray, factor: int) -> np.ndarray:
    """Bilinear interpolation of a grid (rows and columns), keeping the corner samples."""
    if factor <= 1:
        return z
    rows, cols = z.shape
    ri = np.linspace(0, rows - 1, (rows - 1) * factor + 1)
    ci = np.linspace(0, cols - 1, (cols - 1) * factor + 1)
    tmp = np.empty((rows, len(ci)))
    for r in range(rows):
        tmp[r] = np.interp(ci, np.arange(cols), z[r])
    out = np.empty((len(ri), len(ci)))
    for c in range(len(ci)):
        out[:, c] = np.interp(ri, np.arange(rows), tmp[:, c])
    return out


def fill_non_finite(z: np.ndarray) -> np.ndarray:
    """``z`` with nan/inf replaced by its largest finite value (0 if it has none): where the loss
    overflowed, the landscape shows its highest band instead of a hole."""
    ok = np.isfinite(z)
    return np.where(ok, z, np.nanmax(z[ok]) if ok.any() else 0)


def filled_bands(z: np.ndarray, levels: np.ndarray, log_levels: bool,
                 factor: int) -> tuple[np.ndarray, np.ndarray]:
    """The filled-contour image and the level scale it is drawn in.

    ``z`` is upsampled ``factor`` times and every sample replaced by the centre of its band between
    two ``levels``, so a colour map shows flat bands; with ``log_levels`` the scale is log10.
    Returns ``(image, scaled_levels)``.
    """
    scaled = np.log10(np.maximum(levels, levels[0])) if log_levels else levels
    fine = upsample(fill_non_finite(z), factor)
    band = np.clip(np.searchsorted(levels, fine, side="right") - 1, 0, len(levels) - 2)
    centres = (scaled[:-1] + scaled[1:]) / 2
    return centres[band], scaled
