"""The one number format of everything GradViz shows: graph, caption, inspector, plots' read-outs.

``format_number`` keeps a float looking like a float (``2.0``, ``1.6``, ``1e-05``, never ``2.`` or
``-0.0``) with 4 significant digits; ``format_array`` shows small tensors whole and large ones as
their shape and mean; ``format_value`` is a tensor as the graph's nodes and the inspector show it
whole, so the same value reads the same in both (``4.0``, ``[[1.0 -2.0]\n [3.0 4.0]]``);
``format_stats`` and ``format_head`` summarise a tensor too large to read whole.

Each also takes the :class:`~gradviz.summary.ArraySummary` a trace keeps of a very large array, and
writes the same text as for the array itself (shape and mean, statistics, first elements).
"""
from __future__ import annotations

import numpy as np

from ..summary import ArraySummary

__all__ = ["VALUE_PRECISION", "format_number", "format_array", "format_value", "format_shape", "format_stats",
           "format_head", "brief", "format_exact"]

VALUE_PRECISION = 4          # significant digits of a value shown whole (graph nodes, inspector)
VALUE_WHOLE_MAX = 10_000     # elements: a larger tensor is never written out whole


def format_number(x, precision: int = 4) -> str:
    """A float with ``precision`` significant digits that still reads as a float: 2.0, 1.6, 1e-05."""
    x = x.item() if isinstance(x, np.generic) else x
    if isinstance(x, (bool, np.bool_)):
        return str(bool(x))
    if isinstance(x, (int, np.integer)):
        return str(int(x))
    x = float(x)
    if x == 0:
        return "0.0"                       # no "-0.0"
    text = f"{x:.{precision}g}"
    if not any(c in text for c in ".einf"):
        text += ".0"
    return text


def format_array(a, max_elems: int = 6, precision: int = 4, multiline: bool = False, sep: str = ", ") -> str:
    """Scalars as ``1.6``; up to ``max_elems`` elements as compact lists/matrices; larger as
    ``shape (16, 2) · mean 0.03``.  ``multiline`` puts the rows of a matrix on separate lines;
    ``sep=" "`` gives numpy's tighter ``[1.0 2.0]``."""
    if a is None:
        return "None"
    if type(a) is ArraySummary:
        shape = format_shape(a.shape)
        return f"shape {shape} · mean {format_number(a.mean, 2)}" if a.dtype.kind in "fcV" else f"shape {shape}"
    a = np.asarray(a)
    if a.size == 1 and a.ndim == 0:
        return format_number(a.item(), precision)
    if a.size == 0:
        return f"empty {tuple(a.shape)}"
    if a.size > max_elems or a.ndim > 2:
        shape = format_shape(a.shape)
        if a.dtype.kind in "fcV":                # "V": bfloat16
            with np.errstate(all="ignore"):
                mean = a.astype(np.float64).mean()
            return f"shape {shape} · mean {format_number(mean, 2)}"
        return f"shape {shape}"
    if a.ndim == 1:
        return "[" + sep.join(format_number(v, precision) for v in a.tolist()) + "]"
    rows = ["[" + sep.join(format_number(v, precision) for v in row) + "]" for row in a.tolist()]
    row_sep = sep.rstrip()
    return "[" + ((row_sep + "\n ").join(rows) if multiline else sep.join(rows)) + "]"


def brief(a) -> str:
    """Up to three numbers, else the mean (for sentences that name several tensors)."""
    if type(a) is ArraySummary:
        return f"(mean {format_number(a.mean, 3)})"
    a = np.asarray(a)
    if a.size <= 3:
        return format_array(a)
    with np.errstate(all="ignore"):
        return f"(mean {format_number(a.astype(np.float64).mean(), 3)})"


def format_value(a) -> str:
    """A tensor whole, as a graph node and the inspector show it: every element with
    ``VALUE_PRECISION`` digits, a matrix's rows on separate lines (``[[1.0 2.0]\n [3.0 4.0]]``); a
    tensor of more than two dimensions, or of more than ``VALUE_WHOLE_MAX`` elements (text nobody reads,
    and slow to make), as its shape and mean."""
    return format_array(a, max_elems=VALUE_WHOLE_MAX, precision=VALUE_PRECISION, multiline=True, sep=" ")


def format_shape(shape) -> str:
    """``(2, 3)``, ``(3,)`` as Python writes a tuple; ``()`` for a scalar."""
    shape = tuple(int(n) for n in shape)
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def format_stats(a) -> str:
    """``min -1.2 · mean 0.03 · max 2.1`` over the finite elements, then how many are nan or ±inf."""
    if type(a) is ArraySummary:
        return _summary_stats(a)
    a = np.asarray(a)
    if a.size == 0:
        return "empty"
    if a.dtype.kind not in "fciub":
        return f"{a.size} elements"
    x = a.astype(np.float64).ravel()
    finite = np.isfinite(x)
    parts = []
    if finite.any():
        f = x[finite]
        parts = [f"min {format_number(f.min())}", f"mean {format_number(f.mean())}", f"max {format_number(f.max())}"]
    nan, inf = int(np.isnan(x).sum()), int(np.isinf(x).sum())
    parts += [f"{nan} nan"] * bool(nan) + [f"{inf} ±inf"] * bool(inf)
    return " · ".join(parts)


def format_head(a, count: int = 12) -> str:
    """The first ``count`` elements in row-major order, ``[0.1 -2.0 …]`` (``…`` when there are more)."""
    flat = a.head.ravel() if type(a) is ArraySummary else np.asarray(a).ravel()
    head = " ".join(format_number(v, VALUE_PRECISION) for v in flat[:count].tolist())
    return "[" + head + (" …]" if np.size(a) > count else "]")


def _summary_stats(s: ArraySummary) -> str:
    if s.min is None and s.nan is None:            # a sum of two summaries: only its mean is known
        return f"mean {format_number(s.mean)}"
    parts = [f"min {format_number(s.min)}", f"mean {format_number(s.finite_mean)}",
             f"max {format_number(s.max)}"] if s.min is not None else []
    parts += [f"{s.nan} nan"] * bool(s.nan) + [f"{s.inf} ±inf"] * bool(s.inf)
    return " · ".join(parts)


def format_exact(x) -> str:
    """A number as the plots' hover read-outs show it: 8 significant digits, enough to be exact for
    float32 (``nan`` for nan); no float-looking ``.0``, the digits are what matter there."""
    x = float(x)
    return "nan" if np.isnan(x) else f"{x:.8g}"
