r"""PyTorch's CPU random streams in numpy: the same seed gives the same numbers as ``torch``.

Three layers, each as PyTorch's CPU code has it (read in its source, then checked bit for bit
against torch 2.13 in ``tests/core/test_random_torch.py``):

1. **The engine**: ``mt19937`` (the 32-bit Mersenne Twister). ``manual_seed(s)`` puts ``s mod 2**32``
   into the first of its 624 state words and fills the rest with
   :math:`x_j = 1812433253\,(x_{j-1} \oplus (x_{j-1} \gg 30)) + j`; ``random()`` returns one tempered
   32-bit word, ``random64()`` two of them as ``(first << 32) | second``. The twist that refills
   the 624 words runs as four vectorised slices, so drawing many numbers costs numpy operations per
   624 words, not Python work per number.
2. **The transformations** torch's CPU kernels apply to those words:

   - uniform ``[from, to)``: float64 keeps the low 53 bits of one ``random64()``,
     :math:`x = (w \mathbin{\&} (2^{53}-1))\,2^{-53}`; float32, float16 and bfloat16 the low 24 bits of
     one ``random()`` (the 16-bit types are computed in float32, then rounded). Then :math:`x\,(to - from) + from`
     as one fused multiply-add, and a value that rounds to ``to`` becomes ``from``.
   - normal: three paths, chosen by the kernel from the size and dtype.

     * fewer than 16 elements (any dtype): Box–Muller in float64 per element,
       :math:`u_1, u_2` uniform doubles, :math:`r = \sqrt{-2\log(1-u_2)}`, :math:`\theta = 2\pi u_1`,
       returns :math:`r\cos\theta` and *keeps* :math:`r\sin\theta` in the generator for the next
       such draw (so ``randn(1)`` twice gives what ``randn(2)`` gives).
     * 16 or more elements: ``normal_fill``: the uniforms are drawn first, then each block of 16
       becomes 8 pairs (``u1 = 1 - data[j]``, ``u2 = data[j + 8]``, 8 cosines then 8 sines); if the
       size is not a multiple of 16, 16 fresh uniforms are drawn for the last 16 elements, which are
       recomputed. The cached sample is neither used nor changed. float64 uses the C library's
       ``log``, ``cos``, ``sin``; float32 (and the 16-bit types, through float32) on x86-64 uses torch's AVX2
       kernel, with its own polynomial ``log`` and ``sincos`` in float32 (reproduced operation by
       operation, fused multiply-adds included), elsewhere the C library's ``logf``, ``cosf``, ``sinf``.
   - integers ``[low, high)``: ``(w % (high - low)) + low`` with ``w = random()``, or ``random64()``
     when ``high - low >= 2**32`` (int64, float32, float64).
   - ``randperm(n)``: Fisher–Yates, ``i`` from 0 to n-2 swaps ``i`` and ``i + random() % (n - i)``.
3. **The generators**: ``Generator()`` starts from seed 67280421310721, as ``torch.Generator()`` does;
   the global ``default_generator`` starts, as torch 2.x's does, from 64 bits of ``os.urandom`` (a new
   seed each process; ``initial_seed()`` says which), until ``manual_seed``. Their state
   (``get_state``) is torch's 5056 bytes, so states move between the two in both directions.

.. note::
   Where torch calls the C library (``log``, ``sin``, ``cos``, ``log1p`` in float64, ``logf``... on its
   scalar kernel), gradviz calls the same functions (``math``, or ``ctypes`` for the float32 ones):
   numpy's SIMD versions differ from them in the last bit for some inputs. The float32 AVX2 path is
   plain float32 arithmetic and matches on any machine.
"""
from __future__ import annotations

import functools
import math
import os
import platform
import sys

import numpy as np

__all__ = ["Generator", "default_generator", "manual_seed", "seed", "initial_seed", "get_rng_state",
           "set_rng_state", "uniform_values", "normal_values", "integer_values", "permutation",
           "random_int64", "random_sampler_order", "DEFAULT_SEED"]

