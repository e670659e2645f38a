"""A trace keeps a large array as a summary: what the app shows of it, in a fixed few hundred KB.

A forward value or a gradient of a 100,000-point, 256-wide layer is 25.6 million elements (100 MB
at float32); one traced iteration of such a model held about 1.2 GB. The app never shows such an
array whole: a graph box shows its heat map and mean, the inspector its min/mean/max, heat map and
first elements, a formula one element with its row. :class:`ArraySummary` keeps exactly that,
computed from every element when it is recorded:

- ``shape``, ``dtype``, ``size``, ``ndim`` (``np.shape``/``np.size``/``np.ndim`` read them);
- ``mean`` over every element (nan if any is nan, as ``numpy.mean``), and over the finite ones
  ``finite_mean``, ``min``, ``max``, with the counts of nan and ±inf;
- ``head``: the first rows whole (``HEAD_ELEMENTS`` elements or one row), so a formula about an
  element in them has its numbers and its row (``summary[i]``, ``summary[i, j]``);
- ``grid``: ``GRID_SIDE`` evenly spaced rows and columns of the array folded to 2-D (the heat map draws
  exactly these: :func:`grid_indices` is the sampling the app's heat maps use for any array).

It is not an array: ``np.asarray(summary)`` raises TypeError, so that no code silently averages its
head as if it were the whole. Code that reads trace values handles it (``isinstance``) or asks
:func:`is_summary`.
"""
from __future__ import annotations

import math

import numpy as np

__all__ = ["ArraySummary", "SUMMARY_FROM", "HEAD_ELEMENTS", "GRID_SIDE", "keep", "keep_copy", "grid_indices",
           "fold_2d", "is_summary"]

SUMMARY_FROM = 1 << 20       # elements: a trace keeps an array larger than this as an ArraySummary
HEAD_ELEMENTS = 1 << 16      # elements of its first rows a summary keeps whole
GRID_SIDE = 256              # rows and columns of the evenly spaced sample (the heat map's)
_CHUNK = 1 << 20             # elements converted to float64 at a time while summarising


def fold_2d(a):
    """``a`` as the heat map draws it: a scalar as 1x1, a vector as one row, more dimensions folded
    into rows of the last one."""
    if a.ndim == 0:
        return a.reshape(1, 1)
    if a.ndim == 1:
        return a.reshape(1, -1)
    if a.ndim > 2:
        return a.reshape(-1, a.shape[-1])
    return a


def grid_indices(n: int, side: int = GRID_SIDE) -> np.ndarray:
    """At most ``side`` evenly spaced indices of ``range(n)``, first and last included."""
    if n <= side:
        return np.arange(n, dtype=np.intp)
    return distinct_sorted(np.linspace(0, n - 1, side).round().astype(np.intp))


def distinct_sorted(a: np.ndarray) -> np.ndarray:
    """``np.unique(a)`` of an already sorted 1-d array, without ``np.unique``: its first call imports
    ``numpy.ma`` (13 ms, and 40-80 ms on the UI thread while a run computes: the first heat map
    shown at the end of limit_variants' run)."""
    if a.size < 2:
        return a.copy()
    return a[np.concatenate(([True], a[1:] != a[:-1]))]


def is_summary(a) -> bool:
    return type(a) is ArraySummary


