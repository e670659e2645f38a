"""float16 and bfloat16 ops against PyTorch's CPU kernels: computed in float32 ("opmath"), rounded once.

Every row of the op table runs in gradviz and in torch on the same few hundred inputs, forward and
backward.  Results are compared bit for bit, except where the float32 value before rounding comes
from a different libm: numpy's ``expf``/``tanhf``/``logf``/``powf`` and torch's vectorised SLEEF
kernels may differ by 1 ulp in float32, and on a rounding boundary that is 1 ulp of the half result.
Those ops (``TRANSCENDENTAL``) allow exactly 1 ulp of the low-precision dtype, nothing more; matmul
allows 1 ulp too (the float32 accumulation order of torch's kernel and of numpy's BLAS differ).
"""
import numpy as np
import pytest

import gradviz

torch = pytest.importorskip("torch")

DTYPES = ["float16", "bfloat16"]
N = 300
TRANSCENDENTAL = {"exp", "log", "tanh", "sigmoid", "pow", "pow_scalar_3", "pow_scalar_half", "softplus"}


def _inputs(seed, low=-4.0, high=4.0, n=N):
    return np.random.default_rng(seed).uniform(low, high, n).astype(np.float32)


def _np(t):
    return t.detach().float().numpy()


def _ulps(a, b, dtype_name):
    """Distance in units in the last place of ``dtype_name`` between two float32 arrays of its values."""
    bits = 10 if dtype_name == "float16" else 7
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    both_nan = np.isnan(a) & np.isnan(b)
    same = (a == b) | both_nan
    scale = np.exp2(np.floor(np.log2(np.maximum(np.abs(a), np.abs(b), where=~same, out=np.ones_like(a)))) - bits)
    return np.where(same, 0.0, np.abs(a - b) / scale)


def assert_close(ours, theirs, dtype_name, ulps):
    ours, theirs = np.asarray(ours), np.asarray(theirs)
    assert ours.shape == theirs.shape
    if ulps == 0:
        np.testing.assert_array_equal(ours, theirs)
    else:
        d = _ulps(ours, theirs, dtype_name)
        worst = np.argmax(d)
        assert d.max() <= ulps, f"{d.max()} ulps at {worst}: {ours.flat[worst]} vs {theirs.flat[worst]}"


# name -> (function of (L, x) with L gradviz or torch, input range)
UNARY = {
    "exp": (lambda L, x: x.exp(), (-4, 4)),
    "log": (lambda L, x: x.log(), (0.01, 8)),
    "sqrt": (lambda L, x: x.sqrt(), (0.01, 8)),
    "tanh": (lambda L, x: x.tanh(), (-4, 4)),
    "sigmoid": (lambda L, x: x.sigmoid(), (-8, 8)),
    "relu": (lambda L, x: x.relu(), (-4, 4)),
    "abs": (lambda L, x: x.abs(), (-4, 4)),
    "neg": (lambda L, x: -x, (-4, 4)),
    "reciprocal": (lambda L, x: x.reciprocal(), (0.05, 8)),
    "clamp_min": (lambda L, x: x.clamp(min=0.1), (-4, 4)),
    "clamp": (lambda L, x: x.clamp(-0.7, 1.3), (-4, 4)),
    "pow_scalar_2": (lambda L, x: x ** 2, (-4, 4)),
    "pow_scalar_3": (lambda L, x: x ** 3, (-4, 4)),
    "pow_scalar_half": (lambda L, x: x ** 0.5, (0.01, 8)),
    "mul_scalar": (lambda L, x: x * 0.1, (-4, 4)),
    "add_scalar": (lambda L, x: x + 0.1, (-4, 4)),
    "rsub_scalar": (lambda L, x: 1.3 - x, (-4, 4)),
    "div_scalar": (lambda L, x: x / 0.3, (-4, 4)),
    "rdiv_scalar": (lambda L, x: 0.3 / x, (0.05, 8)),
    "mul_0d_float64": (lambda L, x: x * L.tensor(0.1, dtype=L.float64), (-4, 4)),
    "sum": (lambda L, x: x.sum(), (-4, 4)),
    "mean": (lambda L, x: x.mean(), (-4, 4)),
    "sum_dim": (lambda L, x: x.reshape(30, 10).sum(0), (-4, 4)),
    "mean_dim": (lambda L, x: x.reshape(30, 10).mean(1), (-4, 4)),
    "max": (lambda L, x: x.max(), (-4, 4)),
    "max_dim": (lambda L, x: x.reshape(30, 10).max(1)[0], (-4, 4)),
}

