"""The storage under a ``HistoryBuffer`` (history.py): one ``(rows, width)`` array per dtype for one
kind of per-parameter array (values, gradients, one optimizer-state key), the parameters side by
side as laid out by :func:`row_layout`; and :class:`Live`, the same layout for the arrays a step
engine keeps live (its parameters and optimizer state), so that recording a step's values is one
``copyto`` per dtype. The rows' memory comes from, and returns to, the process-wide pool of released
History memory (history_pool.py).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .history_pool import POOL


def _sum_squares(row: np.ndarray) -> float:
    """Σx² of a flat row, accumulated at the row's precision (BLAS for float32/float64): not finite
    exactly when an element is not finite, or when the sum overflows (the caller confirms)."""
    if row.dtype == np.float64 or row.dtype == np.float32:
        return float(np.dot(row, row))
    wide = row.astype(np.float64)
    return float(np.dot(wide, wide))


def _is_float(dtype: np.dtype) -> bool:
    return dtype.kind == "f" or dtype.name == "bfloat16"


# Rows are laid out by one rule, shared with the step engine's live storage (``live_arrays``): one flat
# row per dtype, the members side by side in order; with ``align`` a member of 16 bytes or more starts
# on a 16-byte boundary (what malloc gives a standalone array), the gaps left as padding.
ALIGN = 16


def row_layout(shapes: list[tuple], dtypes: list[np.dtype],
               align: bool) -> list[tuple[np.dtype, list[int], list[int], int]]:
    """``[(dtype, members, offsets, width)]``: one flat row per dtype (in order of first appearance),
    member ``members[j]`` at ``offsets[j]``."""
    layout = []
    for dtype in dict.fromkeys(dtypes):
        members = [i for i, d in enumerate(dtypes) if d == dtype]
        step = max(1, ALIGN // dtype.itemsize)
        offsets, width = [], 0
        for i in members:
            size = math.prod(shapes[i])
            if align and size * dtype.itemsize >= ALIGN:
                width = -(-width // step) * step
            offsets.append(width)
            width += size
        layout.append((dtype, members, offsets, width))
    return layout


@dataclass(eq=False)
class Live:
    """Arrays that live as views of flat rows laid out by :func:`row_layout` (``align=True``): the step
    engine keeps its parameters (and, once they exist, its optimizer-state buffers) so, and a History
    row of them is then one ``copyto`` per dtype. ``arrays[i]`` is member ``i``'s view."""
    layout: list
    flats: list[np.ndarray]
    arrays: list[np.ndarray]


def live_arrays(values: list[np.ndarray]) -> Live:
    """A :class:`Live` holding a copy of ``values`` (padding zero: a row's Σx² stays the members')."""
    shapes = [tuple(v.shape) for v in values]
    layout = row_layout(shapes, [v.dtype for v in values], align=True)
    flats, arrays = [], [None] * len(values)
    for dtype, members, offsets, width in layout:
        flat = np.zeros(width, dtype=dtype)
        for i, offset in zip(members, offsets):
            view = flat[offset:offset + math.prod(shapes[i])].reshape(shapes[i])
            view[...] = values[i]
            arrays[i] = view
        flats.append(flat)
    return Live(layout, flats, arrays)


