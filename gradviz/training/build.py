"""Building one variant of a Scenario on the core: its data, model, loss function and optimizer.

    setup = prepare(scenario, variant)     # checked: the variant, dtype, parsed expression, data, batch size
    model = build_model(setup)             # fresh parameters at their initial values, and forward()
    optimizer = build_optimizer(setup.variant_spec, model.params)
    check(setup, model, build_loss(setup)) # one forward pass and the loss on the first micro-batch

Everything a scenario can get wrong is a one-line ``SessionError`` raised here, in the order the
Session has always checked (so the same file gives the same message). Nothing here is random
except through the scenario's seeds (``docs/contracts.md``, "Deterministic building blocks"):
building twice gives the same parameters bit for bit. A layers model is named by the one rule of
``ModelSpec.layer_modules`` (Linear layers at 0, 2, 4, ..., parameters ``0.weight``, ``0.bias``).
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable

import numpy as np

from .. import amp, optim
from .._tensor import Tensor, float16, float32, float64, from_array, int64, manual_seed, no_grad
from ..nn import Linear, Parameter, ReLU, Sequential, Sigmoid, Tanh
from ..nn import functional as F
from ..scenario import expr
from ..scenario.datasets import make_dataset
from ..scenario.schema import LOSS_CLASSES, OPTIMIZER_CLASSES, Scenario, Variant

__all__ = ["SessionError", "Setup", "Data", "Model", "prepare", "build_model", "build_optimizer",
           "build_loss", "build_scaler", "check", "build", "batch_tensors", "module_types",
           "loss_module_name", "initial_value", "one_line", "tensor_function", "TENSOR_FUNCTIONS", "LOSS_FUNCTIONS"]


class SessionError(ValueError):
    """A scenario that cannot run as written (shapes, names, sizes); ``str()`` is one line."""


def one_line(exc: BaseException) -> str:
    """An exception's message on one line of at most 300 characters (for a SessionError)."""
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def tensor_function(method: Callable) -> Callable:
    """A Tensor method callable on Python numbers too (``exp(2)`` in an expression)."""
    def f(value):
        return method(value if isinstance(value, Tensor) else Tensor(value))
    f.__name__ = method.__name__
    return f


TENSOR_FUNCTIONS = MappingProxyType({
    name: tensor_function(getattr(Tensor, name)) for name in ("tanh", "sigmoid", "relu", "exp", "log", "sqrt",
                                                               "abs", "sum", "mean")})

LOSS_FUNCTIONS = MappingProxyType({"mse": F.mse_loss, "l1": F.l1_loss,
                                   "bce_with_logits": F.binary_cross_entropy_with_logits,
                                   "cross_entropy": F.cross_entropy})
_ACTIVATIONS = {"tanh": Tanh, "relu": ReLU, "sigmoid": Sigmoid}
_DTYPES = {"float64": float64, "float32": float32, "float16": float32}   # float16: float32 master copies


def loss_module_name(micro_batch: int, accumulation_steps: int) -> str:
    """The module name a traced loss's ops are grouped under: one group per micro-batch (no dots:
    a dot would make it a sub-module of the first)."""
    return "loss" if accumulation_steps == 1 else f"loss (micro-batch {micro_batch + 1})"


@dataclass
class Data:
    """The data set, converted once: inputs for the model and the target, in the run's dtype."""
    n: int
    inputs: dict[str, np.ndarray]     # expression: one (n,) column per input name; layers: {"x": (n, d)}
    target: np.ndarray | None
    target_name: str


@dataclass
class Setup:
    """One variant of a scenario, checked and ready to build from: what every copy of its model,
    optimizer and batch order is made of. ``batch_size`` and ``micro_size`` are None for objectives."""
    scenario: Scenario
    variant_index: int                # 0 = the main run, i = scenario.comparisons[i - 1]
    variant_spec: Variant             # its name, optimizer and loop
    dtype: np.dtype                   # of the parameters and data (float32 for float16 runs: master copies)
    ast: expr.Expr | None             # the parsed expression or objective; None for layers
    data: Data
    batch_size: int | None

    @property
    def accumulation_steps(self) -> int:
        return int(self.variant_spec.loop.accumulation_steps)

    @property
    def float16(self) -> bool:
        return self.variant_spec.loop.precision == "float16"

    @property
    def objective(self) -> bool:
        return self.scenario.model.kind == "objective"

    @property
    def micro_size(self) -> int | None:
        return None if self.batch_size is None else self.batch_size // self.accumulation_steps


