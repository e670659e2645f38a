"""``validate``: a Scenario made or edited in code passes exactly when its file would load.

The oracle is the loader itself: for each edit, ``validate(scenario)`` must fail with the same key
and the same expectation as loading the scenario's own TOML (``loads(dumps(scenario))``).
"""
import copy
import math

import pytest

from gradviz.scenario import (
    LIMITS,
    OPTIMIZER_DEFAULTS,
    ParamInit,
    ScenarioError,
    Variant,
    bundled,
    dumps,
    load,
    loads,
    validate,
)

from .test_loader import BASE, CLASSES, LAYERS, OBJECTIVE, text_of, variant


def base(doc=BASE, **changes):
    return loads(text_of(variant(doc, **changes) if changes else doc))


def hyper(**values):
    def edit(s):
        s.optimizer.hyper.update(values)
    return edit


def adam(**values):
    def edit(s):
        s.optimizer.kind, s.optimizer.hyper = "adam", dict(OPTIMIZER_DEFAULTS["adam"], **values)
    return edit


def loop(**values):
    def edit(s):
        for key, value in values.items():
            setattr(s.loop, key, value)
    return edit


def comparisons(*edits):
    def edit(s):
        for change in edits:
            v = Variant(f"c{len(s.comparisons)}", copy.deepcopy(s.optimizer), copy.deepcopy(s.loop))
            change(v)
            s.comparisons.append(v)
    return edit


def setter(path, value):
    def edit(s):
        *parents, last = path.split(".")
        node = s
        for part in parents:
            node = node[part] if isinstance(node, dict) else getattr(node, part)
        if isinstance(node, dict):
            node[last] = value
        else:
            setattr(node, last, value)
    return edit


# (scenario, edit, key of the error): every edit the Controls can make, and more
EDITS = [
    (base, setter("title", " "), "scenario.title"),
    (base, setter("seed", -1), "scenario.seed"),
    (base, hyper(lr=0.0), "optimizer.lr"),
    (base, hyper(lr=-0.1), "optimizer.lr"),
    (base, hyper(momentum=-0.5), "optimizer.momentum"),
    (base, hyper(dampening=2.0), "optimizer.dampening"),
    (base, hyper(weight_decay=-1.0), "optimizer.weight_decay"),
    (base, hyper(nesterov=True), "optimizer.nesterov"),
    (base, hyper(nesterov=True, momentum=0.9, dampening=0.5), "optimizer.nesterov"),
    (base, adam(betas=(1.5, 0.999)), "optimizer.betas"),
    (base, adam(eps=-1e-8), "optimizer.eps"),
    (base, loop(steps=0), "loop.steps"),
    (base, loop(steps=LIMITS["max_steps"] + 1), "loop.steps"),
    (base, loop(batch_size=5), "loop.batch_size"),
    (base, loop(accumulation_steps=3), "loop.accumulation_steps"),
    (base, loop(accumulation_steps=0), "loop.accumulation_steps"),
    (base, loop(zero_grad="sometimes"), "loop.zero_grad"),
    (base, loop(precision="float8"), "loop.precision"),
    (base, loop(loss_scaling=True), "loop.loss_scaling"),
    (base, loop(precision="float16", loss_scaling=True, scaler={**base().loop.scaler, "growth_factor": 1.0}),
     "loop.scaler.growth_factor"),
    (base, comparisons(lambda v: v.optimizer.hyper.update(momentum=-1.0)), "comparison[0].optimizer.momentum"),
    (base, comparisons(lambda v: setattr(v.loop, "accumulation_steps", 3)), "comparison[0].loop.accumulation_steps"),
    (base, comparisons(lambda v: None, lambda v: setattr(v, "name", "c0")), "comparison[1].name"),
    (base, comparisons(*[lambda v: None] * (LIMITS["max_comparisons"] + 1)), "comparison[8]"),
    (base, setter("model.expression", "w * x +"), "model.expression"),
    (base, setter("model.expression", "ww * x + b"), "model.expression"),
    (base, setter("model.expression", "x * 2"), "model.expression"),
    (base, setter("model.expression", "w * x + (-8) ** 0.5"), "model.expression"),
    (base, lambda s: s.model.parameters.update(loss=ParamInit(value=1.0)), "model.parameters.loss"),
    (base, lambda s: s.model.parameters.update(x=ParamInit(value=1.0)), "model.parameters.x"),
    (base, lambda s: s.model.parameters.update(v=ParamInit("zeros", shape=(2,))) or
     setattr(s.model, "expression", "w * x + b + v"), "model.expression"),
    (base, lambda s: s.model.parameters.update(w=ParamInit("normal", shape=(2,), std=-1.0)),
     "model.parameters.w.std"),
    (base, lambda s: s.model.parameters.update(w=ParamInit("uniform", low=1.0, high=1.0)),
     "model.parameters.w.high"),
    (base, lambda s: s.model.parameters.update(w=ParamInit(value=[[1.0, 2.0], [3.0]])), "model.parameters.w"),
    (base, setter("data.y", [1.0, 2.0]), "data.y"),
    (base, setter("data.kind", "none"), "data"),
    (base, setter("data.input_names", ["a", "b"]), "data.inputs"),
    (base, setter("loss.kind", "mae"), "loss.kind"),
    (base, setter("loss.kind", "bce_with_logits"), "data.y"),
    (base, setter("loss.kind", "cross_entropy"), "loss.kind"),
    (lambda: base(LAYERS), setter("model.layers", [3, 8, 1]), "model.layers"),
    (lambda: base(LAYERS), setter("model.layers", [2, 1000, 1]), "model.layers"),
    (lambda: base(LAYERS), setter("model.activation", "softmax"), "model.activation"),
    (lambda: base(LAYERS), setter("data.noise", -0.1), "data.noise"),
    (lambda: base(LAYERS, data={"kind": "circles", "n": 50}), setter("data.options.factor", 1.5), "data.factor"),
    (lambda: base(LAYERS, data={"kind": "linear", "n": 1024}, model__layers=[1, 1], loss__kind="mse"),
     loop(accumulation_steps=1024), "loop.accumulation_steps"),
    (lambda: base(CLASSES), setter("data.y", [0, 1, 3, 1]), "data.y"),
    (lambda: base(CLASSES), setter("data.y", [0.0, 1.0, 2.0, 1.0]), "data.y"),
    (lambda: base(OBJECTIVE), loop(batch_size=1), "loop.batch_size"),
    (lambda: base(OBJECTIVE), setter("model.expression", "x @ y"), "model.objective"),
    (lambda: base(OBJECTIVE, model__parameters__y={"init": "zeros", "shape": [1000]},
                  model__objective="x**2 + sum(y**2)"), loop(steps=100_000), "loop.steps"),
]


