"""The ops added for scripts, run through the shared op-case machinery: gradients against finite
differences (test_ops_gradcheck's loss) and values, gradients and grad_fn names against PyTorch
(test_ops_torch's runner), in float64 and float32."""
import numpy as np
import pytest

import gradviz
from tests.core.op_cases import Case
from tests.core.test_ops_gradcheck import _loss, _weights, numeric_grads


def _c(id, fn, *shapes, **kw):
    return Case(id, fn, tuple(shapes), **kw)


CASES = [
    _c("stack_dim0", lambda L, x, y: L.stack([x, y]), (2, 3), (2, 3)),
    _c("stack_dim_neg1", lambda L, x, y: L.stack((x, y * 2, x), dim=-1), (2, 3), (2, 3)),
    _c("cat_dim0", lambda L, x, y: L.cat([x, y]), (2, 3), (4, 3)),
    _c("cat_dim1", lambda L, x, y: L.cat([x, y, x], dim=1), (2, 3), (2, 1)),
    _c("where_tensors", lambda L, x, y: L.where(x > 0, x, y), (3, 4), (3, 4), domain=("away", "any")),
    _c("where_broadcast_scalar", lambda L, x: L.where(x > 0, x, 0.5), (3, 4), domain=("away",)),
    _c("where_bcast", lambda L, x, y: L.where(x > 0, x, y), (3, 4), (4,), domain=("away", "any")),
    _c("maximum", lambda L, x, y: L.maximum(x, y), (3, 4), (3, 4)),
    _c("maximum_bcast", lambda L, x, y: L.maximum(x, y), (3, 4), (1, 4)),
    _c("minimum", lambda L, x, y: L.minimum(x, y), (3, 4), (3, 4)),
    _c("max_binary", lambda L, x, y: L.max(x, y), (3, 4), (3, 4)),
    _c("min_all", lambda L, x: x.min(), (3, 4)),
    _c("min_dim1", lambda L, x: x.min(1).values, (3, 4)),
    _c("min_dim0_keepdim", lambda L, x: x.min(0, keepdim=True)[0], (3, 4)),
    _c("var_all", lambda L, x: x.var(), (3, 4)),
    _c("var_dim1", lambda L, x: x.var(1), (3, 4)),
    _c("var_biased_keepdim", lambda L, x: x.var(0, unbiased=False, keepdim=True), (3, 4)),
    _c("std_all", lambda L, x: x.std(), (3, 4)),
    _c("std_dim_correction0", lambda L, x: x.std(dim=1, correction=0), (3, 4)),
    _c("norm_all", lambda L, x: x.norm(), (3, 4)),
    _c("norm_functional", lambda L, x: L.norm(x), (7,)),
    _c("norm_p1", lambda L, x: x.norm(p=1), (3, 4), domain=("away",)),
    _c("norm_dim1", lambda L, x: x.norm(dim=1), (3, 4)),
    _c("norm_p3_dim0", lambda L, x: x.norm(p=3, dim=0), (3, 4), domain=("away",)),
    _c("t_2d", lambda L, x: x.t(), (3, 4)),
    _c("t_1d", lambda L, x: x.t() * 2, (3,)),
    _c("flatten_start1", lambda L, x: x.flatten(1), (2, 3, 4)),
    _c("flatten_functional", lambda L, x: L.flatten(x, 0, 1), (2, 3, 4)),
    _c("leaky_relu", lambda L, x: L.nn.functional.leaky_relu(x, 0.1), (3, 4), domain=("away",)),
    _c("iterate_rows", lambda L, x: list(x)[1], (3, 4),
       torch_name_xfail="torch's __iter__ is unbind (UnbindBackward0); gradviz selects rows (SelectBackward0)"),
    *[_c(f"bce_{r}", lambda L, x, y, r=r: L.nn.functional.binary_cross_entropy(x.sigmoid(), y.sigmoid(), reduction=r),
         (3, 4), (3, 4)) for r in ("mean", "sum", "none")],
    _c("parameters_to_vector", lambda L, x, y: L.nn.utils.parameters_to_vector([x, y]) * 3, (2, 2), (3,)),
]
IDS = [c.id for c in CASES]


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradient_matches_finite_differences(case):
    arrays = case.inputs()
    weights = _weights(case, arrays)
    xs, out, loss = _loss(case, arrays, weights, True)
    assert out.requires_grad and out.grad_fn is not None
    loss.backward()
    for x, expected in zip(xs, numeric_grads(case, arrays, weights)):
        assert x.grad is not None and x.grad.dtype == np.float64
        np.testing.assert_allclose(x.grad.data, expected, rtol=case.rtol, atol=case.rtol * 1e-2)


