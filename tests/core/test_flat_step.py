"""The step engine's flat optimizer step (``Optimizer.bind_flat``): Adam, AdamW and SGD update every
parameter with one call per op on the engine's flat arrays instead of one call per op per parameter.
Each element goes through the same operations in the same order, so every History must be the same
bits as the per-parameter loop's (which the torch tests check against PyTorch); and the flat route
must really be taken where it applies, and left where it does not."""
import copy

import numpy as np
import pytest

from gradviz.optim.optimizer import Optimizer
from gradviz.scenario import bundled_path, load
from gradviz.scenario.schema import OPTIMIZER_DEFAULTS, OptimizerSpec, ParamInit
from gradviz.training.session import Session

BUNDLED = sorted(p.stem for p in bundled_path("01_tutorial_wx_b").parent.glob("*.toml"))


def per_parameter(monkeypatch):
    """Sessions made inside this context never bind: the per-parameter loop."""
    monkeypatch.setattr(Optimizer, "bind_flat", lambda self, flat: False)


def histories(sc, steps=None):
    out = []
    for i in range(len(sc.variants())):
        session = Session(copy.deepcopy(sc), i)
        out.append((session.run(steps), session))
    return out


def assert_same(h, g):
    assert h.steps == g.steps and h.diverged_at == g.diverged_at and h.message == g.message
    np.testing.assert_array_equal(h.loss, g.loss)
    for name in h.param_names:
        np.testing.assert_array_equal(h.params[name], g.params[name], err_msg=name)
        np.testing.assert_array_equal(h.grads[name], g.grads[name], err_msg=name)
        assert h.state[name].keys() == g.state[name].keys()
        for key in h.state[name]:
            np.testing.assert_array_equal(h.state[name][key], g.state[name][key], err_msg=f"{name} {key}")


def compare(sc, monkeypatch, steps=None):
    flat = histories(sc, steps)
    with monkeypatch.context() as m:
        per_parameter(m)
        loop = histories(sc, steps)
    for (h, _), (g, session) in zip(flat, loop):
        assert session._engine.optimizer._flat is None
        assert_same(h, g)
    return flat


@pytest.mark.parametrize("stem", BUNDLED)
def test_every_bundled_scenario_gives_the_same_bits_either_way(stem, monkeypatch):
    sc = load(bundled_path(stem))
    steps = min(60, sc.loop.steps)
    compare(sc, monkeypatch, steps)


def mlp(kind, precision="float32", **hyper):
    sc = copy.deepcopy(load(bundled_path("07_mlp_two_moons")))
    sc.comparisons = []
    sc.optimizer = OptimizerSpec(kind, dict(OPTIMIZER_DEFAULTS[kind], **hyper))
    sc.loop.steps = 40
    sc.loop.precision = precision
    return sc


CASES = {
    "adam": ("adam", {}),
    "adam weight decay": ("adam", dict(weight_decay=0.01)),
    "adam amsgrad maximize": ("adam", dict(amsgrad=True, maximize=True, lr=1e-4)),
    "adamw": ("adamw", dict(weight_decay=0.05)),
    "sgd": ("sgd", dict(lr=0.1)),
    "sgd momentum": ("sgd", dict(lr=0.1, momentum=0.9)),
    "sgd nesterov decay": ("sgd", dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=1e-3)),
    "sgd dampening": ("sgd", dict(lr=0.05, momentum=0.9, dampening=0.3)),
}


@pytest.mark.parametrize("precision", ["float32", "float64"])
@pytest.mark.parametrize("case", list(CASES))
def test_each_algorithm_takes_the_flat_route_with_the_same_bits(case, precision, monkeypatch):
    kind, hyper = CASES[case]
    sc = mlp(kind, precision, **hyper)
    [(h, session)] = compare(sc, monkeypatch)
    optimizer = session._engine.optimizer
    assert optimizer._flat is not None                       # the route was taken to the end
    assert optimizer._flat.param is session._engine.live.flats[0]
    for p in optimizer.param_groups[0]["params"]:            # the state still reads per parameter
        for value in optimizer.state[p].values():
            assert np.may_share_memory(value, optimizer._flat.state[next(
                k for k, v in optimizer._flat.state.items() if np.may_share_memory(value, v))])


def test_a_replay_after_a_checkpoint_is_the_same_step(monkeypatch):
    """Restoring a checkpoint (load_state_dict) drops the binding; the next steps bind again, and
    an iteration replayed from a checkpoint is the recorded step."""
    sc = mlp("adam")
    sc.loop.steps = 30
    session = Session(sc)
    h = session.run()
    engine = session._engine
    assert engine.optimizer._flat is not None
    engine.restore(session._checkpoints[0])
    assert engine.optimizer._flat is None
    for k in range(5):
        engine.step(k)
    assert engine.optimizer._flat is not None
    for name, p in zip(h.param_names, engine.params):
        np.testing.assert_array_equal(p._data, h.params[name][5])


def test_a_parameter_without_grad_takes_the_per_parameter_loop(monkeypatch):
    """A .grad that is None skips that parameter (no step count): the flat route steps aside."""
    sc = copy.deepcopy(load(bundled_path("01_tutorial_wx_b")))
    sc.comparisons = []
    sc.optimizer = OptimizerSpec("adam", dict(OPTIMIZER_DEFAULTS["adam"], lr=0.1))
    sc.loop.steps = 8
    sc.model.parameters["c"] = ParamInit(value=3.0)
    [(h, session)] = compare(sc, monkeypatch)
    assert session._engine.optimizer._flat is None
    assert np.isnan(h.grads["c"]).all() and h.state["c"] == {}


def test_a_user_optimizer_is_never_bound():
    """Only a step engine binds: an optimizer a script makes keeps its per-parameter loop."""
    import gradviz as torch
    w = torch.nn.Parameter(torch.tensor([1.0, 2.0]))
    b = torch.nn.Parameter(torch.tensor(0.5))
    opt = torch.optim.Adam([w, b], lr=0.1)
    for _ in range(3):
        opt.zero_grad()
        ((w * 2).sum() + b).backward()
        opt.step()
    assert opt._flat is None


# -- the data's gradient of a first layer is not computed -----------------------------------------
@pytest.mark.parametrize("x_grad", [False, True])
def test_linear_backward_skips_the_gradient_no_input_needs(x_grad, monkeypatch):
    """nn.Linear's backward (addmm) computes ``g @ W`` only when its input requires grad, as torch's
    ``needs_input_grad`` does: a first layer's data gradient was a third of its backward's work."""
    import dataclasses

    import gradviz as torch
    from gradviz import functions
    seen = []
    rule = functions.RULES["addmm"]

    def spy(g, s, needs=(True, True, True)):
        seen.append(needs)
        return rule.backward(g, s, needs=needs)
    monkeypatch.setitem(functions.RULES, "addmm", dataclasses.replace(rule, backward=spy))
    torch.manual_seed(0)
    layer = torch.nn.Linear(3, 2)
    x = torch.randn(4, 3, requires_grad=x_grad)
    layer(x).tanh().sum().backward()
    assert seen == [(x_grad, True, True)]
    assert (x.grad is not None) == x_grad
    g = (1 - layer(x).tanh() ** 2).detach().numpy()          # d sum(tanh(y)) / dy
    np.testing.assert_allclose(layer.weight.grad.numpy(), g.T @ x.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(layer.bias.grad.numpy(), g.sum(0), rtol=1e-6)
    if x_grad:
        np.testing.assert_allclose(x.grad.numpy(), g @ layer.weight.detach().numpy(), rtol=1e-6)
