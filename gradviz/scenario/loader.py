"""Read a scenario file (TOML) into a ``Scenario``, or raise one clear ``ScenarioError``.

``load``/``loads`` take the text through ``toml_source`` (size and structure guards, decoding,
parsing), read each section into the schema's dataclasses, and hand the result to
``checks.validate`` with the reader, so every rule is checked before anything runs and each error
names the line of its key. The section readers check each key as they read it: unknown keys
(with a "did you mean"), types, choices and ranges, with the rules of ``checks.py``; how the
sections fit together is ``validate``'s job. The format is documented in ``docs/scenarios.md``.
"""
from __future__ import annotations

import copy
import dataclasses
import os
from pathlib import Path

from . import datasets, toml_source
from .checks import (
    COMPARISON_NAME,
    LOOP_RULES,
    META_RULES,
    NO_CLIPPING,
    NO_SCHEDULER,
    NOISE,
    POINTS,
    RUN_NAME,
    SCALER_RULES,
    STD,
    TOUR_RULES,
    default_input_names,
    hyper_rule,
    inline_data,
    input_names,
    layer_sizes,
    no_data,
    option_rule,
    param_shape,
    param_value,
    required_hyper,
    scheduler_value,
    uniform_bounds,
    validate,
)
from .reader import Reader, show
from .schema import (
    ACTIVATIONS,
    FULL_BATCH,
    INITS,
    LIMITS,
    LOSSES,
    MAX_TOUR_STOPS,
    OPTIMIZER_DEFAULTS,
    OPTIMIZERS,
    REDUCTIONS,
    SCALER_DEFAULTS,
    SCHEDULER_CLASSES,
    SCHEDULER_DEFAULTS,
    SCHEDULER_PLACEMENTS,
    SCHEDULERS,
    DataSpec,
    LoopSpec,
    LossSpec,
    ModelSpec,
    OptimizerSpec,
    ParamInit,
    Scenario,
    SchedulerSpec,
    TourStop,
    Variant,
)

SECTIONS = ("scenario", "model", "data", "loss", "optimizer", "loop", "scheduler", "comparison", "tour")


# --- entry points ---------------------------------------------------------------------------

def loads(text: str, name: str = "<string>") -> Scenario:
    """Parse and validate scenario text; ``name`` is the file name used in error messages."""
    name = str(name)
    text = toml_source.checked(text, name)
    doc = toml_source.parse(text, name)
    r = Reader(name, toml_source.line_finder(text), doc)
    r.check_keys(doc, (), SECTIONS)
    title, description, seed, run_name = _read_meta(r, doc)
    model = _read_model(r, doc)
    data = _read_data(r, doc, model)
    loss = _read_loss(r, doc, model)
    if data.kind == "inline" and loss.kind != "cross_entropy":       # class indices only for it
        data.y = [float(v) if isinstance(v, int) else v for v in data.y]
    optimizer = _read_optimizer(r, r.table(doc, "optimizer", ()), ("optimizer",), None)
    loop = _read_loop(r, r.table(doc, "loop", ()), ("loop",), None)
    loop.scheduler = _read_scheduler(r, doc, ("scheduler",), None)
    comparisons = _read_comparisons(r, doc, optimizer, loop)
    tour = _read_tour(r, doc)
    scenario = Scenario(title=title, description=description, seed=seed, model=model, data=data,
                        loss=loss, optimizer=optimizer, loop=loop, comparisons=comparisons,
                        source_text=text, run_name=run_name, tour=tour)
    validate(scenario, r)
    return scenario


def _looks_like_text(value: str) -> bool:
    if "\n" in value:
        return True
    try:
        if os.path.exists(value):
            return False
    except (OSError, ValueError):
        pass
    return "=" in value or "[" in value


def load(path_or_text: str | os.PathLike | bytes, *, name: str | None = None) -> Scenario:
    """Load a scenario from a file path (``str`` or ``Path``), or from TOML text.

    A ``str`` that is not an existing file and contains a newline, '=' or '[' is taken as the
    text itself; ``bytes`` are the file's contents. ``name`` overrides the file name shown in
    error messages.
    """
    if isinstance(path_or_text, str) and _looks_like_text(path_or_text):
        return loads(path_or_text, name=name or "<string>")
    if isinstance(path_or_text, (bytes, bytearray)):
        shown = name or "<bytes>"
        return loads(toml_source.decode(bytes(path_or_text), shown), name=shown)
    path = Path(path_or_text)
    shown = name or str(path)
    scenario = loads(toml_source.read(path, shown), name=shown)
    scenario.path = path
    return scenario


