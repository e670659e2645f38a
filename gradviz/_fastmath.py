"""A float32 ``tanh`` and ``exp`` with the bits of the float64 function rounded once, without libm.

Why: the core computes a float32 ``tanh``/``exp`` in float64 and rounds it once, because that has
PyTorch's bits far more often than numpy's float32 kernels (see ``functions._libm``).  But numpy's
float64 ``tanh`` and ``exp`` are libm's scalar loops wherever numpy has no AVX-512 version: about
14-20 and 10 ns an element, where torch's SLEEF ``tanhf`` takes 3 ns.  On such a CPU a 2-64-64-1
MLP on 2,000 points spent most of its step in ``tanh`` (issue 14).

How, ``tanh``: ``x = k/M + d`` with ``M = 128``, ``|d| <= 1/(2M)`` (adding ``1.5 * 2**45`` rounds a
float64 to a multiple of ``1/M``, and leaves ``k`` in its low mantissa bits: the table index), then
``tanh(x) = (t + u) / (1 + t*u)`` with ``t = tanh(k/M)`` from a table of float64 values and
``u = tanh(d) = d * (1 - d**2/3 + 2 d**4/15)``, whose truncation error is under 2**-52 of ``u``.
``d`` is exact, ``t + u`` cancels at most a factor of 3 (``|u| <= |t| / 2`` whenever ``k != 0``), so
the result is the float64 value to a few units of 2**-52: 16 numpy calls a block (25 for the
``expm1`` form below, which ``tanh`` used before: 25 % more time).

How, ``exp``: ``exp(z) = 2**(k/N) * exp(r)`` with ``k = round(z * N / ln 2)`` and
``|r| <= ln 2 / (2N)``, ``N = 128``; ``2**(k/N)`` is a table entry for ``k mod N`` with ``k // N``
added to its exponent bits, and ``exp(r) - 1`` is a degree-5 polynomial (error under 2**-52,
relative to ``exp(r) - 1`` itself).

Everything runs in numpy's float64 vector ops over blocks that stay in cache, with no allocation
per block.  After rounding to float32 the result equals ``np.tanh(x.astype(float64)).astype(float32)``
(``np.exp`` likewise) except when the exact value lies within ~2**-45 of a float32 rounding
boundary: none of the ~35 million values the tests compare does (nor of ~62 million in a check run
once).  Arrays under ``MIN_ELEMENTS`` keep the libm path: there the fixed cost of the calls (and of
a cache the rest of the step has cooled) is more than they save.  NaN, infinities, signed zeros,
subnormal inputs, overflow and underflow give libm's answers.

Where numpy's float64 ``tanh``/``exp`` are vectorized (its AVX-512 builds: 1.4 and 0.7 ns an element
on a Xeon, against the kernel's 5), the kernel is the slower path: ``path`` times both once on one
block and takes numpy's own function there, still a block at a time in the scratch buffers, since a
float64 temporary the size of a 128,000-element activation costs its page faults (740 us against
230 us in blocks).  Both paths give the same bits; the choice is about time alone.
"""
from __future__ import annotations

import os
import threading
import time

import numpy as np

MIN_ELEMENTS = 8192          # tanh: below this the libm path is as fast in a model step (16 numpy calls, cold cache)
MIN_EXP_ELEMENTS = 12288     # exp: the same for its 22 calls
BLOCK = 32768                # elements per block: ~1 us a numpy call is spread over this many

_N = 128
_SHIFT = 1.5 * 2.0 ** 52     # adding it leaves round(v) in the low mantissa bits
_LN2_N = float(np.log(2.0) / _N)
_N_LN2 = float(_N / np.log(2.0))
_J = np.arange(_N, dtype=np.int64)
# 2**(j/N) as bits, less j << 45: adding (k << 45) then adds (k >> 7) to the exponent field.
_TABLE = (2.0 ** (_J / _N)).view(np.int64) - (_J << 45)
_TANH_CLIP = 10.0            # tanh(x) rounds to 1.0f from |x| = 9.02 on; keeps the table small
_M = 128                     # tanh's table step is 1/M
_ROUND_M = 1.5 * 2.0 ** 45   # z + _ROUND_M is z rounded to a multiple of 1/M, with k in its low bits
_TANH_K = int(_TANH_CLIP * _M)
_TANH_OFFSET = int(np.array(_ROUND_M).view(np.int64)) - _TANH_K     # bits - offset = k + K: the index
_TANH_TABLE = np.tanh(np.arange(-_TANH_K, _TANH_K + 1, dtype=np.float64) / _M)
_TANH_TABLE[_TANH_K] = -0.0  # t + u at k = 0 then keeps the sign of a zero u
_take_tanh = _TANH_TABLE.take
_C3, _C5 = -1 / 3, 2 / 15
# the clip ufunc itself, without np.clip's Python wrapper (2 us a call); np.clip where it is absent
_clip = getattr(getattr(np, "_core", None), "umath", None)
_clip = getattr(_clip, "clip", None) or np.clip
_EXP_LO, _EXP_HI = -110.0, 100.0   # beyond these a float32 exp is 0 or inf; keeps the exponent bits valid


