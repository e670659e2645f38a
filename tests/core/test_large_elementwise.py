"""Elementwise backward formulas on large arrays take faster numpy routes (gradviz/functions.py):
``_select`` masks bits instead of ``np.where``; tanh and sigmoid reuse one temporary. The bits must be
those of the plain formulas, and torch's: +0 (not -0, not NaN) where a gradient is dropped, NaN, inf
and -0 kept where it passes.
"""
import numpy as np
import pytest

import gradviz as gv
from gradviz import _fastmath, functions
from gradviz.random import _fma, _fmaf

SPECIAL = np.array([np.nan, np.inf, -np.inf, -0.0, 0.0, 1e-45, -1e-45, 3.0e38, -2.5], dtype=np.float64)


def values(n, dtype, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(n).astype(dtype)
    x[rng.integers(0, n, 200)] = rng.choice(SPECIAL, 200).astype(dtype)
    return x


def same_bits(a, b):
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def same_values(a, b):
    """Bit for bit, except that any NaN equals any NaN (arithmetic on a NaN may give either sign)."""
    nan = np.isnan(a)
    return same_bits(nan, np.isnan(b)) and same_bits(a[~nan], b[~nan])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("n", [5, functions.SELECT_MIN - 1, functions.SELECT_MIN, 100_003])
@pytest.mark.parametrize("drop", [False, True])
def test_select_is_where_bit_for_bit(dtype, n, drop):
    g = values(n, dtype, 1)
    keep = values(n, dtype, 2) > 0
    want = np.where(keep, 0, g) if drop else np.where(keep, g, 0)
    assert same_bits(functions._select(keep, g, drop=drop), want)


def test_select_of_a_non_bool_condition_is_where():
    """A condition that is not a bool array (ints, a list) takes numpy's where: nonzero is true."""
    g = values(4096, np.float32, 18)
    keep = np.arange(4096) % 3
    assert same_bits(functions._select(keep, g), np.where(keep, g, 0))
    assert same_bits(functions._select(list(keep > 0), g, drop=True), np.where(keep > 0, 0, g))


def test_select_on_strided_and_broadcast_gradients():
    g = values(4000, np.float32, 3).reshape(40, 100)
    keep = values(4000, np.float32, 4).reshape(40, 100)[:, ::2] > 0
    assert same_bits(functions._select(keep, g[:, 1::2]), np.where(keep, g[:, 1::2], 0))
    row = values(100, np.float32, 5)
    assert same_bits(functions._select(keep[:, :50] | True, row[:50]), np.where(keep[:, :50] | True, row[:50], 0))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_tanh_and_sigmoid_backward_in_one_temporary(dtype):
    g, s = values(50_000, dtype, 6), np.tanh(values(50_000, dtype, 7))
    # torch's fused 1 - s*s (functions._tanh_bw)
    fused = _fma(-s, s, 1.0) if dtype == np.float64 else _fmaf(-s, s, np.float32(1))
    with np.errstate(all="ignore"):
        assert same_values(functions._tanh_bw(g, s), g * fused)
        assert same_values(functions._sigmoid_bw(g, s), g * (1 - s) * s)
        x = values(50_000, dtype, 8)
        want = 1 / (1 + functions._libm(np.exp, -x))
        assert same_values(functions._sigmoid(x), want)
    # a gradient of another dtype or shape keeps the plain formula's promotion and broadcasting
    g64 = values(50_000, np.float64, 9)
    s32 = s.astype(np.float32)
    assert same_values(functions._tanh_bw(g64, s32), g64 * (1 - s32 * s32))
    assert same_values(functions._sigmoid_bw(g64[:1], s32), g64[:1] * (1 - s32) * s32)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", ["relu", "clamp", "where", "tanh", "sigmoid"])
def test_large_backward_matches_torch(op, dtype):
    """The gradient of a 256 x 300 tensor, specials included, equals torch's bit for bit."""
    torch = pytest.importorskip("torch")
    x = values(256 * 300, dtype, 10).reshape(256, 300)
    g = values(256 * 300, dtype, 11).reshape(256, 300)
    cond = values(256 * 300, dtype, 12).reshape(256, 300) > 0

    def run(lib):
        t = lib.tensor(x, requires_grad=True)
        if op == "clamp":
            y = t.clamp(-1.0, 0.5)
        elif op == "where":
            y = lib.where(lib.tensor(cond), t, t * 2)
        else:
            y = getattr(t, op)()
        y.backward(lib.tensor(g))
        return y.detach().numpy(), t.grad.numpy()

    with np.errstate(all="ignore"):
        ours = run(gv)
    theirs = run(torch)
    if op in ("tanh", "sigmoid"):
        # the forward differs where torch's SLEEF tanhf/expf is not correctly rounded (libm, not a
        # defect): 1 ulp; sigmoid's 1 + e and 1 / (1 + e) can carry expf's ulp to 2
        ints = np.int32 if dtype == np.float32 else np.int64
        ulps = np.abs(ours[0].view(ints).astype(np.int64) - theirs[0].view(ints).astype(np.int64))
        finite = np.isfinite(theirs[0])
        assert ulps[finite].max() <= (1 if op == "tanh" else 2)
        # so the backward is checked as torch's own formula on our forward values
        formula = torch.ops.aten.tanh_backward if op == "tanh" else torch.ops.aten.sigmoid_backward
        want = formula(torch.from_numpy(g), torch.from_numpy(ours[0])).numpy()
        assert same_values(ours[1], want)
    else:
        assert same_values(ours[0], theirs[0]) and same_values(ours[1], theirs[1])


@pytest.mark.parametrize("shape", [(3,), (_fastmath.BLOCK + 7,), (2, _fastmath.BLOCK + 1)])
def test_fused_tanh_backward_over_block_edges_and_strides(shape):
    """``tanh_backward_f32`` is ``g * fma(-s, s, 1)`` (torch's float32 tanh_backward) in blocks: every
    block, the last partial one, and strided inputs."""
    n = int(np.prod(shape))
    s = np.tanh(values(n, np.float32, 13)).reshape(shape)
    g = values(n, np.float32, 14).reshape(shape)
    wide = np.tanh(values(2 * n, np.float32, 15)).reshape(*shape[:-1], 2 * shape[-1])[..., ::2]
    with np.errstate(all="ignore"):                       # the NaN and inf among the values
        assert same_values(_fastmath.tanh_backward_f32(g, s), g * _fmaf(-s, s, np.float32(1)))
        assert same_values(_fastmath.tanh_backward_f32(g, wide), g * _fmaf(-wide, wide, np.float32(1)))


@pytest.mark.parametrize("n", [_fastmath.FMA_MIN_ELEMENTS - 1, _fastmath.FMA_MIN_ELEMENTS, 2 * _fastmath.BLOCK + 5])
@pytest.mark.parametrize("scalar", [True, False])
def test_optimizer_fma_in_blocks_is_the_whole_array_route(n, scalar):
    """The optimizers' ``a * b + c`` rounded once (optim/optimizer.py ``_fma``): the blocked float32
    route equals float64 arithmetic on whole arrays, also when ``out`` is ``c`` (an in-place update)."""
    from gradviz.optim.optimizer import _fma
    rng = np.random.default_rng(16)
    b, c = rng.standard_normal(n).astype(np.float32), rng.standard_normal(n).astype(np.float32)
    a = 0.1 if scalar else rng.standard_normal(n).astype(np.float32)
    want = (np.float64(a) * b.astype(np.float64) + c).astype(np.float32) if scalar else \
        (a.astype(np.float64) * b + c.astype(np.float64)).astype(np.float32)
    assert same_bits(_fma(a, b, c, np.empty_like(c)), want)
    assert same_bits(_fma(a, b, c, c), want)                    # in place: c is overwritten block by block
    assert same_bits(c, want)


def test_float64_fused_one_minus_square_on_hard_cases():
    """``fma(-s, s, 1)`` in float64 (functions._one_minus_square_f64) equals the exact fma (random._fma,
    Boldo-Melquiond) on tanh outputs near 0, near +-1 (cancellation), exact squares and random ones."""
    rng = np.random.default_rng(17)
    s = np.concatenate([np.tanh(rng.standard_normal(200_000) * 4), rng.uniform(-1, 1, 200_000),
                        1 - rng.uniform(0, 1e-8, 10_000), -(1 - 2.0 ** -rng.integers(1, 53, 10_000)),
                        rng.standard_normal(10_000) * 1e-9, np.array([0.0, -0.0, 1.0, -1.0, 0.5, 2.0 ** -27])])
    assert same_bits(functions._one_minus_square_f64(s), _fma(-s, s, 1.0))
