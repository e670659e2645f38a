"""What a scenario may contain: the rule of every value, the rules between values, one ``validate``.

``validate(scenario)`` raises one ``ScenarioError`` for the first rule a ``Scenario`` breaks, or
returns None. The loader calls it on every scenario it reads (with its ``Reader``, so errors name
the line of the key the file spells out); the Controls call it on each edit, and the Session
(``training.build.prepare``) before it builds anything. A scenario it accepts runs in the
Session: each value is in range (PyTorch's rules for the optimizer), the model, data and loss fit
together, the expression's shapes work out (see ``shapes.py``), and each run stays within
``LIMITS`` (graph nodes per traced iteration, recorded values).

The section readers check each value as they read it, with the same rules (the tables and helpers
below), so a file's error shows what the file says; ``validate`` checks them again on the typed
values, which is what makes it complete for a scenario built or edited in code.
"""
from __future__ import annotations

import math
import re
from itertools import chain

import numpy as np

from . import datasets, expr
from .reader import BOOLEAN, Choice, Integer, Number, Pair, Reader, Text, show, suggest
from .schema import (
    ACTIVATIONS,
    INITS,
    LIMITS,
    LOSSES,
    MODEL_KINDS,
    OPTIMIZER_DEFAULTS,
    OPTIMIZERS,
    PRECISIONS,
    REDUCTIONS,
    SCALER_DEFAULTS,
    SCHEDULER_CLASSES,
    SCHEDULER_DEFAULTS,
    SCHEDULER_PLACEMENTS,
    SCHEDULERS,
    TOUR_EVENTS,
    TOUR_PHASES,
    TOUR_PLOTS,
    ZERO_GRAD_PLACEMENTS,
    DataSpec,
    LoopSpec,
    ModelSpec,
    OptimizerSpec,
    ParamInit,
    Scenario,
    SchedulerSpec,
    TourStop,
)
from .shapes import check_shapes, graph_nodes

MAX_PARAM_NDIM = 4

# --- the rule of each value (the section readers use these too) ---------------------------------

META_RULES = {"title": Text(nonempty=True, max_length=200, one_line=True), "description": Text(max_length=20_000),
              "seed": Integer(0, 2 ** 63 - 1)}
COMPARISON_NAME = Text(nonempty=True, max_length=200)
RUN_NAME = Text(nonempty=True, max_length=200, one_line=True)     # ``[scenario] run``: the main run's name
# ``[[tour]]``: the rule of each key of a stop (``iteration`` is also bounded by the run's steps)
TOUR_RULES = {"iteration": Integer(0, LIMITS["max_steps"] - 1), "phase": Choice(TOUR_PHASES),
              "event": Choice(TOUR_EVENTS), "micro_batch": Integer(0, LIMITS["max_accumulation_steps"] - 1),
              "node": Text(nonempty=True, max_length=100, one_line=True), "plot": Choice(TOUR_PLOTS),
              "run": Text(nonempty=True, max_length=200), "text": Text(nonempty=True, max_length=2000)}
OP_LABEL = re.compile(r"[A-Z][A-Za-z0-9]*Backward[0-9]*")       # a grad_fn name: MulBackward0
HYPER_BOUNDS = {     # a learning rate out of range is named in the words of the optimizers' own check
    "lr": Number(gt=0, invalid="Invalid learning rate"), "momentum": Number(ge=0),
    "dampening": Number(ge=0, le=1),
    "weight_decay": Number(ge=0), "eps": Number(ge=0), "alpha": Number(ge=0, le=1),
    "lr_decay": Number(ge=0), "initial_accumulator_value": Number(ge=0),
}
BETAS = Pair(Number(ge=0, lt=1), "two numbers [beta1, beta2], each in [0, 1)")
LOOP_RULES = {       # in the file format's order; a file may also say batch_size = "full" (None)
    "steps": Integer(1, LIMITS["max_steps"]), "batch_size": Integer(1, LIMITS["max_points"]),
    "shuffle": BOOLEAN, "accumulation_steps": Integer(1, LIMITS["max_accumulation_steps"]),
    "divide_loss": BOOLEAN, "zero_grad": Choice(ZERO_GRAD_PLACEMENTS), "set_to_none": BOOLEAN,
    "precision": Choice(PRECISIONS), "loss_scaling": BOOLEAN,
    "clip_grad_norm": Number(gt=0), "unscale_before_clip": BOOLEAN,
}
NO_CLIPPING = False        # ``clip_grad_norm = false`` in a file: no clipping (None here)
NO_SCHEDULER = "none"      # ``[scheduler] kind = "none"``: no scheduler (None here)
MAX_MILESTONES = 64
STEPS = Integer(1, LIMITS["max_steps"])
# The rule of each scheduler hyperparameter: torch.optim.lr_scheduler's own checks where it has
# them (LinearLR's factors, OneCycleLR's pct_start), else what keeps the schedule meaningful.
SCHEDULER_RULES = {
    "step_size": STEPS, "gamma": Number(gt=0), "T_max": STEPS, "eta_min": Number(ge=0),
    "start_factor": Number(gt=0, le=1), "end_factor": Number(ge=0, le=1), "total_iters": STEPS,
    "max_lr": Number(gt=0), "total_steps": STEPS, "pct_start": Number(ge=0, le=1),
    "anneal_strategy": Choice(("cos", "linear")), "div_factor": Number(gt=0),
    "final_div_factor": Number(gt=0), "three_phase": BOOLEAN,
}
# OneCycleLR cycles momentum (SGD, RMSprop) or beta1 (Adam, AdamW): torch refuses other optimizers.
CYCLES_MOMENTUM = ("sgd", "adam", "adamw", "rmsprop")
SCALER_RULES = {"init_scale": Number(gt=0), "growth_factor": Number(gt=1),
                "backoff_factor": Number(gt=0, lt=1), "growth_interval": Integer(1, 10 ** 9)}
