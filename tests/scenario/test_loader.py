"""The scenario loader: what a valid file becomes, and one clear ScenarioError for every mistake."""
import copy
import math
import re
from pathlib import Path

import pytest
import tomlkit

from gradviz.scenario import (
    DEFAULT_SCENARIO,
    LIMITS,
    OPTIMIZER_DEFAULTS,
    SCALER_DEFAULTS,
    ScenarioError,
    bundled,
    bundled_path,
    estimate_graph_nodes,
    load,
    loads,
)

BASE = {
    "scenario": {"title": "t", "seed": 0},
    "model": {"expression": "w * x + b", "parameters": {"w": 1.0, "b": 0.0}},
    "data": {"x": [1.0, 2.0, 3.0, 4.0], "y": [2.0, 4.0, 6.0, 8.0]},
    "loss": {"kind": "mse"},
    "optimizer": {"kind": "sgd", "lr": 0.1},
    "loop": {"steps": 10},
}
OBJECTIVE = {
    "scenario": {"title": "bowl"},
    "model": {"objective": "x**2 + 10*y**2", "parameters": {"x": 1.0, "y": 1.0}},
    "optimizer": {"kind": "sgd", "lr": 0.01},
}
LAYERS = {
    "scenario": {"title": "mlp"},
    "model": {"layers": [2, 8, 1], "activation": "relu"},
    "data": {"kind": "moons", "n": 64, "noise": 0.1},
    "loss": {"kind": "bce_with_logits"},
    "optimizer": {"kind": "adam", "lr": 0.01},
}
CLASSES = {
    "scenario": {"title": "classes"},
    "model": {"layers": [1, 3]},
    "data": {"x": [0.0, 1.0, 2.0, 3.0], "y": [0, 1, 2, 1]},
    "loss": {"kind": "cross_entropy"},
}


def text_of(doc: dict) -> str:
    return tomlkit.dumps(doc)


def variant(base: dict, **changes) -> dict:
    """A deep copy of ``base`` with dotted-path changes; the value DELETE removes the key."""
    doc = copy.deepcopy(base)
    for dotted, value in changes.items():
        *parents, last = dotted.split("__")
        table = doc
        for key in parents:
            table = table.setdefault(key, {})
        if value is DELETE:
            del table[last]
        else:
            table[last] = value
    return doc


DELETE = object()


def error_of(doc_or_text, name="lesson.toml") -> ScenarioError:
    text = doc_or_text if isinstance(doc_or_text, str) else text_of(doc_or_text)
    with pytest.raises(ScenarioError) as info:
        loads(text, name=name)
    return info.value


# --- what a valid file becomes ----------------------------------------------------------------

def test_base_scenario_values():
    s = loads(text_of(BASE), name="base.toml")
    assert s.title == "t" and s.seed == 0
    assert s.model.kind == "expression" and s.model.expression == "w * x + b"
    assert s.model.parameters["w"].init == "value" and s.model.parameters["w"].value == 1.0
    assert s.data.kind == "inline" and s.data.x == [1.0, 2.0, 3.0, 4.0] and s.data.input_names == ["x"]
    assert s.optimizer.kind == "sgd"
    assert s.optimizer.hyper == dict(OPTIMIZER_DEFAULTS["sgd"], lr=0.1)    # complete, defaults filled in
    assert s.loop.steps == 10 and s.loop.batch_size is None and s.loop.zero_grad == "before_backward"
    assert s.loop.scaler == SCALER_DEFAULTS and s.comparisons == []
    assert s.source_text is not None and s.path is None


def test_integers_become_floats_and_betas_a_tuple():
    doc = variant(BASE, model__parameters__w=[[1, 2], [3, 4]], optimizer={"kind": "adam", "lr": 1,
                                                                             "betas": [0, 0.5]})
    doc["model"]["expression"] = "sum(w) * x + b"
    s = loads(text_of(doc))
    assert s.model.parameters["w"].value == [[1.0, 2.0], [3.0, 4.0]]
    assert all(isinstance(v, float) for row in s.model.parameters["w"].value for v in row)
    assert s.model.parameters["w"].shape == (2, 2)
    assert s.optimizer.hyper["lr"] == 1.0 and isinstance(s.optimizer.hyper["lr"], float)
    assert s.optimizer.hyper["betas"] == (0.0, 0.5)