DEFAULT_SEED = 67280421310721          # torch.Generator()'s seed (c10's default_rng_seed_val)
_N = 624                               # state words (the twist pairs word i with word i + 397)
_CHUNK = 16384                         # elements per slice for long element-wise work: stays in cache
_U32 = np.uint32
_MATRIX_A, _UPPER, _LOWER = _U32(0x9908B0DF), _U32(0x80000000), _U32(0x7FFFFFFF)


def _torch_cpu_kernels() -> str:
    """Which build of torch's CPU kernels runs here: ``"avx2"`` (x86-64 with AVX2 and FMA; the AVX512
    build has no normal kernel of its own and uses it), ``"default"`` (x86-64 without, or with
    ``ATEN_CPU_CAPABILITY=default``, torch's own switch, honoured here too) or ``"other"`` (ARM...)."""
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return "other"
    if os.environ.get("ATEN_CPU_CAPABILITY", "").lower() == "default":
        return "default"
    try:
        from numpy._core._multiarray_umath import __cpu_features__ as features
    except ImportError:                      # numpy < 2: assume a CPU of the last ten years
        return "avx2"
    return "avx2" if features.get("AVX2", True) and features.get("FMA3", True) else "default"


# Measured against torch 2.13: its x86-64 default build computes ``x * (to - from) + from`` (uniform)
# and ``z * std + mean`` (normal, fewer than 16 elements) with two roundings; every other build, and
# ``normal_fill`` in all of them, with one fused multiply-add.
_TORCH_KERNELS = _torch_cpu_kernels()


# -- the engine -----------------------------------------------------------------------------------
def _twist(mt: np.ndarray) -> None:
    """Refill the 624 state words in place (mt19937's ``next_state``).

    Word i becomes ``mt[i + 397] ^ twist(mt[i], mt[i + 1])`` (indices mod 624), where the word at
    ``i + 397`` is already new for i >= 227: hence three slices of at most 227, then the last word.
    """
    old = mt.copy()
    y = (old[:-1] & _UPPER) | (old[1:] & _LOWER)
    t = (y >> _U32(1)) ^ ((old[1:] & _U32(1)) * _MATRIX_A)
    mt[0:227] = old[397:624] ^ t[0:227]
    mt[227:454] = mt[0:227] ^ t[227:454]
    mt[454:623] = mt[227:396] ^ t[454:623]
    first, last = int(mt[0]), int(old[623])                  # Python ints: cheaper than numpy scalars
    y = (last & 0x80000000) | (first & 0x7FFFFFFF)
    mt[623] = int(mt[396]) ^ (y >> 1) ^ (0x9908B0DF if first & 1 else 0)


def _temper(y: np.ndarray) -> None:
    """mt19937's tempering, in place, a cache-sized slice at a time."""
    for i in range(0, y.size, _CHUNK):
        c = y[i:i + _CHUNK]
        c ^= c >> _U32(11)
        c ^= (c << _U32(7)) & _U32(0x9D2C5680)
        c ^= (c << _U32(15)) & _U32(0xEFC60000)
        c ^= c >> _U32(18)


class _MT19937:
    """torch's ``at::mt19937``: the state words, ``left`` and ``next`` exactly as it keeps them."""

    def __init__(self, seed: int):
        self.seed = seed
        words = [seed & 0xFFFFFFFF]
        for j in range(1, _N):
            prev = words[-1]
            words.append((1812433253 * (prev ^ (prev >> 30)) + j) & 0xFFFFFFFF)
        self.state = np.array(words, dtype=_U32)
        self.left, self.next = 1, 0

    def random(self, n: int) -> np.ndarray:
        """The next ``n`` outputs of ``random()`` (uint32)."""
        out = np.empty(n, _U32)
        done = 0
        while done < n:
            if self.left == 1:            # torch twists on the call that finds left == 1
                _twist(self.state)
                self.left, self.next = _N + 1, 0
            take = min(n - done, self.left - 1)
            out[done:done + take] = self.state[self.next:self.next + take]
            self.next += take
            self.left -= take
            done += take
        _temper(out)
        return out

    def random64(self, n: int) -> np.ndarray:
        """The next ``n`` outputs of ``random64()``: two words each, the first one high (uint64)."""
        pairs = self.random(2 * n).view(np.uint64)
        if sys.byteorder == "big":
            return pairs
        return (pairs << np.uint64(32)) | (pairs >> np.uint64(32))      # little-endian: swap the halves