POINTS = Integer(1, LIMITS["max_points"])
NOISE = Number(ge=0)
STD = Number(ge=0)


def hyper_rule(kind: str, key: str):
    """The rule of hyperparameter ``key`` of optimizer ``kind`` (a boolean, betas, or a bound)."""
    if isinstance(OPTIMIZER_DEFAULTS[kind][key], bool):
        return BOOLEAN
    return BETAS if key == "betas" else HYPER_BOUNDS[key]


def option_rule(default):
    """The rule of a data set generator option with this default (``centers``: an integer)."""
    return Integer(1, LIMITS["max_layer_width"]) if isinstance(default, int) else Number()


def milestones(r: Reader, value, path: tuple) -> list[int]:
    """MultiStepLR's milestones: a non-empty list of step numbers (each multiplies lr by gamma)."""
    if not isinstance(value, (list, tuple)) or not 1 <= len(value) <= MAX_MILESTONES:
        r.fail(path, f"a list of 1 to {MAX_MILESTONES} step numbers, e.g. [30, 80]", show(value))
    return [r.integer_value(v, path, 1, LIMITS["max_steps"]) for v in value]


def scheduler_value(r: Reader, key: str, value, path: tuple):
    """One scheduler hyperparameter checked (``milestones``: a list of step numbers)."""
    if key == "milestones":
        return milestones(r, value, path)
    return r.check(value, path, SCHEDULER_RULES[key])


def required_hyper(kind: str) -> list[str]:
    """The hyperparameters a ``[scheduler]`` of ``kind`` must give (no default in torch)."""
    return [k for k, v in SCHEDULER_DEFAULTS[kind].items() if v is None and k != "total_steps"]


def layer_sizes(r: Reader, layers, path: tuple) -> list[int]:
    lo, hi = 2, LIMITS["max_layers"]
    if not isinstance(layers, (list, tuple)) or not lo <= len(layers) <= hi:
        r.fail(path, f"a list of {lo} to {hi} layer sizes, e.g. [2, 16, 1]", show(layers))
    return [r.integer_value(v, path, 1, LIMITS["max_layer_width"]) for v in layers]


def param_value(r: Reader, value, path: tuple):
    """An initial value: a number or a rectangular array -> (nested lists of floats, shape)."""
    return array(r, value, path, max_ndim=MAX_PARAM_NDIM, max_elements=LIMITS["max_param_elements"])


def array(r: Reader, value, path: tuple, *, max_ndim: int, max_elements: int, integers: bool = False):
    """``r.array``: a number or rectangular nested arrays of finite numbers -> (nested lists, shape),
    the common case (a list of numbers, or of equal-length lists of numbers) checked with numpy:
    data near the size limit took the reader most of a second, twice per load."""
    fast = _plain_array(value, max_ndim, max_elements, integers)
    if fast is not None:
        return fast
    return r.array(value, path, max_ndim=max_ndim, max_elements=max_elements, integers=integers)