@pytest.mark.parametrize("spec, expected", [
    ({"init": "normal", "shape": [3], "std": 0.1}, ("normal", (3,), 0.1, -1.0, 1.0)),
    ({"init": "uniform", "shape": [2, 2], "low": -0.5, "high": 0.5}, ("uniform", (2, 2), 1.0, -0.5, 0.5)),
    ({"init": "zeros", "shape": [4]}, ("zeros", (4,), 1.0, -1.0, 1.0)),
    ({"init": "ones"}, ("ones", (), 1.0, -1.0, 1.0)),
    ({"value": [1, 2]}, ("value", (2,), 1.0, -1.0, 1.0)),
])
def test_parameter_inits(spec, expected):
    doc = variant(OBJECTIVE, model__parameters__v=spec)
    doc["model"]["objective"] = "x**2 + sum(v**2)"
    p = loads(text_of(doc)).model.parameters["v"]
    assert (p.init, p.shape, p.std, p.low, p.high) == expected


def test_objective_has_no_data_and_layers_get_input_names():
    s = loads(text_of(OBJECTIVE))
    assert s.model.kind == "objective" and s.data.kind == "none" and s.data.input_names == []
    m = loads(text_of(LAYERS))
    assert m.model.layers == [2, 8, 1] and m.model.activation == "relu"
    assert m.data.kind == "moons" and m.data.n == 64 and m.data.input_names == ["x1", "x2"]


def test_several_features_are_named_x1_x2_or_by_inputs():
    doc = variant(BASE, data={"x": [[1, 2], [3, 4]], "y": [1, 2]})
    doc["model"]["expression"] = "w * x1 + b * x2"
    assert loads(text_of(doc)).data.input_names == ["x1", "x2"]
    doc = variant(doc, data__inputs=["height", "age"])
    doc["model"]["expression"] = "w * height + b * age"
    s = loads(text_of(doc))
    assert s.data.input_names == ["height", "age"] and s.data.x == [[1.0, 2.0], [3.0, 4.0]]


def test_generator_options_are_completed_with_defaults():
    doc = variant(LAYERS, data={"kind": "circles", "n": 50})
    s = loads(text_of(doc))
    assert s.data.options == {"factor": 0.5} and s.data.noise == 0.1
    doc["data"]["factor"] = 0.3
    assert loads(text_of(doc)).data.options == {"factor": 0.3}


def test_class_labels_stay_integers_only_for_cross_entropy():
    s = loads(text_of(CLASSES))
    assert s.data.y == [0, 1, 2, 1] and all(type(v) is int for v in s.data.y)
    doc = variant(BASE, data__y=[0, 1, 1, 0], loss__kind="bce_with_logits")
    s = loads(text_of(doc))
    assert all(type(v) is float for v in s.data.y)


def test_comparisons_inherit_the_main_optimizer_and_loop():
    doc = variant(BASE, optimizer={"kind": "sgd", "lr": 0.1, "momentum": 0.5},
                  loop={"steps": 10, "batch_size": 4, "accumulation_steps": 2})
    doc["comparison"] = [
        {"name": "more momentum", "optimizer": {"momentum": 0.9}},
        {"name": "adam", "optimizer": {"kind": "adam"}, "loop": {"accumulation_steps": 1}},
        {"loop": {"batch_size": "full", "accumulation_steps": 4}},
    ]
    s = loads(text_of(doc))
    first, second, third = s.comparisons
    assert first.optimizer.hyper == dict(s.optimizer.hyper, momentum=0.9)
    assert first.loop == s.loop
    assert second.optimizer.hyper == OPTIMIZER_DEFAULTS["adam"]        # another kind: its defaults
    assert second.loop.accumulation_steps == 1 and second.loop.batch_size == 4
    assert third.loop.batch_size is None and third.name == "comparison 3"
    assert [v.name for v in s.variants()] == ["SGD(lr=0.1, momentum=0.5)", "more momentum", "adam",
                                              "comparison 3"]


def test_float16_with_scaler():
    doc = variant(BASE, loop={"steps": 5, "precision": "float16", "loss_scaling": True,
                              "scaler": {"init_scale": 1024, "growth_interval": 10}})
    s = loads(text_of(doc))
    assert s.loop.scaler == dict(SCALER_DEFAULTS, init_scale=1024.0, growth_interval=10)


