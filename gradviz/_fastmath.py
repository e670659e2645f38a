"""A float32 ``tanh`` and ``exp`` with the bits of the float64 function rounded once, without libm.

Why: the core computes a float32 ``tanh``/``exp`` in float64 and rounds it once, because that has
PyTorch's bits far more often than numpy's float32 kernels (see ``functions._libm``).  But numpy's
float64 ``tanh`` and ``exp`` are libm's scalar loops wherever numpy has no AVX-512 version: about
18 and 10 ns an element, where torch's SLEEF ``tanhf`` takes 2-4 ns.  On such a CPU a 2-64-64-1
MLP on 2,000 points spent most of its step in ``tanh`` (issue 14).

How: ``exp(z) = 2**(k/N) * exp(r)`` with ``k = round(z * N / ln 2)`` and ``|r| <= ln 2 / (2N)``,
``N = 128``; ``2**(k/N)`` is a table entry for ``k mod N`` with ``k // N`` added to its exponent
bits, and ``exp(r) - 1`` is a degree-5 polynomial (its error, under 2**-52, is relative to
``exp(r) - 1`` itself, which ``tanh`` near 0 needs).  ``tanh(x)`` is
``e / (e + 2)`` with ``e = expm1(2x)``, which has no cancellation at small ``x``.  Everything runs in
numpy's float64 vector ops over blocks that stay in cache, with no allocation per block.

The result is the float64 value to well under 2**-45 relative, so after rounding to float32 it
equals ``np.tanh(x.astype(float64)).astype(float32)`` except when the exact value lies within
that distance of a float32 rounding boundary: none of the 25 million values the tests compare
does (a degree-4 polynomial missed one in two million).  Arrays under ``MIN_ELEMENTS`` keep the
libm path: there the ~25 calls cost more than they save.  NaN, infinities, signed zeros, subnormal
inputs, overflow and underflow give libm's answers.
"""
from __future__ import annotations

import threading

import numpy as np

MIN_ELEMENTS = 12288         # below this the libm path is as fast (fixed cost of ~25 numpy calls)
BLOCK = 32768                # elements per block: ~1 us a numpy call is spread over this many

_N = 128
_SHIFT = 1.5 * 2.0 ** 52     # adding it leaves round(v) in the low mantissa bits
_LN2_N = float(np.log(2.0) / _N)
_N_LN2 = float(_N / np.log(2.0))
_J = np.arange(_N, dtype=np.int64)
# 2**(j/N) as bits, less j << 45: adding (k << 45) then adds (k >> 7) to the exponent field.
_TABLE = (2.0 ** (_J / _N)).view(np.int64) - (_J << 45)
_TANH_CLIP = 20.0            # tanh(20) is 1 to float64; keeps exp(2x) in range
_EXP_LO, _EXP_HI = -110.0, 100.0   # beyond these a float32 exp is 0 or inf; keeps the exponent bits valid


class _Work(threading.local):
    """Per-thread scratch buffers (the run thread and the UI thread may both compute)."""

    def __init__(self):
        self.f = [np.empty(BLOCK) for _ in range(3)]
        self.i = [np.empty(BLOCK, np.int64) for _ in range(2)]


_work = _Work()


def _expm1_parts(z, r, q, s_bits, j):
    """From ``z`` (float64, clipped; left as it is), leave ``exp(r) - 1`` in ``q`` and ``2**(k/N)``
    as float64 bits in ``s_bits``; ``exp(z) - 1 = q * s - (1 - s)``."""
    np.multiply(z, _N_LN2, out=r)
    r += _SHIFT
    kb = r.view(np.int64)
    np.bitwise_and(kb, _N - 1, out=j)
    np.take(_TABLE, j, out=s_bits, mode="clip")
    np.left_shift(kb, 45, out=j)
    s_bits += j
    r -= _SHIFT                          # k, as a float
    r *= _LN2_N
    np.subtract(z, r, out=r)             # r = z - k ln2/N (the product's rounding: 2**-53 of |z|)
    np.multiply(r, 1 / 120, out=q)
    q += 1 / 24
    q *= r
    q += 1 / 6
    q *= r
    q += 0.5
    q *= r
    q += 1.0
    q *= r                               # exp(r) - 1, sign of zero kept: r = -0 gives -0


def _blocks(x, out, body):
    flat_in = x.reshape(-1)
    flat_out = out.reshape(-1)
    w = _work
    for lo in range(0, flat_in.size, BLOCK):
        hi = min(lo + BLOCK, flat_in.size)
        n = hi - lo
        body(flat_in[lo:hi], flat_out[lo:hi], *(b[:n] for b in w.f), *(b[:n] for b in w.i))
    return out


def _tanh_block(x, out, z, r, q, s_bits, j):
    np.clip(x, -_TANH_CLIP, _TANH_CLIP, out=z)     # float32 -> float64; NaN stays NaN
    z *= 2.0
    _expm1_parts(z, r, q, s_bits, j)
    s = s_bits.view(np.float64)
    q *= s
    np.subtract(1.0, s, out=s)           # exact where it matters: s in [0.5, 2] when |2x| < ln 2 / 2
    q -= s                               # e = expm1(2x); -0 - 0 stays -0
    np.add(q, 2.0, out=r)
    np.divide(q, r, out=out)             # rounded once to float32 here


def _exp_block(x, out, z, r, q, s_bits, j):
    np.clip(x, _EXP_LO, _EXP_HI, out=z)
    _expm1_parts(z, r, q, s_bits, j)
    s = s_bits.view(np.float64)
    q *= s
    q += s                               # exp(z) = s * (exp(r) - 1) + s
    np.copyto(out, q, casting="same_kind")


def _apply(x: np.ndarray, fn, block) -> np.ndarray:
    if x.size < MIN_ELEMENTS:
        return fn(x.astype(np.float64)).astype(np.float32)
    x = np.ascontiguousarray(x)
    with np.errstate(invalid="ignore", over="ignore"):
        return _blocks(x, np.empty(x.shape, np.float32), block)


def tanh_f32(x: np.ndarray) -> np.ndarray:
    """``tanh`` of a float32 array, as ``np.tanh`` in float64 rounded once to float32."""
    return _apply(x, np.tanh, _tanh_block)


def exp_f32(x: np.ndarray) -> np.ndarray:
    """``exp`` of a float32 array, as ``np.exp`` in float64 rounded once to float32."""
    return _apply(x, np.exp, _exp_block)