def _plain_array(value, max_ndim: int, max_elements: int, integers: bool):
    """(value converted, shape) when ``value`` is a non-empty list of ints and floats, or of
    non-empty equal-length lists of them, within the limits, every number finite (ints only if
    ``integers``); else None, and the reader checks it and names what is wrong. ``value`` itself
    when it needs no converting (the reader copies it; nothing here or in the loader needs a copy)."""
    if type(value) is not list or not value:
        return None
    if type(value[0]) is list:
        width = len(value[0])
        if max_ndim < 2 or not width or set(map(type, value)) != {list} or set(map(len, value)) != {width}:
            return None
        shape, leaves = (len(value), width), list(chain.from_iterable(value))
    else:
        shape, leaves = (len(value),), value
    if math.prod(shape) > max_elements:
        return None
    types = set(map(type, leaves))
    if integers:
        return (value, shape) if types == {int} else None
    if not types <= {float, int}:
        return None
    try:
        numbers = np.array(leaves, dtype=float)
    except OverflowError:                 # an integer beyond float's range: the reader's error
        return None
    if not np.isfinite(numbers).all():
        return None
    if types == {float}:                  # nothing to convert
        return value, shape
    return numbers.reshape(shape).tolist(), shape


def param_shape(r: Reader, raw, path: tuple) -> tuple:
    limit = LIMITS["max_param_elements"]
    expected = f"a list of at most {MAX_PARAM_NDIM} positive integers, e.g. [3] or [2, 4]"
    if not isinstance(raw, (list, tuple)) or len(raw) > MAX_PARAM_NDIM:
        r.fail(path, expected, show(raw))
    shape = tuple(r.integer_value(v, path, 1, limit) for v in raw)
    if math.prod(shape) > limit:
        r.fail(path, f"at most {limit} elements", f"{math.prod(shape)} elements")
    return shape


def uniform_bounds(r: Reader, low: float, high: float, path: tuple) -> None:
    if not low < high:
        r.fail(path + ("high",), f"high > low ({low:g})", show(high))


def input_names(r: Reader, raw, d: int, path: tuple) -> list[str]:
    """One distinct name per input feature."""
    if not isinstance(raw, (list, tuple)) or len(raw) != d:
        r.fail(path, f"a list of {d} input name(s), one per feature", show(raw))
    names = [r.name(v, path, "an input name") for v in raw]
    if len(set(names)) != len(names):
        r.fail(path, "distinct input names", show(raw))
    return names


def no_data(kind: str) -> str:
    """What a model fitted to data (``kind``: expression or layers) found when it has none."""
    return f"none (the {kind} model needs data to fit)"


def default_input_names(d: int) -> list[str]:
    return ["x"] if d == 1 else [f"x{i + 1}" for i in range(d)]


def inline_data(r: Reader, x_raw, y_raw, path: tuple):
    """Inline ``x`` and ``y`` -> (x, y, facts); facts are what the loss check needs to know about
    the targets: n, d (features), integers (class indices), binary (all 0/1), y_flat, y_width,
    classes, y_min. y stays integers when every target is one (class indices)."""
    max_points, max_features = LIMITS["max_points"], LIMITS["max_features"]
    if not isinstance(x_raw, (list, tuple)):
        r.fail(path + ("x",), "an array of numbers (one feature) or of rows (several features)", show(x_raw))
    if len(x_raw) > max_points:
        r.fail(path + ("x",), f"at most {max_points} points", f"{len(x_raw)} points")
    x, x_shape = array(r, x_raw, path + ("x",), max_ndim=2, max_elements=max_points * max_features)
    n, d = x_shape[0], (x_shape[1] if len(x_shape) == 2 else 1)
    if d > max_features:
        r.fail(path + ("x",), f"at most {max_features} features per point", f"{d} features")
    if not isinstance(y_raw, (list, tuple)):
        r.fail(path + ("y",), f"an array of {n} targets", show(y_raw))
    integers = bool(y_raw) and (set(map(type, y_raw)) == {int}
                                or all(isinstance(v, int) and not isinstance(v, bool) for v in y_raw))
    y, y_shape = array(r, y_raw, path + ("y",), max_ndim=2, max_elements=max_points * max_features,
                       integers=integers)
    if y_shape[0] != n:
        r.fail(path + ("y",), f"as many targets as points in x ({n})", f"{y_shape[0]} rows")
    flat = y if len(y_shape) == 1 else list(chain.from_iterable(y))
    facts = dict(n=n, d=d, integers=integers, binary=set(flat) <= {0, 1},
                 y_flat=len(y_shape) == 1, y_width=y_shape[1] if len(y_shape) == 2 else 1,
                 classes=(max(flat) + 1) if integers else None, y_min=min(flat))
    return x, y, facts


