"""gradviz.view.folding: which modules fold, what a folded module is called, and what its box shows
at every frame, checked against the frames of its members (no Qt)."""
from __future__ import annotations

import numpy as np
import pytest

import gradviz as gv
from gradviz import nn, trace
from gradviz.optim import SGD
from gradviz.view.folding import (
    AUTO_COLLAPSE_NODES,
    FoldedGraph,
    FoldedState,
    default_collapsed,
    foldable_module,
    module_label,
    top_module,
)
from gradviz.view.replay import NODE_STATES, Replay
from tests.core.test_replay import mlp, record_iteration, tutorial


def loss_in_a_module(pred, y):
    """A loss made of several ops inside a ``loss`` module, reading ``pred`` twice (as the Session's
    losses do): edges into its box merge."""
    with trace.module_scope("loss"):
        d = pred - y
        return (d * d).mean() + (pred * pred).mean() * 0.1


def mlp_with_loss_module(accumulation_steps=1):
    gv.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 3), nn.Tanh(), nn.Linear(3, 1))
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(accumulation_steps):
        x = gv.tensor(rng.normal(size=(4, 2)).astype(np.float32))
        y = gv.tensor(rng.normal(size=(4, 1)).astype(np.float32))
        x.name, y.name = "x", "y"
        batches.append((x, y))
    params = dict(model.named_parameters())
    tr = record_iteration(params, model, SGD(list(params.values()), lr=0.1), batches, loss_fn=loss_in_a_module,
                          divide_loss=accumulation_steps > 1)
    return tr, model


def test_modules_that_fold_and_their_labels():
    tr, _ = mlp()
    r = Replay(tr)
    assert r.collapsible_modules() == ["0", "2"]
    assert module_label(r, "0") == "Linear 0"
    w = tr.param_nodes["0.weight"]
    assert top_module(r, w) == "0" and foldable_module(r, w) == "0"
    x = next(n for n, i in tr.nodes.items() if i.label == "x")
    assert top_module(r, x) == "" and foldable_module(r, x) is None


def test_default_collapsed_keeps_a_small_graph_open_and_folds_a_large_one():
    small = Replay(mlp()[0])
    assert len(small.nodes) <= AUTO_COLLAPSE_NODES and default_collapsed(small) == set()
    big = Replay(mlp((2, 8, 8, 8, 8, 8, 1))[0])
    assert len(big.nodes) > AUTO_COLLAPSE_NODES
    folded = default_collapsed(big)
    assert folded and folded <= set(big.collapsible_modules())
    shown = len(big.nodes) - sum(len(big.module_members(m)) - 1 for m in folded)
    assert shown <= AUTO_COLLAPSE_NODES
    assert default_collapsed(None) == set()


def test_folded_graph_draws_one_box_per_module_and_merges_its_edges():
    tr, _ = mlp()
    r = Replay(tr)
    g = FoldedGraph(r, {"0"})
    members = r.module_members("0")
    (box,) = [k for k in g.keys if k < 0]
    assert all(g.display_of[n] == box for n in members)
    assert all(g.display_of[n] == n for n in r.nodes if n not in members)
    assert len(g.keys) == len(r.nodes) - len(members) + 1
    fold = g.folds[box]
    assert fold.module == "0" and fold.label == "Linear 0" and g.module_of_box(box) == "0"
    assert set(fold.members) == set(members)
    assert set(fold.param_names) == {"0.weight", "0.bias"}
    assert fold.n_ops == sum(1 for n in members if r.nodes[n].kind == "op")
    # the output is the member that feeds a node outside the box
    assert any(c not in members for c in r.consumers[fold.output])
    # every edge of the replay is drawn once: inside a box it disappears, across it is merged
    for src, dst in r.edges:
        a, b = g.display_of[src], g.display_of[dst]
        assert ((src, dst) in g.edges.get((a, b), [])) == (a != b)
    # nothing folded: the graph as recorded
    plain = FoldedGraph(r, set())
    assert plain.keys == list(r.nodes) and not plain.folds
    assert sorted(plain.edges) == sorted(r.edges)


@pytest.mark.parametrize("build", [lambda: mlp()[0], lambda: mlp_with_loss_module(accumulation_steps=2)[0]],
                         ids=["mlp", "loss-module-accumulating"])
