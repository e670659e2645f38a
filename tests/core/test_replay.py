"""gradviz.view.replay: frames of a traced iteration.

The traces are recorded around a hand-written training loop (the Session's phases, contracts.md),
and every number a frame shows is compared with what the engine really left in the tensors
(``w.grad``, ``w.data``), not with numbers pasted from our own output.
"""
from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np
import pytest

import gradviz as gv
from gradviz import nn, trace
from gradviz.optim import SGD
from gradviz.view.format import format_array, format_number
from gradviz.view.replay import NODE_STATES, Replay, op_symbol

# ------------------------------------------------------------------------------ trace builders


@dataclass
class FakeTrace:
    """The attributes contracts.md gives ``gradviz.trace.Trace``."""
    iteration: int
    nodes: dict
    events: list
    param_nodes: dict
    loss_node: int | None
    grads_before: dict
    params_before: dict
    params_after: dict


def record_iteration(params, forward, optimizer, batches, *, iteration=0, zero_grad="before_backward",
                     set_to_none=True, divide_loss=False, loss_fn=None):
    """One optimizer step in the Session's phase order, recorded.  ``params``: name -> Parameter."""
    loss_fn = loss_fn or nn.functional.mse_loss
    grads_before = {n: None if p.grad is None else p.grad.detach().numpy().copy() for n, p in params.items()}
    params_before = {n: p.detach().numpy().copy() for n, p in params.items()}
    loss = None
    with trace.record() as rec:
        if zero_grad == "before_backward":
            rec.phase("zero_grad", 0, iteration)
            optimizer.zero_grad(set_to_none=set_to_none)
        for j, (x, y) in enumerate(batches):
            rec.phase("forward", j, iteration)
            pred = forward(x)
            rec.phase("loss", j, iteration)
            loss = loss_fn(pred, y)
            if divide_loss:
                loss = loss / len(batches)
            rec.phase("backward", j, iteration)
            loss.backward()
        rec.phase("step", 0, iteration)
        optimizer.step()
        if zero_grad == "after_step":
            rec.phase("zero_grad_after", 0, iteration)
            optimizer.zero_grad(set_to_none=set_to_none)
    return FakeTrace(
        iteration, dict(rec.nodes), list(rec.events),
        {n: rec.find(p) for n, p in params.items() if rec.find(p) is not None},
        rec.find(loss), grads_before, params_before, {n: p.detach().numpy().copy() for n, p in params.items()})


def tutorial(accumulation_steps=1, iterations=1, zero_grad="before_backward", set_to_none=True):
    """w * x + b against y = 2x + 1, MSE, SGD(lr=0.1); returns (trace of the last iteration, w, b)."""
    w = nn.Parameter(gv.tensor(0.5))
    b = nn.Parameter(gv.tensor(0.0))
    w.name, b.name = "w", "b"
    opt = SGD([w, b], lr=0.1)
    xs = np.array([1.0, 2.0, 3.0, 4.0], dtype=np.float32)
    ys = 2 * xs + 1
    mb = len(xs) // accumulation_steps
    tr = None
    for k in range(iterations):
        batches = []
        for j in range(accumulation_steps):
            x, y = gv.tensor(xs[j * mb:(j + 1) * mb]), gv.tensor(ys[j * mb:(j + 1) * mb])
            x.name, y.name = "x", "y"
            batches.append((x, y))
        tr = record_iteration({"w": w, "b": b}, lambda x: w * x + b, opt, batches, iteration=k,
                              zero_grad=zero_grad, set_to_none=set_to_none,
                              divide_loss=accumulation_steps > 1)
    return tr, w, b


def mlp(sizes=(2, 4, 1), batch=4, seed=0):
    """A traced Sequential(Linear, Tanh, Linear, ...) iteration; returns (trace, model)."""
    gv.manual_seed(seed)
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.Tanh())
    model = nn.Sequential(*layers)
    rng = np.random.default_rng(seed)
    x = gv.tensor(rng.normal(size=(batch, sizes[0])).astype(np.float32))
    y = gv.tensor(rng.normal(size=(batch, sizes[-1])).astype(np.float32))
    x.name, y.name = "x", "y"
    params = dict(model.named_parameters())
    opt = SGD(list(params.values()), lr=0.1, momentum=0.9)
    return record_iteration(params, model, opt, [(x, y)]), model