def generated_facts(data: DataSpec) -> dict:
    """The facts of ``inline_data`` for a generated data set."""
    kind, options = data.kind, {**datasets.generator_options(data.kind), **data.options}
    return dict(n=data.n, d=1 if kind == "linear" else 2, integers=kind == "blobs",
                binary=kind not in ("linear", "blobs"), y_flat=kind == "blobs", y_width=1,
                classes=options.get("centers"), y_min=0)


# --- validate -------------------------------------------------------------------------------

def validate(scenario: Scenario, reader: Reader | None = None) -> None:
    """Raise one ``ScenarioError`` for the first rule ``scenario`` breaks; see the module docstring.

    ``reader`` is the loader's, to name the file and line; without it errors name the key path.
    """
    r = reader or _reader(scenario)
    s = scenario
    _meta(r, s)
    tree, shapes = _model(r, s.model)
    facts = _data(r, s)
    if tree is not None:
        _names(r, s, tree)
    if s.model.kind == "layers":
        _layers_fit(r, s.model, facts)
    _loss(r, s, facts)
    _runs(r, s, tree, shapes, facts["n"])
    _tour(r, s, shapes)


def validate_edit(scenario: Scenario, before: Scenario) -> None:
    """``validate(scenario)`` for ``before`` (a valid scenario: loaded, or checked by this) after an
    edit of its runs, the Controls' edits: when the model, data and loss are ``before``'s (equal,
    their arrays the same objects, as ``edits.editable_copy`` shares them), only the rest is checked
    (the title and seed, every run's optimizer, loop and scheduler with the checks they take part in
    against the model and data: batch sizes, graph nodes, recorded values, shapes; names, tour), so
    an edit costs the same on a 2 MB data set as on ten points. Otherwise, all of ``validate``.
    The error, if any, is the one ``validate`` raises."""
    if not _same_model_and_data(scenario, before):
        validate(scenario)
        return
    r, s = _reader(scenario), scenario
    _meta(r, s)
    tree = None if s.model.kind == "layers" else expr.parse(s.model.expression)
    shapes = {name: _shape_of(spec.value) if spec.init == "value" else tuple(spec.shape)
              for name, spec in s.model.parameters.items()} if tree is not None else {}
    data = s.data
    n = 0 if s.model.kind == "objective" else len(data.x) if data.kind == "inline" else data.n
    _runs(r, s, tree, shapes, n)
    _tour(r, s, shapes)


def _reader(scenario: Scenario) -> Reader:
    return Reader(str(scenario.path) if scenario.path else "<scenario>")


def _same_model_and_data(s: Scenario, before: Scenario) -> bool:
    """``s`` has ``before``'s model, data and loss: its arrays the same objects, the rest equal."""
    data, old = s.data, before.data
    if data.x is not old.x or data.y is not old.y or s.model.parameters.keys() != before.model.parameters.keys():
        return False
    for name, spec in s.model.parameters.items():
        if isinstance(spec.value, (list, tuple)) and spec.value is not before.model.parameters[name].value:
            return False
    return s.loss == before.loss and data == old and s.model == before.model


def _shape_of(value) -> tuple:
    """The shape of a (valid, so rectangular) initial value: its lengths along its first elements."""
    shape = []
    while isinstance(value, (list, tuple)):
        shape.append(len(value))
        value = value[0]
    return tuple(shape)


def _meta(r: Reader, s: Scenario) -> None:
    for key, rule in META_RULES.items():
        r.check(getattr(s, key), ("scenario", key), rule)
    if s.run_name is not None and s.script is None:
        r.check(s.run_name, ("scenario", "run"), RUN_NAME)


def _runs(r: Reader, s: Scenario, tree, shapes: dict, n: int) -> None:
    """Every run: its optimizer, loop and scheduler, how it fits the model and data (``_run``), and
    its name, distinct from the others'."""
    if len(s.comparisons) > LIMITS["max_comparisons"]:
        r.fail(("comparison", LIMITS["max_comparisons"]), f"at most {LIMITS['max_comparisons']} "
               "comparisons", f"{len(s.comparisons)}")
    names = {s.run_name} if s.run_name is not None else set()
    for i, variant in enumerate(s.variants()):
        where = ("comparison", i - 1) if i else ()
        _optimizer(r, variant.optimizer, where + ("optimizer",))
        _loop(r, variant.loop, where + ("loop",))
        if variant.loop.scheduler is not None:
            _scheduler(r, variant.loop.scheduler, variant.loop, variant.optimizer, where + ("scheduler",))
        _run(r, s, tree, shapes, variant.loop, where + ("loop",), n)
        if i:
            name = r.check(variant.name, where + ("name",), COMPARISON_NAME)
            if name in names:
                r.fail(where + ("name",), "a name different from the main run's and the other "
                       "comparisons'", repr(name))
            names.add(name)


