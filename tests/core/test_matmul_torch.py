"""Matrix products whose inner dimension is 1 (the input gradient of a layer with one output, a
layer with one input) are outer products: the same bits as torch's ``mm``, signed zeros included,
and the bias of ``linear`` is added in place with the bits of ``x @ W.T + b``."""
import numpy as np
import pytest

import gradviz as gv
from gradviz import functions
from gradviz.nn import functional as F

torch = pytest.importorskip("torch")


def same_bits(a, b):
    return np.array_equal(np.asarray(a).view(np.int32), np.asarray(b).view(np.int32))


def with_zeros(shape, seed):
    """Random float32 values with +0 and -0 among them, so that products of -0 occur."""
    x = np.random.default_rng(seed).standard_normal(shape).astype(np.float32)
    x.reshape(-1)[::5] = 0.0
    x.reshape(-1)[2::5] = -0.0
    return x


@pytest.mark.parametrize("n, m", [(7, 5), (2000, 64), (2, 2), (1, 3), (5, 1), (1, 1)])
def test_outer_product_matmul_has_torch_bits(n, m):
    """torch keeps a -0 product in a matrix product and gives +0 on its matrix-vector path (one row
    or one column); GradViz does the same in each case."""
    a, b = with_zeros((n, 1), 1), with_zeros((1, m), 2)
    a[0, 0], b[0, -1] = -1.0, 0.0                       # a -0 product in every case
    ours = (gv.tensor(a) @ gv.tensor(b)).numpy()
    theirs = (torch.from_numpy(a) @ torch.from_numpy(b)).numpy()
    assert same_bits(ours, theirs)
    assert np.signbit(ours[0, -1]) == (n > 1 and m > 1)


@pytest.mark.parametrize("inputs, outputs", [(64, 1), (1, 16), (3, 1)])
def test_linear_with_one_output_or_input_matches_torch_forward_and_backward(inputs, outputs):
    """The input gradient of a layer with one output is an outer product: torch's bits exactly.
    The sums over 3-256 products (forward, weight and bias gradients) are compared to float32
    rounding: there numpy's BLAS and torch's MKL add in different orders."""
    x = with_zeros((256, inputs), 3)
    w = with_zeros((outputs, inputs), 4)
    b = np.random.default_rng(5).standard_normal(outputs).astype(np.float32)
    g = with_zeros((256, outputs), 6)
    gx, gw, gb = (gv.tensor(a, requires_grad=True) for a in (x, w, b))
    tx, tw, tb = (torch.tensor(a, requires_grad=True) for a in (x, w, b))
    y = F.linear(gx, gw, gb)
    ty = torch.nn.functional.linear(tx, tw, tb)
    np.testing.assert_allclose(y.detach().numpy(), ty.detach().numpy(), rtol=1e-5, atol=1e-5)
    y.backward(gv.tensor(g))
    ty.backward(torch.from_numpy(g))
    if outputs == 1:
        assert same_bits(gx.grad.numpy(), tx.grad.numpy())
    for ours, theirs in ((gx, tx), (gw, tw), (gb, tb)):
        np.testing.assert_allclose(ours.grad.numpy(), theirs.grad.numpy(), rtol=1e-5, atol=1e-4)


def test_bias_added_in_place_has_the_bits_of_a_new_sum():
    x = np.random.default_rng(7).standard_normal((300, 40)).astype(np.float32)
    w = np.random.default_rng(8).standard_normal((20, 40)).astype(np.float32)
    b = np.random.default_rng(9).standard_normal(20).astype(np.float32)
    y, _ = functions._addmm_fw(x, w, b)
    assert same_bits(y, x @ w.T + b)
    y64, _ = functions._addmm_fw(x, w, b.astype(np.float64))      # another dtype: not in place
    assert y64.dtype == np.result_type(x @ w.T, b.astype(np.float64))