# ----------------------------------------------------------------------------------------- tests


def test_format_array_table():
    assert format_number(1.6) == "1.6"
    assert format_number(2.0) == "2.0"
    assert format_number(-0.0) == "0.0"
    assert format_array(np.float32(1.6)) == "1.6"
    assert format_array(np.array(1.6, dtype=np.float32)) == "1.6"
    assert format_array(np.array([2.0, 4.0])) == "[2.0, 4.0]"
    assert format_array(np.array([[1.0, 2.0], [3.0, 4.0]])) == "[[1.0, 2.0], [3.0, 4.0]]"
    assert format_array(np.array([[1.0, 2.0], [3.0, 4.0]]), multiline=True) == "[[1.0, 2.0],\n [3.0, 4.0]]"
    big = np.full((16, 2), 0.03)
    assert format_array(big) == "shape (16, 2) · mean 0.03"
    assert format_array(None) == "None"


def test_tutorial_badge_at_end_of_backward_equals_real_grad():
    tr, w, b = tutorial()
    r = Replay(tr)
    assert len(r) == len(tr.events) + 1
    _, end = r.phase_range("backward")
    f = r.frame(end)
    wid, bid = tr.param_nodes["w"], tr.param_nodes["b"]
    np.testing.assert_array_equal(f.nodes[wid].grad_badge, w.grad.data)
    np.testing.assert_array_equal(f.nodes[bid].grad_badge, b.grad.data)
    assert f.phase == "backward"
    # before backward, after zero_grad(set_to_none=True): no .grad at all
    start, _ = r.phase_range("forward")
    assert r.frame(start).nodes[wid].grad_badge is None
    # the step moves the value from params_before to the real new value
    last = r.frame(len(r) - 1)
    np.testing.assert_array_equal(last.nodes[wid].value, w.data)
    np.testing.assert_array_equal(last.nodes[wid].param_before, tr.params_before["w"])
    assert last.nodes[wid].stepped


def test_forward_values_and_edge_grads_match_the_events():
    tr, w, b = tutorial()
    r = Replay(tr)
    last = r.frame(len(r) - 1)
    for e in tr.events:
        if isinstance(e, trace.ForwardEvent):
            np.testing.assert_array_equal(last.nodes[e.node].value, e.value)
        if isinstance(e, trace.BackwardEvent):
            np.testing.assert_array_equal(last.nodes[e.node].grad, e.grad_output)
            for src, g in zip(e.inputs, e.grad_inputs):
                es = last.edges[(src, e.node)]
                assert (es.grad is None) == (g is None)
                if g is not None:
                    np.testing.assert_array_equal(es.grad, g)
                    assert es.state == "backward_done"
    # the loss node's value is the MSE of the tutorial data
    loss = last.nodes[tr.loss_node].value
    xs = np.array([1, 2, 3, 4], dtype=np.float32)
    np.testing.assert_allclose(loss, np.mean((tr.params_before["w"] * xs + tr.params_before["b"] - (2 * xs + 1)) ** 2),
                               rtol=1e-6)


def test_two_micro_batches_show_before_plus_added_equals_after():
    tr, w, b = tutorial(accumulation_steps=2)
    r = Replay(tr)
    assert r.accumulation_steps == 2
    wid = tr.param_nodes["w"]
    accs = []
    for i in range(len(r)):
        f = r.frame(i)
        if isinstance(f.event, trace.AccumulateEvent) and f.event.node == wid:
            accs.append(f.nodes[wid].accumulation)
            assert wid in f.active_nodes
            assert f.description.startswith(".grad of w")
    assert len(accs) == 2
    before0, added0, after0 = accs[0]
    assert before0 is None
    np.testing.assert_array_equal(after0, added0)
    before1, added1, after1 = accs[1]
    np.testing.assert_array_equal(before1, after0)
    np.testing.assert_allclose(after1, before1 + added1, rtol=1e-6)
    np.testing.assert_array_equal(after1, w.grad.data)
    f = r.frame(r.phase_range("backward", 1)[1])
    assert " + " in f.description or "accumulate" in f.description or f.nodes[wid].accumulation is not None