# --- sections -------------------------------------------------------------------------------

def _read_meta(r: Reader, doc: dict) -> tuple[str, str, int, str | None]:
    meta = r.table(doc, "scenario", (), required=True)
    path = ("scenario",)
    r.check_keys(meta, path, tuple(META_RULES) + ("run",))
    rule = META_RULES["title"]
    title = r.string(meta, "title", path, nonempty=rule.nonempty, max_length=rule.max_length,
                     one_line=rule.one_line)
    description = r.get(meta, "description", path, "", META_RULES["description"])
    seed = r.get(meta, "seed", path, 0, META_RULES["seed"])
    return title, description, seed, r.get(meta, "run", path, None, RUN_NAME)


def _read_param(r: Reader, value, path: tuple) -> ParamInit:
    if not isinstance(value, dict):
        nested, shape = param_value(r, value, path)
        return ParamInit("value", nested, shape)
    init = r.choice(value, "init", path, "value" if "value" in value else None, INITS)
    allowed = {"value": ("init", "value"), "zeros": ("init", "shape"), "ones": ("init", "shape"),
               "normal": ("init", "shape", "std"), "uniform": ("init", "shape", "low", "high")}[init]
    r.check_keys(value, path, allowed)
    if init == "value":
        if "value" not in value:
            r.fail(path + ("value",), "a number or an array for 'value'", "none (it is required)")
        nested, shape = param_value(r, value["value"], path + ("value",))
        return ParamInit("value", nested, shape)
    shape = param_shape(r, value["shape"], path + ("shape",)) if "shape" in value else ()
    spec = ParamInit(init, shape=shape)
    if init == "normal":
        spec.std = r.get(value, "std", path, 1.0, STD)
    if init == "uniform":
        spec.low = r.number(value, "low", path, -1.0)
        spec.high = r.number(value, "high", path, 1.0)
        uniform_bounds(r, spec.low, spec.high, path)
    return spec


def _read_model(r: Reader, doc: dict) -> ModelSpec:
    table = r.table(doc, "model", (), required=True)
    path = ("model",)
    r.check_keys(table, path, ("expression", "objective", "layers", "activation", "parameters"))
    given = [k for k in ("expression", "objective", "layers") if k in table]
    if len(given) != 1:
        found = "none of them" if not given else " and ".join(repr(k) for k in given)
        r.fail(path + tuple(given[1:2]), "exactly one of 'expression', 'objective' or 'layers'", found)
    kind = given[0]
    if kind == "layers":
        if "parameters" in table:
            r.fail(path + ("parameters",), "no [model.parameters] for a layers model (its "
                   "parameters are initialised from the seed, as nn.Linear does)", "a parameters table")
        sizes = layer_sizes(r, table["layers"], path + ("layers",))
        activation = r.choice(table, "activation", path, "tanh", ACTIVATIONS)
        return ModelSpec("layers", "", {}, sizes, activation)
    if "activation" in table:
        r.fail(path + ("activation",), f"no 'activation' for an {kind} model (write the function "
               f"into the {kind}, e.g. tanh(...))", show(table["activation"]))
    text = table[kind]
    if not isinstance(text, str):
        r.fail(path + (kind,), "an expression string", show(text))
    params_table = r.table(table, "parameters", path)
    if not params_table:
        r.fail(path + ("parameters",), "a [model.parameters] table giving each parameter of the "
               f"{kind} a value, e.g. w = 1.0", "none")
    parameters: dict[str, ParamInit] = {}
    for name, value in params_table.items():
        where = path + ("parameters", name)
        parameters[r.name(name, where, "a parameter name")] = _read_param(r, value, where)
    return ModelSpec(kind, text, parameters)