BINARY = {
    "add": (lambda L, a, b: a + b, (-4, 4)),
    "sub": (lambda L, a, b: a - b, (-4, 4)),
    "mul": (lambda L, a, b: a * b, (-4, 4)),
    "div": (lambda L, a, b: a / b, (0.1, 4)),
    "pow": (lambda L, a, b: a ** b, (0.1, 3)),
    "mul_broadcast": (lambda L, a, b: a.reshape(30, 10) * b[:10], (-4, 4)),
    "div_broadcast": (lambda L, a, b: a.reshape(30, 10) / b[:10], (0.1, 4)),
}


def _run_unary(L, fn, x, g_seed, dtype_name):
    dtype = getattr(L, dtype_name)
    t = L.tensor(x).to(dtype).detach().requires_grad_(True)
    out = fn(L, t)
    g = L.tensor(_inputs(g_seed, 0.5, 1.5, out.numel()).reshape(tuple(out.shape))).to(dtype)
    out.backward(g)
    return _np(out), _np(t.grad)


@pytest.mark.parametrize("dtype_name", DTYPES)
@pytest.mark.parametrize("name", list(UNARY))
def test_unary_value_and_grad_match_torch(name, dtype_name):
    fn, (lo, hi) = UNARY[name]
    x = _inputs(1, lo, hi)
    ours = _run_unary(gradviz, fn, x, 2, dtype_name)
    theirs = _run_unary(torch, fn, x, 2, dtype_name)
    ulps = 1 if name in TRANSCENDENTAL else 0
    assert_close(ours[0], theirs[0], dtype_name, ulps)
    if name == "pow_scalar_half" and dtype_name == "bfloat16":
        # The gradient needs x ** -0.5: torch's bfloat16 kernel takes 1 / sqrt(x) with the sqrt rounded
        # to bfloat16 first (two roundings); gradviz rounds powf(x, -0.5) once.  1 element in 300 is 2 ulps.
        ulps = 2
    assert_close(ours[1], theirs[1], dtype_name, ulps)


def _run_binary(L, fn, a, b, dtype_name):
    dtype = getattr(L, dtype_name)
    ta = L.tensor(a).to(dtype).detach().requires_grad_(True)
    tb = L.tensor(b).to(dtype).detach().requires_grad_(True)
    out = fn(L, ta, tb)
    g = L.tensor(_inputs(7, 0.5, 1.5, out.numel()).reshape(tuple(out.shape))).to(dtype)
    out.backward(g)
    return _np(out), _np(ta.grad), _np(tb.grad)


@pytest.mark.parametrize("dtype_name", DTYPES)
@pytest.mark.parametrize("name", list(BINARY))
def test_binary_value_and_grads_match_torch(name, dtype_name):
    fn, (lo, hi) = BINARY[name]
    a, b = _inputs(3, lo, hi), _inputs(4, lo, hi)
    ours, theirs = _run_binary(gradviz, fn, a, b, dtype_name), _run_binary(torch, fn, a, b, dtype_name)
    for o, t in zip(ours, theirs):
        assert_close(o, t, dtype_name, 1 if name in TRANSCENDENTAL else 0)


@pytest.mark.parametrize("dtype_name", DTYPES)
def test_matmul_and_linear_match_torch(dtype_name):
    rng = np.random.default_rng(5)
    x, w, b = (rng.standard_normal(s).astype(np.float32) for s in ((64, 20), (8, 20), (8,)))
    results = []
    for L in (gradviz, torch):
        dtype = getattr(L, dtype_name)
        tx, tw, tb = (L.tensor(a).to(dtype).detach().requires_grad_(True) for a in (x, w, b))
        out = L.nn.functional.linear(tx, tw, tb) + tx @ tw.T
        out.backward(L.ones_like(out))
        results.append([_np(out), _np(tx.grad), _np(tw.grad), _np(tb.grad)])
    for o, t in zip(*results):
        assert_close(o, t, dtype_name, 1)      # float32 accumulation in another order (BLAS vs torch's kernel)


