"""Reductions computed as PyTorch's CPU kernels compute them: ``vector_norm``, ``var``/``std``.

A norm is what ``clip_grad_norm_`` prints and multiplies every gradient by, so its last bit
matters.  torch 2.13's 2-norm over a contiguous float32/float64 tensor (``vector_norm(x)``,
``x.norm()``) runs ``binary_kernel_reduce_lastdim``: one 32-byte vector of partial sums of squares
(8 float32 or 4 float64 lanes, one multiply and one add per element, each rounded), the lanes added
left to right, then the elements that do not fill a vector added one by one. The compiler unrolls
that last loop by four: a group of four squares is computed first and added (two roundings each),
the last ``tail % 4`` are fused multiply-adds (one rounding). Measured bit for bit against torch
on an AVX512 machine (tests/core/test_script_api_torch.py); a ``default`` build (no FMA) rounds
every square.
"""
from __future__ import annotations

import math

import numpy as np

from .random import _TORCH_KERNELS, _fma, _fmaf

_VECTOR_BYTES = 32


def _sum_of_squares(x: np.ndarray):
    """Sum of squares of a 1-D float32/float64 array, in torch's order and rounding."""
    dt = x.dtype.type
    lanes = _VECTOR_BYTES // x.dtype.itemsize
    n = x.size
    full = n - n % lanes
    if full:
        sq = x[:full] * x[:full]
        acc = sq.reshape(-1, lanes)
        acc = np.einsum("ij->j", acc) if acc.shape[0] > 1 else acc[0]   # row after row, as the loop adds
        total = acc[0]
        for j in range(1, lanes):
            total = dt(total + acc[j])
    else:
        total = dt(0)
    tail = x[full:]
    fused_from = len(tail) - len(tail) % 4 if _TORCH_KERNELS != "default" else len(tail)
    for k, v in enumerate(tail):
        if k < fused_from:
            total = dt(total + dt(v * v))
        elif dt is np.float32:
            total = dt(_fmaf(v, v, total))
        else:
            total = dt(_fma(v, v, total))
    return total


def vector_norm(x: np.ndarray, ord: float = 2.0, dim=None, keepdim: bool = False) -> np.ndarray:  # noqa: A002
    """``torch.linalg.vector_norm(x, ord, dim, keepdim)`` on an array (float dtypes)."""
    ord = float(ord)
    if dim is None and ord == 2.0 and x.dtype.kind == "f" and x.dtype.itemsize >= 4 and not keepdim:
        total = _sum_of_squares(np.ascontiguousarray(x).ravel())
        return np.asarray(np.sqrt(total), dtype=x.dtype)
    work = x.astype(np.float32) if x.dtype.itemsize < 4 or x.dtype.kind != "f" else x
    a = np.abs(work)
    if ord == math.inf:
        out = a.max(axis=dim, keepdims=keepdim) if a.size else np.zeros((), work.dtype)
    elif ord == -math.inf:
        out = a.min(axis=dim, keepdims=keepdim)
    elif ord == 0:
        out = (a != 0).sum(axis=dim, keepdims=keepdim).astype(work.dtype)
    elif ord == 1:
        out = a.sum(axis=dim, keepdims=keepdim)
    elif ord == 2:
        out = np.sqrt((a * a).sum(axis=dim, keepdims=keepdim))
    else:
        out = (a ** ord).sum(axis=dim, keepdims=keepdim) ** (1 / ord)
    return np.asarray(out, dtype=x.dtype)


def vector_norm_backward(g: np.ndarray, x: np.ndarray, norm: np.ndarray, ord: float, dim, keepdim: bool):
    """The gradient of :func:`vector_norm` (PyTorch's ``norm_backward``): ``x / ‖x‖ · g`` for the
    2-norm, ``sign(x) · g`` for the 1-norm, shared evenly among the largest |x| for inf."""
    if dim is not None and not keepdim:
        g = np.expand_dims(g, dim)
        norm = np.expand_dims(norm, dim)
    ord = float(ord)
    with np.errstate(divide="ignore", invalid="ignore"):
        if ord == 0:
            return np.zeros_like(x)
        if ord == 1:
            return np.sign(x) * g
        if ord == 2:
            scale = np.where(norm == 0, 0, g / norm)
            return (x * scale).astype(x.dtype, copy=False)
        if math.isinf(ord):
            mask = np.abs(x) == norm
            count = mask.sum(axis=dim, keepdims=True) if dim is not None else mask.sum()
            return (np.sign(x) * mask * (g / count)).astype(x.dtype, copy=False)
        scale = np.where(norm == 0, 0, g / norm ** (ord - 1))
        return (x * np.abs(x) ** (ord - 2) * scale).astype(x.dtype, copy=False)


def var(x: np.ndarray, dim=None, correction: float = 1, keepdim: bool = False) -> np.ndarray:
    """``x.var(dim, correction=c)``: the mean, then the squared deviations, in float64 for float32
    (PyTorch's CPU kernel accumulates in double), divided by ``n - c`` (nan when that is <= 0 and
    there is something to divide, as torch gives)."""
    work = x.astype(np.float64) if x.dtype.itemsize <= 4 else x
    n = x.size if dim is None else math.prod(x.shape[d] for d in (dim if isinstance(dim, tuple) else (dim,)))
    mean = work.mean(axis=dim, keepdims=True)
    d = work - mean
    with np.errstate(divide="ignore", invalid="ignore"):
        out = (d * d).sum(axis=dim, keepdims=keepdim) / max(n - correction, 0)
    return np.asarray(out, dtype=x.dtype)


def var_backward(g: np.ndarray, x: np.ndarray, dim, correction: float, keepdim: bool) -> np.ndarray:
    """∂var/∂x = 2 (x − mean) / (n − c) · g."""
    n = x.size if dim is None else math.prod(x.shape[d] for d in (dim if isinstance(dim, tuple) else (dim,)))
    if dim is not None and not keepdim:
        g = np.expand_dims(g, dim)
    mean = x.mean(axis=dim, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        return ((2 / (n - correction)) * (x - mean) * g).astype(x.dtype, copy=False)