def _torch_cases():
    torch = pytest.importorskip("torch")
    from tests.core import test_ops_torch
    return torch, test_ops_torch


@pytest.mark.parametrize("case", CASES, ids=IDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_values_and_grads_match_torch(case, dtype):
    _, t = _torch_cases()
    (out, grads, _), (t_out, t_grads, _) = t.both(case, dtype, seed=3)
    tol = 1e-12 if dtype == "float64" else 1e-6
    assert out.dtype == t_out.dtype and out.shape == t_out.shape
    np.testing.assert_allclose(out, t_out, rtol=tol, atol=tol)
    for g, tg in zip(grads, t_grads):
        assert g.dtype == tg.dtype and g.shape == tg.shape
        np.testing.assert_allclose(g, tg, rtol=tol, atol=tol)


@pytest.mark.parametrize("case", [pytest.param(c, marks=pytest.mark.xfail(reason=c.torch_name_xfail, strict=True))
                                  if c.torch_name_xfail else c for c in CASES], ids=IDS)
def test_grad_fn_name_matches_torch(case):
    _, t = _torch_cases()
    (_, _, name), (_, _, t_name) = t.both(case, "float64")
    assert name == t_name


def test_ties_split_the_gradient_like_torch():
    torch, _ = _torch_cases()
    for L in (gradviz, torch):
        a, b = L.tensor([1.0, 2.0, 3.0], requires_grad=True), L.tensor([1.0, 5.0, 0.0], requires_grad=True)
        L.maximum(a, b).sum().backward()
        m = L.tensor([2.0, 2.0, 1.0], requires_grad=True)
        m.min().backward()
        x = L.tensor([0.0, 0.0], requires_grad=True)
        x.norm().backward()
        results = [v.grad.tolist() for v in (a, b, m, x)]
        if L is gradviz:
            ours = results
    assert ours == results


def test_float32_norm_has_torch_bits():
    """The 2-norm's summation order and fused multiply-adds (gradviz._reductions), bit for bit."""
    torch, _ = _torch_cases()
    rng = np.random.default_rng(0)
    for n in (1, 3, 4, 7, 8, 12, 15, 31, 100, 1000):
        for dtype in (np.float32, np.float64):
            for _ in range(10):
                a = (rng.standard_normal(n) * rng.uniform(0.1, 10)).astype(dtype)
                expected = torch.linalg.vector_norm(torch.from_numpy(a)).item()
                assert gradviz.tensor(a).norm().item() == expected, (n, dtype)


def test_int_argmax_and_conversions_leave_the_graph():
    torch, _ = _torch_cases()
    data = [[0.5, -1.5, 2.0], [3.0, 3.0, -2.0]]
    for L in (gradviz, torch):
        x = L.tensor(data, requires_grad=True)
        got = (x.argmax().item(), x.argmax(1).tolist(), x.argmax(dim=0, keepdim=True).tolist(),
               x.argmin(1).tolist(), x.long().tolist(), x.long().requires_grad, x.int().tolist(),
               x.bool().tolist(), str(x.long().dtype).split(".")[-1], x.eq(3.0).tolist(), x.gt(0).tolist(),
               x.ne(3.0).tolist(), x.le(0.5).tolist(), [r.tolist() for r in x.detach()], x.min(dim=1).indices.tolist())
        if L is gradviz:
            ours = got
    assert ours == got


def test_stack_and_cat_errors_and_promotion_match_torch():
    torch, _ = _torch_cases()
    for L in (gradviz, torch):
        msgs = []
        for fn in (lambda L=L: L.stack([L.zeros(2), L.zeros(3)]),
                   lambda L=L: L.cat([L.zeros(2, 2), L.zeros(2, 3)]), lambda L=L: L.cat([])):
            with pytest.raises((RuntimeError, ValueError, IndexError)) as err:
                fn()
            msgs.append(str(err.value).split("\n")[0])
        dtypes = [str(L.cat([L.tensor([1, 2]), L.tensor([0.5])]).dtype).split(".")[-1],
                  str(L.stack([L.tensor([1.0], dtype=L.float64), L.tensor([2.0])]).dtype).split(".")[-1]]
        if L is gradviz:
            ours = (msgs, dtypes)
    assert ours == (msgs, dtypes)
