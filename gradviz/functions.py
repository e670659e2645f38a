"""The one table of primitive ops: how each computes its value and its gradient.

Every differentiable op in gradviz is either a row of ``RULES`` or a composition of rows
(``softmax``, ``log_softmax``, the losses in ``gradviz.nn.functional``, ...).  A rule's
``forward(*arrays, **kw)`` returns ``(out, saved)``; its ``backward(grad_out, saved, **kw)``
returns one gradient per input (``None`` where the input gets none).  Broadcasting is undone by
the engine (``unbroadcast``), so elementwise rules never think about shapes.

``saves`` tells whether the rule keeps values for backward.  As in PyTorch, only nodes that saved
something refuse a second backward after their saved values were freed (``a + b`` does not).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class Rule:
    name: str            # PyTorch's grad_fn class name, shown in the UI and by ``Tensor.grad_fn``
    short: str           # short op name for labels ("mul", "add", ...)
    forward: Callable
    backward: Callable
    saves: bool = True
    elementwise: bool = False   # binary, broadcasting: inputs are type-promoted, gradients un-broadcast


def unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``g`` down to ``shape``, undoing numpy broadcasting."""
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    if extra:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g


def _pow_grad_exponent(g, base, exponent, out):
    # NOTE: PyTorch masks 0 ** e (e >= 0) so that log(0) never poisons the exponent's gradient.
    with np.errstate(divide="ignore", invalid="ignore"):
        term = out * np.log(base)
    return g * np.where((base == 0) & (exponent >= 0), 0.0, term).astype(out.dtype, copy=False)


def _pow_scalar_bw(g, s, exponent):
    (x,) = s
    if exponent == 0:
        return (np.zeros_like(x),)
    if exponent == 2 and type(exponent) in (int, float):
        # The square (every squared error): g * 2 * x ** 1 as (g + g) * x, the same bits (doubling is
        # exact) with two numpy calls instead of three and no Python number to convert.  (A numpy
        # scalar exponent may promote g's dtype, so it takes the general formula.)
        return ((g + g) * x,)
    return (g * exponent * x ** (exponent - 1),)


def _mm(a, b):
    """a @ b; float16 operands are multiplied with float32 accumulation and rounded once, as
    PyTorch's CPU kernels do (numpy's float16 matmul would round after every multiply-add)."""
    if a.dtype == np.float16 and b.dtype == np.float16:
        return (a.astype(np.float32) @ b.astype(np.float32)).astype(np.float16)
    return a @ b


def _addmm_fw(x, w, b):
    if x.dtype == np.float16:
        f = np.float32
        return (x.astype(f) @ w.T.astype(f) + b.astype(f)).astype(np.float16), (x, w)
    return x @ w.T + b, (x, w)


def _sum_rows(g):
    """``g.sum(axis=0)`` for a matrix: the gradient of a bias added to every row.

    .. note::
        numpy reduces over the outer axis of a C-contiguous matrix by adding one row at a time,
        calling its inner loop once per row.  ``einsum`` adds the rows in that same order with one
        loop, so the result has the same bits.  A single column is contiguous, and numpy sums it
        pairwise instead: that case keeps ``sum``.
    """
    if g.ndim == 2 and g.shape[1] > 1 and g.flags.c_contiguous:
        return np.einsum("ij->j", g)
    return g.sum(axis=0)


def _addmm_bw(g, s):
    x, w = s         # float16 never gets here: the engine runs half backward formulas in float32
    return g @ w, g.T @ x, _sum_rows(g)


def _reciprocal_fw(x):
    out = 1 / (x if x.dtype.kind == "f" else x.astype(np.float32))     # 1 / int tensor is float32
    return out, out


def _matmul_bw(g, s):
    a, b = s
    if a.ndim == 2 and b.ndim == 2:          # the common case, without the general machinery below
        return g @ b.T, a.T @ g
    # Promote 1-D operands to matrices, use the matrix rule, then squeeze back.
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    g2 = g
    if b.ndim == 1:              # first the column axis: for dot, g is 0-d
        g2 = np.expand_dims(g2, -1)
    if a.ndim == 1:
        g2 = np.expand_dims(g2, -2)
    ga = unbroadcast(_mm(g2, np.swapaxes(b2, -1, -2)), a2.shape).reshape(a.shape)
    gb = unbroadcast(_mm(np.swapaxes(a2, -1, -2), g2), b2.shape).reshape(b.shape)
    return ga, gb