def test_without_zero_grad_the_badge_starts_from_the_previous_grad():
    tr, w, b = tutorial(iterations=2, zero_grad="never")
    r = Replay(tr)
    wid = tr.param_nodes["w"]
    assert tr.grads_before["w"] is not None
    np.testing.assert_array_equal(r.frame(0).nodes[wid].grad_badge, tr.grads_before["w"])
    acc = next(r.frame(i).nodes[wid].accumulation for i in range(len(r))
               if isinstance(r.frame(i).event, trace.AccumulateEvent) and r.frame(i).event.node == wid)
    np.testing.assert_array_equal(acc[0], tr.grads_before["w"])
    np.testing.assert_allclose(acc[2], acc[0] + acc[1], rtol=1e-6)
    np.testing.assert_array_equal(r.frame(len(r) - 1).nodes[wid].grad_badge, w.grad.data)


@pytest.mark.parametrize("set_to_none", [True, False])
def test_zero_grad_clears_the_badge(set_to_none):
    tr, w, b = tutorial(iterations=2, set_to_none=set_to_none)
    r = Replay(tr)
    wid = tr.param_nodes["w"]
    assert r.frame(0).nodes[wid].grad_badge is not None        # left from iteration 0
    start, end = r.phase_range("zero_grad")
    badge = r.frame(end).nodes[wid].grad_badge
    if set_to_none:
        assert badge is None
    else:
        np.testing.assert_array_equal(badge, np.zeros_like(tr.grads_before["w"]))
    assert r.frame(end).nodes[wid].cleared == ("none" if set_to_none else "zeros")


def _dedup(seq):
    out = []
    for s in seq:
        if not out or out[-1] != s:
            out.append(s)
    return out


@pytest.mark.parametrize("build", [lambda: tutorial()[0], lambda: mlp()[0]], ids=["tutorial", "mlp"])
def test_state_sequence_per_node(build):
    tr = build()
    r = Replay(tr)
    seqs = {nid: _dedup([r.frame(i).nodes[nid].state for i in range(len(r))]) for nid in tr.nodes}
    for nid, seq in seqs.items():
        assert all(s in NODE_STATES for s in seq)
        info = tr.nodes[nid]
        if info.kind == "op" or nid in tr.param_nodes.values():
            assert seq == ["idle", "forward", "forward_done", "backward", "backward_done"], (info.label, seq)
        else:                                                   # data: read, never differentiated
            assert seq == ["idle", "forward", "forward_done"], (info.label, seq)


def test_active_nodes_are_exactly_the_changed_ones():
    tr = mlp()[0]
    r = Replay(tr)
    for i in range(1, len(r)):
        prev, f = r.frame(i - 1), r.frame(i)
        for nid in f.active_nodes:
            assert f.nodes[nid] is not prev.nodes[nid]
        changed = {nid for nid in f.nodes if f.nodes[nid] is not prev.nodes[nid]}
        assert f.active_nodes <= changed <= f.active_nodes | prev.active_nodes


def test_random_seeks_equal_stepping():
    tr = mlp((2, 8, 8, 1))[0]
    stepped = Replay(tr)
    frames = [stepped.frame(i) for i in range(len(stepped))]
    sought = Replay(tr)
    sought.KEYFRAME_EVERY = 7
    rnd = random.Random(3)
    for i in [rnd.randrange(len(sought)) for _ in range(200)] + [len(sought) - 1, 0, 5, 4, 3]:
        a, b = frames[i], sought.frame(i)
        assert (a.index, a.phase, a.micro_batch, a.description) == (b.index, b.phase, b.micro_batch, b.description)
        assert a.active_nodes == b.active_nodes and a.active_edges == b.active_edges
        for nid in a.nodes:
            x, y = a.nodes[nid], b.nodes[nid]
            assert x.state == y.state
            for attr in ("value", "grad", "grad_badge"):
                u, v = getattr(x, attr), getattr(y, attr)
                assert (u is None) == (v is None)
                if u is not None:
                    np.testing.assert_array_equal(u, v)
        for key in a.edges:
            assert a.edges[key].state == b.edges[key].state