# -- the generator and its state --------------------------------------------------------------------
# torch's CPUGeneratorImplState, byte for byte (x86-64 layout): get_state() / set_state() exchange
# states with torch.get_rng_state() / torch.set_rng_state() through a uint8 array.
_STATE_LAYOUT = np.dtype({
    "names": ["seed", "left", "seeded", "next", "state", "normal_x", "normal_y", "normal_rho",
              "normal_is_valid", "next_float_normal", "next_float_normal_valid"],
    "formats": ["<u8", "<i4", "<i4", "<u8", ("<u8", (_N,)), "<f8", "<f8", "<f8", "<i4", "<f4", "u1"],
    "offsets": [0, 8, 12, 16, 24, 5016, 5024, 5032, 5040, 5048, 5052],
    "itemsize": 5056})


def _as_seed(seed) -> int:
    """torch's rule: any int in [-2**63, 2**64), negative ones taken mod 2**64."""
    seed = int(seed)
    if not -2**63 <= seed < 2**64:
        raise ValueError(f"Overflow when unpacking long long: seed {seed} is outside [-2**63, 2**64)")
    return seed % 2**64


class Generator:
    """A CPU random number generator (``torch.Generator``): its own stream, as torch's gives.

    ``Generator().manual_seed(s)`` returns the generator; pass it as ``generator=`` to ``randn``,
    ``rand``, ``randint``, ``randperm``, ``Tensor.normal_``, ``Tensor.uniform_`` or the
    ``gradviz.nn.init`` functions, and the global stream is left alone.
    """

    def __init__(self, device: str = "cpu"):
        if str(device) != "cpu":
            raise RuntimeError(f"gradviz has only the CPU generator, not {device!r}")
        self.device = "cpu"
        self._set_seed(DEFAULT_SEED)

    def _set_seed(self, seed: int) -> None:
        self._engine = _MT19937(seed)
        self._next_double_normal: float | None = None       # Box–Muller's second sample, kept
        self._next_float_normal: float | None = None        # in the state only (no CPU kernel sets it)

    def manual_seed(self, seed) -> Generator:
        self._set_seed(_as_seed(seed))
        return self

    def seed(self) -> int:
        """Reseed from 64 bits of ``os.urandom`` (as torch reads ``/dev/urandom``); return the seed."""
        s = int.from_bytes(os.urandom(8), "little")
        self._set_seed(s)
        return s

    def initial_seed(self) -> int:
        return self._engine.seed

    def get_state(self) -> np.ndarray:
        """The state as 5056 bytes in torch's layout (a uint8 array, where torch gives a ByteTensor).

        ``torch.Generator().set_state(torch.from_numpy(g.get_state()))`` continues gradviz's stream
        in torch, and ``g.set_state(t.numpy())`` continues torch's here.
        """
        s = np.zeros((), _STATE_LAYOUT)
        e = self._engine
        s["seed"], s["left"], s["seeded"], s["next"], s["state"] = e.seed, e.left, 1, e.next, e.state
        if self._next_double_normal is not None:
            s["normal_is_valid"], s["normal_y"] = 1, self._next_double_normal
        if self._next_float_normal is not None:
            s["next_float_normal_valid"], s["next_float_normal"] = 1, self._next_float_normal
        return np.frombuffer(s.tobytes(), dtype=np.uint8).copy()

    def set_state(self, new_state) -> Generator:
        raw = np.ascontiguousarray(np.asarray(new_state), dtype=np.uint8)      # an array, or a tensor of either
        if raw.size != _STATE_LAYOUT.itemsize:
            raise RuntimeError(f"Expected a CPUGeneratorImplState of size {_STATE_LAYOUT.itemsize} but found "
                               f"the input RNG state size to be {raw.size}")
        s = np.frombuffer(raw.tobytes(), dtype=_STATE_LAYOUT)[0]
        left, nxt = int(s["left"]), int(s["next"])
        if not (s["seeded"] and 0 < left <= _N and nxt <= _N):
            raise RuntimeError("Invalid mt19937 state")
        engine = _MT19937.__new__(_MT19937)
        engine.seed, engine.left, engine.next = int(s["seed"]), left, nxt
        engine.state = s["state"].astype(_U32)
        self._engine = engine
        self._next_double_normal = float(s["normal_y"]) if s["normal_is_valid"] else None
        self._next_float_normal = float(s["next_float_normal"]) if s["next_float_normal_valid"] else None
        return self

    def __repr__(self) -> str:
        return f"<gradviz.Generator initial_seed={self.initial_seed()}>"


