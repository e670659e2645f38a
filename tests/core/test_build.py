"""gradviz.training.build: one variant of a scenario made of core objects, and the one MLP rule.

The rule (``ModelSpec.layer_modules``) is checked against what ``gradviz.nn.Sequential`` names
and against PyTorch's own ``torch.nn.Sequential`` when installed; ``build`` (what the exporter
uses) against the Session it stands in for.
"""
import importlib.util

import numpy as np
import pytest

from gradviz.scenario.schema import (
    OPTIMIZER_DEFAULTS,
    DataSpec,
    LoopSpec,
    LossSpec,
    ModelSpec,
    OptimizerSpec,
    ParamInit,
    Scenario,
)
from gradviz.training.build import SessionError, build, module_types, prepare
from gradviz.training.session import Session


def mlp(layers=(2, 5, 4, 1), activation="relu", **loop):
    return Scenario("mlp", seed=2, model=ModelSpec("layers", layers=list(layers), activation=activation),
                    data=DataSpec(kind="moons", n=16, noise=0.1), loss=LossSpec("bce_with_logits"),
                    optimizer=OptimizerSpec("adam", dict(OPTIMIZER_DEFAULTS["adam"], lr=0.05)),
                    loop=LoopSpec(**dict(dict(steps=3), **loop)))


def test_layer_modules_alternate_linear_and_activation():
    modules = ModelSpec("layers", layers=[2, 5, 4, 1], activation="tanh").layer_modules()
    assert [(m.name, m.kind, m.in_features, m.out_features) for m in modules] == [
        ("0", "Linear", 2, 5), ("1", "Tanh", 5, 5), ("2", "Linear", 5, 4), ("3", "Tanh", 4, 4),
        ("4", "Linear", 4, 1)]
    assert modules[2].parameters() == [("2.weight", (4, 5)), ("2.bias", (4,))]
    assert modules[1].parameters() == []
    assert ModelSpec("expression", "w * x").layer_modules() == []


def test_the_session_names_parameters_and_modules_by_the_rule():
    scenario = mlp(accumulation_steps=2, batch_size=8)
    session = Session(scenario)
    rule = [p for m in scenario.model.layer_modules() for p in m.parameters()]
    assert session.param_names == [name for name, _ in rule]
    assert [session.history.params[n].shape[1:] for n in session.param_names] == [shape for _, shape in rule]
    types = session.trace_iteration(0).module_types
    assert types == {"0": "Linear", "1": "ReLU", "2": "Linear", "3": "ReLU", "4": "Linear",
                     "loss (micro-batch 1)": "BCEWithLogitsLoss", "loss (micro-batch 2)": "BCEWithLogitsLoss"}
    assert types == module_types(prepare(scenario))


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="PyTorch is not installed")
def test_the_rule_is_pytorchs_sequential():
    import torch
    model = ModelSpec("layers", layers=[3, 6, 2], activation="sigmoid")
    modules = model.layer_modules()
    net = torch.nn.Sequential(*[torch.nn.Linear(m.in_features, m.out_features) if m.kind == "Linear"
                                else getattr(torch.nn, m.kind)() for m in modules])
    assert [(name, type(m).__name__) for name, m in net.named_children()] == [(m.name, m.kind) for m in modules]
    assert [(n, tuple(p.shape)) for n, p in net.named_parameters()] == [
        p for m in modules for p in m.parameters()]


def test_build_gives_the_sessions_data_and_initial_values():
    scenario = mlp()
    setup, model = build(scenario)
    session = Session(scenario)
    assert model.names == session.param_names
    for name, p in zip(model.names, model.params):
        np.testing.assert_array_equal(p.data, session.history.params[name][0])
    for name, values in setup.data.inputs.items():
        np.testing.assert_array_equal(values, session.data.inputs[name])
    np.testing.assert_array_equal(setup.data.target, session.data.target)


@pytest.mark.parametrize("change", [
    lambda s: setattr(s.model, "layers", [3, 4, 1]),
    lambda s: setattr(s.model, "activation", "gelu"),
    lambda s: setattr(s.optimizer, "hyper", dict(OPTIMIZER_DEFAULTS["adam"], lr=-1.0)),
    lambda s: setattr(s.loop, "batch_size", 100),
    lambda s: setattr(s.loop, "precision", "float8"),
])
def test_build_raises_what_the_session_raises(change):
    scenario = mlp()
    change(scenario)
    with pytest.raises(SessionError) as session_error:
        Session(scenario)
    with pytest.raises(SessionError) as build_error:
        build(scenario)
    assert str(build_error.value) == str(session_error.value)


def test_an_expression_model_is_checked_by_build_too():
    scenario = Scenario("line", model=ModelSpec("expression", "w * z", {"w": ParamInit(value=1.0)}),
                        data=DataSpec(x=[1.0, 2.0], y=[2.0, 4.0]), loss=LossSpec("mse"))
    with pytest.raises(SessionError, match="unknown name 'z'"):
        build(scenario)
