"""The one table of primitive ops: how each computes its value and its gradient.

Every differentiable op in gradviz is either a row of ``RULES`` or a composition of rows
(``l1_loss`` is ``(x - y).abs().mean()``, as in PyTorch).  Ops PyTorch runs as one fused node
(``softmax``, ``log_softmax``, ``mse_loss``, ``binary_cross_entropy_with_logits``, ``nll_loss``)
are one row each, so the graph and ``grad_fn`` name them as PyTorch does.  A rule's
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

from ._dtypes import sum_to
from ._fastmath import exp_f32, tanh_backward_f32, tanh_f32
from ._reductions import var as _var
from ._reductions import var_backward as _var_backward
from ._reductions import vector_norm, vector_norm_backward
from .random import _TORCH_KERNELS, _two_product


@dataclass(frozen=True, slots=True)
class Rule:
    name: str            # PyTorch's grad_fn class name, shown in the UI and by ``Tensor.grad_fn``
    short: str           # short op name for labels ("mul", "add", ...)
    forward: Callable
    backward: Callable
    saves: bool = True
    elementwise: bool = False   # binary, broadcasting: inputs are type-promoted, gradients un-broadcast
    math: OpMath | None = None  # the formulas the view shows (attached from ``MATH`` below)
    masked: bool = False        # backward takes ``needs`` (which inputs require grad) and skips the rest


@dataclass(frozen=True, slots=True)
class OpMath:
    """The formula of an op's forward and of each input's gradient, as templates for the view.

    Templates are text with ``{name}`` placeholders (an input's symbol from ``inputs``, ``out``,
    ``g`` for the incoming gradient ∂L/∂out, ``N`` for a count, or an op argument such as
    ``exponent``), ``^{…}``/``_{…}`` for super/subscripts, ``\\frac{…}{…}``, ``\\sqrt{…}`` and
    ``\\hat{…}``; everything else is literal (Greek letters, ·, −, Σ, ⊙).  ``gradviz.view.formulas``
    renders them as rich text, LaTeX and plain text, with symbols or with one iteration's numbers.

    ``local[i]`` is ∂out/∂input_i of an elementwise op (the gradient is then ``g · local[i]``, summed
    over broadcast dimensions); ``grads[i]`` is the whole gradient when it is not elementwise (a
    matrix product, a reduction, softmax).  None: that input gets no gradient.
    """
    inputs: tuple[str, ...]
    forward: str
    local: tuple[str | None, ...] = ()
    grads: tuple[str | None, ...] = ()
    note: str = ""


def unbroadcast(g: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``g`` down to ``shape``, undoing numpy broadcasting."""
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    if extra:
        g = sum_to(g, tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = sum_to(g, axes, keepdims=True)
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
    return (g * (exponent * x ** (exponent - 1)),)      # PyTorch's order: grad * (e * x ** (e - 1))


def _pow(a, b):
    """``a ** b``; for integer tensors a negative exponent gives 0 (1 for a base of 1, +-1 for -1),
    as PyTorch's integer pow, where numpy raises."""
    if b.dtype.kind in "iu" and a.dtype.kind in "iu" and (b < 0).any():
        neg = b < 0
        out = np.where(neg, 0, a) ** np.where(neg, 1, b)
        return np.where(neg & (a == 1), 1, np.where(neg & (a == -1), 1 - 2 * (b % 2), out)).astype(out.dtype)
    return a ** b


def _pow_scalar_fw(x, exponent):
    if x.dtype.kind in "iu" and type(exponent) is int and exponent < 0:
        raise RuntimeError("Integers to negative integer powers are not allowed.")
    if x.dtype.kind == "b":          # bool ** 2 is int64 in PyTorch (numpy: int8)
        x = x.astype(np.int64) if type(exponent) is int else x.astype(np.float32)
    return x ** exponent, (x,)


def _mm2(a, b):
    """``a @ b`` of two matrices; where the inner dimension is 1 (and neither side is a vector) it is
    the outer product ``a * b``.

    .. note::
        numpy's matmul takes 10x torch's time over an inner dimension of 1 (the input gradient of a
        layer with one output: ``(2000, 1) @ (1, 64)``, 184 us against 19 us). Each element is one
        product either way, with the same bits. Where that product is -0, ``a * b`` keeps it, as
        torch's ``mm`` does there, and numpy's matmul gives +0. With one row or one column, torch
        takes a matrix-vector path that gives +0 as numpy does: those keep ``a @ b``.
    """
    if (a.ndim == 2 and b.ndim == 2 and a.shape[1] == 1 and b.shape[0] == 1
            and a.shape[0] > 1 and b.shape[1] > 1):
        return np.multiply(a, b)
    return a @ b


def _mm(a, b):
    """a @ b; float16 operands are multiplied with float32 accumulation and rounded once, as
    PyTorch's CPU kernels do (numpy's float16 matmul would round after every multiply-add)."""
    if a.dtype == np.float16 and b.dtype == np.float16:
        return (a.astype(np.float32) @ b.astype(np.float32)).astype(np.float16)
    return _mm2(a, b)


def _addmm_fw(x, w, b):
    if x.dtype == np.float16:
        f = np.float32
        return (x.astype(f) @ w.T.astype(f) + b.astype(f)).astype(np.float16), (x, w)
    y = _mm2(x, w.T)
    if y.dtype == b.dtype and b.ndim <= 1 and y.ndim >= 1:
        y += b                  # in place: the same bits as y + b, without a second array
        return y, (x, w)
    return y + b, (x, w)


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


def _addmm_bw(g, s, needs=(True, True, True)):
    """``needs``: which inputs require grad. The gradient of the data (``g @ W``, a third of the
    backward's multiply-adds for a first layer) is not computed when it would be dropped: PyTorch
    skips it too (``needs_input_grad``)."""
    x, w = s         # float16 never gets here: the engine runs half backward formulas in float32
    return (_mm2(g, w) if needs[0] else None, g.T @ x if needs[1] else None,
            _sum_rows(g) if needs[2] else None)


def _float(x):
    """An integer or bool array as the default float dtype, float32: floating ops on integer tensors
    (``tensor([1, 2]).exp()``) give float32 in PyTorch, where numpy gives float64."""
    return x if x.dtype.kind == "f" or x.dtype.kind == "V" else x.astype(np.float32)


def _libm(fn, x):
    """``fn(x)`` (exp, log, tanh) in the dtype PyTorch gives; float32 is computed in float64 and rounded once.

    .. note::
        torch's float32 kernels (SLEEF, within 1 ulp) are correctly rounded far more often than
        numpy's float32 ``expf``/``tanhf``: on uniform inputs in [-5, 5] the float64-then-round result
        has torch's bits for 99% of exp and tanh, numpy's float32 for 61% and 67%.
        Large float32 arrays go through ``_fastmath``: the same bits without libm's scalar float64
        loops (about 18 ns an element for tanh where numpy has no AVX-512 version), or numpy's own
        vectorized float64 function in blocks where it has one.
    """
    x = _float(x)
    if x.dtype == np.float32:
        fast = _FAST.get(fn)
        return fast(x) if fast is not None else fn(x.astype(np.float64)).astype(np.float32)
    return fn(x)


_FAST = {np.tanh: tanh_f32, np.exp: exp_f32}
_BITS = {np.dtype(np.float32): np.int32, np.dtype(np.float64): np.int64}
SELECT_MIN = 1024


def _select(keep, g, drop=False):
    """``np.where(keep, g, 0)``: the gradient where ``keep``, else +0 (PyTorch's threshold_backward,
    clamp_backward, where's backward); with ``drop``, ``keep`` marks what is dropped instead.

    A large float32/float64 ``g`` is ANDed bitwise with a mask of all ones or zeros instead: the same
    bits (+0 where dropped, ``g`` itself where kept), without the branch per element numpy's ``where``
    takes on a random mask (450 us on 128,000 float32 values against 30 us)."""
    bits = _BITS.get(g.dtype) if type(g) is np.ndarray else None
    if (bits is None or g.size < SELECT_MIN or type(keep) is not np.ndarray or keep.dtype != np.bool_
            or keep.shape != g.shape):
        return np.where(keep, 0, g) if drop else np.where(keep, g, 0)
    mask = keep.astype(bits)
    if drop:
        mask -= 1                             # dropped 1 -> 0, kept 0 -> all ones
    else:
        np.negative(mask, out=mask)           # kept 1 -> all ones
    np.bitwise_and(mask, g.view(bits), out=mask)
    return mask.view(g.dtype)


def _relu(x):
    """``max(x, 0)`` as torch's relu (clamp_min): -0 stays -0 (numpy's maximum gives +0), NaN stays NaN."""
    return _select(x < 0, x, drop=True) if x.dtype.kind == "f" else np.maximum(x, 0)


def _in_place_ok(a, g):
    """Whether ``a`` (a fresh temporary) can take the result of ``a op g`` itself: same shape and dtype."""
    return type(a) is np.ndarray and type(g) is np.ndarray and a.shape == g.shape and a.dtype == g.dtype


def _one_minus_square_f64(s: np.ndarray) -> np.ndarray:
    """``fma(-s, s, 1)`` for float64 ``|s| <= 1`` (a tanh's output): the exact square ``s*s = p + e``
    (``random._two_product``), ``h = 1 - p`` with its exact error ``t`` (Fast2Sum: ``1 >= p``), then
    ``h + (t - e)``.  ``|t - e| <= ulp(h)``, so rounding it errs by at most 2**-53 ulp(h): the result
    is the fused one unless the exact value lies that close to a rounding boundary (about once in
    2**52)."""
    p, e = _two_product(s, s)
    h = 1.0 - p
    t = 1.0 - h
    t -= p                               # 1 - p - h, exactly
    t -= e
    h += t
    return h


def _tanh_bw(g, s):
    """``g * (1 - s * s)``, PyTorch's tanh_backward.  Its kernels are built with FMA contraction
    (``random._TORCH_KERNELS``): ``1 - s * s`` is one ``fma(-s, s, 1)``, rounded once
    (float32: ``_fastmath.tanh_backward_f32``; float64: ``_one_minus_square_f64``).  Rounding twice,
    as before, differed from torch in a third of the float32 elements and a few float64 ones."""
    if (_TORCH_KERNELS != "default" and type(s) is np.ndarray and type(g) is np.ndarray
            and s.dtype == g.dtype and s.shape == g.shape):
        if s.dtype == np.float32:
            return tanh_backward_f32(g, s)
        if s.dtype == np.float64:
            d = _one_minus_square_f64(s)
            d *= g
            return d
    d = s * s
    if not _in_place_ok(d, g):
        return g * (1 - d)
    np.subtract(1, d, out=d)
    np.multiply(g, d, out=d)
    return d


def _sigmoid(x):
    """``1 / (1 + exp(-x))`` in x's float dtype, exp rounded as ``_libm`` does, in one temporary."""
    e = _libm(np.exp, -_float(x))
    if type(e) is not np.ndarray or e.ndim == 0:
        return 1 / (1 + e)
    np.add(1, e, out=e)
    np.divide(1, e, out=e)
    return e


def _sigmoid_bw(g, s):
    """``g * (1 - s) * s`` (PyTorch's sigmoid_backward), in one temporary."""
    d = 1 - s
    if not _in_place_ok(d, g):
        return g * d * s
    np.multiply(g, d, out=d)
    np.multiply(d, s, out=d)
    return d


def _reciprocal_fw(x):
    out = 1 / (x if x.dtype.kind == "f" else x.astype(np.float32))     # 1 / int tensor is float32
    return out, out


def _matmul_bw(g, s):
    a, b = s
    if a.ndim == 2 and b.ndim == 2:          # the common case, without the general machinery below
        return _mm2(g, b.T), _mm2(a.T, g)
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
    # np.clip gives float32 for bfloat16 (kind "V"), so floats take min(max(x, lo), hi) with both bounds.
    if x.dtype.kind in "fV":
        if max is None:
            return np.maximum(x, min), (x,)
        if min is None:
            return np.minimum(x, max), (x,)
        return np.minimum(np.maximum(x, min), max), (x,)
    return np.clip(x, min, max), (x,)


def _max_all_bw(g, s):
    # NOTE: max() over all elements splits the gradient evenly among ties (PyTorch's MaxBackward1).
    # PyTorch multiplies by the mask here (evenly_distribute_backward on CPU), so no select; a nan
    # maximum marks the nan elements.
    x, out = s
    mask = np.isnan(x) if np.isnan(out) else x == out
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
        return (_select(x <= max, g),)
    if max is None:
        return (_select(x >= min, g),)
    return (_select((x >= min) & (x <= max), g),)


def _setitem_bw(g, s, index):
    shape, dtype = s
    gx = g.copy()
    gx[index] = 0
    return gx, unbroadcast(np.asarray(g[index]), shape).reshape(shape).astype(dtype, copy=False)


def _inverse_perm(axes):
    return tuple(sorted(range(len(axes)), key=axes.__getitem__))


# -- softmax and the losses: fused ops with their own formulas, as PyTorch's CPU kernels compute them --
def _softmax_fw(x, dim):
    e = np.exp(x - x.max(axis=dim, keepdims=True))
    out = e * (1 / e.sum(axis=dim, keepdims=True))     # PyTorch multiplies by the reciprocal of the sum
    return out, out


def _log_softmax_fw(x, dim):
    shifted = x - x.max(axis=dim, keepdims=True)
    # NOTE: x - max - log(sum) in that order (PyTorch keeps it: adding max + log(sum) first loses digits).
    out = shifted - np.log(np.exp(shifted).sum(axis=dim, keepdims=True))
    return out, out


def _reduce_loss(loss, reduction):
    if reduction == "mean":
        return _mean_fw(loss, None, False)[0]
    return loss.sum() if reduction == "sum" else loss


def _mse_fw(x, y, reduction):
    d = x - y
    return _reduce_loss(d * d, reduction), (x, y)


def _mse_bw(g, s, reduction):
    # PyTorch's mse_loss_backward: norm * (x - y) * g with norm = 2/n (mean) or 2, in x's dtype.
    x, y = s
    if reduction == "mean":
        n = x.size if x.shape == y.shape else math.prod(np.broadcast_shapes(x.shape, y.shape))
        norm = x.dtype.type(2 / n)
    else:
        norm = x.dtype.type(2)
    gx = norm * (x - y) * g
    gy = norm * (y - x) * g
    return unbroadcast(gx, x.shape), unbroadcast(gy, y.shape)


def _bce_logits_fw(x, y, reduction):
    # NOTE: (1 - y) x - log σ(x) with log σ(x) = min(x, 0) - log1p(exp(-|x|)): nothing overflows
    # (PyTorch's binary_cross_entropy_with_logits over its log_sigmoid kernel).
    log_sigmoid = np.minimum(x, 0) - np.log1p(np.exp(-np.abs(x)))
    return _reduce_loss((1 - y) * x - log_sigmoid, reduction), (x, y)


def _bce_logits_bw(g, s, reduction):
    # ∂/∂x = (σ(x) - y) g and ∂/∂y = -x g, divided by n for the mean, as PyTorch's backward kernels.
    x, y = s
    gx = (1 / (1 + np.exp(-x)) - y) * g
    gy = -x * g
    if reduction == "mean":
        gx, gy = gx / x.size, gy / y.size
    return gx, gy


def _cascade_sum(values):
    """Minus the sum of a 1-D array, added as PyTorch's nll_loss kernel does: a cascade of up to 8 partial sums, each
    level adding 2**p elements of the level below (p >= 4), so the bits are PyTorch's.

    In that kernel, after element ``b`` is subtracted into ``partial[0]``, ``partial[j]`` is carried into
    ``partial[j + 1]`` (and reset) for every level ``j`` whose group of ``p`` bits of ``b`` and all lower
    groups are 0. So element 0 goes straight to ``partial[7]``; then level 0 closes a block every ``2**p``
    elements (elements 1..16, 17..32, ... for p = 4), level 1 every ``2**p`` closed level-0 blocks, and so
    on; what is left open at the end stays in its level. Each block is folded from +0 in order, which is
    what ``ufunc.accumulate`` along a row does: one numpy call per level, the same operations in the
    same order (so the same bits, inf, nan and signed zeros included).
    """
    n = len(values)
    zero = values.dtype.type(0)
    if n == 0:
        return zero
    power = max(4, (n - 1).bit_length() // 8)
    size = 1 << power
    partial = [zero] * 8
    closed, partial[0] = _fold_blocks(values[1:], size, np.subtract)
    for j in range(1, 7):
        if not len(closed):
            break
        closed, partial[j] = _fold_blocks(closed, size, np.add)
    top = zero - values[0]
    for c in closed:             # closed level-6 blocks (2**(7p) elements and more) go to partial[7]
        top = top + c
    partial[7] = top
    total = zero
    for p in partial:
        total = total + p
    return total


def _fold_blocks(items, size: int, op):
    """``(closed, rest)``: every ``size`` consecutive items folded from +0 by ``op`` (subtract or add),
    in order, and the fold of the items after the last whole block (+0 when there are none)."""
    n = len(items)
    k = n // size
    dtype = items.dtype
    # padding: x - (+0) == x and x + (-0) == x for every x, so the padded row folds to the same bits
    flat = np.zeros((k + 1) * size, dtype=dtype) if op is np.subtract else np.full((k + 1) * size, -0.0, dtype=dtype)
    flat[:n] = items
    rows = np.zeros((k + 1, size + 1), dtype=dtype)       # column 0: the +0 each fold starts from
    rows[:, 1:] = flat.reshape(k + 1, size)
    folded = op.accumulate(rows, axis=1)[:, -1]
    return folded[:k], (folded[k] if n > k * size else dtype.type(0))


def _nll_fw(logp, target, reduction):
    picked = logp[np.arange(len(target)), target]
    saved = (logp.shape, logp.dtype)
    if reduction == "none":
        return -picked, saved
    total = _cascade_sum(picked)
    return (total / logp.dtype.type(len(target)) if reduction == "mean" else total), saved


def _nll_bw(g, s, target, reduction):
    # NOTE: only the picked log-probabilities get a gradient: -g (divided by n for the mean).
    shape, dtype = s
    gx = np.zeros(shape, dtype=dtype)
    gx[np.arange(len(target)), target] = -(g / dtype.type(len(target)) if reduction == "mean" else g)
    return (gx,)


def _min_all_bw(g, s):
    # as max(): the gradient is split evenly among ties (MinBackward1)
    return _max_all_bw(g, s)


def _min_dim_fw(x, dim, keepdim):
    idx = np.argmin(x, axis=dim)
    out = np.take_along_axis(x, np.expand_dims(idx, dim), dim)
    return (out if keepdim else np.squeeze(out, dim)), (x.shape, idx)


def _extremum_bw(g, s, keep_where):
    # NOTE: torch.maximum/minimum split the gradient in half between equal inputs (derivatives.yaml:
    # ``at::where(self == other, grad / 2, grad).masked_fill_(self < other, 0)``).
    a, b = s
    half = np.where(a == b, g / 2, g)
    return np.where(keep_where(a, b), half, 0), np.where(keep_where(b, a), half, 0)


def _stack_bw(g, s, dim, dtype):
    return tuple(np.take(g, i, axis=dim) for i in range(g.shape[dim]))


def _cat_fw(*arrays, dim, dtype):
    arrays = [a.astype(dtype, copy=False) for a in arrays]
    return np.concatenate(arrays, axis=dim), [a.shape[dim] for a in arrays]


def _cat_bw(g, sizes, dim, dtype):
    return tuple(np.split(g, np.cumsum(sizes)[:-1], axis=dim))


def _std_fw(x, dim, correction, keepdim):
    out = np.sqrt(_var(x, dim, correction, keepdim))
    return out, (x, out)


def _std_bw(g, s, dim, correction, keepdim):
    # PyTorch's std_backward: var's gradient with grad / (2 std), 0 where std is 0
    x, out = s
    with np.errstate(divide="ignore", invalid="ignore"):
        gv = np.where(out == 0, 0, g / (2 * out)).astype(g.dtype, copy=False)
    return (_var_backward(gv, x, dim, correction, keepdim),)


def _bce_fw(x, y, reduction):
    # PyTorch's binary_cross_entropy kernel: (y - 1) max(log(1 - x), -100) - y max(log x, -100)
    with np.errstate(divide="ignore"):
        loss = (y - 1) * np.maximum(np.log1p(-x), -100) - y * np.maximum(np.log(x), -100)
    return _reduce_loss(loss.astype(x.dtype, copy=False), reduction), (x, y)


def _bce_bw(g, s, reduction):
    # ∂/∂x = (x - y) / max((1 - x) x, 1e-12) · g; ∂/∂y = (log(1 - x) - log x) · g (both clamped at -100)
    x, y = s
    gx = g * (x - y) / np.maximum((1 - x) * x, 1e-12)
    with np.errstate(divide="ignore"):
        gy = g * (np.maximum(np.log1p(-x), -100) - np.maximum(np.log(x), -100))
    if reduction == "mean":
        gx, gy = gx / x.size, gy / y.size
    return gx.astype(x.dtype, copy=False), gy.astype(y.dtype, copy=False)


_RULE_LIST = [
    # binary, elementwise (with broadcasting)
    Rule("AddBackward0", "add", lambda a, b: (a + b, None), lambda g, s: (g, g), False, True),
    Rule("SubBackward0", "sub", lambda a, b: (a - b, None), lambda g, s: (g, -g), False, True),
    Rule("MulBackward0", "mul", lambda a, b: (a * b, (a, b)), lambda g, s: (g * s[1], g * s[0]), True, True),
    Rule("DivBackward0", "div", lambda a, b: (a / b, (a, b)),
         lambda g, s: (g / s[1], -g * ((s[0] / s[1]) / s[1])), True, True),     # PyTorch's order
    Rule("PowBackward1", "pow", lambda a, b: ((out := _pow(a, b)), (a, b, out)),
         lambda g, s: (np.where(s[1] == 0, 0.0, g * (s[1] * s[0] ** (s[1] - 1))).astype(s[2].dtype, copy=False),
                        _pow_grad_exponent(g, s[0], s[1], s[2])), True, True),
    # unary
    Rule("PowBackward0", "pow_scalar", _pow_scalar_fw, _pow_scalar_bw),
    Rule("NegBackward0", "neg", lambda x: (-x, None), lambda g, s: (-g,), False),
    Rule("ReciprocalBackward0", "reciprocal", _reciprocal_fw, lambda g, s: (-g * (s * s),)),
    Rule("ExpBackward0", "exp", lambda x: ((out := _libm(np.exp, x)), out), lambda g, s: (g * s,)),
    Rule("LogBackward0", "log", lambda x: (_libm(np.log, x), x), lambda g, s: (g / s,)),
    Rule("SqrtBackward0", "sqrt", lambda x: ((out := np.sqrt(_float(x))), out), lambda g, s: (g / (2 * s),)),
    Rule("AbsBackward0", "abs", lambda x: (np.abs(x), x), lambda g, s: (g * np.sign(s),)),
    Rule("TanhBackward0", "tanh", lambda x: ((out := _libm(np.tanh, x)), out), lambda g, s: (_tanh_bw(g, s),)),
    Rule("SigmoidBackward0", "sigmoid", lambda x: ((out := _sigmoid(x)), out), lambda g, s: (_sigmoid_bw(g, s),)),
    # NOTE: relu and clamp select (PyTorch's threshold_backward / clamp_backward): an inf or nan arriving
    # at a masked element gives 0, where multiplying by the mask would give nan.
    Rule("ReluBackward0", "relu", lambda x: ((out := _relu(x)), out),
         lambda g, s: (_select(s <= 0, g, drop=True),)),
    Rule("ClampBackward1", "clamp", _clamp_fw, _clamp_bw),
    Rule("ToCopyBackward0", "to", lambda x, dtype: (x.astype(dtype), x.dtype),
         lambda g, s, dtype: (g.astype(s),), False),
    # linear algebra
    Rule("MmBackward0", "matmul", lambda a, b: (_mm(a, b), (a, b)), _matmul_bw),
    # nn.Linear on a batch: x @ W^T + b in one op (PyTorch's addmm), inputs (x, W, b)
    Rule("AddmmBackward0", "addmm", _addmm_fw, _addmm_bw, masked=True),
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
    # softmax and the losses: one node each, as in PyTorch (the formula of the gradient is for the view)
    Rule("SoftmaxBackward0", "softmax", _softmax_fw,
         lambda g, s, dim: ((g - (g * s).sum(axis=dim, keepdims=True)) * s,)),
    Rule("LogSoftmaxBackward0", "log_softmax", _log_softmax_fw,
         lambda g, s, dim: (g - np.exp(s) * g.sum(axis=dim, keepdims=True),)),
    Rule("MseLossBackward0", "mse_loss", _mse_fw, _mse_bw),
    Rule("BinaryCrossEntropyWithLogitsBackward0", "bce_with_logits", _bce_logits_fw, _bce_logits_bw),
    # the class indices are a keyword (not an input): PyTorch's NllLossBackward0 has one next function
    Rule("NllLossBackward0", "nll_loss", _nll_fw, _nll_bw),
    # added for scripts: selection, joining and statistics, with PyTorch's gradients
    Rule("MinBackward1", "min", lambda x: ((out := x.min()), (x, out)), _min_all_bw),
    Rule("MinBackward0", "min_dim", _min_dim_fw, _max_dim_bw),
    Rule("MaximumBackward0", "maximum", lambda a, b: (np.maximum(a, b), (a, b)),
         lambda g, s: _extremum_bw(g, s, np.greater_equal), True, True),
    Rule("MinimumBackward0", "minimum", lambda a, b: (np.minimum(a, b), (a, b)),
         lambda g, s: _extremum_bw(g, s, np.less_equal), True, True),
    # the condition is a keyword (a bool array), not an input: it gets no gradient
    Rule("WhereBackward0", "where", lambda a, b, condition: (np.where(condition, a, b), None),
         lambda g, s, condition: (_select(condition, g), _select(~condition, g)), False, True),
    Rule("StackBackward0", "stack", lambda *arrays, dim, dtype: (np.stack(arrays, axis=dim).astype(dtype, copy=False),
                                                                 None), _stack_bw, False),
    Rule("CatBackward0", "cat", _cat_fw, _cat_bw, False),
    Rule("LinalgVectorNormBackward0", "norm",
         lambda x, ord, dim, keepdim: ((out := vector_norm(x, ord, dim, keepdim)), (x, out)),
         lambda g, s, ord, dim, keepdim: (vector_norm_backward(g, s[0], s[1], ord, dim, keepdim),)),
    Rule("VarBackward0", "var", lambda x, dim, correction, keepdim: (_var(x, dim, correction, keepdim), x),
         lambda g, s, dim, correction, keepdim: (_var_backward(g, s, dim, correction, keepdim),)),
    Rule("StdBackward0", "std", _std_fw, _std_bw),
    Rule("LeakyReluBackward0", "leaky_relu", lambda x, negative_slope: (np.where(x > 0, x, x * negative_slope), x),
         lambda g, s, negative_slope: (np.where(s > 0, g, g * negative_slope),)),
    Rule("BinaryCrossEntropyBackward0", "bce", _bce_fw, _bce_bw),
    # in-place writes (gradviz._inplace): the overwritten values get no gradient
    Rule("ZeroBackward0", "zero", lambda x: (np.zeros_like(x), None), lambda g, s: (np.zeros_like(g),), False),
    Rule("FillBackward2", "fill", lambda x, value: (np.full_like(x, value), None),
         lambda g, s, value: (np.zeros_like(g),), False),
    Rule("CopyBackwards", "copy", lambda x, src: (src, None), lambda g, s: (np.zeros_like(g), g), False, True),
    # t[index] = v: the assigned part of the gradient goes to v (summed over broadcast dims), the rest to t
    Rule("CopySlices", "setitem", None, _setitem_bw, False),
]

# The formulas of every row, for the view (gradviz.view.formulas renders them; the engine never reads them).
MATH: dict[str, OpMath] = {
    "add": OpMath(("a", "b"), "{a} + {b}", ("1", "1")),
    "sub": OpMath(("a", "b"), "{a} − {b}", ("1", "−1")),
    "mul": OpMath(("a", "b"), "{a} · {b}", ("{b}", "{a}")),
    "div": OpMath(("a", "b"), "\\frac{{a}}{{b}}", ("\\frac{1}{{b}}", "−\\frac{{a}}{{b}^{2}}")),
    "pow": OpMath(("a", "b"), "{a}^{{b}}", ("{b} · {a}^{{b} − 1}", "{out} · log {a}")),
    "pow_scalar": OpMath(("x",), "{x}^{{exponent}}", ("{exponent} · {x}^{{exponent} − 1}",)),
    "neg": OpMath(("x",), "−{x}", ("−1",)),
    "reciprocal": OpMath(("x",), "\\frac{1}{{x}}", ("−{out}^{2}",)),
    "exp": OpMath(("x",), "exp({x})", ("{out}",), note="exp is its own derivative"),
    "log": OpMath(("x",), "log({x})", ("\\frac{1}{{x}}",)),
    "sqrt": OpMath(("x",), "\\sqrt{{x}}", ("\\frac{1}{2 · {out}}",)),
    "abs": OpMath(("x",), "|{x}|", ("sign({x})",)),
    "tanh": OpMath(("x",), "tanh({x})", ("1 − {out}^{2}",)),
    "sigmoid": OpMath(("x",), "σ({x}) = \\frac{1}{1 + exp(−{x})}", ("{out} · (1 − {out})",)),
    "relu": OpMath(("x",), "max({x}, 0)", ("[{out} > 0]",), note="[·] is 1 where true, else 0"),
    "clamp": OpMath(("x",), "clamp({x}, {min}, {max})", ("[{min} ≤ {x} ≤ {max}]",)),
    "to": OpMath(("x",), "{x} (cast to {dtype})", ("1",), note="the gradient is cast back to the input's dtype"),
    "matmul": OpMath(("A", "B"), "{A} @ {B}", grads=("{g} @ {B}^{T}", "{A}^{T} @ {g}")),
    "addmm": OpMath(("x", "W", "b"), "{x} @ {W}^{T} + {b}",
                    grads=("{g} @ {W}", "{g}^{T} @ {x}", "Σ_{i} {g}"),
                    note="nn.Linear on a batch: out[i,j] = Σ_k x[i,k]·W[j,k] + b[j]"),
    "sum": OpMath(("x",), "Σ {x}", grads=("{g} (copied to every element)",)),
    "mean": OpMath(("x",), "\\frac{1}{{N}} Σ {x}", grads=("\\frac{{g}}{{N}} (to every element)",)),
    "max": OpMath(("x",), "max {x}", grads=("{g} at the maximum (split among ties), 0 elsewhere",)),
    "max_dim": OpMath(("x",), "max_{{dim}} {x}", grads=("{g} at each maximum, 0 elsewhere",)),
    "min": OpMath(("x",), "min {x}", grads=("{g} at the minimum (split among ties), 0 elsewhere",)),
    "min_dim": OpMath(("x",), "min_{{dim}} {x}", grads=("{g} at each minimum, 0 elsewhere",)),
    "reshape": OpMath(("x",), "{x}.view({shape})", grads=("{g}.view(shape of {x})",)),
    "permute": OpMath(("x",), "{x}.permute({axes})", grads=("{g} permuted back",)),
    "getitem": OpMath(("x",), "{x}[index]", grads=("{g} at the index, 0 elsewhere",)),
    "index": OpMath(("x",), "{x}[index]", grads=("{g} added at each index, 0 elsewhere",)),
    "softmax": OpMath(("x",), "\\frac{exp({x}_{i})}{Σ_{j} exp({x}_{j})}",
                      grads=("{out} ⊙ ({g} − Σ {g} ⊙ {out})",), note="s = softmax(x) is the output"),
    "log_softmax": OpMath(("x",), "{x}_{i} − log Σ_{j} exp({x}_{j})",
                          grads=("{g} − softmax({x}) · Σ {g}",)),
    "mse_loss": OpMath(("pred", "y"), "\\frac{1}{{N}} Σ ({pred} − {y})^{2}",
                       ("\\frac{2({pred} − {y})}{{N}}", "\\frac{2({y} − {pred})}{{N}}"),
                       note="reduction='mean'; for 'sum' N is 1"),
    "bce_with_logits": OpMath(("z", "y"), "\\frac{1}{{N}} Σ [(1 − {y}) · {z} − log σ({z})]",
                              ("\\frac{σ({z}) − {y}}{{N}}", "\\frac{−{z}}{{N}}"),
                              note="σ(z) − y: the logit's gradient is the predicted probability minus the label"),
    "nll_loss": OpMath(("logp",), "−\\frac{1}{{N}} Σ_{i} {logp}[i, y_{i}]",
                       grads=("−\\frac{{g}}{{N}} at each target class, 0 elsewhere",)),
    "maximum": OpMath(("a", "b"), "max({a}, {b})", ("[{a} ≥ {b}]", "[{b} ≥ {a}]"), note="ties split g in half"),
    "minimum": OpMath(("a", "b"), "min({a}, {b})", ("[{a} ≤ {b}]", "[{b} ≤ {a}]"), note="ties split g in half"),
    "where": OpMath(("a", "b"), "where(cond, {a}, {b})", ("[cond]", "[not cond]")),
    "stack": OpMath(("x",), "stack({x}, …)", grads=("{g} split along dim {dim}",)),
    "cat": OpMath(("x",), "cat({x}, …)", grads=("{g} split along dim {dim}",)),
    "norm": OpMath(("x",), "‖{x}‖", grads=("{g} · \\frac{{x}}{‖{x}‖} (for the 2-norm)",)),
    "var": OpMath(("x",), "\\frac{1}{{N} − c} Σ ({x} − mean({x}))^{2}",
                  grads=("{g} · \\frac{2({x} − mean({x}))}{{N} − c}",)),
    "std": OpMath(("x",), "\\sqrt{var({x})}", grads=("{g} · \\frac{{x} − mean({x})}{({N} − c) · {out}}",)),
    "leaky_relu": OpMath(("x",), "max({x}, 0) + {negative_slope} · min({x}, 0)",
                         ("[{x} > 0] + {negative_slope} · [{x} ≤ 0]",)),
    "bce": OpMath(("p", "y"), "−\\frac{1}{{N}} Σ [{y} log {p} + (1 − {y}) log(1 − {p})]",
                  ("\\frac{{p} − {y}}{{N} · {p}(1 − {p})}", "\\frac{log(1 − {p}) − log {p}}{{N}}")),
    "zero": OpMath(("x",), "0", ("0",), note="overwritten in place: no gradient to the old values"),
    "fill": OpMath(("x",), "{value}", ("0",), note="overwritten in place: no gradient to the old values"),
    "copy": OpMath(("x", "src"), "{src}", ("0", "1")),
    "setitem": OpMath(("x", "v"), "{x} with {x}[index] = {v}", grads=("{g}, 0 at the index", "Σ {g}[index]")),
}
_RULE_LIST = [Rule(r.name, r.short, r.forward, r.backward, r.saves, r.elementwise, MATH.get(r.short), r.masked)
              for r in _RULE_LIST]
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
    ("pow", "rpow"): "PowBackward2", ("to", "clone"): "CloneBackward0", ("permute", "t"): "TBackward0",
}

# The tensors each rule saves for backward, as PyTorch saves them (``autograd.record_versions`` checks
# that none was changed in place before backward): input positions, "o" for the output; "cross" for
# products (each factor is saved when the other needs a gradient), "div" for the quotient.
SAVED_TENSORS = {
    "mul": "cross", "matmul": "cross", "addmm": "cross", "div": "div", "pow": "01o", "pow_scalar": "0",
    "reciprocal": "o", "exp": "o", "sqrt": "o", "tanh": "o", "sigmoid": "o", "relu": "o", "softmax": "o",
    "log_softmax": "o", "log": "0", "abs": "0", "clamp": "0", "max": "0o", "mse_loss": "01",
    "bce_with_logits": "01", "nll_loss": "0", "min": "0o", "maximum": "01", "minimum": "01",
    "norm": "0o", "var": "0", "std": "0o", "leaky_relu": "0", "bce": "01",
}