default_generator = Generator()
default_generator.seed()        # torch 2.x seeds its global generator from /dev/urandom at start-up


def manual_seed(seed) -> Generator:
    """Seed the global generator (``torch.manual_seed``); returns it."""
    return default_generator.manual_seed(seed)


def seed() -> int:
    """Seed the global generator from ``os.urandom`` and return the seed (``torch.seed``)."""
    return default_generator.seed()


def initial_seed() -> int:
    """The seed the global generator was last seeded with (``torch.initial_seed``)."""
    return default_generator.initial_seed()


def get_rng_state() -> np.ndarray:
    """The global generator's state: 5056 bytes in torch's layout, as a numpy uint8 array.

    torch returns a ByteTensor; gradviz has no uint8 tensors, so the same bytes come as an array
    (``torch.set_rng_state(torch.from_numpy(gradviz.get_rng_state()))`` works, and back).
    """
    return default_generator.get_state()


def set_rng_state(new_state) -> None:
    """Restore a state from ``get_rng_state`` (or from ``torch.get_rng_state()``)."""
    default_generator.set_state(new_state)


def _resolve(generator: Generator | None) -> Generator:
    return default_generator if generator is None else generator


# -- fused multiply-add, rounded once ---------------------------------------------------------------
# torch's CPU kernels are compiled with FMA contraction: ``x * (to - from) + from`` and ``z * std + mean``
# are one fused operation (one rounding; not in every build, see _TORCH_KERNELS), and so are the
# multiply-adds inside the AVX2 log and sincos.
def _fmaf(a, b, c) -> np.ndarray:
    """float32 ``fma(a, b, c)``: the float64 product of two float32 is exact; the float64 sum is then
    rounded to float32, except that a sum landing exactly half-way between two float32 with a
    non-zero TwoSum error is rounded toward the side the error says."""
    p = np.asarray(a, np.float64) * np.asarray(b, np.float64)
    s = p + np.asarray(c, np.float64)
    r = s.astype(np.float32)
    halfway = np.flatnonzero((s.view(np.uint64) & np.uint64(0x1FFFFFFF)) == np.uint64(0x10000000))
    if halfway.size:
        p, c = np.broadcast_arrays(p, np.asarray(c, np.float64))
        p, c, sh, rh = p.ravel()[halfway], c.ravel()[halfway], s.ravel()[halfway], r.ravel()[halfway]
        bv = sh - p
        err = (p - (sh - bv)) + (c - bv)
        other = np.nextafter(rh, np.where(sh > rh, np.float32(np.inf), np.float32(-np.inf)))
        towards = (err != 0) & ((other.astype(np.float64) > sh) == (err > 0))
        np.put(r, halfway, np.where(towards, other, rh))
    return r


def _two_sum(a, b):
    s = a + b
    bv = s - a
    return s, (a - (s - bv)) + (b - bv)