def test_bom_and_crlf_are_accepted():
    text = "\ufeff" + text_of(BASE).replace("\n", "\r\n")
    assert loads(text) == loads(text_of(BASE))


def test_load_accepts_a_path_text_and_bytes(tmp_path):
    path = tmp_path / "lesson.toml"
    path.write_text(text_of(BASE), encoding="utf-8")
    from_path = load(path)
    assert from_path.path == path
    assert load(str(path)) == from_path == load(text_of(BASE)) == load(text_of(BASE).encode())


def test_estimate_graph_nodes_grows_with_accumulation():
    s = loads(text_of(BASE))
    doc = variant(BASE, loop__accumulation_steps=4)
    assert estimate_graph_nodes(loads(text_of(doc))) == 4 * estimate_graph_nodes(s)


def test_bundled_paths():
    stems = [p.stem for p in bundled()]
    assert stems == sorted(stems) and DEFAULT_SCENARIO in stems
    assert bundled_path(DEFAULT_SCENARIO) == bundled_path(DEFAULT_SCENARIO + ".toml")
    with pytest.raises(ScenarioError, match="did you mean '01_tutorial_wx_b'"):
        bundled_path("01_tutorial_wxb")


# --- the error message ----------------------------------------------------------------------

def test_error_message_names_file_line_key_expected_and_found():
    text = text_of(BASE).replace("lr = 0.1", "lrr = 0.1")
    error = error_of(text, "lesson.toml")
    line = text.splitlines().index("lrr = 0.1") + 1
    assert (error.file, error.key, error.line) == ("lesson.toml", "optimizer.lrr", line)
    assert str(error) == (f"lesson.toml:{line}: [optimizer.lrr] expected one of kind, lr, momentum, "
                          "dampening, weight_decay, nesterov, maximize, found unknown key 'lrr'; "
                          "did you mean 'lr'?")
    assert isinstance(error, ValueError) and "\n" not in str(error)


def test_line_of_a_key_inside_an_inline_table_of_the_second_comparison():
    text = text_of(BASE) + """
[[comparison]]
name = "a"
optimizer = { momentum = 0.9 }

[[comparison]]
name = "b"
loop = { steps = 5 }
optimizer = { kind = "sgd", lr = -1 }
"""
    error = error_of(text)
    assert error.key == "comparison[1].optimizer.lr"
    assert text.splitlines()[error.line - 1].startswith("optimizer = { kind = \"sgd\", lr = -1")


def test_multiline_arrays_do_not_confuse_the_line_finder():
    text = """[scenario]
title = "t"
[model]
expression = "w * x + b"
[model.parameters]
w = 1.0
b = 0.0
[data]
x = [
  [1.0],
  [2.0],
]
y = [1.0, 2.0]
[optimizer]
kind = "sgd"
lr = "fast"
"""
    error = error_of(text)
    assert (error.key, error.line) == ("optimizer.lr", 16)


def test_toml_syntax_error_has_its_line():
    error = error_of("[scenario]\ntitle = \"t\"\nseed = = 3\n")
    assert error.line == 3 and error.key is None and "valid TOML" in str(error)


# --- every mistake, one error with the right key ----------------------------------------------
# (document, key of the error, a fragment of the message)

