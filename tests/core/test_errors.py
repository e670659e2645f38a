"""Mistakes a learner makes get PyTorch's error, checked by message (and against PyTorch when installed)."""
import re

import numpy as np
import pytest

import gradviz
from gradviz.autograd import SECOND_BACKWARD
from tests.core.op_cases import CASES, IDS

try:
    import torch
except ImportError:          # the messages are still checked against the expected phrases
    torch = None


def ones(L, *shape, requires_grad=True):
    return L.ones(*shape, dtype=L.float64, requires_grad=requires_grad)


def _second_backward(L):
    loss = (ones(L, 2) * ones(L, 2)).sum()
    loss.backward()
    loss.backward()


def _strided_batch(L, requires_grad):
    return ones(L, 2, 4, 3, requires_grad=requires_grad).transpose(0, 1)   # (4, 2, 3), cannot be folded


# (id, action written against L = gradviz or torch, exception type, key phrase, message equals torch's exactly)
ERRORS = [
    ("backward twice", _second_backward, RuntimeError, "Trying to backward through the graph a second time", True),
    ("non-scalar backward", lambda L: (ones(L, 2) * 2).backward(), RuntimeError,
     "grad can be implicitly created only for scalar outputs", True),
    ("backward without grad", lambda L: L.ones(2).sum().backward(), RuntimeError,
     "element 0 of tensors does not require grad and does not have a grad_fn", True),
    ("gradient of wrong shape", lambda L: (ones(L, 2) * 2).backward(ones(L, 3, requires_grad=False)), RuntimeError,
     "Mismatch in shape: grad_output[0] has a shape of torch.Size([3]) and output[0] has a shape of "
     "torch.Size([2]).", True),
    ("bce target of another size", lambda L: L.nn.functional.binary_cross_entropy_with_logits(
        ones(L, 2), ones(L, 3, requires_grad=False)), ValueError,
     "Target size (torch.Size([3])) must be the same as input size (torch.Size([2]))", True),
    ("matmul 2-D", lambda L: ones(L, 2, 3) @ ones(L, 4, 5), RuntimeError,
     "mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)", True),
    ("matmul 1-D 1-D", lambda L: ones(L, 3) @ ones(L, 4), RuntimeError,
     "inconsistent tensor size, expected tensor [3] and src [4]", True),
    ("matmul 2-D 1-D", lambda L: ones(L, 2, 3) @ ones(L, 4), RuntimeError,
     "size mismatch, got input (2), mat (2x3), vec (4)", True),
    ("matmul 1-D 2-D", lambda L: ones(L, 3) @ ones(L, 4, 5), RuntimeError,
     "mat1 and mat2 shapes cannot be multiplied (1x3 and 4x5)", True),
    ("matmul batched", lambda L: ones(L, 4, 2, 3) @ ones(L, 4, 4, 5), RuntimeError,
     "Expected size for first two dimensions of batch2 tensor to be: [4, 3] but got: [4, 4].", True),
    ("matmul batched 2-D folded", lambda L: ones(L, 4, 2, 3) @ ones(L, 4, 5), RuntimeError,
     "mat1 and mat2 shapes cannot be multiplied (8x3 and 4x5)", True),
    ("matmul strided batch 2-D", lambda L: _strided_batch(L, True) @ ones(L, 4, 5, requires_grad=False), RuntimeError,
     "Expected size for first two dimensions of batch2 tensor to be: [4, 3] but got: [4, 4].", True),
    ("matmul 2-D batched", lambda L: ones(L, 2, 3) @ ones(L, 4, 4, 5), RuntimeError,
     "mat1 and mat2 shapes cannot be multiplied (20x4 and 3x2)", True),
    ("matmul batches differ", lambda L: ones(L, 4, 2, 3) @ ones(L, 3, 3, 5), RuntimeError,
     "The size of tensor a (4) must match the size of tensor b (3) at non-singleton dimension 0", True),
    ("matmul 0-D", lambda L: L.tensor(1.0) @ ones(L, 3), RuntimeError,
     "both arguments to matmul need to be at least 1D, but they are 0D and 1D", True),
    ("broadcast", lambda L: ones(L, 2, 3) + ones(L, 4), RuntimeError,
     "The size of tensor a (3) must match the size of tensor b (4) at non-singleton dimension 1", True),
    ("requires_grad on int (constructor)", lambda L: L.tensor([1, 2], requires_grad=True), RuntimeError,
     "Only Tensors of floating point and complex dtype can require gradients", True),
    ("requires_grad_ on int", lambda L: L.tensor([1, 2]).requires_grad_(), RuntimeError,
     "only Tensors of floating point dtype can require gradients", True),
    ("requires_grad_(False) on non-leaf", lambda L: (ones(L, 2) * 2).requires_grad_(False), RuntimeError,
     "you can only change requires_grad flags of leaf variables.", True),
    ("retain_grad without grad", lambda L: L.ones(2).retain_grad(), RuntimeError,
     "can't retain_grad on Tensor that has requires_grad=False", True),
    ("numpy() of a tensor requiring grad", lambda L: ones(L, 2).numpy(), RuntimeError,
     "Can't call numpy() on Tensor that requires grad. Use tensor.detach().numpy() instead.", True),
    ("item() of many elements", lambda L: ones(L, 2, 3).item(), RuntimeError,
     "a Tensor with 6 elements cannot be converted to Scalar", True),
    ("bool() of many elements", lambda L: bool(ones(L, 2)), RuntimeError,
     "Boolean value of Tensor with more than one value is ambiguous", True),
    ("len() of 0-d", lambda L: len(L.tensor(1.0)), TypeError, "len() of a 0-d tensor", True),
    ("clamp without bounds", lambda L: ones(L, 2).clamp(), RuntimeError,
     "At least one of 'min' or 'max' must not be None", False),
    ("mean of int", lambda L: L.tensor([1, 2]).mean(), RuntimeError,
     "mean(): could not infer output dtype. Input dtype must be either a floating point or complex dtype. Got: Long",
     True),
    ("reshape to a wrong size", lambda L: ones(L, 3, 4).reshape(5), RuntimeError,
     "shape '[5]' is invalid for input of size 12", True),
    ("view of a transpose", lambda L: ones(L, 3, 4).T.view(12), RuntimeError,
     "view size is not compatible with input tensor's size and stride", True),
    ("in-place on a leaf requiring grad", lambda L: ones(L, 2).__iadd__(1), RuntimeError,
     "a leaf Variable that requires grad is being used in an in-place operation.", True),
    ("in-place changing dtype", lambda L: L.tensor([1, 2]).__iadd__(0.5), RuntimeError,
     "result type Float can't be cast to the desired output type Long", True),
    ("in-place broadcasting the target", lambda L: L.ones(3).__iadd__(L.ones(2, 3)), RuntimeError,
     "output with shape [3] doesn't match the broadcast shape [2, 3]", True),
]