def _two_product(a, b):
    """a * b = p + e exactly (Dekker, with Veltkamp's split)."""
    def split(x):
        t = 134217729.0 * x
        hi = t - (t - x)
        return hi, x - hi
    p = a * b
    (ah, al), (bh, bl) = split(a), split(b)
    return p, ((ah * bh - p) + ah * bl + al * bh) + al * bl


def _fma(a, b, c) -> np.ndarray:
    """float64 ``fma(a, b, c)`` (Boldo and Melquiond): exact product and sum, the low parts added
    with rounding to odd, then one rounding to nearest."""
    a, b, c = (np.asarray(v, np.float64) for v in (a, b, c))      # scalars stay scalars: cheaper
    uh, ul = _two_product(a, b)
    th, tl = _two_sum(c, uh)
    v, e = _two_sum(tl, ul)
    inexact_even = (e != 0) & ((v.view(np.int64) & 1) == 0)
    v = np.where(inexact_even, np.nextafter(v, np.where(e > 0, np.inf, -np.inf)), v)
    return th + v


# -- uniform ----------------------------------------------------------------------------------------
def _unit(gen: Generator, n: int, dtype: np.dtype) -> np.ndarray:
    """``uniform_real_distribution(0, 1)``'s x: the low 53 bits of ``random64()`` for float64, the
    low 24 bits of ``random()`` for float32 and the 16-bit types (which torch computes in float32)."""
    if dtype == np.float64:
        w = gen._engine.random64(n) & np.uint64((1 << 53) - 1)
        return w.astype(np.float64) * 2.0**-53
    w = gen._engine.random(n) & _U32((1 << 24) - 1)
    return w.astype(np.float32) * np.float32(2.0**-24)


def uniform_values(shape, dtype, low: float = 0.0, high: float = 1.0, generator: Generator | None = None):
    """Values of ``torch.empty(shape, dtype=dtype).uniform_(low, high)`` (float16, bfloat16, float32,
    float64): ``fma(x, high - low, low)`` in float64, or in float32 for the others (then rounded to
    16 bits for float16 and bfloat16); a value that rounds up to ``high`` becomes ``low``, as torch
    keeps the range half-open."""
    dtype = np.dtype(dtype)
    shape = tuple(shape)
    fused = _TORCH_KERNELS != "default"
    low_t, high_t = dtype.type(low), dtype.type(high)
    if dtype == np.float64:
        span = high - low
    else:
        low, span = np.float32(low), np.float32(high) - np.float32(low)

    def transform(x):
        if dtype == np.float64:
            v = _fma(x, span, low) if fused else x * span + low
        else:
            v = (_fmaf(x, span, low) if fused else x * span + low).astype(dtype)
        return np.where(v >= high_t, low_t, v)
    return _map_chunks(transform, _unit(_resolve(generator), math.prod(shape), dtype), dtype).reshape(shape)


def _map_chunks(fn, x: np.ndarray, dtype) -> np.ndarray:
    """``fn(x)`` for an element-wise ``fn``, a cache-sized slice of ``x`` at a time (the same values;
    the float64 temporaries of the fused multiply-adds stay small)."""
    out = np.empty(x.shape, dtype)
    for i in range(0, len(x), _CHUNK):
        out[i:i + _CHUNK] = fn(x[i:i + _CHUNK])
    return out


# -- normal -----------------------------------------------------------------------------------------
def _box_muller_double(gen: Generator, n: int) -> np.ndarray:
    """``at::normal_distribution<double>`` n times, using and keeping the cached second sample."""
    out = np.empty(n)
    for i in range(n):
        if gen._next_double_normal is not None:
            out[i], gen._next_double_normal = gen._next_double_normal, None
            continue
        u1, u2 = _unit(gen, 2, np.dtype(np.float64))
        r = math.sqrt(-2.0 * math.log1p(-u2))
        theta = 2.0 * math.pi * u1
        gen._next_double_normal = r * math.sin(theta)
        out[i] = r * math.cos(theta)
    return out