def test_descriptions_name_what_happened():
    tr, w, b = tutorial()
    r = Replay(tr)
    texts = [r.frame(i).description for i in range(len(r))]
    assert texts[0].startswith("Iteration 0 begins")
    mul = next(e for e in tr.events if isinstance(e, trace.BackwardEvent) and e.grad_fn == "MulBackward0")
    i = tr.events.index(mul) + 1
    assert texts[i] == (f"MulBackward0 received ∂loss/∂out = {format_array(mul.grad_output)} and sent "
                        f"{format_array(mul.grad_inputs[0])} to w.")
    assert any(t.startswith("MulBackward0: w × x = ") for t in texts)
    assert any(t.startswith("SGD.step(): w ") for t in texts)
    # the loss is PyTorch's one fused node; its description shows the formula of its gradient
    assert r.symbol(next(n for n, i in tr.nodes.items() if i.op == "mse_loss")) == "MSE"
    assert any(t.startswith("MseLossBackward0 received ∂loss/∂out = ") and "2·(input − target)/n" in t
               for t in texts)
    assert any(t.startswith("MseLossBackward0: mse_loss(") for t in texts)
    assert op_symbol("pow_scalar", 2) == "x²"


def test_phase_starts_and_navigation():
    tr, _, _ = tutorial(accumulation_steps=2)
    r = Replay(tr)
    starts = r.phase_starts()
    assert [(p, m) for _, p, m in starts] == [("zero_grad", 0), ("forward", 0), ("loss", 0), ("backward", 0),
                                              ("forward", 1), ("loss", 1), ("backward", 1), ("step", 0)]
    for pos, phase, mb in starts:
        assert r.frame(pos).phase == phase and r.frame(pos).micro_batch == mb
    assert r.next_phase_position(0) == starts[0][0]
    assert r.next_phase_position(starts[1][0]) == starts[2][0]
    assert r.prev_phase_position(starts[2][0] + 1) == starts[2][0]
    assert r.prev_phase_position(starts[2][0]) == starts[1][0]
    assert r.next_phase_position(len(r) - 1) == len(r) - 1


def test_modules_and_loss_nodes():
    tr, model = mlp()
    r = Replay(tr)
    assert r.collapsible_modules() == ["0", "2"]
    assert r.module_type("0") == "Linear"
    members = r.module_members("0")
    assert tr.param_nodes["0.weight"] in members and tr.param_nodes["0.bias"] in members
    assert r.loss_nodes == [tr.loss_node]


def test_ops_record_their_plain_arguments_as_attrs():
    x = gv.tensor(np.ones((2, 3)), requires_grad=True)
    x.name = "x"
    with trace.record() as rec:
        outs = {"pow": x ** 3, "sum": x.sum(dim=1, keepdim=True), "clamp": x.clamp(min=0.5),
                "view": x.reshape(3, 2), "permute": x.T, "slice": x[:, 1:], "add": x + 1}
    attrs = {name: rec.nodes[rec.find(t)].attrs for name, t in outs.items()}
    assert attrs["pow"] == {"exponent": 3}
    assert attrs["sum"] == {"dim": 1, "keepdim": True}
    assert attrs["clamp"] == {"min": 0.5, "max": None}
    assert attrs["view"] == {"shape": (3, 2)}
    assert attrs["permute"] == {"axes": (1, 0)}
    assert attrs["slice"] == {}, "index objects (slices, arrays) are left out"
    assert attrs["add"] == {} and rec.nodes[rec.find(x)].attrs == {}


def test_exponent_comes_from_the_trace_not_the_values():
    # on x = 1 every power gives 1, so the values cannot tell x ** 3 from x ** 2
    x = gv.tensor(np.ones(3), requires_grad=True)
    with trace.record() as rec:
        y = x ** 3
    nid = rec.find(y)
    tr = FakeTrace(0, dict(rec.nodes), list(rec.events), {}, nid, {}, {}, {})
    assert Replay(tr).symbol(nid) == "x³"
    rec.nodes[nid].attrs.clear()            # not recorded: the exponent is not guessed from the values
    assert Replay(tr).symbol(nid) == "xⁿ"