@dataclass
class Model:
    """Fresh parameters (named as in PyTorch) and ``forward(inputs) -> Tensor``."""
    names: list[str]
    params: list[Parameter]
    forward: Callable[[dict], Tensor]


def prepare(scenario: Scenario, variant: int = 0) -> Setup:
    """Check the variant's loop, parse the model's expression and load the data; or SessionError."""
    variants = scenario.variants()
    if not 0 <= variant < len(variants):
        which = ("only the main run, 0" if len(variants) == 1 else
                 f"{len(variants)}: 0 = main run, 1..{len(variants) - 1} = comparisons")
        raise SessionError(f"variant {variant} does not exist: the scenario has {which}")
    spec = variants[variant]
    loop = spec.loop
    if loop.precision not in _DTYPES:
        raise SessionError(f"unknown precision {loop.precision!r}; expected one of {', '.join(_DTYPES)}")
    if int(loop.accumulation_steps) < 1:
        raise SessionError(f"accumulation_steps must be at least 1, found {loop.accumulation_steps}")
    if scenario.loss.kind not in LOSS_FUNCTIONS:
        raise SessionError(f"unknown loss {scenario.loss.kind!r}; expected one of {', '.join(LOSS_FUNCTIONS)}")
    dtype = _DTYPES[loop.precision]
    ast = None
    kind = scenario.model.kind
    if kind in ("expression", "objective"):
        try:
            ast = expr.parse(scenario.model.expression)
        except expr.ExprError as exc:
            raise SessionError(f"model.expression: {one_line(exc)}") from None
    elif kind != "layers":
        raise SessionError(f"unknown model kind {kind!r}; expected expression, objective or layers")
    data = _load_data(scenario, dtype)
    batch_size = None
    if kind != "objective":
        n = data.n
        size = n if loop.batch_size is None else int(loop.batch_size)
        if not 1 <= size <= n:
            raise SessionError(f"batch_size {size} must be from 1 to the number of data points ({n})")
        if size // int(loop.accumulation_steps) < 1:
            raise SessionError(f"batch_size {size} cannot be split into {loop.accumulation_steps} "
                               "micro-batches")
        batch_size = size
    return Setup(scenario, variant, spec, dtype, ast, data, batch_size)


def _load_data(scenario: Scenario, dtype: np.dtype) -> Data:
    spec, kind = scenario.data, scenario.model.kind
    if kind == "objective":
        return Data(0, {}, None, spec.target_name)
    if spec.kind == "none":
        raise SessionError(f"a {kind} model needs data (data.kind is 'none')")
    classes = scenario.loss.kind == "cross_entropy"
    try:
        if spec.kind == "inline":
            if spec.x is None or spec.y is None:
                raise SessionError("inline data needs both x and y")
            x = np.asarray(spec.x, dtype=np.float64)
            y = np.asarray(spec.y, dtype=np.float64)
        else:
            x, y = make_dataset(spec.kind, spec.n, spec.noise, scenario.seed, **dict(spec.options))
    except SessionError:
        raise
    except (TypeError, ValueError) as exc:
        raise SessionError(f"data: {one_line(exc)}") from None
    if x.ndim not in (1, 2) or y.ndim not in (1, 2) or len(x) != len(y) or len(x) == 0:
        raise SessionError(f"data: x has shape {x.shape} and y {y.shape}: expected the same number "
                           "of rows (x as (n,) or (n, features))")
    n = len(x)
    if classes:
        if not np.array_equal(y, np.round(y)):
            raise SessionError("data.y must be class indices (integers) for cross_entropy")
        y = y.reshape(n).astype(int64)
    if kind == "layers":
        sizes = scenario.model.layers
        x = x.reshape(n, -1)
        if len(sizes) < 2:
            raise SessionError(f"model.layers needs at least an input and an output size, found {sizes}")
        if x.shape[1] != sizes[0]:
            raise SessionError(f"the model takes {sizes[0]} input features but the data has {x.shape[1]}")
        if not classes:
            y = y.reshape(n, -1)
            if y.shape[1] != sizes[-1]:
                raise SessionError(f"the model has {sizes[-1]} outputs but the targets have {y.shape[1]} "
                                   "columns")
        inputs = {"x": np.ascontiguousarray(x, dtype=dtype)}
    else:
        columns = [x] if x.ndim == 1 else [x[:, i] for i in range(x.shape[1])]
        names = list(spec.input_names) or (["x"] if len(columns) == 1 else
                                           [f"x{i + 1}" for i in range(len(columns))])
        if len(names) != len(columns):
            raise SessionError(f"data.input_names has {len(names)} names for {len(columns)} input columns")
        inputs = {name: np.ascontiguousarray(c, dtype=dtype) for name, c in zip(names, columns)}
        if not classes and y.ndim == 2 and y.shape[1] == 1:
            y = y.reshape(n)
    target = y if classes else np.ascontiguousarray(y, dtype=dtype)
    return Data(n, inputs, target, spec.target_name)