_vec_log, _vec_sin, _vec_cos = (np.frompyfunc(f, 1, 1) for f in (math.log, math.sin, math.cos))


def _libm(f, x: np.ndarray) -> np.ndarray:
    """The C library's function, element by element (numpy's SIMD log may differ in the last bit)."""
    return f(x).astype(np.float64)


def _normal_fill_16_double(u: np.ndarray, mean: float, std: float):
    """``normal_fill_16<double>`` on rows of 16 uniforms: 8 cos samples, then 8 sin samples."""
    radius = np.sqrt(-2.0 * _libm(_vec_log, 1.0 - u[:, :8]))
    theta = 2.0 * math.pi * u[:, 8:]
    return (_fma(radius * _libm(_vec_cos, theta), std, mean),
            _fma(radius * _libm(_vec_sin, theta), std, mean))


@functools.cache
def _c_float_functions():
    """The C library's ``logf``, ``cosf``, ``sinf``, which torch's scalar kernel calls, element-wise
    (numpy's own float32 versions differ from them in the last bit for about one value in five);
    numpy's if no C library can be loaded."""
    import ctypes
    import ctypes.util
    name = ctypes.util.find_library("m") or ctypes.util.find_library("c")
    try:
        lib = ctypes.CDLL(name)
    except OSError:
        return np.log, np.cos, np.sin
    functions = []
    for fname in ("logf", "cosf", "sinf"):
        f = getattr(lib, fname)
        f.restype, f.argtypes = ctypes.c_float, [ctypes.c_float]
        vectorised = np.frompyfunc(f, 1, 1)
        functions.append(lambda x, v=vectorised: v(x).astype(np.float32))
    return tuple(functions)


def _normal_fill_16_float(u: np.ndarray, mean: float, std: float):
    """``normal_fill_16<float>`` (torch's scalar kernel): float32, with the C library's float32 log,
    cos and sin, then ``fma(n, std, mean)``."""
    f32 = np.float32
    logf, cosf, sinf = _c_float_functions()
    radius = np.sqrt(f32(-2) * logf(f32(1) - u[:, :8]))
    theta = (2.0 * math.pi * u[:, 8:].astype(np.float64)).astype(f32)
    return _fmaf(radius * cosf(theta), f32(std), f32(mean)), _fmaf(radius * sinf(theta), f32(std), f32(mean))


def _normal_fill_16_avx2(u: np.ndarray, mean: float, std: float):
    """``normal_fill_16_AVX2``: ``sqrt(-2 log(1 - u1))`` and ``sincos(2 pi u2)`` as torch's AVX2 code,
    then ``fma(n, std, mean)``."""
    f32 = np.float32
    radius = np.sqrt(f32(-2) * _avx_log(f32(1) - u[:, :8]))
    sin, cos = _avx_sincos(f32(2 * math.pi) * u[:, 8:])
    return _fmaf(radius * cos, f32(std), f32(mean)), _fmaf(radius * sin, f32(std), f32(mean))