def _read_data(r: Reader, doc: dict, model: ModelSpec) -> DataSpec:
    path = ("data",)
    if model.kind == "objective":
        if "data" in doc:
            r.fail(path, "no [data] for an objective (it depends on the parameters alone; use "
                   "'expression' for a model fitted to data)", "a [data] table")
        return DataSpec(kind="none")
    if doc.get("data") is None:
        r.fail(path, "a [data] table", no_data(model.kind))
    table = r.table(doc, "data", ())
    kind = r.choice(table, "kind", path, "inline", ("inline",) + datasets.DATASETS)
    if kind == "inline":
        r.check_keys(table, path, ("kind", "x", "y", "inputs"))
        for key in ("x", "y"):
            if key not in table:
                r.fail(path + (key,), f"inline data arrays 'x' and 'y' (or kind = one of "
                       f"{', '.join(datasets.DATASETS)})", f"no {key!r}")
        x, y, facts = inline_data(r, table["x"], table["y"], path)
        spec, d = DataSpec(kind="inline", x=x, y=y), facts["d"]
    else:
        options = datasets.generator_options(kind)
        r.check_keys(table, path, ("kind", "n", "noise", "inputs") + tuple(options))
        n = r.get(table, "n", path, 100, POINTS)
        noise = r.get(table, "noise", path, 0.1, NOISE)
        values = {option: r.get(table, option, path, default, option_rule(default))
                  for option, default in options.items()}
        spec, d = DataSpec(kind=kind, n=n, noise=noise, options=values), 1 if kind == "linear" else 2
    if "inputs" in table:
        spec.input_names = input_names(r, table["inputs"], d, path + ("inputs",))
    else:
        spec.input_names = default_input_names(d)
    return spec


def _read_loss(r: Reader, doc: dict, model: ModelSpec) -> LossSpec:
    path = ("loss",)
    if model.kind == "objective":
        if "loss" in doc:
            r.fail(path, "no [loss] for an objective (the objective itself is minimised)", "a [loss] table")
        return LossSpec()
    table = r.table(doc, "loss", ()) or {}
    r.check_keys(table, path, ("kind", "reduction"))
    return LossSpec(r.choice(table, "kind", path, "mse", LOSSES),
                    r.choice(table, "reduction", path, "mean", REDUCTIONS))


def _read_optimizer(r: Reader, table: dict | None, path: tuple, base: OptimizerSpec | None) -> OptimizerSpec:
    """Complete hyperparameters: the given keys, then ``base``'s (same kind) or the defaults."""
    table = table or {}
    kind = r.choice(table, "kind", path, base.kind if base else "sgd", OPTIMIZERS)
    defaults = OPTIMIZER_DEFAULTS[kind]
    hints = {}
    for key in table:
        owners = [k for k in OPTIMIZERS if key in OPTIMIZER_DEFAULTS[k] and key not in defaults]
        if owners:
            hints[key] = f" ({key} is a hyperparameter of {', '.join(owners)}, not of {kind})"
    r.check_keys(table, path, ("kind",) + tuple(defaults), hints)
    hyper = dict(base.hyper) if base is not None and base.kind == kind else dict(defaults)
    for key in defaults:
        hyper[key] = r.get(table, key, path, hyper[key], hyper_rule(kind, key))
    return OptimizerSpec(kind, hyper)


def _read_loop(r: Reader, table: dict | None, path: tuple, base: LoopSpec | None) -> LoopSpec:
    """The given keys on top of ``base`` (the main loop, for comparisons) or the defaults."""
    table = table or {}
    r.check_keys(table, path, tuple(LOOP_RULES) + ("scaler",))
    loop = (dataclasses.replace(base, scaler=dict(base.scaler), scheduler=copy.deepcopy(base.scheduler))
            if base is not None else LoopSpec())
    for key, rule in LOOP_RULES.items():
        if key == "batch_size" and table.get(key) == FULL_BATCH:
            loop.batch_size = None
        elif key == "clip_grad_norm" and table.get(key) is NO_CLIPPING:
            loop.clip_grad_norm = None
        else:
            setattr(loop, key, r.get(table, key, path, getattr(loop, key), rule))
    scaler = r.table(table, "scaler", path)
    if scaler is not None:
        where = path + ("scaler",)
        if not loop.loss_scaling:
            r.fail(where, "a scaler only with loss_scaling = true", "loss_scaling = false")
        r.check_keys(scaler, where, tuple(SCALER_DEFAULTS))
        for key, rule in SCALER_RULES.items():
            loop.scaler[key] = r.get(scaler, key, where, loop.scaler[key], rule)
    return loop


