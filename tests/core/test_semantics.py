"""Autograd semantics a learner meets, run in gradviz and in PyTorch side by side.

Each scenario is written once against the shared API (``L`` is ``gradviz`` or ``torch``) and
returns plain numbers; the test asserts that both libraries return the same ones.
"""
import sys
import warnings

import numpy as np
import pytest

import gradviz
from gradviz.autograd import topological_order

torch = pytest.importorskip("torch")
LIBS = [gradviz, torch]


def value(t):
    """A tensor's values as numpy (None stays None), reading a non-leaf's .grad without PyTorch's warning."""
    if t is None:
        return None
    return t.detach().numpy().copy() if isinstance(t, torch.Tensor) else np.array(t.data, copy=True)


def grad_of(t):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")      # torch warns when a non-leaf's .grad is read; gradviz never does
        return value(t.grad)


def assert_same(results):
    ours, theirs = results
    assert ours.keys() == theirs.keys()
    for key in ours:
        a, b = ours[key], theirs[key]
        if a is None or b is None or isinstance(a, (bool, str)):
            assert a == b, key
        else:
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=0, err_msg=key)


def both(scenario):
    results = [scenario(L) for L in LIBS]
    assert_same(results)
    return results[0]


def _graph(L, retain):
    x = L.tensor([1.0, -2.0, 0.5], requires_grad=True)
    w = L.tensor([0.3, 0.7, -1.1], requires_grad=True)
    h = (x * w).tanh()
    if retain:
        h.retain_grad()
    return x, w, h, (h * h).sum()


# -- accumulation across backward() calls --------------------------------------------------------------
def test_two_backward_calls_accumulate_into_leaves_only():
    def scenario(L):
        x, w, h, loss = _graph(L, retain=False)
        out = {}
        for call in (1, 2):
            if call == 2:                       # a fresh forward pass, .grad not zeroed in between
                h = (x * w).tanh()
                loss = (h * h).sum()
            loss.backward()
            out[f"x.grad after {call}"], out[f"w.grad after {call}"] = value(x.grad), value(w.grad)
            out[f"h.grad after {call}"] = grad_of(h)
        return out

    res = both(scenario)
    np.testing.assert_allclose(res["x.grad after 2"], 2 * res["x.grad after 1"], rtol=1e-6)
    assert res["h.grad after 2"] is None


def test_retain_graph_backward_twice_on_the_same_graph():
    def scenario(L):
        x, w, h, loss = _graph(L, retain=False)
        loss.backward(retain_graph=True)
        first = value(x.grad)
        loss.backward()
        return {"first": first, "second": value(x.grad), "w": value(w.grad), "h": grad_of(h)}
    res = both(scenario)
    np.testing.assert_allclose(res["second"], 2 * res["first"], rtol=1e-6)


def test_intermediate_grad_access_is_warning_free_and_none():
    x, w, h, loss = _graph(gradviz, retain=False)
    loss.backward()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert h.grad is None and not h.retains_grad and not h.is_leaf


def test_leaf_grad_accumulates_in_place():
    def scenario(L):
        x = L.tensor([1.0, 2.0], requires_grad=True)
        (x * 3).sum().backward()
        g = x.grad
        (x * x).sum().backward()
        return {"same object": g is x.grad, "old reference sees the sum": value(g), "grad": value(x.grad)}
    res = both(scenario)
    assert res["same object"] is True


def test_retain_grad_on_non_leaf_accumulates_with_retain_graph():
    def scenario(L):
        x, w, h, loss = _graph(L, retain=True)
        loss.backward(retain_graph=True)
        first = grad_of(h)
        loss.backward()
        return {"h first": first, "h second": grad_of(h), "x": value(x.grad), "retains": h.retains_grad}
    res = both(scenario)
    np.testing.assert_allclose(res["h second"], 2 * res["h first"], rtol=1e-6)
    assert res["retains"] is True


def test_retain_grad_on_leaf_is_a_no_op():
    def scenario(L):
        x = L.tensor([1.0, 2.0], requires_grad=True)
        x.retain_grad()
        (x * 2).sum().backward()
        return {"retains": x.retains_grad, "grad": value(x.grad)}
    both(scenario)


def test_backward_with_gradient_on_non_scalar():
    def scenario(L):
        x = L.tensor([[1.0, 2.0], [3.0, -1.0]], requires_grad=True)
        y = x * x + x
        y.backward(gradient=L.tensor([[1.0, 0.5], [-2.0, 0.0]]))
        return {"grad": value(x.grad)}
    assert_same([{"grad": both(scenario)["grad"]}, {"grad": np.array([[3.0, 2.5], [-14.0, 0.0]])}])


def test_used_twice_and_diamond_sum_their_gradients():
    def scenario(L):
        x = L.tensor([0.5, -1.5, 2.0], requires_grad=True)
        (x * x).sum().backward()
        square = value(x.grad)
        x.grad = None
        a = x.exp()
        b = a * x                      # x reaches the output through a and directly: a diamond
        (a + b + x).sum().backward()
        return {"x*x": square, "diamond": value(x.grad)}
    res = both(scenario)
    x = np.array([0.5, -1.5, 2.0])
    np.testing.assert_allclose(res["x*x"], 2 * x, rtol=1e-6)
    np.testing.assert_allclose(res["diamond"], np.exp(x) * (2 + x) + 1, rtol=1e-6)