INVALID = [
    # metadata
    (variant(BASE, scenario__title=DELETE), "scenario.title", "required"),
    (variant(BASE, scenario__title="  "), "scenario.title", "non-empty"),
    (variant(BASE, scenario__seed=True), "scenario.seed", "found true (a boolean)"),
    (variant(BASE, scenario__seed=-1), "scenario.seed", "an integer >= 0"),
    (variant(BASE, scenario__seed=1.5), "scenario.seed", "(a float)"),
    (variant(BASE, scenario=DELETE), "scenario", "[scenario] table"),
    (variant(BASE, optimiser={"kind": "sgd"}), "optimiser", "did you mean 'optimizer'?"),
    # model
    (variant(BASE, model={"parameters": {"w": 1.0}}), "model", "exactly one of"),
    (variant(BASE, model__layers=[1, 1]), "model.layers", "'expression' and 'layers'"),
    (variant(BASE, model__expression="w * x +"), "model.expression", "column"),
    (variant(BASE, model__expression=3), "model.expression", "(an integer)"),
    (variant(BASE, model__expression="ww * x + b"), "model.expression", "did you mean 'w'?"),
    (variant(BASE, model__expression="x * 2"), "model.expression", "at least one parameter"),
    (variant(BASE, model__activation="tanh"), "model.activation", "no 'activation'"),
    (variant(BASE, model__parameters=DELETE), "model.parameters", "[model.parameters]"),
    (variant(BASE, model__parameters__x=1.0), "model.parameters.x", "also an input"),
    (variant(BASE, model__parameters__tanh=1.0), "model.parameters.tanh", "parameter name"),
    (variant(BASE, model__parameters__loss=1.0), "model.parameters.loss", "History column"),
    (variant(BASE, model__parameters__step=1.0), "model.parameters.step", "History column"),
    (variant(BASE, model__parameters__w=[[1.0, 2.0], [3.0]]), "model.parameters.w", "rectangular"),
    (variant(BASE, model__parameters__w=[]), "model.parameters.w", "non-empty"),
    (variant(BASE, model__parameters__w="one"), "model.parameters.w", "(a string)"),
    (variant(BASE, model__parameters__w=math.inf), "model.parameters.w", "inf"),
    (variant(BASE, model__parameters__w=[[[[[1.0]]]]]), "model.parameters.w", "nested at most 4"),
    (variant(BASE, model__parameters__w={"init": "gauss"}), "model.parameters.w.init", "'normal'"),
    (variant(BASE, model__parameters__w={"init": "normal", "stdev": 1}), "model.parameters.w.stdev",
     "did you mean 'std'?"),
    (variant(BASE, model__parameters__w={"init": "uniform", "low": 1, "high": 1}),
     "model.parameters.w.high", "high > low"),
    (variant(BASE, model__parameters__w={"init": "zeros", "shape": [0]}), "model.parameters.w.shape", "from 1"),
    (variant(BASE, model__parameters__w={"init": "zeros", "shape": [1000, 1000]}),
     "model.parameters.w.shape", "at most 100000 elements"),
    (variant(BASE, model__expression="w * x + b + v", model__parameters__v={"init": "zeros", "shape": [2]}),
     "model.expression", "do not broadcast"),
    (variant(OBJECTIVE, model__objective="x * y + v", model__parameters__v={"init": "zeros", "shape": [2]}),
     "model.objective", "one number"),
    (variant(OBJECTIVE, model__objective="x @ y"), "model.objective", "'@' needs arrays"),
    # bug fix: a complex constant passed the loader and failed in the Session
    (variant(BASE, model__expression="w * x + (-8) ** 0.5"), "model.expression", "complex number"),
    (variant(OBJECTIVE, model__objective="x**2 + abs((-8) ** 0.5)"), "model.objective", "complex number"),
    (variant(BASE, model__expression="w * x + 10.0 ** 400"), "model.expression",
     "finite, real result, found OverflowError"),
    (variant(BASE, model__expression="w * x + 1 / 0"), "model.expression", "ZeroDivisionError"),
    (variant(LAYERS, model__layers=[3, 8, 1]), "model.layers", "number of input features (2)"),
    (variant(LAYERS, model__layers=[2, 8, 2]), "model.layers", "number of targets per example (1)"),
    (variant(LAYERS, model__layers=[2]), "model.layers", "2 to 8 layer sizes"),
    (variant(LAYERS, model__layers=[2, 1000, 1]), "model.layers", "from 1 to 256"),
    (variant(LAYERS, model__activation="softmax"), "model.activation", "'tanh'"),
    (variant(LAYERS, model__parameters={"w": 1.0}), "model.parameters", "layers model"),
    # data
    (variant(BASE, data=DELETE), "data", "[data] table"),
    (variant(OBJECTIVE, data={"x": [1.0], "y": [1.0]}), "data", "no [data] for an objective"),
    (variant(BASE, data__y=[1.0, 2.0]), "data.y", "as many targets as points in x (4)"),
    (variant(BASE, data__y=DELETE), "data.y", "no 'y'"),
    (variant(BASE, data__x=[1.0, "2", 3.0, 4.0]), "data.x", "'2' (a string) at [1]"),
    (variant(BASE, data__x=[[1.0, 2.0], [3.0]]), "data.x", "rectangular"),
    (variant(BASE, data__x=3.0), "data.x", "an array"),
    (variant(BASE, data__xx=[1.0]), "data.xx", "did you mean 'x'?"),
    (variant(BASE, data__y=[[1.0, 2.0]] * 4), "data.y", "one target per example"),
    (variant(BASE, data__inputs=["a", "b"]), "data.inputs", "1 input name"),
    (variant(BASE, data__inputs=["exp"]), "data.inputs", "input name"),
    (variant(LAYERS, data__kind="moon"), "data.kind", "did you mean 'moons'?"),
    (variant(LAYERS, data__kind="circles", data__factr=0.5), "data.factr", "did you mean 'factor'?"),
    (variant(LAYERS, data__kind="circles", data__factor=1.5), "data.factor", "factor must be in (0, 1)"),
    (variant(LAYERS, data__n=LIMITS["max_points"] + 1), "data.n", "from 1 to 100000"),
    (variant(LAYERS, data__noise=-0.1), "data.noise", ">= 0"),
    (variant(LAYERS, data__x=[1.0]), "data.x", "one of kind, n, noise, inputs"),
    # loss and labels
    (variant(BASE, loss__kind="mae"), "loss.kind", "'mse'"),
    (variant(BASE, loss__reduction="avg"), "loss.reduction", "'mean'"),
    (variant(BASE, loss__kind="cross_entropy"), "loss.kind", "layers model"),
    (variant(BASE, loss__kind="bce_with_logits"), "data.y", "labels 0 or 1"),
    (variant(OBJECTIVE, loss={"kind": "mse"}), "loss", "no [loss] for an objective"),
    (variant(CLASSES, model__layers=[1, 1]), "model.layers", "at least 2 outputs"),
    (variant(CLASSES, data__y=[0, 1, 3, 1]), "data.y", "class indices from 0 to 2"),
    (variant(CLASSES, data__y=[0, 1, -1, 1]), "data.y", "class -1"),
    (variant(CLASSES, data__y=[0.0, 1.0, 2.0, 1.0]), "data.y", "integer class indices"),
    (variant(LAYERS, data__kind="blobs", loss__kind="mse"), "loss.kind", "'cross_entropy'"),
    (variant(LAYERS, data__kind="linear", model__layers=[1, 1]), "data.kind", "labels 0 or 1"),
    (variant(LAYERS, data__kind="blobs", data__centers=5, model__layers=[2, 3],
             loss__kind="cross_entropy"), "data.kind", "class indices from 0 to 2"),
    # optimizer
    (variant(BASE, optimizer__kind="adamm"), "optimizer.kind", "did you mean 'adam'?"),
    (variant(BASE, optimizer__lr=0), "optimizer.lr", "> 0"),
    (variant(BASE, optimizer__lr=-0.1), "optimizer.lr", "> 0"),
    (variant(BASE, optimizer__lr="0.1"), "optimizer.lr", "'0.1' (a string)"),
    (variant(BASE, optimizer__lr=math.nan), "optimizer.lr", "finite"),
    (variant(BASE, optimizer__momentum=-0.5), "optimizer.momentum", ">= 0"),
    (variant(BASE, optimizer__nesterov=1), "optimizer.nesterov", "true or false"),
    (variant(BASE, optimizer__nesterov=True), "optimizer.nesterov", "PyTorch's rule"),
    (variant(BASE, optimizer__nesterov=True, optimizer__momentum=0.9, optimizer__dampening=0.1),
     "optimizer.nesterov", "dampening = 0.1"),
    (variant(BASE, optimizer__betas=[0.9, 0.999]), "optimizer.betas", "hyperparameter of adam, adamw"),
    (variant(BASE, optimizer={"kind": "adam", "betas": [0.9]}), "optimizer.betas", "two numbers"),
    (variant(BASE, optimizer={"kind": "adam", "betas": [0.9, 1.0]}), "optimizer.betas", "< 1"),
    (variant(BASE, optimizer={"kind": "adam", "momentum": 0.9}), "optimizer.momentum",
     "momentum is a hyperparameter of sgd, rmsprop"),
    (variant(BASE, optimizer={"kind": "adam", "eps": -1e-8}), "optimizer.eps", ">= 0"),
    (variant(BASE, optimizer={"kind": "rmsprop", "alpha": 1.5}), "optimizer.alpha", "<= 1"),
    (variant(BASE, optimizer={"kind": "adagrad", "lr_decay": -1}), "optimizer.lr_decay", ">= 0"),
    (variant(BASE, optimizer="sgd"), "optimizer", "a table"),
    # loop
    (variant(BASE, loop__steps=0), "loop.steps", "from 1 to 100000"),
    (variant(BASE, loop__steps=LIMITS["max_steps"] + 1), "loop.steps", "from 1 to 100000"),
    (variant(BASE, loop__batch_size=5), "loop.batch_size", "at most the number of points (4)"),
    (variant(BASE, loop__batch_size="all"), "loop.batch_size", "(a string)"),
    (variant(BASE, loop__accumulation_steps=3), "loop.accumulation_steps", "dividing the batch size (4)"),
    (variant(BASE, loop__accumulation_steps=0), "loop.accumulation_steps", "from 1"),
    (variant(BASE, loop__zero_grad="sometimes"), "loop.zero_grad", "'before_backward', 'after_step', 'never'"),
    (variant(BASE, loop__zero_grad="before_step"), "loop.zero_grad", "did you mean"),
    (variant(BASE, loop__precision="float8"), "loop.precision", "'float16'"),
    (variant(BASE, loop__loss_scaling=True), "loop.loss_scaling", "only with precision = 'float16'"),
    (variant(BASE, loop__scaler={"init_scale": 8.0}), "loop.scaler", "loss_scaling = true"),
    (variant(BASE, loop__precision="float16", loop__loss_scaling=True, loop__scaler={"growth_factor": 1}),
     "loop.scaler.growth_factor", "> 1"),
    (variant(BASE, loop__precision="float16", loop__loss_scaling=True, loop__scaler={"scale": 1}),
     "loop.scaler.scale", "did you mean"),
    (variant(BASE, loop__shufle=True), "loop.shufle", "did you mean 'shuffle'?"),
    (variant(OBJECTIVE, loop={"batch_size": 1}), "loop.batch_size", "no batch_size for an objective"),
    (variant(OBJECTIVE, loop={"shuffle": True}), "loop.shuffle", "no shuffle for an objective"),
    (variant(OBJECTIVE, model__parameters__y={"init": "zeros", "shape": [1000]},
             model__objective="x**2 + sum(y**2)", loop={"steps": 100_000}),
     "loop.steps", "steps x parameter elements"),
    (variant(LAYERS, data={"kind": "linear", "n": 1024}, model__layers=[1, 1], loss__kind="mse",
             loop={"accumulation_steps": 1024}), "loop.accumulation_steps", "nodes in one traced iteration"),
    # comparisons
    (variant(BASE, comparison={"name": "x"}), "comparison", "[[comparison]] (double brackets)"),
    (variant(BASE, comparison=[{"name": "x", "optimzer": {}}]), "comparison[0].optimzer",
     "did you mean 'optimizer'?"),
    (variant(BASE, comparison=[{"name": "a"}, {"name": "b", "optimizer": {"lr": -1}}]),
     "comparison[1].optimizer.lr", "> 0"),
    (variant(BASE, comparison=[{"name": "a"}, {"name": "a"}]), "comparison[1].name", "different"),
    (variant(BASE, comparison=[{"name": "a", "loop": {"accumulation_steps": 3}}]),
     "comparison[0].loop.accumulation_steps", "dividing"),
    (variant(BASE, comparison=[{"name": "a", "optimizer": {"nesterov": True}}]),
     "comparison[0].optimizer.nesterov", "PyTorch's rule"),
    (variant(BASE, comparison=[{"name": str(i)} for i in range(LIMITS["max_comparisons"] + 1)]),
     "comparison[8]", "at most 8 comparisons"),
]