def build_model(setup: Setup) -> Model:
    """Fresh parameters at their initial values, and ``forward(inputs) -> Tensor``."""
    model, dtype = setup.scenario.model, setup.dtype
    if model.kind == "layers":
        manual_seed(setup.scenario.seed)
        activation = _ACTIVATIONS.get(model.activation)
        if activation is None:
            raise SessionError(f"unknown activation {model.activation!r}; expected one of "
                               f"{', '.join(_ACTIVATIONS)}")
        net = Sequential(*[Linear(m.in_features, m.out_features, dtype=dtype) if m.kind == "Linear" else activation()
                           for m in model.layer_modules()])
        named = list(net.named_parameters())
        for name, p in named:
            p.name = name
        return Model([n for n, _ in named], [p for _, p in named], lambda inputs: net(inputs["x"]))
    rng = np.random.default_rng(setup.scenario.seed)
    names, params = [], []
    for name, init in model.parameters.items():
        p = Parameter(np.asarray(initial_value(name, init, rng), dtype=dtype))
        p.name = name
        names.append(name)
        params.append(p)
    if not params:
        raise SessionError("the model has no parameters to train")
    env = dict(zip(names, params))
    ast = setup.ast

    def forward(inputs: dict) -> Tensor:
        return expr.evaluate(ast, {**env, **inputs} if inputs else env, functions=TENSOR_FUNCTIONS)
    return Model(names, params, forward)


def initial_value(name: str, init, rng: np.random.Generator) -> np.ndarray:
    """The initial value of an expression's parameter (a ``ParamInit``), drawn from ``rng`` if random."""
    shape = tuple(int(s) for s in (init.shape or ()))
    kind = init.init
    if kind == "value":
        try:
            value = np.asarray(init.value, dtype=np.float64)
        except (TypeError, ValueError):
            raise SessionError(f"model.parameters.{name}: value must be a number or nested lists of numbers, "
                               f"found {init.value!r}") from None
        return np.broadcast_to(value, shape).copy() if shape and value.shape != shape else value
    if kind == "zeros":
        return np.zeros(shape)
    if kind == "ones":
        return np.ones(shape)
    if kind == "normal":
        return rng.normal(0.0, float(init.std), shape)
    if kind == "uniform":
        return rng.uniform(float(init.low), float(init.high), shape)
    raise SessionError(f"model.parameters.{name}: unknown init {kind!r}")


def build_optimizer(variant_spec: Variant, params: list[Parameter]):
    """The ``gradviz.optim`` optimizer the variant names, over ``params``; bad hyperparameters are a SessionError."""
    kind = variant_spec.optimizer.kind
    if kind not in OPTIMIZER_CLASSES:
        raise SessionError(f"unknown optimizer {kind!r}; expected one of {', '.join(OPTIMIZER_CLASSES)}")
    hyper = dict(variant_spec.optimizer.hyper)
    if "betas" in hyper:
        hyper["betas"] = tuple(float(b) for b in hyper["betas"])
    for key in ("lr", "eps", "weight_decay", "momentum", "dampening", "alpha", "lr_decay",
                "initial_accumulator_value"):
        if key in hyper:
            hyper[key] = float(hyper[key])
    try:
        return getattr(optim, OPTIMIZER_CLASSES[kind])(params, **hyper)
    except (TypeError, ValueError) as exc:
        raise SessionError(f"optimizer {kind}: {one_line(exc)}") from None