def _read_scheduler(r: Reader, parent: dict, path: tuple, base: SchedulerSpec | None) -> SchedulerSpec | None:
    """``parent["scheduler"]`` on top of ``base`` (the main scheduler, for comparisons): omitted
    hyperparameters come from ``base`` when the kind is the same, else from torch's defaults;
    absent, it is ``base``; ``kind = "none"`` means no scheduler."""
    table = r.table(parent, "scheduler", path[:-1])
    if table is None:
        return copy.deepcopy(base)
    choices = SCHEDULERS + (NO_SCHEDULER,)
    kind = r.choice(table, "kind", path, base.kind if base else None, choices)
    if kind == NO_SCHEDULER:
        r.check_keys(table, path, ("kind",))
        return None
    defaults = SCHEDULER_DEFAULTS[kind]
    hints = {}
    for key in table:
        owners = [SCHEDULER_CLASSES[k] for k in SCHEDULERS if key in SCHEDULER_DEFAULTS[k] and key not in defaults]
        if owners:
            hints[key] = f" ({key} belongs to {', '.join(owners)}, not to {SCHEDULER_CLASSES[kind]})"
    r.check_keys(table, path, ("kind",) + tuple(defaults) + ("placement",), hints)
    same = base is not None and base.kind == kind
    hyper = dict(base.hyper) if same else dict(defaults)
    for key in defaults:
        if key in table:
            hyper[key] = scheduler_value(r, key, table[key], path + (key,))
        elif key in required_hyper(kind) and hyper[key] is None:
            r.fail(path + (key,), f"a value for {key!r} ({SCHEDULER_CLASSES[kind]} has no default "
                   f"for it)", "none (it is required)")
    placement = r.choice(table, "placement", path, base.placement if same else "after_step",
                         SCHEDULER_PLACEMENTS)
    return SchedulerSpec(kind, hyper, placement)


def _array_of_tables(r: Reader, doc: dict, key: str, each: str, limit: int, things: str) -> list:
    """``[[key]]``: the list of tables (empty when absent), refusing a single ``[key]`` table, any
    other value, and more than ``limit`` entries, each with its one-line error."""
    raw = doc.get(key)
    if raw is None:
        return []
    path = (key,)
    if isinstance(raw, dict):
        r.fail(path, f"an array of tables: write [[{key}]] (double brackets) for {each}", f"a single table [{key}]")
    if not isinstance(raw, list):
        r.fail(path, f"an array of tables: [[{key}]]", show(raw))
    if len(raw) > limit:
        r.fail(path + (limit,), f"at most {limit} {things}", f"{len(raw)}")
    return raw


def _read_comparisons(r: Reader, doc: dict, main: OptimizerSpec, main_loop: LoopSpec) -> list[Variant]:
    raw = _array_of_tables(r, doc, "comparison", "each one", LIMITS["max_comparisons"], "comparisons")
    path = ("comparison",)
    variants, names = [], set()
    for i, table in enumerate(raw):
        where = path + (i,)
        if not isinstance(table, dict):
            r.fail(where, "a table with name, optimizer and/or loop", show(table))
        r.check_keys(table, where, ("name", "optimizer", "loop", "scheduler"))
        optimizer = _read_optimizer(r, r.table(table, "optimizer", where), where + ("optimizer",), main)
        loop = _read_loop(r, r.table(table, "loop", where), where + ("loop",), main_loop)
        loop.scheduler = _read_scheduler(r, table, where + ("scheduler",), main_loop.scheduler)
        default_name = optimizer.label() if optimizer != main else f"comparison {i + 1}"
        default_name = default_name if default_name not in names else f"comparison {i + 1}"
        name = r.get(table, "name", where, default_name, COMPARISON_NAME)
        names.add(name)
        variants.append(Variant(name, optimizer, loop))
    return variants


def _read_tour(r: Reader, doc: dict) -> list[TourStop]:
    """``[[tour]]``: the stops in order, each key checked by its rule (``checks.TOUR_RULES``); how
    they fit the scenario (the run's steps, the runs, the node names) is ``validate``'s job."""
    raw = _array_of_tables(r, doc, "tour", "each stop", MAX_TOUR_STOPS, "tour stops")
    path = ("tour",)
    stops = []
    for i, table in enumerate(raw):
        where = path + (i,)
        if not isinstance(table, dict):
            r.fail(where, "a table with iteration, text and optionally phase, event, micro_batch, "
                   "node, plot, run", show(table))
        r.check_keys(table, where, tuple(TOUR_RULES))
        for key in ("iteration", "text"):
            if key not in table:
                r.fail(where + (key,), f"{'an integer' if key == 'iteration' else 'a string'} for "
                       f"{key!r}", "none (it is required)")
        values = {key: r.get(table, key, where, None, rule) for key, rule in TOUR_RULES.items()}
        stops.append(TourStop(**values))
    return stops