@pytest.mark.parametrize("action, error, phrase, exact", [e[1:] for e in ERRORS], ids=[e[0] for e in ERRORS])
def test_error_message(action, error, phrase, exact):
    with pytest.raises(error, match=re.escape(phrase)) as ours:
        action(gradviz)
    if torch is not None:
        with pytest.raises(error, match=re.escape(phrase)) as theirs:
            action(torch)
        if exact:
            assert str(ours.value) == str(theirs.value)


def test_second_backward_message_is_torchs_in_full():
    if torch is None:
        pytest.skip("torch not installed")
    with pytest.raises(RuntimeError) as theirs:
        _second_backward(torch)
    assert str(theirs.value) == SECOND_BACKWARD


@pytest.mark.parametrize("L", [gradviz] + ([torch] if torch else []), ids=lambda L: L.__name__)
def test_retain_graph_allows_a_second_backward(L):
    x = ones(L, 2)
    loss = (x * x).sum()
    loss.backward(retain_graph=True)
    loss.backward(retain_graph=True)
    loss.backward()
    np.testing.assert_array_equal(np.asarray(x.grad.tolist()), [6.0, 6.0])
    with pytest.raises(RuntimeError, match="second time"):
        loss.backward()


@pytest.mark.parametrize("L", [gradviz] + ([torch] if torch else []), ids=lambda L: L.__name__)
def test_add_only_graph_backward_twice_does_not_raise(L):
    """Add, sum and views save no tensors, so PyTorch (and gradviz) can run their backward again."""
    x, y = ones(L, 2), ones(L, 2)
    loss = (x + y - 1).reshape(2, 1).sum()
    loss.backward()
    loss.backward()
    assert x.grad.tolist() == [2.0, 2.0] and y.grad.tolist() == [2.0, 2.0]


def _second_backward_outcome(L, case):
    xs = [L.tensor(a, requires_grad=True) for a in case.inputs()]
    out = case.fn(L, *xs)
    gradient = L.ones_like(out)
    out.backward(gradient)
    try:
        out.backward(gradient)
    except RuntimeError as e:
        assert "second time" in str(e)
        return "raises"
    return "runs"


@pytest.mark.skipif(torch is None, reason="torch not installed")
@pytest.mark.parametrize("case", CASES, ids=IDS)
def test_second_backward_raises_exactly_when_torch_does(case):
    """Whether a graph can be walked twice depends on which ops saved tensors: same as PyTorch, op by op."""
    assert _second_backward_outcome(gradviz, case) == _second_backward_outcome(torch, case)