def _tour(r: Reader, s: Scenario, shapes: dict) -> None:
    """Each stop's own values always; how it fits the scenario (its run, its iteration within that
    run's steps, its micro-batch, its node) when a file is read (``r.document``): an edit in the
    Controls that removes a comparison or shortens the run is not refused for the tour's sake (the
    saver leaves out the stops that no longer fit, ``tour_misfit``)."""
    known = node_names(s, shapes)
    for i, stop in enumerate(s.tour):
        where = ("tour", i)
        if not isinstance(stop, TourStop):
            r.fail(where, "a tour stop", show(stop))
        for key, rule in TOUR_RULES.items():
            value = getattr(stop, key)
            if value is not None or key in ("iteration", "text"):
                r.check(value, where + (key,), rule)
        misfit = tour_misfit(s, stop, known) if r.document is not None else None
        if misfit is not None:
            key, expected, found = misfit
            r.fail(where + (key,), expected, found)


def tour_misfit(s: Scenario, stop: TourStop, known: list[str] | None = None) -> tuple[str, str, str] | None:
    """Why ``stop`` does not fit ``s`` — (key, expected, found) — or None when it does: its run is
    one of the scenario's, its iteration within that run's steps, its micro-batch within its
    accumulation steps, its node one the graph can show (``known``: ``node_names``)."""
    variants = {v.name: v for v in s.variants()}
    if stop.run is not None and stop.run not in variants:
        return ("run", f"one of the runs: {', '.join(repr(n) for n in variants)}",
                f"{stop.run!r}{suggest(stop.run, list(variants))}")
    loop = variants[stop.run].loop if stop.run is not None else s.loop
    if stop.iteration >= loop.steps:
        return ("iteration", f"an iteration from 0 to {loop.steps - 1} (the run has {loop.steps} steps, "
                "counted from 0)", show(stop.iteration))
    if stop.micro_batch is not None and stop.micro_batch >= loop.accumulation_steps:
        return ("micro_batch", f"a micro-batch from 0 to {loop.accumulation_steps - 1} "
                f"(accumulation_steps = {loop.accumulation_steps})", show(stop.micro_batch))
    known = node_names(s, {}) if known is None else known
    if stop.node is not None and not (stop.node in known or OP_LABEL.fullmatch(stop.node)
                                      or _is_constant(stop.node)):
        return ("node", f"a parameter or input name ({', '.join(known)}) or an op's grad_fn name such "
                "as MulBackward0", f"{stop.node!r}{suggest(stop.node, known)}")
    return None


def node_names(s: Scenario, shapes: dict) -> list[str]:
    """The names of the graph's leaves: parameters, inputs and the target (``y``)."""
    if s.model.kind == "layers":      # a layers model takes its inputs as one tensor, x
        params = [name for module in s.model.layer_modules() for name, _shape in module.parameters()]
        inputs = ["x"]
    else:
        params = list(shapes) or list(s.model.parameters)
        inputs = [n for n in _inputs(s) if n not in params]
    target = [s.data.target_name or "y"] if s.model.kind != "objective" else []
    scale = ["scale"] if any(v.loop.loss_scaling for v in s.variants()) else []   # the GradScaler's
    return params + inputs + target + scale


def _is_constant(text: str) -> bool:
    """A number written in an expression (``1 - y``): the graph shows it as a leaf named "1"."""
    try:
        return math.isfinite(float(text))
    except ValueError:
        return False


def _model(r: Reader, model: ModelSpec):
    """The model's own values; -> (the parsed expression, each parameter's shape); layers: (None, {})."""
    path = ("model",)
    kind = r.choice_value(model.kind, path + ("kind",), MODEL_KINDS)
    if kind == "layers":
        layer_sizes(r, model.layers, path + ("layers",))
        r.choice_value(model.activation, path + ("activation",), ACTIVATIONS)
        return None, {}
    text = model.expression
    if not isinstance(text, str):
        r.fail(path + (kind,), "an expression string", show(text))
    try:
        tree = expr.parse(text)
    except expr.ExprError as error:
        column = f" at column {error.column}" if error.column else ""
        r.fail(path + (kind,), "an arithmetic expression in the safe grammar (see docs/scenarios.md)",
               f"a problem{column}: {error.message}", error.column)
    if not model.parameters:
        r.fail(path + ("parameters",), "a [model.parameters] table giving each parameter of the "
               f"{kind} a value, e.g. w = 1.0", "none")
    shapes: dict[str, tuple] = {}
    for name, spec in model.parameters.items():
        where = path + ("parameters", name)
        r.name(name, where, "a parameter name")
        shapes[name] = _param(r, spec, where)
        total = sum(math.prod(shape) for shape in shapes.values())
        if total > LIMITS["max_param_elements"]:
            r.fail(where, f"at most {LIMITS['max_param_elements']} parameter elements in all",
                   f"{total} so far")
    return tree, shapes


