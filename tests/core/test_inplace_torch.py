"""In-place semantics against PyTorch: values, grads, grad_fn names, version-counter errors.

Each in-place op runs on the same tensors in gradviz and torch, in every situation a learner meets:
on a leaf that requires grad (with and without ``no_grad``), on a non-leaf, with the tensor saved
for backward by a later op or not; both must agree on the result, the gradients, the grad_fn name
and, where torch raises, the error type and its leading sentence.
"""
from __future__ import annotations

import numpy as np
import pytest

import gradviz

torch = pytest.importorskip("torch")

A, B = [0.5, -1.25, 2.0], [1.5, 0.75, -0.5]

# (name, op(t, other) -> applies the in-place op); ``other`` is a tensor that may require grad
OPS = [
    ("add_", lambda t, o: t.add_(o)),
    ("add_ alpha", lambda t, o: t.add_(o, alpha=-0.5)),
    ("sub_", lambda t, o: t.sub_(o)),
    ("sub_ alpha", lambda t, o: t.sub_(o, alpha=2)),
    ("mul_", lambda t, o: t.mul_(o)),
    ("div_", lambda t, o: t.div_(o)),
    ("pow_", lambda t, o: t.pow_(2)),
    ("clamp_", lambda t, o: t.clamp_(-1.0, 1.0)),
    ("clamp_ min", lambda t, o: t.clamp_(min=0.0)),
    ("neg_", lambda t, o: t.neg_()),
    ("exp_", lambda t, o: t.exp_()),
    ("tanh_", lambda t, o: t.tanh_()),
    ("sigmoid_", lambda t, o: t.sigmoid_()),
    ("zero_", lambda t, o: t.zero_()),
    ("fill_", lambda t, o: t.fill_(3.0)),
    ("copy_", lambda t, o: t.copy_(o)),
    ("+=", lambda t, o: t.__iadd__(o)),
    ("-=", lambda t, o: t.__isub__(o)),
    ("*=", lambda t, o: t.__imul__(o)),
    ("/=", lambda t, o: t.__itruediv__(o)),
    ("+= scalar", lambda t, o: t.__iadd__(2.0)),
    ("*= scalar", lambda t, o: t.__imul__(0.5)),
    ("setitem slice", lambda t, o: t.__setitem__(slice(1, None), o[:2])),
    ("setitem scalar", lambda t, o: t.__setitem__(0, 5.0)),
    ("setitem mask", lambda t, o: t.__setitem__(t.detach() > 0, 0.0)),
]


def _np(t):
    return None if t is None else t.detach().numpy().copy()


def _error(e: Exception):
    return (type(e).__name__, str(e).split(". Hint")[0].split("\n")[0])


def _name(t):
    return None if t.grad_fn is None else t.grad_fn.name().rsplit("::", 1)[-1]     # torch::autograd::CopySlices


def run(L, op, *, leaf: bool, no_grad: bool, saved: str):
    """Apply ``op`` and backpropagate; ``saved`` says what a later-backwarded op keeps of the target:
    "none" (nothing saved before the op), "output" (t.exp() saves its output, not t), "input"
    (t * b saves t because b requires grad)."""
    a = L.tensor(A, requires_grad=True)
    b = L.tensor(B, requires_grad=True)
    t = a if leaf else a * 1.5
    before = None
    if saved == "output":
        before = t.exp()
    elif saved == "input":
        before = t * b
    try:
        if no_grad:
            with L.no_grad():
                op(t, b)
        else:
            op(t, b)
        loss = (t * t).sum() if t.requires_grad else L.tensor(0.0, requires_grad=True)
        if before is not None:
            loss = loss + before.sum()
        loss.backward()
    except RuntimeError as e:
        return {"error": _error(e)}
    return {"t": _np(t), "grad_fn": _name(t), "a.grad": _np(a.grad), "b.grad": _np(b.grad),
            "leaf": t.is_leaf, "requires_grad": t.requires_grad}


CASES = [(name, leaf, no_grad, saved) for name, _ in OPS for leaf in (True, False) for no_grad in (False, True)
         for saved in ("none", "output", "input")]