def test_the_exported_scripts_module_names_are_parameter_names_like_any_other():
    """The exporter renames what would clash in its script (``torch`` -> ``torch_``): the loader
    does not need to know the script's names."""
    from gradviz.codegen import export_torch
    doc = variant(BASE, model__parameters={"torch": 1.0, "np": 0.0, "math": 0.5})
    doc["model"]["expression"] = "torch * x + np + 0 * math"
    source = export_torch(loads(text_of(doc))).source
    compile(source, "script.py", "exec")
    assert 'params = {"torch": torch_, "np": np_, "math": math_}' in source


@pytest.mark.parametrize("doc, key, fragment", INVALID, ids=[f"{i}-{c[1]}" for i, c in enumerate(INVALID)])
def test_invalid_documents(doc, key, fragment):
    error = error_of(doc)
    assert error.key == key, str(error)
    assert fragment in str(error), str(error)
    assert error.file == "lesson.toml" and str(error).startswith("lesson.toml:")


@pytest.mark.parametrize("expression", [
    "__import__('os').system('echo hi')", "x.__class__", "().__class__", "w.__class__.__bases__",
    "open('/etc/passwd')", "eval('1')", "lambda: 1", "w if x else b", "[w for w in x]",
    "w; import os", "exec('1')", "getattr(w, 'x')", "w * x + b # comment", "{'a': 1}",
    "w" + "*w" * 600, "(" * 100 + "w" + ")" * 100,
])
def test_injection_attempts_are_rejected_naming_the_expression(expression):
    error = error_of(variant(BASE, model__expression=expression))
    assert error.key == "model.expression"


