"""The one number format of everything GradViz shows: graph, caption, inspector, plots' read-outs.

``format_number`` keeps a float looking like a float (``2.0``, ``1.6``, ``1e-05``, never ``2.`` or
``-0.0``) with 4 significant digits; ``format_array`` shows small tensors whole and large ones as
their shape and mean.
"""
from __future__ import annotations

import numpy as np

__all__ = ["format_number", "format_array", "brief", "format_exact", "format_full"]


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
    a = np.asarray(a)
    if a.size == 1 and a.ndim == 0:
        return format_number(a.item(), precision)
    if a.size == 0:
        return f"empty {tuple(a.shape)}"
    if a.size > max_elems or a.ndim > 2:
        shape = "(" + ", ".join(str(n) for n in a.shape) + ("," if a.ndim == 1 else "") + ")"
        if a.dtype.kind in "fc":
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
    a = np.asarray(a)
    if a.size <= 3:
        return format_array(a)
    with np.errstate(all="ignore"):
        return f"(mean {format_number(a.astype(np.float64).mean(), 3)})"


def format_full(a, threshold: int = 4000) -> str:
    """Every element, as the inspector shows a tensor: numpy's layout with up to 6 significant
    digits, lines of at most 72 characters; beyond ``threshold`` elements numpy's ``...``."""
    return np.array2string(np.asarray(a), precision=6, suppress_small=False, max_line_width=72,
                           threshold=threshold, floatmode="maxprec")


def format_exact(x) -> str:
    """A number as the plots' hover read-outs show it: 8 significant digits, enough to be exact for
    float32 (``nan`` for nan); no float-looking ``.0``, the digits are what matter there."""
    x = float(x)
    return "nan" if np.isnan(x) else f"{x:.8g}"