@pytest.mark.parametrize("name, leaf, no_grad, saved", CASES)
def test_inplace_op_matches_torch(name, leaf, no_grad, saved):
    op = dict(OPS)[name]
    ours = run(gradviz, op, leaf=leaf, no_grad=no_grad, saved=saved)
    theirs = run(torch, op, leaf=leaf, no_grad=no_grad, saved=saved)
    assert ours.keys() == theirs.keys(), (ours, theirs)
    for key in ours:
        if isinstance(ours[key], np.ndarray):
            np.testing.assert_allclose(ours[key], theirs[key], rtol=1e-6, atol=1e-7, err_msg=key)
        else:
            assert ours[key] == theirs[key], key


def test_modified_saved_tensor_raises_torchs_message():
    def msg(L, make):
        a = L.tensor([1.0, 2.0, 3.0], requires_grad=True)
        with pytest.raises(RuntimeError) as info:
            make(L, a).sum().backward()
        return str(info.value)

    def exp_then_mul(L, a):
        h = a.exp()
        h *= 2
        return h

    def sigmoid_then_add(L, a):
        z = (a * 3).sigmoid()
        z += 1
        return z

    def detach_write(L, a):
        w = L.tensor([1.0, 2.0, 3.0], requires_grad=True)
        h = a * w
        q = h * w
        h.detach().add_(1)
        return q

    def saved_leaf(L, a):
        w = L.tensor([1.0, 2.0, 3.0])
        q = a * w
        w.add_(1)
        return q

    for make in (exp_then_mul, sigmoid_then_add, detach_write, saved_leaf):
        assert msg(gradviz, make) == msg(torch, make)
    assert msg(gradviz, exp_then_mul).startswith(
        "one of the variables needed for gradient computation has been modified by an inplace operation: "
        "[torch.FloatTensor [3]], which is output 0 of Exp, is at version 1; expected version 0 instead.")


def test_mul_saves_its_inputs_not_its_output():
    for L in (gradviz, torch):
        x = L.tensor([1.0, 2.0], requires_grad=True)
        y = x * 2
        y += 1
        y.sum().backward()
        np.testing.assert_array_equal(_np(x.grad), [2.0, 2.0])
        assert _np(y).tolist() == [3.0, 5.0]


def test_inplace_on_a_non_leaf_updates_every_reference_and_older_nodes_keep_the_old_value():
    def scenario(L):
        a = L.tensor(A, requires_grad=True)
        h = a * 1.0
        alias = h
        z = h * 3          # made before the in-place op: its gradient goes to h's old value
        h *= 2
        (z + alias).sum().backward()
        return alias is h, _np(h), _name(h), _np(a.grad)
    ours, theirs = scenario(gradviz), scenario(torch)
    assert ours[0] and theirs[0] and ours[2] == theirs[2] == "MulBackward0"
    np.testing.assert_array_equal(ours[1], theirs[1])
    np.testing.assert_array_equal(ours[3], theirs[3])


def test_version_counter_is_shared_by_detach_and_views_but_not_by_data():
    a = gradviz.tensor([1.0, 2.0, 3.0])
    d, v, dd = a.detach(), a[1:], a.data
    d.add_(1)
    v.mul_(2)
    dd.sub_(1)                  # .data writes the same storage; autograd does not see it
    np.testing.assert_array_equal(a.numpy(), [1.0, 5.0, 7.0])
    assert a._version[0] == 2 and d._version is a._version and v._version is a._version
    assert dd._version is not a._version


def test_data_is_a_tensor_sharing_storage():
    for L in (gradviz, torch):
        p = L.tensor([1.0, 2.0], requires_grad=True)
        d = p.data
        assert isinstance(d, L.Tensor) and not d.requires_grad and d.grad_fn is None
        p.data.add_(L.tensor([1.0, 1.0]), alpha=-0.5)
        p.data -= 1
        assert _np(p).tolist() == [-0.5, 0.5]
        p.data = L.tensor([7.0, 8.0, 9.0])
        assert _np(p).tolist() == [7.0, 8.0, 9.0] and p.requires_grad and p.is_leaf


@pytest.mark.parametrize("index, value", [
    (0, 5.0), ((slice(None), slice(1, 3)), [7.0, 8.0]), ((slice(None), 1), 0.0), ("mask", -1.0),
    ((slice(None), [0, 2]), [4.0, 6.0]),
    (1, "b0"), (slice(0, 2), "b"), ((0,), "b"),
])
def test_setitem_matches_torch(index, value):
    def scenario(L):
        a = L.tensor([[0.5, -1.0, 2.0], [1.5, 3.0, -2.5]], requires_grad=True)
        b = L.tensor([0.25, -4.0, 1.0], requires_grad=True)
        y = a * 2
        idx = (y.detach() > 0) if index == "mask" else index
        v = b[0] if value == "b0" else b if value == "b" and index == (0,) else \
            b[:2].reshape(2, 1) if value == "b" else value
        if isinstance(v, list):
            v = L.tensor(v)
        y[idx] = v
        (y * y).sum().backward()
        return _np(y), _name(y), _np(a.grad), _np(b.grad)
    ours, theirs = scenario(gradviz), scenario(torch)
    assert ours[1] == theirs[1]
    for x, y in zip((ours[0], ours[2], ours[3]), (theirs[0], theirs[2], theirs[3])):
        if y is None:
            assert x is None
        else:
            np.testing.assert_array_equal(x, y)