def _normal_fill(gen: Generator, n: int, dtype: np.dtype, mean: float, std: float, kernel) -> np.ndarray:
    """torch's ``normal_fill``: uniforms for all n, blocks of 16, the ragged end redrawn as 16.

    For float16 and bfloat16, torch 2.13 draws uniforms for the whole blocks only (not for all n)
    before the 16 of the ragged end, and computes them in float32; measured, not read in its source.
    """
    full = n - n % 16
    data = np.empty(n, np.float64 if dtype == np.float64 else np.float32)
    drawn = full if dtype.itemsize == 2 else n          # float16, bfloat16
    data[:drawn] = _unit(gen, drawn, dtype)
    blocks = data[:full].reshape(-1, 16)
    for i in range(0, len(blocks), _CHUNK // 16):
        rows = blocks[i:i + _CHUNK // 16]
        rows[:, :8], rows[:, 8:] = kernel(rows, mean, std)
    if n % 16:
        first, second = kernel(_unit(gen, 16, dtype).reshape(1, 16), mean, std)
        data[n - 16:n - 8], data[n - 8:] = first[0], second[0]
    return data


def normal_values(shape, dtype, mean: float = 0.0, std: float = 1.0, generator: Generator | None = None):
    """Values of ``torch.empty(shape, dtype=dtype).normal_(mean, std)`` (float16, bfloat16, float32,
    float64); the module docstring has the three paths."""
    dtype = np.dtype(dtype)
    shape = tuple(shape)
    n = math.prod(shape)
    gen = _resolve(generator)
    if n < 16:
        z = _box_muller_double(gen, n)
        return (_fma(z, std, mean) if _TORCH_KERNELS != "default" else z * std + mean).astype(dtype).reshape(shape)
    kernel = (_normal_fill_16_double if dtype == np.float64 else
              _normal_fill_16_avx2 if _TORCH_KERNELS == "avx2" else _normal_fill_16_float)
    return _normal_fill(gen, n, dtype, mean, std, kernel).astype(dtype).reshape(shape)


# -- torch's AVX2 float32 log and sincos (avx_mathfun.h, Cephes polynomials), op by op in float32 --
# The compiler fuses each multiply followed by an add into one fma (the first multiply, in source
# order, when both operands of the add are products); the rest is float32 arithmetic.
def _c(v) -> np.float32:
    return np.float32(v)


_LOG_P = [_c(v) for v in (7.0376836292E-2, -1.1514610310E-1, 1.1676998740E-1, -1.2420140846E-1, 1.4249322787E-1,
                          -1.6668057665E-1, 2.0000714765E-1, -2.4999993993E-1, 3.3333331174E-1)]
_SQRTHF, _LOG_Q1, _LOG_Q2 = _c(0.707106781186547524), _c(-2.12194440e-4), _c(0.693359375)
_DP1, _DP2, _DP3 = _c(-0.78515625), _c(-2.4187564849853515625e-4), _c(-3.77489497744594108e-8)
_SINCOF = [_c(v) for v in (-1.9515295891E-4, 8.3321608736E-3, -1.6666654611E-1)]
_COSCOF = [_c(v) for v in (2.443315711809948E-005, -1.388731625493765E-003, 4.166664568298827E-002)]
_FOPI, _HALF, _ONE = _c(1.27323954473516), _c(0.5), _c(1.0)


def _avx_log(x: np.ndarray) -> np.ndarray:
    """``log256_ps`` for x > 0: exponent and mantissa in [sqrt(1/2), sqrt(2)), a degree-9 polynomial."""
    x = np.maximum(x, np.float32(1.17549435e-38))           # min_norm_pos (0x00800000)
    bits = x.view(np.int32)
    e = ((bits >> 23) - 0x7F).astype(np.float32) + _ONE
    x = ((bits & ~0x7F800000) | np.float32(0.5).view(np.int32)).view(np.float32)
    mask = x < _SQRTHF
    tmp = np.where(mask, x, _c(0))
    x = x - _ONE
    e = e - np.where(mask, _ONE, _c(0))
    x = x + tmp
    z = x * x
    y = _fmaf(_LOG_P[0], x, _LOG_P[1])
    for p in _LOG_P[2:]:
        y = _fmaf(y, x, p)
    y = y * x
    y = _fmaf(y, z, e * _LOG_Q1)
    y = y - z * _HALF                                        # z * 0.5 is exact: fused or not, the same
    return _fmaf(e, _LOG_Q2, x + y)


def _avx_sincos(x: np.ndarray):
    """``sincos256_ps``: reduce by multiples of pi/4 (Cody–Waite, three parts), two polynomials."""
    sign_sin = x.view(np.int32) & np.int32(-0x80000000)
    x = np.abs(x)
    j = (x * _FOPI).astype(np.int32)                         # cvttps: truncation
    j = (j + 1) & ~1
    y = j.astype(np.float32)
    sign_sin = sign_sin ^ ((j & 4) << 29)
    sign_cos = (~(j - 2) & 4) << 29
    poly_mask = (j & 2) == 0
    x = _fmaf(y, _DP1, x)
    x = _fmaf(y, _DP2, x)
    x = _fmaf(y, _DP3, x)
    z = x * x
    yc = _fmaf(_COSCOF[0], z, _COSCOF[1])
    yc = _fmaf(yc, z, _COSCOF[2])
    yc = yc * z
    yc = _fmaf(yc, z, -(z * _HALF))
    yc = yc + _ONE
    ys = _fmaf(_SINCOF[0], z, _SINCOF[1])
    ys = _fmaf(ys, z, _SINCOF[2])
    ys = ys * z
    ys = _fmaf(ys, x, x)
    sin = np.where(poly_mask, ys, yc)
    cos = np.where(poly_mask, yc, ys)
    return ((sin.view(np.int32) ^ sign_sin).view(np.float32),
            (cos.view(np.int32) ^ sign_cos).view(np.float32))


# -- integers and permutations -------------------------------------------------------------------
def integer_values(shape, low: int, high: int, dtype=np.int64, generator: Generator | None = None):
    """Values of ``torch.randint(low, high, shape, dtype=dtype)``: ``(w % (high - low)) + low``."""
    if not low < high:
        raise RuntimeError(f"random_ expects 'from' to be less than 'to', but got from={low} >= to={high}")
    shape = tuple(shape)
    n, span = math.prod(shape), int(high) - int(low)
    engine = _resolve(generator)._engine
    wide = span >= 2**32 and np.dtype(dtype).name in ("int64", "float32", "float64", "bfloat16")
    w = engine.random64(n) if wide else engine.random(n).astype(np.uint64)
    values = (w % np.uint64(span)).astype(np.int64) + np.int64(low)
    return values.astype(dtype).reshape(shape)


def random_int64(generator: Generator | None = None) -> int:
    """One ``torch.empty((), dtype=torch.int64).random_()``: ``random64() % 2**63``."""
    return int(_resolve(generator)._engine.random64(1)[0] % np.uint64(2**63))


def permutation(n: int, generator: Generator | None = None) -> np.ndarray:
    """``torch.randperm(n)`` (int64): torch's Fisher–Yates, one ``random()`` per swap.

    For n of 2**32 / 20 and more torch switches to an "inside-out" shuffle with ``random64()``;
    both are here (the second untested against torch: it needs 200 million elements).
    """
    n = int(n)
    if n < 0:
        raise RuntimeError(f"n must be non-negative, got{n}")
    engine = _resolve(generator)._engine
    if n < (2**32 - 1) // 20:
        perm = list(range(n))
        if n > 1:
            picks = engine.random(n - 1) % np.arange(n, 1, -1, dtype=np.uint32)
            for i, j in enumerate((picks + np.arange(n - 1, dtype=np.uint32)).tolist()):
                perm[i], perm[j] = perm[j], perm[i]          # sequential: each swap sees the last
        return np.array(perm, dtype=np.int64)
    perm = np.empty(n, dtype=np.int64)
    picks = engine.random64(n) % np.arange(1, n + 1, dtype=np.uint64)
    for i, z in enumerate(picks.tolist()):
        perm[i] = perm[z]
        perm[z] = i
    return perm


def random_sampler_order(n: int, generator: Generator | None = None) -> np.ndarray:
    """The order ``torch.utils.data.RandomSampler`` (``DataLoader(shuffle=True)``) gives one epoch.

    With no generator, torch's sampler draws a seed from the global generator
    (``torch.empty((), dtype=torch.int64).random_()``), seeds a new Generator with it and takes
    ``randperm(n)`` from that. With one, it takes ``randperm(n, generator=generator)`` directly,
    and then one more, of which it keeps the first ``num_samples % n`` (none): that one is drawn
    here too, so that the next epoch's order is torch's next epoch's.
    """
    if generator is None:
        return permutation(n, Generator().manual_seed(random_int64()))
    order = permutation(n, generator)
    permutation(n, generator)
    return order