class _Work(threading.local):
    """Per-thread scratch buffers (the run thread and the UI thread may both compute)."""

    def __init__(self):
        self.f = [np.empty(BLOCK) for _ in range(4)]
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


def _blocks(inputs: tuple, out: np.ndarray, body) -> np.ndarray:
    """``body(*input blocks, out block, *scratch)`` over blocks of ``BLOCK`` elements of C-contiguous
    ``inputs`` and ``out`` (all of one size), with this thread's scratch buffers cut to the block."""
    flats = [a.reshape(-1) for a in inputs]
    flat_out = out.reshape(-1)
    w = _work
    for lo in range(0, flat_out.size, BLOCK):
        hi = min(lo + BLOCK, flat_out.size)
        n = hi - lo
        body(*(f[lo:hi] for f in flats), flat_out[lo:hi], *(b[:n] for b in w.f), *(b[:n] for b in w.i))
    return out


def _tanh_block(x, out, z, r, d, t, j, _j):
    _clip(x, -_TANH_CLIP, _TANH_CLIP, z)     # float32 -> float64; NaN stays NaN
    np.add(z, _ROUND_M, r)
    np.subtract(r.view(np.int64), _TANH_OFFSET, j)
    _take_tanh(j, out=t, mode="clip")   # t = tanh(k/M); a NaN's index is clipped, its d is NaN
    r -= _ROUND_M                       # k/M
    np.subtract(z, r, d)                # d = x - k/M, exact
    np.multiply(d, d, z)
    np.multiply(z, _C5, r)
    r += _C3
    r *= z
    r += 1.0
    r *= d                              # u = tanh(d); a product, so -0 stays -0
    np.multiply(t, r, z)
    z += 1.0
    t += r
    np.divide(t, z, out)                # (t + u) / (1 + t u), rounded once to float32 here


def _exp_block(x, out, z, r, q, _f, s_bits, j):
    np.clip(x, _EXP_LO, _EXP_HI, out=z)
    _expm1_parts(z, r, q, s_bits, j)
    s = s_bits.view(np.float64)
    q *= s
    q += s                               # exp(z) = s * (exp(r) - 1) + s
    np.copyto(out, q, casting="same_kind")


def _libm_block(fn):
    """numpy's float64 ``fn`` itself, a block at a time in a scratch buffer: no float64 temporary the
    size of the array (whose page faults cost as much as a vectorized ``tanh``)."""
    def block(x, out, z, *_):
        np.copyto(z, x)
        fn(z, out=z)
        np.copyto(out, z, casting="same_kind")
    return block


_PATHS = {"tanh": (np.tanh, _tanh_block, MIN_ELEMENTS), "exp": (np.exp, _exp_block, MIN_EXP_ELEMENTS)}
_LIBM_BLOCKS = {name: _libm_block(fn) for name, (fn, _, _) in _PATHS.items()}
_chosen: dict[str, str] = {}
CALIBRATION_ELEMENTS = 4096
LIBM_BLOCKED_FROM = 65536     # the libm path in blocks from here: below, allocating the float64
                              # temporary is cheaper than the blocks' calls; above, its page faults cost more
LIBM_IF_FASTER_BY = 0.75      # libm is taken when it takes under this share of the kernel's time


def _calibrate(name: str) -> str:
    """``"libm"`` where numpy's float64 ``fn`` is vectorized (AVX-512: ``tanh`` 1.4 ns an element against
    the kernel's 5), else ``"kernel"`` (libm's scalar loop: 15-30 ns).  Both give the same bits; this
    only picks the faster, timing each on the same block, best of 5 (about 1 ms, once a process)."""
    forced = os.environ.get("GRADVIZ_FASTMATH", "")
    if forced in ("libm", "kernel"):
        return forced
    x = np.linspace(-5, 5, CALIBRATION_ELEMENTS, dtype=np.float32)
    out = np.empty_like(x)
    w = _work
    scratch = [b[:x.size] for b in w.f] + [b[:x.size] for b in w.i]
    best = {}
    with np.errstate(invalid="ignore", over="ignore"):
        for path, block in (("libm", _LIBM_BLOCKS[name]), ("kernel", _PATHS[name][1])):
            times = []
            for _ in range(5):
                start = time.perf_counter()
                block(x, out, *scratch)
                times.append(time.perf_counter() - start)
            best[path] = min(times)
    return "libm" if best["libm"] < LIBM_IF_FASTER_BY * best["kernel"] else "kernel"


