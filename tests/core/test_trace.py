"""gradviz.trace records what the engine did, event by event, and nothing when it is off.

The reference values come from numpy closed forms of the small graph
``loss = mean((w * x + b) ** 2)``, not from gradviz itself.
"""
import numpy as np
import pytest

import gradviz
from gradviz import trace
from gradviz.trace import AccumulateEvent, BackwardEvent, ForwardEvent

X = np.array([1.0, 2.0, 3.0])
W, B = 0.5, -1.0


def leaves():
    x = gradviz.tensor(X)
    w = gradviz.tensor(np.float64(W), requires_grad=True)
    b = gradviz.tensor(np.float64(B), requires_grad=True)
    x.name, w.name = "x", "w"             # b stays unnamed: it gets a generated label
    return x, w, b


def forward(x, w, b):
    z = w * x
    y = z + b
    sq = y * y
    return z, y, sq, sq.mean()


def reference():
    y = W * X + B
    dy = 2 * y / len(X)                                   # d mean(y^2) / dy
    return dict(z=W * X, y=y, sq=y * y, loss=np.mean(y * y), dy=dy, db=dy.sum(), dw=(dy * X).sum(),
                dloss=np.float64(1.0), dsq=np.full(3, 1 / 3))


@pytest.fixture
def recorded():
    x, w, b = leaves()
    with trace.record() as rec:
        z, y, sq, loss = forward(x, w, b)
        loss.backward()
    return rec, dict(x=x, w=w, b=b, z=z, y=y, sq=sq, loss=loss)


def test_forward_events_in_evaluation_order(recorded):
    rec, t = recorded
    ref = reference()
    forwards = [e for e in rec.events if isinstance(e, ForwardEvent)]
    nid = {name: rec.find(tensor) for name, tensor in t.items()}
    assert [(e.node, e.grad_fn, e.inputs) for e in forwards] == [
        (nid["z"], "MulBackward0", (nid["w"], nid["x"])),
        (nid["y"], "AddBackward0", (nid["z"], nid["b"])),
        (nid["sq"], "MulBackward0", (nid["y"], nid["y"])),
        (nid["loss"], "MeanBackward0", (nid["sq"],)),
    ]
    for e, name in zip(forwards, ["z", "y", "sq", "loss"]):
        np.testing.assert_allclose(e.value, ref[name], rtol=1e-15)


def test_backward_events_in_reverse_topological_order_with_real_gradients(recorded):
    rec, t = recorded
    ref = reference()
    nid = {name: rec.find(tensor) for name, tensor in t.items()}
    backward = [e for e in rec.events if isinstance(e, (BackwardEvent, AccumulateEvent))]
    assert [(type(e).__name__, e.node) for e in backward] == [
        ("BackwardEvent", nid["loss"]), ("BackwardEvent", nid["sq"]), ("BackwardEvent", nid["y"]),
        ("AccumulateEvent", nid["b"]), ("BackwardEvent", nid["z"]), ("AccumulateEvent", nid["w"]),
    ]
    bw = {e.node: e for e in backward if isinstance(e, BackwardEvent)}
    expected = {  # node: (grad_output, grad_inputs)
        "loss": (ref["dloss"], (ref["dsq"],)),
        "sq": (ref["dsq"], (ref["dsq"] * ref["y"], ref["dsq"] * ref["y"])),   # x*x: each argument gets its half
        "y": (ref["dy"], (ref["dy"], ref["db"])),                               # b's share is un-broadcast
        "z": (ref["dy"], ((ref["dy"] * X).sum(), None)),                        # x needs no grad: None
    }
    for name, (grad_output, grad_inputs) in expected.items():
        e = bw[nid[name]]
        np.testing.assert_allclose(e.grad_output, grad_output, rtol=1e-15)
        assert e.inputs == rec.nodes[nid[name]].inputs
        for got, want in zip(e.grad_inputs, grad_inputs, strict=True):
            if want is None:
                assert got is None
            else:
                assert np.shape(got) == np.shape(want)
                np.testing.assert_allclose(got, want, rtol=1e-15)
    np.testing.assert_allclose(t["w"].grad.data, ref["dw"], rtol=1e-15)
    np.testing.assert_allclose(t["b"].grad.data, ref["db"], rtol=1e-15)


def test_accumulate_events_first_and_second_backward():
    x, w, b = leaves()
    ref = reference()
    with trace.record() as rec:
        forward(x, w, b)[-1].backward()
        forward(x, w, b)[-1].backward()         # no zero_grad: the second backward adds
    acc = {}
    for e in rec.events:
        if isinstance(e, AccumulateEvent):
            acc.setdefault(e.node, []).append(e)
    for leaf, grad in ((w, ref["dw"]), (b, ref["db"])):
        first, second = acc[rec.find(leaf)]
        assert first.before is None
        np.testing.assert_allclose(first.added, grad, rtol=1e-15)
        np.testing.assert_allclose(first.after, grad, rtol=1e-15)
        np.testing.assert_allclose(second.before, grad, rtol=1e-15)
        np.testing.assert_allclose(second.after, 2 * grad, rtol=1e-15)
        np.testing.assert_allclose(second.after, second.before + second.added, rtol=1e-15)
    assert rec.find(x) not in acc