def _expand_reduced(g, shape, dim, keepdim):
    """Broadcast the gradient of a reduction over ``dim`` back to ``shape``."""
    if dim is not None and not keepdim:
        g = np.expand_dims(g, dim)
    out = np.empty(shape, dtype=g.dtype)
    out[...] = g
    return out


def _count(shape, dim):
    if dim is None:
        return math.prod(shape)
    return math.prod([shape[d] for d in (dim if isinstance(dim, tuple) else (dim,))])


def _mean_fw(x, dim, keepdim):
    """``x.mean(axis=dim, keepdims=keepdim)``, taking the same steps as numpy's ``_methods._mean`` (sum,
    float16 in float32, then divide by the count as an integer) without its Python wrapper: the
    same bits as numpy's mean."""
    n = _count(x.shape, dim)
    if n == 0:
        return x.mean(axis=dim, keepdims=keepdim), x.shape     # numpy's "Mean of empty slice" and nan
    half = x.dtype == np.float16
    total = np.add.reduce(x, axis=dim, dtype=np.float32 if half else None, keepdims=keepdim)
    if type(total) is np.ndarray:
        np.true_divide(total, np.intp(n), out=total, casting="unsafe")
        return (total.astype(np.float16) if half else total), x.shape
    # numpy divides the scalar by np.intp(n) in float64 and rounds to x's dtype; Python's float
    # division is that same float64 division, so the bits are the same.
    return x.dtype.type(float(total) / n), x.shape


def _clamp_fw(x, min, max):
    # For floats np.clip with one bound is np.maximum / np.minimum behind a Python wrapper (numpy's
    # _methods._clip), so calling them directly gives the same result; integers keep np.clip's checks.
    if x.dtype.kind == "f" and max is None:
        return np.maximum(x, min), (x,)
    if x.dtype.kind == "f" and min is None:
        return np.minimum(x, max), (x,)
    return np.clip(x, min, max), (x,)


def _max_all_bw(g, s):
    # NOTE: max() over all elements splits the gradient evenly among ties (PyTorch's MaxBackward1).
    x, out = s
    mask = x == out
    return (mask * (g / mask.sum()),)


def _max_dim_fw(x, dim, keepdim):
    idx = np.argmax(x, axis=dim)
    out = np.take_along_axis(x, np.expand_dims(idx, dim), dim)
    return (out if keepdim else np.squeeze(out, dim)), (x.shape, idx)


def _max_dim_bw(g, s, dim, keepdim):
    shape, idx = s
    gx = np.zeros(shape, dtype=g.dtype)
    np.put_along_axis(gx, np.expand_dims(idx, dim), g if keepdim else np.expand_dims(g, dim), dim)
    return (gx,)


def _getitem_bw(g, s, index):
    shape, dtype = s
    gx = np.zeros(shape, dtype=dtype)
    np.add.at(gx, index, g)      # add.at: repeated indices accumulate, as in PyTorch
    return (gx,)


def _clamp_bw(g, s, min, max):
    (x,) = s
    if min is None:
        return (g * (x <= max),)
    if max is None:
        return (g * (x >= min),)
    return (g * ((x >= min) & (x <= max)),)


def _inverse_perm(axes):
    return tuple(sorted(range(len(axes)), key=axes.__getitem__))