def test_not_utf8_and_too_large(tmp_path):
    path = tmp_path / "bad.toml"
    path.write_bytes(b'[scenario]\ntitle = "caf\xe9"\n')
    with pytest.raises(ScenarioError, match="UTF-8") as info:
        load(path)
    assert info.value.line == 2 and info.value.file == str(path)
    big = tmp_path / "big.toml"
    big.write_bytes(b"#" * (LIMITS["max_file_bytes"] + 1))
    with pytest.raises(ScenarioError, match="at most 2000000 bytes"):
        load(big)
    with pytest.raises(ScenarioError, match="at most 2000000 bytes"):
        loads("#" * (LIMITS["max_file_bytes"] + 1))
    for unreadable in (tmp_path / "missing.toml", tmp_path, "nul\x00in the path.toml"):
        with pytest.raises(ScenarioError, match="readable|regular scenario file"):
            load(unreadable)


def test_huge_integer_and_deep_nesting_are_scenario_errors():
    with pytest.raises(ScenarioError):
        loads("a = " + "9" * 5000)
    with pytest.raises(ScenarioError):
        loads("a = " + "[" * 50_000 + "]" * 50_000)
    with pytest.raises(ScenarioError):
        loads(text_of(BASE).replace("w = 1.0", "w = " + "[" * 3000 + "1.0" + "]" * 3000))