def test_retain_grad_non_leaf_gets_an_accumulate_event():
    x, w, b = leaves()
    with trace.record() as rec:
        z, y, sq, loss = forward(x, w, b)
        y.retain_grad()
        loss.backward()
    acc = [e for e in rec.events if isinstance(e, AccumulateEvent) and e.node == rec.find(y)]
    assert len(acc) == 1
    np.testing.assert_allclose(acc[0].after, reference()["dy"], rtol=1e-15)


def test_nodes_table_kinds_and_labels(recorded):
    rec, t = recorded
    info = {name: rec.nodes[rec.find(tensor)] for name, tensor in t.items()}
    assert (info["w"].kind, info["w"].label, info["w"].requires_grad) == ("param", "w", True)
    assert (info["x"].kind, info["x"].label, info["x"].requires_grad) == ("input", "x", False)
    assert info["b"].kind == "param" and info["b"].label == f"p{rec.find(t['b'])}"
    for name, label, op in [("z", "MulBackward0", "mul"), ("y", "AddBackward0", "add"),
                            ("sq", "MulBackward0", "mul"), ("loss", "MeanBackward0", "mean")]:
        assert (info[name].kind, info[name].label, info[name].op) == ("op", label, op)
    assert info["y"].inputs == (rec.find(t["z"]), rec.find(t["b"]))
    assert info["x"].shape == (3,) and info["x"].dtype == "float64" and info["loss"].shape == ()


def test_python_scalars_become_labelled_inputs():
    w = gradviz.tensor([1.0, 2.0], requires_grad=True)
    with trace.record() as rec:
        y = 2 * w - 0.5
    (mul, sub) = [e for e in rec.events if isinstance(e, ForwardEvent)]
    assert [rec.nodes[i].label for i in mul.inputs] == ["2", "p1"]       # 2 * w: the scalar comes first
    assert rec.nodes[sub.inputs[1]].label == "0.5" and rec.nodes[sub.inputs[1]].kind == "input"
    assert rec.nodes[rec.find(y)].label == "SubBackward0"


def test_recorded_values_are_copies():
    x, w, b = leaves()
    with trace.record() as rec:
        loss = forward(x, w, b)[-1]
        loss.backward()
    w.data[...] = 100.0
    w.grad.data[...] = 100.0
    acc = next(e for e in rec.events if isinstance(e, AccumulateEvent) and e.node == rec.find(w))
    np.testing.assert_allclose(acc.after, reference()["dw"], rtol=1e-15)
    first = next(e for e in rec.events if isinstance(e, ForwardEvent))
    np.testing.assert_allclose(first.value, W * X, rtol=1e-15)


def test_no_events_without_a_recorder():
    assert trace.current() is None
    x, w, b = leaves()
    with trace.record() as rec:
        pass
    forward(x, w, b)[-1].backward()
    assert rec.events == [] and rec.nodes == {} and trace.current() is None


def test_recorder_removed_after_the_block_even_on_exception():
    with pytest.raises(ZeroDivisionError):
        with trace.record() as rec:
            gradviz.tensor([1.0]) * 2
            1 / 0
    assert trace.current() is None
    n = len(rec.events)
    gradviz.tensor([1.0]) * 2
    assert len(rec.events) == n == 1


def test_nested_record_restores_the_outer_recorder():
    with trace.record() as outer:
        with trace.record() as inner:
            gradviz.tensor([1.0]) * 2
        assert trace.current() is outer
        gradviz.tensor([1.0]) + 2
    assert [e.grad_fn for e in inner.events] == ["MulBackward0"]
    assert [e.grad_fn for e in outer.events] == ["AddBackward0"]


def test_same_graph_records_the_same_events_twice():
    def run():
        x, w, b = leaves()
        with trace.record() as rec:
            forward(x, w, b)[-1].backward()
        return [(type(e).__name__, e.node, getattr(e, "grad_fn", None), getattr(e, "inputs", None)) for e in rec.events]
    assert run() == run()


def test_backward_gradient_given_by_the_caller_is_recorded_as_it_was():
    """backward(gradient=g) copies g: changing g afterwards does not rewrite the recorded history."""
    w = gradviz.tensor([1.0, 2.0], requires_grad=True)
    g = gradviz.tensor([0.5, -1.0])
    with trace.record() as rec:
        (w * 3).backward(g)
    g.data[...] = 99.0
    bw = next(e for e in rec.events if isinstance(e, BackwardEvent))
    np.testing.assert_array_equal(bw.grad_output, [0.5, -1.0])
    np.testing.assert_array_equal(bw.grad_inputs[0], [1.5, -3.0])
    acc = next(e for e in rec.events if isinstance(e, AccumulateEvent))
    np.testing.assert_array_equal(acc.added, [1.5, -3.0])


def test_division_by_a_tensor_records_reciprocal_then_mul_like_torch():
    x = gradviz.tensor([2.0, 4.0], requires_grad=True)
    with trace.record() as rec:
        y = 2 / x
    assert [e.grad_fn for e in rec.events] == ["ReciprocalBackward0", "MulBackward0"]
    assert y.grad_fn.name() == "MulBackward0"