# -- flags: detach, requires_grad_, is_leaf ------------------------------------------------------------
def test_flags_of_results():
    def scenario(L):
        a = L.tensor([1.0, 2.0])
        p = L.tensor([3.0, 4.0], requires_grad=True)
        y = p * a
        with L.no_grad():
            z = p * 2
        d = y.detach()
        out = {}
        for name, t in dict(a=a, p=p, y=y, z=z, d=d, a2=a * 2, c=p.clone()).items():
            out[name] = f"leaf={t.is_leaf} requires_grad={t.requires_grad} fn={t.grad_fn is not None}"
        return out
    both(scenario)


def test_detach_shares_data_and_cuts_the_graph():
    def scenario(L):
        p = L.tensor([3.0, 4.0], requires_grad=True)
        y = p * 2
        d = y.detach()
        with L.no_grad():
            d *= 10                     # shares storage with y, like PyTorch
        return {"y": value(y), "d": value(d), "d leaf": d.is_leaf, "d grad": d.requires_grad}
    both(scenario)


def test_requires_grad_():
    def scenario(L):
        x = L.tensor([1.0, 2.0])
        same = x.requires_grad_() is x
        (x * x).sum().backward()
        x.requires_grad_(False)
        y = x * 2
        return {"same": same, "grad": value(x.grad), "y requires": y.requires_grad}
    both(scenario)


def test_no_grad_context_and_decorator_build_no_graph():
    @gradviz.no_grad()
    def decorated(t):
        return t * 2

    x = gradviz.tensor([1.0, 2.0], requires_grad=True)
    with gradviz.no_grad():
        assert not gradviz.is_grad_enabled()
        y = x * 2
        with gradviz.enable_grad():
            assert (x * 2).grad_fn is not None
    z = decorated(x)
    assert gradviz.is_grad_enabled()
    for t in (y, z):
        assert t.grad_fn is None and not t.requires_grad and t.is_leaf
    with pytest.raises(ValueError), gradviz.no_grad():
        raise ValueError
    assert gradviz.is_grad_enabled()


def test_in_place_update_under_no_grad_keeps_the_leaf():
    def scenario(L):
        w = L.tensor([1.0, -1.0], requires_grad=True)
        (w * w).sum().backward()
        before = w
        with L.no_grad():
            w -= 0.1 * w.grad
            w *= 2
        return {"same": w is before, "w": value(w), "leaf": w.is_leaf, "requires": w.requires_grad}
    both(scenario)


# -- the engine --------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [10_000])
def test_deep_chain_has_no_recursion_limit(n):
    x0 = gradviz.tensor(np.array([1.5]), requires_grad=True)
    x = x0
    for i in range(n):
        x = x * 1.0001 if i % 2 == 0 else x + 0.5
    assert n > sys.getrecursionlimit()
    x.sum().backward()
    np.testing.assert_allclose(x0.grad.data, [1.0001 ** (n // 2)], rtol=1e-10)
    del x                                  # freeing a deep graph must not overflow the C stack either


def test_deep_chain_matches_torch():
    def scenario(L):
        x0 = L.tensor([0.3], requires_grad=True)
        x = x0
        for _ in range(2000):
            x = (x * 1.0001).tanh() + 0.01
        x.sum().backward()
        return {"x": value(x), "grad": value(x0.grad)}
    both(scenario)


def test_topological_order_is_deterministic_and_valid():
    def build():
        x = gradviz.tensor([1.0, 2.0], requires_grad=True)
        w = gradviz.tensor([0.5, -0.5], requires_grad=True)
        a, b = x * w, x + w
        return (a * b + a.exp() - b.tanh()).sum()

    def events():
        with gradviz.trace.record() as rec:
            build().backward()
        return [(type(e).__name__, getattr(e, "node", None), getattr(e, "grad_fn", None)) for e in rec.events]

    assert events() == events()
    loss = build()
    order = topological_order(loss)
    assert order[0] is loss
    position = {id(t): i for i, t in enumerate(order)}
    for t in order:
        for inp in (t.grad_fn.inputs if t.grad_fn else ()):
            if inp.requires_grad:
                assert position[id(inp)] > position[id(t)]


def test_classic_tutorial_linear_regression_sgd():
    """w=1, b=0, x=2, y=4, MSE, manual SGD with lr=0.1: 100 steps end at w=1.8, b=0.4 in float32."""
    def scenario(L):
        w = L.tensor(1.0, requires_grad=True)
        b = L.tensor(0.0, requires_grad=True)
        x, y = L.tensor(2.0), L.tensor(4.0)
        for _ in range(100):
            loss = (w * x + b - y) ** 2
            loss.backward()
            with L.no_grad():
                w -= 0.1 * w.grad
                b -= 0.1 * b.grad
            w.grad.zero_()
            b.grad.zero_()
        return {"w": "%.10f" % w.item(), "b": "%.10f" % b.item(), "dtype": str(w.dtype).split(".")[-1]}
    res = both(scenario)
    assert res == {"w": "1.7999999523", "b": "0.4000000060", "dtype": "float32"}


def test_classic_tutorial_with_data_attribute():
    w = gradviz.tensor(1.0, requires_grad=True)
    b = gradviz.tensor(0.0, requires_grad=True)
    for _ in range(100):
        loss = (w * 2.0 + b - 4.0) ** 2
        loss.backward()
        w.data -= 0.1 * w.grad.data
        b.data -= 0.1 * b.grad.data
        w.grad, b.grad = None, None
    assert ("%.10f" % w.item(), "%.10f" % b.item()) == ("1.7999999523", "0.4000000060")