# --- the documentation ------------------------------------------------------------------------

DOCS = (Path(__file__).resolve().parents[2] / "docs" / "scenarios.md").read_text(encoding="utf-8")


def test_the_documented_example_is_a_valid_scenario():
    example = re.search(r"```toml\n(.*?)```", DOCS, re.S).group(1)
    s = loads(example, name="docs/scenarios.md")
    assert s.optimizer.hyper["momentum"] == 0.9 and len(s.comparisons) == 2


@pytest.mark.parametrize("key", sorted(LIMITS))
def test_every_limit_is_documented_with_its_value(key):
    assert f"| `{key}` | {LIMITS[key]} |" in DOCS


def test_scenario_error_can_be_built_positionally_and_pickled():
    import pickle
    error = ScenarioError("a.toml", "loop.steps", 7, "an integer", "'x' (a string)")
    assert str(error) == "a.toml:7: [loop.steps] expected an integer, found 'x' (a string)"
    again = pickle.loads(pickle.dumps(error))
    assert (again.file, again.key, again.line, str(again)) == ("a.toml", "loop.steps", 7, str(error))
    assert str(ScenarioError("a.toml", None, None, "x", "y")) == "a.toml: expected x, found y"


def test_data_rows_on_their_own_lines_are_not_counted_as_keys():
    rows = "".join(f"  [{i}.5, {i}.25],\n" for i in range(6000))
    text = text_of(BASE).split("[data]")[0] + (
        "[data]\nx = [\n" + rows + "]\ny = [" + ", ".join("1.0" for _ in range(6000)) + "]\n")
    doc_text = text.replace('expression = "w * x + b"', 'expression = "w * x1 + b * x2"')
    s = loads(doc_text)
    assert len(s.data.x) == 6000 and s.data.input_names == ["x1", "x2"]