class _Rows:
    """One kind of per-parameter array (values, grads or one optimizer-state key) for every
    parameter: one ``(rows, width)`` array per dtype laid out by :func:`row_layout`, so one step is
    written with one ``np.concatenate`` per dtype (or, from :class:`Live` arrays of the same layout,
    one ``copyto``). ``views[i]`` is parameter ``i``'s ``(rows, *shape)`` view of it (what the History
    hands out); padding (``align``) is never in a view. The flat arrays are ``POOL.empty``: their
    memory goes back to the pool once no History and no view of them is alive."""

    def __init__(self, rows: int, shapes: list[tuple], dtypes: list[np.dtype], align: bool = False):
        self.layout = row_layout(shapes, dtypes, align)
        self.padded = any(sum(math.prod(shapes[i]) for i in members) != width
                          for _, members, _, width in self.layout)
        self.groups: list[tuple[np.ndarray, list[int], np.ndarray]] = []   # (flat, members, scratch)
        self.views: list[np.ndarray] = [None] * len(shapes)              # type: ignore[list-item]
        self.now: list[np.ndarray] = [None] * len(shapes)               # type: ignore[list-item]
        self.bound: Live | None = None                                   # the Live of this layout last seen
        self._fill(rows, shapes)
        self.blas = all(dtype == np.float32 or dtype == np.float64 for dtype, _, _, _ in self.layout)
        self.plain = self.blas and len(self.layout) == 1 and not self.padded

    def _fill(self, rows: int, shapes: list[tuple]) -> None:
        for dtype, members, offsets, width in self.layout:
            flat = POOL.empty((rows, width), dtype)              # pages are touched as rows are written
            scratch = np.zeros(width, dtype=dtype)                # a step that is not kept (stride > 1)
            for i, offset in zip(members, offsets):
                size = math.prod(shapes[i])
                # splitting a contiguous last axis: always a view (numpy >= 1.24 has no copy=False)
                self.views[i] = flat[:, offset:offset + size].reshape((rows,) + shapes[i])
                self.now[i] = scratch[offset:offset + size].reshape(shapes[i])
                assert np.may_share_memory(self.views[i], flat) or not self.views[i].size
            self.groups.append((flat, members, scratch))

    def write(self, row: int | None, arrays: list) -> float:
        """Row ``row`` (None: the scratch row) := ``arrays`` (one per parameter); returns Σx² over
        every element (non-finite when an element is)."""
        if self.plain:                              # one dtype, float32/64, no padding: the common case
            out = self.groups[0][2] if row is None else self.groups[0][0][row]
            np.concatenate([a.ravel() for a in arrays], out=out)
            return float(np.dot(out, out))
        total = 0.0
        if self.padded:                             # member by member (only Σx²'s finiteness is used)
            for i, a in enumerate(arrays):
                out = self.current(i, row)
                np.copyto(out, a)
                total += _sum_squares(out.reshape(-1))
            return total
        for flat, members, scratch in self.groups:
            out = scratch if row is None else flat[row]
            np.concatenate([arrays[i].ravel() for i in members], out=out)
            total += _sum_squares(out)
        return total

    def write_only(self, row: int, arrays: list) -> None:
        """Row ``row`` := ``arrays``, unchecked (optimizer state)."""
        if self.padded:
            for i, a in enumerate(arrays):
                self.views[i][row, ...] = a
            return
        for flat, members, _ in self.groups:
            np.concatenate([arrays[i].ravel() for i in members], out=flat[row])

    def binds(self, live: Live) -> bool:
        """``live``'s flats are rows of this layout (a dtype it casts to safely): :meth:`write_live`
        can copy them."""
        if self.bound is live:
            return True
        ok = len(live.layout) == len(self.layout) and all(
            m1 == m2 and o1 == o2 and w1 == w2 and np.can_cast(d1, d2, "safe")
            for (d1, m1, o1, w1), (d2, m2, o2, w2) in zip(live.layout, self.layout))
        if ok:
            self.bound = live
        return ok

    def write_live(self, row: int | None, live: Live) -> float:
        """Row ``row`` (None: the scratch row) := ``live``'s flats (:meth:`binds`); returns Σx²."""
        if self.blas and len(self.groups) == 1:
            out = self.groups[0][2] if row is None else self.groups[0][0][row]
            np.copyto(out, live.flats[0])
            return float(np.dot(out, out))
        total = 0.0
        for (flat, _, scratch), src in zip(self.groups, live.flats):
            out = scratch if row is None else flat[row]
            np.copyto(out, src)
            total += _sum_squares(out)
        return total

    def current(self, i: int, row: int | None) -> np.ndarray:
        """Parameter ``i``'s last written values (row ``row``, or the scratch row)."""
        return self.now[i] if row is None else self.views[i][row, ...]