def test_folded_state_combines_the_members_frames(build):
    tr = build()
    r = Replay(tr)
    modules = r.collapsible_modules()
    assert modules
    g = FoldedGraph(r, modules)
    rank = {s: k for k, s in enumerate(NODE_STATES)}
    for i in range(len(r)):
        f = r.frame(i)
        for fold in g.folds.values():
            st = fold.state_at(f)
            assert isinstance(st, FoldedState)
            active = [n for n in fold.members if n in f.active_nodes]
            assert fold.is_active(f) == bool(active)
            if active:
                expected = "backward" if any(f.nodes[n].state == "backward" for n in active) else "forward"
            else:
                expected = max((f.nodes[n].state for n in fold.members), key=rank.__getitem__)
            assert st.state == expected
            assert st.value is f.nodes[fold.output].value
            out_grad = f.nodes[fold.output].grad
            if out_grad is not None:
                assert st.grad is out_grad
            elif st.grad is not None:
                assert any(st.grad is f.nodes[n].grad for n in fold.members)
            assert [name for name, _ in st.param_grads] == [p.split(".")[-1] for p in fold.param_names]
            for (_, g_shown), nid in zip(st.param_grads, fold.params):
                assert g_shown is f.nodes[nid].grad_badge


def test_folded_linear_shows_the_real_gradients_after_backward():
    tr, model = mlp()
    r = Replay(tr)
    fold = FoldedGraph(r, {"0"}).folds[-1]
    end = r.frame(r.phase_range("step")[0])          # backward done, nothing active yet
    assert not fold.is_active(end)
    st = fold.state_at(end)
    assert st.state == "backward_done"
    shown = dict(st.param_grads)
    np.testing.assert_array_equal(shown["weight"], model[0].weight.grad.data)
    np.testing.assert_array_equal(shown["bias"], model[0].bias.grad.data)
    # before the first backward: no gradient anywhere in the box
    start = fold.state_at(r.frame(r.phase_range("forward")[0]))
    assert start.grad is None and all(g is None for _, g in start.param_grads)


def test_merged_edges_show_the_active_one_else_the_most_advanced():
    tr, _ = mlp_with_loss_module()
    r = Replay(tr)
    assert "loss" in r.collapsible_modules()
    g = FoldedGraph(r, r.collapsible_modules())
    merged = [k for k, under in g.edges.items() if len(under) > 1]
    assert merged, "an edge into a box should stand for several"
    rank = {s: k for k, s in enumerate(NODE_STATES)}
    for i in range(len(r)):
        f = r.frame(i)
        for key, under in g.edges.items():
            es, active = g.edge_state(key, f)
            assert active == any(k in f.active_edges for k in under)
            candidates = [f.edges[k] for k in under if (k in f.active_edges) == active]
            assert es in candidates
            assert rank[es.state] == max(rank[c.state] for c in candidates)


def test_frame_names_its_event():
    tr, _, _ = tutorial()
    r = Replay(tr)
    assert r.frame(0).event_kind == "" and r.frame(0).event_node is None
    kinds = {trace.PhaseEvent: "phase", trace.ForwardEvent: "forward", trace.BackwardEvent: "backward",
             trace.AccumulateEvent: "accumulate", trace.ZeroGradEvent: "zero_grad", trace.StepEvent: "step"}
    seen = set()
    for i in range(1, len(r)):
        f = r.frame(i)
        cls = next(c for c in kinds if isinstance(f.event, c))
        assert f.event_kind == kinds[cls]
        assert f.event_node == getattr(f.event, "node", None)
        seen.add(f.event_kind)
    assert {"phase", "forward", "backward", "accumulate", "zero_grad", "step"} <= seen


def test_contents_hold_every_array_a_node_shows():
    tr, w, _ = tutorial(accumulation_steps=2)
    r = Replay(tr)
    wid = tr.param_nodes["w"]
    c = r.contents(wid)
    assert len(c.accumulations) == 2 and c.accumulations[0][0] is None
    np.testing.assert_array_equal(c.accumulations[-1][2], w.grad.data)
    (before, after), = c.steps
    np.testing.assert_array_equal(before, tr.params_before["w"])
    np.testing.assert_array_equal(after, w.data)
    for e in tr.events:
        if isinstance(e, trace.ForwardEvent):
            assert any(v is e.value for v in r.contents(e.node).values)
        if isinstance(e, trace.BackwardEvent):
            assert any(g is e.grad_output for g in r.contents(e.node).grads)
    loss = r.contents(tr.loss_node)
    assert len(loss.values) == 1 and not loss.steps and not loss.accumulations


def test_a_python_number_is_a_constant():
    import gradviz as gv
    y = gv.tensor([1.0, 2.0])
    y.name = "y"
    w = gv.tensor(2.0, requires_grad=True)
    w.name = "w"
    with trace.record() as rec:
        out = (1 - y) * w
    r = Replay(type("T", (), {"nodes": dict(rec.nodes), "events": list(rec.events),
                              "param_nodes": {"w": rec.find(w)}})())
    constants = [n for n in r.nodes if r.is_constant(n)]
    assert [r.node_name(n) for n in constants] == ["1"]
    assert not r.is_constant(rec.find(y)) and not r.is_constant(rec.find(w)) and not r.is_constant(rec.find(out))