@pytest.mark.parametrize("make, edit, key", EDITS, ids=[f"{i}-{e[2]}" for i, e in enumerate(EDITS)])
def test_validate_agrees_with_loading_the_scenarios_file(make, edit, key):
    scenario = make()
    validate(scenario)                                  # valid before the edit
    edit(scenario)
    with pytest.raises(ScenarioError) as checked:
        validate(scenario)
    with pytest.raises(ScenarioError) as loaded:
        loads(dumps(scenario))
    assert checked.value.key == loaded.value.key == key, (str(checked.value), str(loaded.value))
    assert checked.value.expected == loaded.value.expected
    assert checked.value.file == "<scenario>" and checked.value.line is None


def test_validate_accepts_every_bundled_scenario_and_names_its_file():
    for path in bundled():
        scenario = load(path)
        validate(scenario)
        scenario.optimizer.hyper["lr"] = math.inf
        with pytest.raises(ScenarioError) as info:
            validate(scenario)
        assert info.value.file == str(path) and info.value.key == "optimizer.lr"


def test_validate_refuses_what_the_file_format_cannot_say():
    s = base()
    s.optimizer.hyper["foo"] = 1.0                      # the Session would pass it to torch.optim
    with pytest.raises(ScenarioError, match="unknown key 'foo'"):
        validate(s)
    s = base()
    del s.optimizer.hyper["momentum"]
    with pytest.raises(ScenarioError, match=r"\[optimizer.momentum\] expected a value"):
        validate(s)
    s = base(LAYERS)
    s.data.kind = "moon"                                # dumps() cannot even write this one
    with pytest.raises(ScenarioError, match=r"\[data.kind\].*did you mean 'moons'"):
        validate(s)
    s = base(LAYERS, data={"kind": "circles", "n": 50})
    s.data.options["turns"] = 2.0                       # an option of another data set
    with pytest.raises(ScenarioError, match=r"\[data.turns\].*unknown key"):
        validate(s)


def test_a_file_error_names_the_key_the_file_spells_out():
    """A comparison inherits its loop: a batch size it does not divide is blamed on the key it
    gives (batch_size), not on the inherited accumulation_steps."""
    doc = variant(BASE, loop={"steps": 10, "accumulation_steps": 2})
    doc["comparison"] = [{"name": "odd", "loop": {"batch_size": 3}}]
    with pytest.raises(ScenarioError) as info:
        loads(text_of(doc))
    assert info.value.key == "comparison[0].loop.batch_size"