ISSUE_EXAMPLES = [
    # the numbers of issue 9, item 1: torch's values, computed here by torch itself
    lambda L: L.tensor([0.3, 1.7], dtype=L.float16) * 0.1,
    lambda L: L.tensor([0.3], dtype=L.float16) * 70000.0,
    lambda L: L.tensor([-0.52832], dtype=L.float16).sigmoid(),
    lambda L: L.tensor(np.random.default_rng(0).uniform(0, 0.4, (64, 3)).astype(np.float32)).half().sum(0),
    lambda L: L.tensor(np.random.default_rng(0).uniform(0, 0.4, (64, 3)).astype(np.float32)).half().mean(0),
]


@pytest.mark.parametrize("example", range(len(ISSUE_EXAMPLES)))
def test_issue_examples_match_torch(example):
    fn = ISSUE_EXAMPLES[example]
    np.testing.assert_array_equal(_np(fn(gradviz)), _np(fn(torch)))


@pytest.mark.parametrize("dtype_name", DTYPES)
def test_inplace_update_under_no_grad_rounds_once(dtype_name):
    w0 = _inputs(9)
    results = []
    for L in (gradviz, torch):
        w = L.tensor(w0).to(getattr(L, dtype_name))
        with L.no_grad():
            w -= 0.1 * w
        results.append(_np(w))
    np.testing.assert_array_equal(*results)


def _mlp(L, x, y, dtype_name, params):
    w1, b1, w2, b2 = (L.tensor(p, requires_grad=True) for p in params)
    with L.autocast("cpu", dtype=getattr(L, dtype_name)):
        h = L.sigmoid(L.nn.functional.linear(L.tensor(x), w1, b1))
        out = L.nn.functional.linear(h, w2, b2)
        loss = L.nn.functional.mse_loss(out, L.tensor(y))
    loss.backward()
    return [loss.detach().numpy()] + [p.grad.numpy() for p in (w1, b1, w2, b2)]


@pytest.mark.parametrize("dtype_name", DTYPES)
def test_sigmoid_mlp_under_autocast_matches_torch(dtype_name):
    """A whole model: every op rounds as torch's, but matmuls accumulate in float32 in another order
    (1 half ulp now and then), and such a difference propagates through the layers.  Tolerance: 2
    ulps of the low dtype relative to each tensor's largest magnitude (float16: 2 * 2**-10 = 2e-3,
    bfloat16: 2 * 2**-7 = 1.6e-2); before the opmath rule float16 drifted 7e-3 from torch."""
    rng = np.random.default_rng(11)
    x, y = rng.standard_normal((32, 4)).astype(np.float32), rng.standard_normal((32, 1)).astype(np.float32)
    params = [rng.standard_normal(s).astype(np.float32) * 0.5 for s in ((16, 4), (16,), (1, 16), (1,))]
    ours, theirs = _mlp(gradviz, x, y, dtype_name, params), _mlp(torch, x, y, dtype_name, params)
    eps = 2.0 ** (-10 if dtype_name == "float16" else -7)
    for o, t in zip(ours, theirs):
        assert o.dtype == t.dtype
        np.testing.assert_allclose(o, t, rtol=0, atol=2 * eps * max(np.abs(t).max(), 1e-30))


@pytest.mark.parametrize("fill", [np.inf, -np.inf, np.nan])
@pytest.mark.parametrize("op", ["relu", "clamp", "clamp_min", "clamp_max"])
def test_masked_elements_get_zero_even_from_inf_or_nan(op, fill):
    """relu/clamp backward select (threshold_backward, clamp_backward): a masked element gets 0."""
    fns = {"relu": lambda t: t.relu(), "clamp": lambda t: t.clamp(-1.0, 1.0),
           "clamp_min": lambda t: t.clamp(min=0.0), "clamp_max": lambda t: t.clamp(max=0.0)}
    x = np.array([-2.0, -0.5, 0.0, 0.5, 2.0], np.float32)
    g = np.full(5, fill, np.float32)
    grads = []
    for L in (gradviz, torch):
        t = L.tensor(x, requires_grad=True)
        fns[op](t).backward(L.tensor(g))
        grads.append(t.grad.numpy())
    np.testing.assert_array_equal(*grads)
