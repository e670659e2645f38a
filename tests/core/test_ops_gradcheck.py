"""Every op's gradient against central finite differences, in float64.

The scalar loss is ``sum(out * W)`` with fixed random weights ``W``, so each output element
contributes with a different weight and a wrong gradient for any single element shows up.
"""
import numpy as np
import pytest

import gradviz
from tests.core.op_cases import CASES, IDS


def _loss(case, arrays, weights, requires_grad):
    xs = [gradviz.tensor(a, requires_grad=requires_grad) for a in arrays]
    out = case.fn(gradviz, *xs)
    w = gradviz.tensor(weights)
    return xs, out, (out * w).sum()


def _weights(case, arrays):
    with gradviz.no_grad():
        out = case.fn(gradviz, *[gradviz.tensor(a) for a in arrays])
    return np.random.default_rng(1).uniform(0.5, 1.5, out.shape)


def numeric_grads(case, arrays, weights):
    """Central differences of the loss with respect to every element of every input."""
    grads = []
    for i, a in enumerate(arrays):
        g = np.zeros_like(a)
        for idx in np.ndindex(a.shape):
            values = []
            for step in (case.eps, -case.eps):
                shifted = [x.copy() for x in arrays]
                shifted[i][idx] += step
                with gradviz.no_grad():
                    values.append(_loss(case, shifted, weights, False)[2].item())
            g[idx] = (values[0] - values[1]) / (2 * case.eps)
        grads.append(g)
    return grads


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradient_matches_finite_differences(case):
    arrays = case.inputs()
    weights = _weights(case, arrays)
    xs, out, loss = _loss(case, arrays, weights, True)
    assert loss.dtype == np.float64 and out.requires_grad and out.grad_fn is not None
    loss.backward()
    for x, expected in zip(xs, numeric_grads(case, arrays, weights)):
        assert x.grad is not None and x.grad.shape == x.shape and x.grad.dtype == np.float64
        np.testing.assert_allclose(x.grad.data, expected, rtol=case.rtol, atol=case.rtol * 1e-2)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_gradient_is_linear_in_the_upstream_gradient(case):
    """backward(gradient=2*W) gives twice backward(gradient=W): rules scale, never add constants."""
    arrays = case.inputs(seed=1)
    weights = _weights(case, arrays)
    grads = []
    for scale in (1.0, 2.0):
        xs = [gradviz.tensor(a, requires_grad=True) for a in arrays]
        out = case.fn(gradviz, *xs)
        out.backward(gradviz.tensor(weights * scale).to(out.dtype))
        grads.append([x.grad.data for x in xs])
    for g1, g2 in zip(*grads):
        np.testing.assert_allclose(g2, 2 * g1, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_forward_matches_without_grad(case):
    """no_grad changes nothing about the values, only whether a graph is built."""
    arrays = case.inputs()
    out = case.fn(gradviz, *[gradviz.tensor(a, requires_grad=True) for a in arrays])
    with gradviz.no_grad():
        plain = case.fn(gradviz, *[gradviz.tensor(a, requires_grad=True) for a in arrays])
    assert plain.grad_fn is None and not plain.requires_grad
    np.testing.assert_array_equal(out.data, plain.data)
