"""The op table run in gradviz and in PyTorch on identical inputs: values, gradients, grad_fn names, dtypes."""
import operator

import numpy as np
import pytest

import gradviz
from tests.core.op_cases import CASES, IDS

torch = pytest.importorskip("torch")


def run(L, case, arrays, weights, dtype):
    """Forward, ``backward(W)``; returns (output, input grads, output grad_fn name)."""
    xs = [L.tensor(a, dtype=dtype, requires_grad=True) for a in arrays]
    out = case.fn(L, *xs)
    name = None if out.grad_fn is None else type(out.grad_fn).__name__ if L is torch else out.grad_fn.name()
    out.backward(L.tensor(weights, dtype=out.dtype))
    as_np = (lambda t: t.detach().numpy()) if L is torch else (lambda t: t.data)
    return as_np(out), [as_np(x.grad) for x in xs], name


def both(case, dtype_name, seed=0):
    arrays = case.inputs(seed)
    with gradviz.no_grad():
        shape = case.fn(gradviz, *[gradviz.tensor(a) for a in arrays]).shape
    weights = np.random.default_rng(2).uniform(0.5, 1.5, shape)
    return (run(gradviz, case, arrays, weights, getattr(gradviz, dtype_name)),
            run(torch, case, arrays, weights, getattr(torch, dtype_name)))


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float64_values_and_grads_match_torch(case):
    (out, grads, _), (t_out, t_grads, _) = both(case, "float64")
    assert out.dtype == t_out.dtype and out.shape == t_out.shape
    np.testing.assert_allclose(out, t_out, rtol=1e-12, atol=1e-12)
    for g, tg in zip(grads, t_grads):
        assert g.dtype == tg.dtype and g.shape == tg.shape
        np.testing.assert_allclose(g, tg, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_float32_values_and_grads_match_torch(case):
    (out, grads, _), (t_out, t_grads, _) = both(case, "float32", seed=3)
    assert out.dtype == t_out.dtype == (np.float64 if "float64" in case.id or "and_back" in case.id
                                        else np.float32)
    np.testing.assert_allclose(out, t_out, rtol=1e-6, atol=1e-6)
    for g, tg in zip(grads, t_grads):
        assert g.dtype == tg.dtype
        np.testing.assert_allclose(g, tg, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.xfail(reason=c.torch_name_xfail, strict=True))
                                  if c.torch_name_xfail else c for c in CASES], ids=IDS)
def test_grad_fn_name_matches_torch(case):
    (_, _, name), (_, _, t_name) = both(case, "float64")
    assert name == t_name


def test_default_dtype_is_float32_like_torch():
    for data in ([1.0, 2.0], 3.0, [[1, 2.5]], np.float64(0.5), np.float32(0.5), np.float16(2), np.zeros(2)):
        assert str(gradviz.tensor(data).dtype) == str(torch.tensor(data).dtype).removeprefix("torch.")
    assert gradviz.tensor([1, 2]).dtype == np.int64 and gradviz.tensor(np.zeros(2)).dtype == np.float64
    assert gradviz.zeros(2).dtype == gradviz.ones(2).dtype == gradviz.randn(2).dtype == np.float32


# (left dtype, left is 0-d, op, right): right is a Python scalar or (dtype, is 0-d) of a tensor
DTYPES = ["float16", "float32", "float64", "int64", "bool"]
OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "**": operator.pow}
PROMOTION = (
    [(d, False, op, s) for d in DTYPES for op in OPS for s in (2, 2.5)]
    + [(d, z1, op, (e, z2)) for d in DTYPES for e in DTYPES for op in ("+", "*", "/")
       for z1, z2 in ((False, False), (False, True), (True, False))]
)


def _make(L, dtype_name, zero_d):
    data = np.array(1.5) if zero_d else np.array([1.0, 2.0, 3.0])
    dtype = getattr(L, dtype_name if dtype_name != "bool" else ("bool" if L is torch else "bool_"))
    return L.tensor(data).to(dtype)


@pytest.mark.parametrize("left, left_0d, op, right", PROMOTION, ids=str)
def test_dtype_promotion_matches_torch(left, left_0d, op, right):
    if left == "bool" and (op == "-" or right in (2, 2.5) and op == "**"):
        pytest.skip("torch refuses bool subtraction; bool ** scalar is an integer power")
    results = []
    for L in (gradviz, torch):
        a = _make(L, left, left_0d)
        b = right if not isinstance(right, tuple) else _make(L, *right)
        for x, y in ((a, b), (b, a)):
            results.append(str(OPS[op](x, y).dtype).removeprefix("torch."))
    assert results[:2] == results[2:]


def test_float32_op_python_float_stays_float32():
    x = gradviz.tensor([1.0, 2.0], requires_grad=True)
    for y in (x * 0.1, 0.1 * x, x / 3.0, x + 1e-30, x ** 2.5, 2.0 ** x, x - 1):
        assert y.dtype == np.float32
    assert (gradviz.tensor([1.0], dtype=gradviz.float16) * 1e4).dtype == np.float16
    assert (x * gradviz.tensor([1.0], dtype=gradviz.float64)).dtype == np.float64
    assert (gradviz.tensor([1, 2]) * 0.5).dtype == np.float32