_RULE_LIST = [
    # binary, elementwise (with broadcasting)
    Rule("AddBackward0", "add", lambda a, b: (a + b, None), lambda g, s: (g, g), False, True),
    Rule("SubBackward0", "sub", lambda a, b: (a - b, None), lambda g, s: (g, -g), False, True),
    Rule("MulBackward0", "mul", lambda a, b: (a * b, (a, b)), lambda g, s: (g * s[1], g * s[0]), True, True),
    Rule("DivBackward0", "div", lambda a, b: (a / b, (a, b)),
         lambda g, s: (g / s[1], -g * s[0] / (s[1] * s[1])), True, True),
    Rule("PowBackward1", "pow", lambda a, b: ((out := a ** b), (a, b, out)),
         lambda g, s: (np.where(s[1] == 0, 0.0, g * s[1] * s[0] ** (s[1] - 1)).astype(s[2].dtype, copy=False),
                        _pow_grad_exponent(g, s[0], s[1], s[2])), True, True),
    # unary
    Rule("PowBackward0", "pow_scalar", lambda x, exponent: (x ** exponent, (x,)), _pow_scalar_bw),
    Rule("NegBackward0", "neg", lambda x: (-x, None), lambda g, s: (-g,), False),
    Rule("ReciprocalBackward0", "reciprocal", _reciprocal_fw, lambda g, s: (-g * s * s,)),
    Rule("ExpBackward0", "exp", lambda x: ((out := np.exp(x)), out), lambda g, s: (g * s,)),
    Rule("LogBackward0", "log", lambda x: (np.log(x), x), lambda g, s: (g / s,)),
    Rule("SqrtBackward0", "sqrt", lambda x: ((out := np.sqrt(x)), out), lambda g, s: (g / (2 * s),)),
    Rule("AbsBackward0", "abs", lambda x: (np.abs(x), x), lambda g, s: (g * np.sign(s),)),
    Rule("TanhBackward0", "tanh", lambda x: ((out := np.tanh(x)), out), lambda g, s: (g * (1 - s * s),)),
    Rule("SigmoidBackward0", "sigmoid", lambda x: ((out := 1 / (1 + np.exp(-x))), out),
         lambda g, s: (g * (1 - s) * s,)),
    Rule("ReluBackward0", "relu", lambda x: ((out := np.maximum(x, 0)), out), lambda g, s: (g * (s > 0),)),
    Rule("ClampBackward1", "clamp", _clamp_fw, _clamp_bw),
    Rule("ToCopyBackward0", "to", lambda x, dtype: (x.astype(dtype), x.dtype),
         lambda g, s, dtype: (g.astype(s),), False),
    # linear algebra
    Rule("MmBackward0", "matmul", lambda a, b: (_mm(a, b), (a, b)), _matmul_bw),
    # nn.Linear on a batch: x @ W^T + b in one op (PyTorch's addmm), inputs (x, W, b)
    Rule("AddmmBackward0", "addmm", _addmm_fw, _addmm_bw),
    # reductions
    Rule("SumBackward1", "sum", lambda x, dim, keepdim: (x.sum(axis=dim, keepdims=keepdim), x.shape),
         lambda g, s, dim, keepdim: (_expand_reduced(g, s, dim, keepdim),), False),
    Rule("MeanBackward1", "mean", _mean_fw,
         lambda g, s, dim, keepdim: (_expand_reduced(g / _count(s, dim), s, dim, keepdim),), False),
    Rule("MaxBackward1", "max", lambda x: ((out := x.max()), (x, out)), _max_all_bw),
    Rule("MaxBackward0", "max_dim", _max_dim_fw, _max_dim_bw),
    # shape
    Rule("ViewBackward0", "reshape", lambda x, shape: (x.reshape(shape), x.shape),
         lambda g, s, shape: (g.reshape(s),), False),
    Rule("PermuteBackward0", "permute", lambda x, axes: (x.transpose(axes), None),
         lambda g, s, axes: (g.transpose(_inverse_perm(axes)),), False),
    Rule("IndexBackward0", "getitem", lambda x, index: (x[index], (x.shape, x.dtype)), _getitem_bw, False),
    # advanced indexing (integer arrays, masks): PyTorch saves the indices, so a second backward raises
    Rule("IndexBackward0", "index", lambda x, index: (x[index], (x.shape, x.dtype)), _getitem_bw, True),
]
RULES: dict[str, Rule] = {r.short: r for r in _RULE_LIST}

# PyTorch gives some ops different grad_fn names depending on the call; same rule, other label.
ALIASES = {
    ("sub", "rsub"): "RsubBackward1",
    ("sum", "all"): "SumBackward0", ("mean", "all"): "MeanBackward0",
    ("matmul", "dot"): "DotBackward0", ("matmul", "mv"): "MvBackward0", ("matmul", "bmm"): "UnsafeViewBackward0",
    ("matmul", "vm"): "SqueezeBackward4", ("matmul", "fold_t"): "CloneBackward0",
    ("matmul", "fold_t_vector"): "TransposeBackward0", ("clamp", "min"): "ClampMinBackward0",
    ("reshape", "unsqueeze"): "UnsqueezeBackward0", ("reshape", "squeeze"): "SqueezeBackward0",
    ("reshape", "squeeze_dim"): "SqueezeBackward1", ("reshape", "copy"): "UnsafeViewBackward0",
    ("reshape", "alias"): "ReshapeAliasBackward0",
    ("getitem", "unsqueeze"): "UnsqueezeBackward0", ("getitem", "alias"): "AliasBackward0",
    ("permute", "transpose"): "TransposeBackward0",
    ("getitem", "select"): "SelectBackward0", ("getitem", "slice"): "SliceBackward0",
    ("pow", "rpow"): "PowBackward2", ("to", "clone"): "CloneBackward0",
}