def _param(r: Reader, spec: ParamInit, path: tuple) -> tuple:
    """One parameter's initial value; -> its shape."""
    init = r.choice_value(spec.init, path + ("init",), INITS)
    if init == "value":                      # written as ``name = value`` (see saver.py)
        return param_value(r, spec.value, path)[1]
    shape = param_shape(r, spec.shape, path + ("shape",))
    if init == "normal":
        r.check(spec.std, path + ("std",), STD)
    if init == "uniform":
        uniform_bounds(r, r.number_value(spec.low, path + ("low",)),
                       r.number_value(spec.high, path + ("high",)), path)
    return shape


def _data(r: Reader, s: Scenario) -> dict:
    """The data's own values (none for an objective); -> the facts of ``inline_data``."""
    data, path = s.data, ("data",)
    if s.model.kind == "objective":
        return dict(n=0, d=0)
    if data.kind == "none":
        r.fail(path, "a [data] table", no_data(s.model.kind))
    kind = r.choice_value(data.kind, path + ("kind",), ("inline",) + datasets.DATASETS)
    if kind == "inline":
        for key in ("x", "y"):
            if getattr(data, key) is None:
                r.fail(path + (key,), f"inline data arrays 'x' and 'y' (or kind = one of "
                       f"{', '.join(datasets.DATASETS)})", f"no {key!r}")
        facts = inline_data(r, data.x, data.y, path)[2]
    else:
        r.check(data.n, path + ("n",), POINTS)
        r.check(data.noise, path + ("noise",), NOISE)
        options = datasets.generator_options(kind)
        r.check_keys(data.options, path, tuple(options))
        for option, value in data.options.items():
            r.check(value, path + (option,), option_rule(options[option]))
        try:
            datasets.make_dataset(kind, min(data.n, 8), data.noise, 0, **data.options)
        except ValueError as error:
            bad = next((o for o in options if o in str(error) and r.given(path + (o,))), "kind")
            r.fail(path + (bad,), f"valid options for {kind!r}", str(error))
        facts = generated_facts(data)
    if data.input_names:
        input_names(r, data.input_names, facts["d"], path + ("inputs",))
    return facts


def _names(r: Reader, s: Scenario, tree) -> None:
    """Every name the expression uses is declared, and it uses at least one parameter."""
    model, inputs = s.model, _inputs(s)
    for name in model.parameters:
        if name in inputs:
            r.fail(("model", "parameters", name), f"a parameter name different from the input "
                   f"names ({', '.join(inputs)}; rename them with [data] inputs = [...])",
                   f"{name!r}, which is also an input")
    declared = list(model.parameters) + list(inputs)
    used = expr.names(tree)
    for name in used:
        if name not in declared:
            match = re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", model.expression)
            column = match.start() + 1 if match else None
            where = f" at column {column}" if column else ""
            expected = (f"a parameter declared in [model.parameters] "
                        f"({', '.join(model.parameters) or 'none'})")
            if model.kind == "expression":
                expected += f" or an input ({', '.join(inputs)})"
            r.fail(("model", model.kind), expected,
                   f"unknown name {name!r}{where}{suggest(name, declared)}", column)
    if not set(used) & set(model.parameters):
        r.fail(("model", model.kind), f"an {model.kind} that uses at least one parameter "
               f"({', '.join(model.parameters)}), or there is nothing to train",
               f"{model.expression!r}, which uses none of the parameters")


def _inputs(s: Scenario) -> list[str]:
    """The names of the inputs (none for an objective): as given, else x or x1, x2, ..."""
    data = s.data
    if s.model.kind == "objective":
        return []
    if data.input_names:
        return list(data.input_names)
    if data.kind != "inline":
        return default_input_names(1 if data.kind == "linear" else 2)
    first = data.x[0] if data.x else 0.0
    return default_input_names(len(first) if isinstance(first, (list, tuple)) else 1)