def test_setitem_on_a_leaf_that_requires_grad_raises():
    for L in (gradviz, torch):
        a = L.tensor([1.0, 2.0], requires_grad=True)
        with pytest.raises(RuntimeError, match="a leaf Variable that requires grad is being used in an in-place"):
            a[0] = 3.0
        with L.no_grad():
            a[0] = 3.0
        assert _np(a).tolist() == [3.0, 2.0]


def test_manual_sgd_loop_is_bit_identical_to_torch():
    """The tutorials' loop: no_grad, ``w -= lr * w.grad``, ``w.grad.zero_()``, 100 steps, float32."""
    def loop(L):
        x = L.tensor(np.linspace(-1, 1, 16, dtype=np.float32))
        y = L.tensor((3 * np.linspace(-1, 1, 16) - 0.5).astype(np.float32))
        w = L.tensor([0.1], requires_grad=True)
        b = L.tensor([0.0], requires_grad=True)
        lr = 0.05
        for _ in range(100):
            loss = ((w * x + b - y) ** 2).mean()
            loss.backward()
            with L.no_grad():
                w -= lr * w.grad
                b -= lr * b.grad
                w.grad.zero_()
                b.grad.zero_()
        return _np(w), _np(b), w.is_leaf, w.requires_grad
    ours, theirs = loop(gradviz), loop(torch)
    np.testing.assert_array_equal(ours[0], theirs[0])
    np.testing.assert_array_equal(ours[1], theirs[1])
    assert ours[2:] == theirs[2:] == (True, True)


def test_optimizer_idiom_through_data_matches_torch():
    def loop(L):
        p = L.tensor([0.3, -0.7, 1.1], requires_grad=True)
        for _ in range(20):
            (p * p * p).sum().backward()
            p.data.add_(p.grad, alpha=-0.01)
            p.grad.zero_()
        return _np(p)
    np.testing.assert_array_equal(loop(gradviz), loop(torch))


def test_inplace_on_a_view_rewrites_its_base_as_torch_does():
    def scenario(L):
        a = L.tensor([1.0, 2.0, 3.0, 4.0], requires_grad=True)
        y = a * 2
        v = y[1:3]
        v.mul_(a[:2])
        v += 1
        ((y * 3).sum() + (v * v).sum()).backward()
        return _np(y), _np(v), _np(a.grad), _name(y)
    ours, theirs = scenario(gradviz), scenario(torch)
    assert ours[3] == theirs[3] == "CopySlices"
    for x, y in zip(ours[:3], theirs[:3]):
        np.testing.assert_array_equal(x, y)


def test_inplace_on_a_view_of_a_leaf_raises():
    for L in (gradviz, torch):
        a = L.tensor([1.0, 2.0, 3.0], requires_grad=True)
        with pytest.raises(RuntimeError, match="^a view of a leaf Variable that requires grad is being used in an "
                                               "in-place operation."):
            a[1:].add_(1)


@pytest.mark.parametrize("optimizer", ["SGD", "Adam"])
def test_a_step_between_forward_and_backward_is_refused_as_torch_refuses_it(optimizer):
    """optimizer.step() writes the parameters in place: a graph that saved one refuses backward."""
    torch = pytest.importorskip("torch")
    messages = []
    for lib in (gradviz, torch):
        w = lib.tensor([1.0, 2.0], requires_grad=True)
        x = lib.tensor([3.0, 4.0], requires_grad=True)
        opt = getattr(lib.optim, optimizer)([w], lr=0.1)
        loss = (w * x).sum()          # mul saves w, for x's gradient
        w.grad = lib.ones(2)
        opt.step()
        with pytest.raises(RuntimeError) as info:
            loss.backward()
        messages.append(str(info.value).split(":")[0])
    assert messages[0] == messages[1]