def build_scaler(setup: Setup) -> amp.GradScaler | None:
    """A GradScaler for a float16 run with loss scaling, else None."""
    loop = setup.variant_spec.loop
    return amp.GradScaler(**loop.scaler) if setup.float16 and loop.loss_scaling else None


def build_loss(setup: Setup) -> Callable[[Tensor, Tensor], Tensor]:
    """``loss_fn(pred, target)`` with the scenario's reduction (in float32 under autocast, as PyTorch's)."""
    loss = LOSS_FUNCTIONS[setup.scenario.loss.kind]
    reduction = setup.scenario.loss.reduction
    if setup.float16:
        loss = amp.autocast_float32(loss)      # PyTorch runs its losses in float32 under autocast
    return lambda pred, target: loss(pred, target, reduction)


def batch_tensors(data: Data, rows) -> tuple[dict[str, Tensor], Tensor]:
    """The inputs (by name) and the target of the rows ``rows`` of the data, named for the trace."""
    inputs = {}
    for name, values in data.inputs.items():
        t = from_array(values[rows])
        t.name = name
        inputs[name] = t
    target = from_array(data.target[rows])
    target.name = data.target_name
    return inputs, target


def check(setup: Setup, model: Model, loss_fn: Callable) -> None:
    """Run one forward pass and the loss on the first micro-batch (no graph), or raise SessionError."""
    kind = setup.scenario.model.kind
    if setup.ast is not None:
        known = set(model.names) | set(setup.data.inputs)
        used = expr.names(setup.ast)
        unknown = [n for n in used if n not in known]
        if unknown:
            raise SessionError(f"model.expression uses unknown name {unknown[0]!r}; available: "
                               f"{', '.join(sorted(known))}")
        if not set(used) & set(model.names):
            raise SessionError("model.expression uses none of the parameters, so nothing can be trained")
    if kind == "objective":
        inputs, target = {}, None
    else:
        inputs, target = batch_tensors(setup.data, slice(0, setup.micro_size))
    try:
        with no_grad(), np.errstate(all="ignore"):
            with amp.autocast(dtype=float16) if setup.float16 else contextlib.nullcontext():
                pred = model.forward(inputs)
                if not isinstance(pred, Tensor):
                    raise SessionError("model.expression does not depend on any parameter")
                loss = pred if kind == "objective" else loss_fn(pred, target)
    except SessionError:
        raise
    except Exception as exc:           # user-facing: shapes, dtypes, unknown names
        raise SessionError(f"the model or the loss cannot run on this data: {one_line(exc)}") from None
    if kind != "objective" and setup.scenario.loss.kind != "cross_entropy" and pred.shape != target.shape:
        raise SessionError(f"the model's output has shape {tuple(pred.shape)} but the target "
                           f"{tuple(target.shape)}")
    if loss.numel() != 1:
        raise SessionError(f"the {'objective' if kind == 'objective' else 'loss'} must be one number, "
                           f"found shape {tuple(loss.shape)}")


def build(scenario: Scenario, variant: int = 0) -> tuple[Setup, Model]:
    """Prepare, build and check a variant as the Session does, raising the same SessionErrors, for
    code that needs its data and initial parameters but no run (the exporter)."""
    setup = prepare(scenario, variant)
    model = build_model(setup)
    build_optimizer(setup.variant_spec, model.params)       # bad hyperparameters raise here, as in a Session
    build_scaler(setup)
    check(setup, model, build_loss(setup))
    return setup, model


def module_types(setup: Setup) -> dict[str, str]:
    """Class names of the modules a trace groups nodes by: "0" -> "Linear", "loss" -> "MSELoss"."""
    types = {m.name: m.kind for m in setup.scenario.model.layer_modules()}
    if not setup.objective:
        acc = setup.accumulation_steps
        for j in range(acc):
            types[loss_module_name(j, acc)] = LOSS_CLASSES[setup.scenario.loss.kind]
    return types