def _layers_fit(r: Reader, model: ModelSpec, facts: dict) -> None:
    sizes = model.layers
    if sizes[0] != facts["d"]:
        r.fail(("model", "layers"), f"a first size equal to the number of input features "
               f"({facts['d']})", f"{sizes[0]} input features but the data has {facts['d']}")
    count = _elements(model, {})
    if count > LIMITS["max_param_elements"]:
        r.fail(("model", "layers"), f"at most {LIMITS['max_param_elements']} parameter elements",
               f"{count}")


def _loss(r: Reader, s: Scenario, facts: dict) -> None:
    """The loss fits the model's outputs and the data's targets."""
    model, data, path = s.model, s.data, ("loss",)
    if model.kind == "objective":
        return
    kind = r.choice_value(s.loss.kind, path + ("kind",), LOSSES)
    r.choice_value(s.loss.reduction, path + ("reduction",), REDUCTIONS)
    kind_path = path + ("kind",)
    generated = data.kind != "inline"
    where_y = ("data", "kind") if generated else ("data", "y")
    found_y = f"kind = {data.kind!r}" if generated else "y = " + show(data.y)
    if kind == "cross_entropy":
        if model.kind != "layers":
            r.fail(kind_path, "a loss for one output per example (mse, l1, bce_with_logits): "
                   "cross_entropy needs a layers model with one output per class", "'cross_entropy'")
        last = model.layers[-1]
        if last < 2:
            r.fail(("model", "layers"), "at least 2 outputs (one per class) for cross_entropy",
                   f"a last size of {last}")
        if not (facts["integers"] and facts["y_flat"]):
            r.fail(where_y, "integer class indices for cross_entropy (inline y = [0, 2, 1, ...] "
                   "or kind = 'blobs')", found_y)
        if facts["classes"] > last or facts["y_min"] < 0:
            bad = facts["y_min"] if facts["y_min"] < 0 else facts["classes"] - 1
            r.fail(where_y, f"class indices from 0 to {last - 1} (the model has {last} outputs)",
                   f"class {bad}")
        return
    if generated and facts["integers"]:
        r.fail(kind_path, "'cross_entropy' (kind = 'blobs' gives integer class indices)", repr(kind))
    if kind == "bce_with_logits" and not facts["binary"]:
        r.fail(where_y, "labels 0 or 1 for bce_with_logits (inline, or a two-class data set: "
               "xor, moons, circles, spirals)", found_y)
    if model.kind == "layers":
        if model.layers[-1] != facts["y_width"]:
            r.fail(("model", "layers"), f"a last size equal to the number of targets per example "
                   f"({facts['y_width']}) for {kind}", f"{model.layers[-1]}")
    elif facts["y_width"] != 1:
        r.fail(where_y, "one target per example (a flat array) for an expression model", found_y)


def _optimizer(r: Reader, spec: OptimizerSpec, path: tuple) -> None:
    kind = r.choice_value(spec.kind, path + ("kind",), OPTIMIZERS)
    hyper = spec.hyper
    r.check_keys(hyper, path, tuple(OPTIMIZER_DEFAULTS[kind]))
    for key in OPTIMIZER_DEFAULTS[kind]:
        if key not in hyper:
            r.fail(path + (key,), f"a value for {key!r} (the hyperparameters are complete)", "none")
        r.check(hyper[key], path + (key,), hyper_rule(kind, key))
    if kind == "sgd" and hyper["nesterov"] and (hyper["momentum"] <= 0 or hyper["dampening"] != 0):
        r.fail(r.first_given(path, "nesterov", "momentum", "dampening"), "momentum > 0 and "
               "dampening = 0 with nesterov = true (PyTorch's rule)",
               f"momentum = {hyper['momentum']:g}, dampening = {hyper['dampening']:g}")


def _loop(r: Reader, loop: LoopSpec, path: tuple) -> None:
    """The loop's own values, and loss scaling only for float16."""
    for key, rule in LOOP_RULES.items():
        value = getattr(loop, key)
        if not (key in ("batch_size", "clip_grad_norm") and value is None):
            r.check(value, path + (key,), rule)
    if loop.loss_scaling:
        if loop.precision != "float16":
            r.fail(r.first_given(path, "loss_scaling", "precision"), "loss_scaling = true only with "
                   "precision = 'float16' (a GradScaler is for float16)", f"precision = {loop.precision!r}")
        r.check_keys(loop.scaler, path + ("scaler",), tuple(SCALER_DEFAULTS))
        for key, rule in SCALER_RULES.items():
            r.check(loop.scaler.get(key, SCALER_DEFAULTS[key]), path + ("scaler", key), rule)