class ArraySummary:
    """What a trace keeps of a large array (see the module's docstring)."""

    __slots__ = ("shape", "dtype", "mean", "finite_mean", "min", "max", "nan", "inf", "head", "grid")

    def __init__(self, shape, dtype, mean, finite_mean, lo, hi, nan, inf, head, grid):
        self.shape, self.dtype = tuple(shape), dtype
        self.mean, self.finite_mean, self.min, self.max = mean, finite_mean, lo, hi
        self.nan, self.inf = nan, inf
        self.head, self.grid = head, grid

    @classmethod
    def of(cls, a: np.ndarray) -> ArraySummary:
        """Summarise ``a`` (its statistics over every element, in float64, a million at a time)."""
        a = np.asarray(a)
        flat = a.reshape(-1)
        total = finite_total = 0.0
        count = nan = inf = 0
        lo, hi = math.inf, -math.inf
        numeric = a.dtype.kind in "fiub" or a.dtype.kind == "V"       # "V": bfloat16
        if a.dtype.kind in "fiu" and flat.size:
            # the common case first, three passes and no copy: min and max are finite only when
            # every element is (a nan or an inf would show in one of them)
            with np.errstate(all="ignore"):
                first, last = flat.min(), flat.max()
                if np.isfinite(first) and np.isfinite(last):
                    mean = float(np.add.reduce(flat, dtype=np.float64)) / flat.size
                    return cls._made(a, mean, mean, float(first), float(last), 0, 0)
        if numeric:
            with np.errstate(all="ignore"):
                for start in range(0, flat.size, _CHUNK):
                    x = flat[start:start + _CHUNK].astype(np.float64)
                    total += float(x.sum())
                    finite = np.isfinite(x)
                    n_finite = int(finite.sum())
                    n_nan = int(np.isnan(x).sum()) if n_finite < x.size else 0
                    nan += n_nan
                    inf += x.size - n_finite - n_nan
                    if n_finite:
                        f = x if n_finite == x.size else x[finite]
                        finite_total += float(f.sum())
                        count += n_finite
                        lo, hi = min(lo, float(f.min())), max(hi, float(f.max()))
        size = flat.size
        mean = total / size if numeric and size else math.nan
        finite_mean = finite_total / count if count else None
        return cls._made(a, mean, finite_mean, lo if count else None, hi if count else None, nan, inf)

    @classmethod
    def _made(cls, a, mean, finite_mean, lo, hi, nan, inf) -> ArraySummary:
        rows = max(1, HEAD_ELEMENTS // max(1, math.prod(a.shape[1:]))) if a.ndim else 1
        head = np.array(a[:rows], copy=True) if a.ndim else a.copy()
        folded = fold_2d(a)
        grid = np.ascontiguousarray(folded[np.ix_(grid_indices(folded.shape[0]), grid_indices(folded.shape[1]))])
        return cls(a.shape, a.dtype, mean, finite_mean, lo, hi, nan, inf, head, grid)

    @classmethod
    def filled(cls, shape, dtype, value: float) -> ArraySummary:
        """The summary of an array of ``shape`` whose every element is ``value`` (``zero_grad()``'s
        zeros), made without the array."""
        shape = tuple(shape)
        rows = max(1, HEAD_ELEMENTS // max(1, math.prod(shape[1:]))) if shape else 1
        head = np.full((min(rows, shape[0]),) + shape[1:] if shape else (), value, dtype=dtype)
        folded = fold_2d(np.empty(shape, dtype=np.bool_))          # only its shape is read
        grid = np.full((len(grid_indices(folded.shape[0])), len(grid_indices(folded.shape[1]))), value, dtype=dtype)
        finite = bool(np.isfinite(value))
        return cls(shape, np.dtype(dtype), float(value), float(value) if finite else None,
                   float(value) if finite else None, float(value) if finite else None,
                   0 if not np.isnan(value) else math.prod(shape), 0 if finite or np.isnan(value) else math.prod(shape),
                   head, grid)

    # -- what np.shape / np.size / np.ndim and the views read ------------------------------------------
    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        """The bytes the summary itself holds."""
        return self.head.nbytes + self.grid.nbytes

    @property
    def head_rows(self) -> int:
        return self.head.shape[0] if self.head.ndim else 1

    def __array__(self, dtype=None, copy=None):
        raise TypeError(f"an ArraySummary of shape {self.shape} keeps a summary, not the elements "
                        "(use its head, grid or statistics)")

    def __len__(self) -> int:
        return self.shape[0]

    def kept(self, idx: tuple) -> bool:
        """Whether element ``idx`` (an index tuple) is in the rows kept whole."""
        return len(idx) == self.ndim and (not idx or 0 <= idx[0] < self.head_rows)

    def __getitem__(self, key):
        """An element or a row of the first rows (``summary[i, j]``, ``summary[i]``); IndexError beyond
        them."""
        first = key[0] if isinstance(key, tuple) and key else key
        if isinstance(first, (int, np.integer)) and not 0 <= int(first) < self.head_rows:
            raise IndexError(f"row {int(first)} of an array of shape {self.shape} is not kept "
                             f"(its first {self.head_rows} rows are)")
        return self.head[key]

    def __add__(self, other):
        """The sum of two summaries of same-shaped arrays (an input used twice by one op): exact on
        the rows kept and the grid, and its mean; min and max are not known."""
        if not isinstance(other, ArraySummary) or other.shape != self.shape:
            return NotImplemented
        with np.errstate(all="ignore"):
            return ArraySummary(self.shape, np.result_type(self.dtype, other.dtype), self.mean + other.mean, None,
                                None, None, None, None, self.head + other.head, self.grid + other.grid)

    def __repr__(self) -> str:
        return f"ArraySummary(shape={self.shape}, dtype={self.dtype}, mean={self.mean:.4g})"


def keep(a):
    """What a trace keeps of the array ``a`` the engine made: ``a`` itself up to ``SUMMARY_FROM``
    elements (the engine never changes it afterwards), else its summary. None stays None."""
    if a is None or getattr(a, "size", 0) <= SUMMARY_FROM:
        return a
    return ArraySummary.of(a)


def keep_copy(a):
    """A copy of ``a`` (an array that may change later), or its summary when it is large."""
    if a is None:
        return None
    a = np.asarray(a)
    return a.copy() if a.size <= SUMMARY_FROM else ArraySummary.of(a)