def path(name: str) -> str:
    """The path ``tanh_f32``/``exp_f32`` take on this machine: ``"libm"`` or ``"kernel"``."""
    chosen = _chosen.get(name)
    if chosen is None:
        chosen = _chosen[name] = _calibrate(name)
    return chosen


def _apply(x: np.ndarray, name: str, how: str | None) -> np.ndarray:
    fn, kernel, min_elements = _PATHS[name]
    if how is None and x.size >= min_elements:
        how = path(name)
    if x.size < (LIBM_BLOCKED_FROM if how == "libm" else min_elements):
        return fn(x.astype(np.float64)).astype(np.float32)
    x = np.ascontiguousarray(x)
    with np.errstate(invalid="ignore", over="ignore"):
        return _blocks((x,), np.empty(x.shape, np.float32), _LIBM_BLOCKS[name] if how == "libm" else kernel)


def tanh_backward_f32(g: np.ndarray, s: np.ndarray) -> np.ndarray:
    """``g * fma(-s, s, 1)`` for float32 ``g`` and ``s`` of one shape: torch's float32 tanh_backward, whose
    ``1 - s*s`` is one fused multiply-add (rounded once), then a float32 product.  The square is exact
    in float64, and so is the difference for ``|s| >= 0.18``; below, the float64 difference is rounded
    once more, which changes the float32 result only when it lands on a float32 tie (about once in
    2**29 such elements).  In blocks through the scratch buffers: 130 us on 131,072 values, against
    215 us for numpy's casting loops on whole arrays and 60 us for two float32 roundings."""
    if s.size <= BLOCK:                  # one block: whole-array temporaries, fewer calls (4.6 us at 4,096, not 6.5)
        d = s.astype(np.float64)
        np.multiply(d, d, out=d)
        np.subtract(1.0, d, out=d)
        out = d.astype(np.float32)
        out *= g
        return out
    return _blocks((np.ascontiguousarray(s), np.ascontiguousarray(g)), np.empty(s.shape, np.float32),
                   _tanh_backward_block)


def _tanh_backward_block(s, g, out, z, *_):
    np.copyto(z, s)
    np.multiply(z, z, out=z)
    np.subtract(1.0, z, out=z)
    np.copyto(out, z, casting="same_kind")
    np.multiply(out, g, out=out)


FMA_MIN_ELEMENTS = 16384     # below, whole-array float64 temporaries are as fast (no page faults)


def fma_f32(a, b: np.ndarray, c: np.ndarray, out: np.ndarray) -> bool:
    """``out = a * b + c`` computed in float64 and rounded once to float32, a block at a time in the
    scratch buffers; ``a`` a float or an array, all arrays float32, contiguous and of ``out``'s shape
    (``out`` may be ``b`` or ``c``).  False, with nothing written, when they are not: the caller then
    takes its whole-array route.  The optimizers' multiply-adds on a 65,536-element parameter: 210 us
    in float64 temporaries of the whole array (their page faults), against about 70 us."""
    arrays = (b, c) if isinstance(a, float) else (a, b, c)
    if out.size < FMA_MIN_ELEMENTS or out.dtype != np.float32 or not out.flags.c_contiguous or any(
            type(x) is not np.ndarray or x.dtype != np.float32 or x.shape != out.shape or not x.flags.c_contiguous
            for x in arrays):
        return False
    _blocks(arrays, out, _fma_scalar_block(a) if isinstance(a, float) else _fma_block)
    return True


def _fma_block(a, b, c, out, z, w, *_):
    np.copyto(z, b)
    np.copyto(w, a)
    z *= w
    np.copyto(w, c)
    z += w
    np.copyto(out, z, casting="same_kind")


def _fma_scalar_block(a: float):
    def block(b, c, out, z, w, *_):
        np.copyto(z, b)
        z *= a
        np.copyto(w, c)
        z += w
        np.copyto(out, z, casting="same_kind")
    return block


def tanh_f32(x: np.ndarray, how: str | None = None) -> np.ndarray:
    """``tanh`` of a float32 array, as ``np.tanh`` in float64 rounded once to float32.  ``how``:
    ``"libm"`` or ``"kernel"`` (the tests); by default the faster on this machine (``path``)."""
    return _apply(x, "tanh", how)


def exp_f32(x: np.ndarray, how: str | None = None) -> np.ndarray:
    """``exp`` of a float32 array, as ``np.exp`` in float64 rounded once to float32 (``how``: as ``tanh_f32``)."""
    return _apply(x, "exp", how)