def _scheduler(r: Reader, spec: SchedulerSpec, loop: LoopSpec, optimizer: OptimizerSpec, path: tuple) -> None:
    """A scheduler's kind, complete hyperparameters, placement, and what torch needs around it."""
    kind = r.choice_value(spec.kind, path + ("kind",), SCHEDULERS)
    defaults = SCHEDULER_DEFAULTS[kind]
    r.check_keys(spec.hyper, path, tuple(defaults))
    for key in defaults:
        value = spec.hyper.get(key)
        if value is None:
            if key == "total_steps":      # None: the loop's steps
                continue
            r.fail(path + (key,), f"a value for {key!r} ({SCHEDULER_CLASSES[kind]} has no default "
                   "for it)", "none (it is required)")
        scheduler_value(r, key, value, path + (key,))
    r.choice_value(spec.placement, path + ("placement",), SCHEDULER_PLACEMENTS)
    if kind == "onecycle":
        total = spec.hyper.get("total_steps")
        if total is not None and total < loop.steps:
            r.fail(r.first_given(path, "total_steps"), f"total_steps of at least the loop's steps "
                   f"({loop.steps}): OneCycleLR refuses to step past total_steps", f"{total}")
        if optimizer.kind not in CYCLES_MOMENTUM:
            r.fail(path + ("kind",), "an optimizer with momentum or betas for 'onecycle' (OneCycleLR "
                   f"cycles them: {', '.join(CYCLES_MOMENTUM)})", f"optimizer {optimizer.kind!r}")


def _run(r: Reader, s: Scenario, tree, shapes: dict, loop: LoopSpec, path: tuple, n: int) -> None:
    """Everything about one run (the main loop or a comparison's) that depends on its loop."""
    model = s.model
    if model.kind == "objective":
        if loop.batch_size is not None or loop.shuffle:
            key = "batch_size" if loop.batch_size is not None else "shuffle"
            r.fail(r.first_given(path, key), f"no {key} for an objective (there is no data to batch)",
                   show(getattr(loop, key)))
    else:
        batch = loop.batch_size if loop.batch_size is not None else n
        if batch > n:
            r.fail(r.first_given(path, "batch_size"), f"a batch_size of at most the number of points ({n})",
                   f"{batch}")
        if batch % loop.accumulation_steps:
            r.fail(r.first_given(path, "accumulation_steps", "batch_size"),
                   f"accumulation_steps dividing the batch size ({batch}) into equal micro-batches",
                   f"accumulation_steps = {loop.accumulation_steps}")
    limit = LIMITS["max_graph_nodes"]
    total = graph_nodes(model, tree, loop.accumulation_steps, s.loss.kind)
    if total > limit:
        per_micro = total // loop.accumulation_steps
        where = ("model", model.kind) if per_micro > limit else r.first_given(path, "accumulation_steps")
        r.fail(where, f"at most {limit} nodes in one traced iteration",
               f"about {total} ({per_micro} per micro-batch x {loop.accumulation_steps} micro-batches)")
    elements = _elements(model, shapes)
    limit = LIMITS["max_recorded_values"]
    if loop.steps * elements > limit:
        r.fail(r.first_given(path, "steps"), f"steps x parameter elements of at most {limit} (every "
               "step is recorded)", f"{loop.steps} x {elements}")
    if tree is not None:
        batch = loop.batch_size if loop.batch_size is not None else n
        problem = check_shapes(model.kind, tree, shapes, _inputs(s), batch // loop.accumulation_steps)
        if problem:
            r.fail(("model", model.kind), *problem)


def _elements(model: ModelSpec, shapes: dict) -> int:
    """Parameter elements: of each Linear of a layers model, else of ``shapes`` (name -> shape)."""
    if model.kind == "layers":
        shapes = {name: shape for module in model.layer_modules() for name, shape in module.parameters()}
    return sum(math.prod(shape) for shape in shapes.values())


def estimate_graph_nodes(scenario: Scenario, variant: int = 0) -> int:
    """Roughly how many nodes one traced iteration of ``variant`` records (the limit's measure)."""
    tree = None if scenario.model.kind == "layers" else expr.parse(scenario.model.expression)
    loop = scenario.variants()[variant].loop
    return graph_nodes(scenario.model, tree, loop.accumulation_steps, scenario.loss.kind)


__all__ = ["validate", "validate_edit", "estimate_graph_nodes", "node_names", "tour_misfit"]