# -- grad_fn names where PyTorch's choice depends on shapes, strides or requires_grad -----------------
LHS = [(3,), (1, 3), (2, 3), (3, 1), (1, 2, 3), (4, 2, 3), (4, 1, 3), (2, 1, 2, 3), (1, 1, 2, 3)]
RHS = [(3,), (3, 5), (3, 1), (1, 3, 5), (4, 3, 5), (4, 3, 1), (2, 4, 3, 5), (1, 3, 1)]


def _name(t):
    return type(t.grad_fn).__name__ if isinstance(t, torch.Tensor) else t.grad_fn.name()


@pytest.mark.parametrize("requires", [(True, True), (True, False), (False, True)], ids=str)
@pytest.mark.parametrize("lhs", LHS, ids=str)
def test_matmul_grad_fn_name_for_every_shape_pair(lhs, requires):
    """PyTorch folds, squeezes and copies depending on shapes and requires_grad; the name shows which."""
    rng = np.random.default_rng(0)
    for rhs in RHS:
        a, b = rng.standard_normal(lhs), rng.standard_normal(rhs)
        try:
            expected = torch.tensor(a, requires_grad=requires[0]) @ torch.tensor(b, requires_grad=requires[1])
        except RuntimeError:
            continue
        got = gradviz.tensor(a, requires_grad=requires[0]) @ gradviz.tensor(b, requires_grad=requires[1])
        assert (_name(got), got.shape) == (_name(expected), tuple(expected.shape)), rhs
        np.testing.assert_allclose(got.data, expected.detach().numpy(), rtol=1e-12, atol=1e-12)


INDEXES = [0, -1, slice(None), slice(1, None), slice(0, 3), slice(None, None, 2), None, ..., (0, slice(None)),
           (slice(None), 0), (slice(None), slice(None)), (slice(0, 3), slice(0, 4), slice(1, 2)), (..., 0),
           (..., slice(None)), (0, ..., 1), (None, 0), (0, None), (slice(None), None, slice(None)),
           (slice(0, 100),), (1, 2, 3), ([0, 1],), (0, [1, 2]), (slice(None), slice(0, 4), slice(2, 5))]


@pytest.mark.parametrize("index", INDEXES, ids=repr)
def test_index_grad_fn_name(index):
    x = np.random.default_rng(0).standard_normal((3, 4, 5))
    expected = torch.tensor(x, requires_grad=True)[index]
    got = gradviz.tensor(x, requires_grad=True)[index]
    assert (_name(got), got.shape) == (_name(expected), tuple(expected.shape))


LAYOUTS = {"contiguous": lambda x: x, "reversed": lambda x: x.permute(2, 1, 0), "step": lambda x: x[:, ::2],
           "slice": lambda x: x[:, 1:], "permute": lambda x: x.permute(1, 0, 2),
           "transpose": lambda x: x.transpose(1, 2)}


@pytest.mark.parametrize("layout", LAYOUTS)
@pytest.mark.parametrize("shape", [(-1,), (3, -1), (-1, 5), (3, 1, -1)], ids=str)
def test_reshape_and_view_of_strided_tensors(layout, shape):
    """reshape views, aliases or copies like PyTorch; view refuses what it cannot view, with its message."""
    x = np.random.default_rng(0).standard_normal((3, 4, 5))
    results = []
    for L in (gradviz, torch):
        t = LAYOUTS[layout](L.tensor(x, requires_grad=True))
        try:
            shape_ok = t.reshape(*shape)
        except RuntimeError as e:
            results.append(("error", str(e)))
            continue
        try:
            viewed = _name(t.view(*shape))
        except RuntimeError as e:
            viewed = str(e)
        results.append((_name(shape_ok), tuple(shape_ok.shape), viewed))
    assert results[0] == results[1]


def _graph(fn):
    """(name, [next function names]) of every node under ``fn``, depth first, in PyTorch's words."""
    def name(f):
        if f is None:
            return None
        return "AccumulateGrad" if "AccumulateGrad" in (f if isinstance(f, str) else f.name()) else f.name()
    out, stack = [], [fn]
    while stack:
        f = stack.pop()
        nexts = [n for n, _ in f.next_functions]
        out.append((name(f), [name(n) for n in nexts]))
        stack.extend(n for n in nexts if n is not None and name(n) != "AccumulateGrad")
    return out


LOSS_GRAPHS = [
    ("mse", lambda L, x, y: L.nn.functional.mse_loss(x, y)),
    ("mse_sum", lambda L, x, y: L.nn.functional.mse_loss(x, y, reduction="sum")),
    ("mse_target_requires_grad", lambda L, x, y: L.nn.functional.mse_loss(x, y.requires_grad_())),
    ("l1", lambda L, x, y: L.nn.functional.l1_loss(x, y)),
    ("l1_none", lambda L, x, y: L.nn.functional.l1_loss(x, y, reduction="none")),
    ("bce_with_logits", lambda L, x, y: L.nn.functional.binary_cross_entropy_with_logits(x, y.sigmoid())),
    ("cross_entropy", lambda L, x, y: L.nn.functional.cross_entropy(x, L.tensor([0, 2, 1]))),
    ("cross_entropy_none", lambda L, x, y: L.nn.functional.cross_entropy(x, L.tensor([0, 2, 1]), reduction="none")),
    ("softmax_then_mse", lambda L, x, y: L.nn.functional.mse_loss(L.softmax(x, 1), y)),
    ("log_softmax_nll", lambda L, x, y: L.nn.functional.nll_loss(L.nn.functional.log_softmax(x, dim=1),
                                                                 L.tensor([1, 1, 0]))),
]


@pytest.mark.parametrize("build", [b for _, b in LOSS_GRAPHS], ids=[i for i, _ in LOSS_GRAPHS])
def test_loss_graph_is_torchs(build):
    """The nodes a loss adds, and what each links to, are PyTorch's (a fused loss is one node)."""
    x = np.random.default_rng(0).normal(size=(3, 4))
    graphs = []
    for L in (gradviz, torch):
        loss = build(L, L.tensor(x, requires_grad=True), L.tensor(x[::-1].copy()))
        graphs.append(_graph(loss.grad_fn))
    assert graphs[0] == graphs[1]


def _sequential_cascade(values):
    """nll_loss's cascade of partial sums written as PyTorch's kernel loops, one element at a time
    (the reference the vectorised ``functions._cascade_sum`` must equal bit for bit)."""
    n = len(values)
    power = max(4, (n - 1).bit_length() // 8)
    mask = (1 << power) - 1
    zero = values.dtype.type(0)
    partial = [zero] * 8
    for b, v in enumerate(values):
        partial[0] = partial[0] - v
        for j in range(7):
            if b & (mask << (j * power)):
                break
            partial[j + 1] = partial[j + 1] + partial[j]
            partial[j] = zero
    total = zero
    for p in partial:
        total = total + p
    return total


@pytest.mark.parametrize("dtype", ["float16", "float32", "float64"])
def test_nll_loss_sum_is_the_kernels_cascade_bit_for_bit(dtype):
    """The cascade, vectorised a level at a time, adds in the kernel's order: the same bits as the
    element-by-element loop for every length around the block edges, with inf, nan and -0 inside."""
    from gradviz.functions import _cascade_sum
    rng = np.random.default_rng(5)
    for n in [*range(0, 70), 255, 256, 257, 271, 272, 273, 4095, 4096, 4097, 4113, 70_001]:
        for trial in range(3):
            values = (rng.standard_normal(n) * 10.0 ** rng.uniform(-3, 3, n)).astype(dtype)
            if trial == 1 and n:
                values[0] = -0.0
            if trial == 2 and n > 3:
                values[rng.choice(n, 3, replace=False)] = [np.inf, -0.0, np.nan]
            with np.errstate(all="ignore"):
                want, got = _sequential_cascade(values), _cascade_sum(values)
            assert np.asarray(got).tobytes() == np.asarray(want).tobytes(), (n, trial)


@pytest.mark.parametrize("n", [1, 17, 256, 1000, 4097, 100_000])
@pytest.mark.parametrize("reduction", ["sum", "mean"])
def test_nll_loss_of_many_rows_has_torchs_bits(n, reduction):
    """float32 cross entropy over up to max_points rows: the loss has torch's bits (its kernel's
    summation order). The gradient (log_softmax's backward, ``g - exp(out) * sum(g)``) differs in
    the last ulps: torch's exp is SLEEF's, GradViz's is libm's (libm rounding, not a formula)."""
    rng = np.random.default_rng(n)
    logits = rng.standard_normal((n, 10)).astype(np.float32) * 3
    target = rng.integers(0, 10, n)
    out = []
    for L in (gradviz, torch):
        x = L.tensor(logits, requires_grad=True)
        loss = L.nn.functional.cross_entropy(x, L.tensor(target), reduction=reduction)
        loss.backward()
        out.append((loss.detach().numpy(), x.grad.numpy()))
    assert out[0][0].tobytes() == out[1][0].tobytes()
    # p = exp(x - logsumexp(x)) carries the log-sum-exp's rounding at the logits' magnitude (libm's
    # log/exp against SLEEF's, and which SIMD path the CPU takes: libm rounding, not a formula), and
    # p - 1 cancels: up to 2 ulps of the largest logit, divided by n for the mean
    atol = 2 * float(np.spacing(np.abs(logits).max())) / (n if reduction == "mean" else 1)
    np.testing.assert_allclose(out[0][1], out[1][1], rtol=1e-5, atol=atol)
