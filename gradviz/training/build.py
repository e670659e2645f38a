"""Building one variant of a Scenario on the core: its data, model, loss function and optimizer.

    setup = prepare(scenario, variant)     # checked (checks.validate); the dtype, parsed expression, data
    model = build_model(setup)             # fresh parameters at their initial values, and forward()
    optimizer = build_optimizer(setup.variant_spec, model.params)
    check(setup, model, build_loss(setup)) # one forward pass and the loss on the first micro-batch

``prepare`` checks the scenario with ``gradviz.scenario.checks.validate``, the one statement of
what a scenario may contain (the loader and the Controls use it too): whatever it refuses is a
one-line ``SessionError`` with the same text as its ``ScenarioError``. What is left to check here
is what only building can see: which variant was asked for, and the real forward pass and loss
(the last safety net: a scenario ``validate`` accepts should always pass it). Nothing here is
random except through the scenario's seeds (``docs/contracts.md``, "Deterministic building
blocks"): building twice gives the same parameters bit for bit. A layers model is named by the one
rule of ``ModelSpec.layer_modules`` (Linear layers at 0, 2, 4, ..., parameters ``0.weight``, ``0.bias``).
"""
from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable
from dataclasses import dataclass
from types import MappingProxyType

import numpy as np

from .. import amp, optim
from .._dtypes import bfloat16
from .._tensor import Tensor, float16, float32, float64, from_array, int64, no_grad
from ..nn import Linear, Parameter, ReLU, Sequential, Sigmoid, Tanh
from ..nn import functional as F
from ..optim import lr_scheduler
from ..random import manual_seed
from ..scenario import ScenarioError, expr, validate
from ..scenario.checks import default_input_names
from ..scenario.datasets import make_dataset
from ..scenario.schema import LOSS_CLASSES, OPTIMIZER_CLASSES, SCHEDULER_CLASSES, Scenario, Variant

__all__ = ["SessionError", "Setup", "Data", "Model", "prepare", "build_model", "build_optimizer",
           "build_loss", "build_scaler", "build_scheduler", "check", "build", "batch_tensors", "module_types",
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
# float16/bfloat16: float32 master copies, the forward under autocast
_DTYPES = {"float64": float64, "float32": float32, "float16": float32, "bfloat16": float32}
_AUTOCAST_DTYPES = {"float16": float16, "bfloat16": bfloat16}


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
    def autocast_dtype(self) -> np.dtype | None:
        """float16 or bfloat16 for a mixed-precision run (the dtype autocast computes in), else None."""
        return _AUTOCAST_DTYPES.get(self.variant_spec.loop.precision)

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
    """Check the scenario (``checks.validate``) and the variant, parse the model's expression and
    load the data; or SessionError."""
    variants = scenario.variants()
    if not 0 <= variant < len(variants):
        which = ("only the main run, 0" if len(variants) == 1 else
                 f"{len(variants)}: 0 = main run, 1..{len(variants) - 1} = comparisons")
        raise SessionError(f"variant {variant} does not exist: the scenario has {which}")
    try:
        validate(scenario)
    except ScenarioError as exc:
        raise SessionError(str(exc)) from exc
    spec = variants[variant]
    loop = spec.loop
    dtype = _DTYPES[loop.precision]
    kind = scenario.model.kind
    ast = None if kind == "layers" else expr.parse(scenario.model.expression)
    data = _load_data(scenario, dtype)
    batch_size = None
    if kind != "objective":
        batch_size = data.n if loop.batch_size is None else int(loop.batch_size)
    return Setup(scenario, variant, spec, dtype, ast, data, batch_size)


def _load_data(scenario: Scenario, dtype: np.dtype) -> Data:
    """The data set in the run's dtype: one (n,) column per input name for an expression, (n, d)
    for layers; class indices (int64) for cross_entropy."""
    spec, kind = scenario.data, scenario.model.kind
    if kind == "objective":
        return Data(0, {}, None, spec.target_name)
    if spec.kind == "inline":
        x = np.asarray(spec.x, dtype=np.float64)
        y = np.asarray(spec.y, dtype=np.float64)
    else:
        x, y = make_dataset(spec.kind, spec.n, spec.noise, scenario.seed, **dict(spec.options))
    n = len(x)
    classes = scenario.loss.kind == "cross_entropy"
    if classes:
        y = y.reshape(n).astype(int64)
    if kind == "layers":
        if not classes:
            y = y.reshape(n, -1)
        inputs = {"x": np.ascontiguousarray(x.reshape(n, -1), dtype=dtype)}
    else:
        columns = [x] if x.ndim == 1 else [x[:, i] for i in range(x.shape[1])]
        names = list(spec.input_names) or default_input_names(len(columns))
        inputs = {name: np.ascontiguousarray(c, dtype=dtype) for name, c in zip(names, columns)}
        if not classes and y.ndim == 2 and y.shape[1] == 1:
            y = y.reshape(n)
    target = y if classes else np.ascontiguousarray(y, dtype=dtype)
    return Data(n, inputs, target, spec.target_name)


# A layers model seeds the process-wide generator and draws its initial weights from it (as
# ``torch.manual_seed`` then ``nn.Linear`` do): threads building models take turns.
SEED_LOCK = threading.Lock()


def build_model(setup: Setup) -> Model:
    """Fresh parameters at their initial values, and ``forward(inputs) -> Tensor``."""
    model, dtype = setup.scenario.model, setup.dtype
    if model.kind == "layers":
        activation = _ACTIVATIONS[model.activation]
        with SEED_LOCK:              # the global generator: seeded, then drawn from, by one thread at a time
            manual_seed(setup.scenario.seed)
            net = Sequential(*[Linear(m.in_features, m.out_features, dtype=dtype) if m.kind == "Linear"
                               else activation() for m in model.layer_modules()])
        named = list(net.named_parameters())
        for name, p in named:
            p.name = name
        return Model([n for n, _ in named], [p for _, p in named], lambda inputs: net(inputs["x"]))
    rng = np.random.default_rng(setup.scenario.seed)
    names, params = [], []
    for name, init in model.parameters.items():
        p = Parameter(np.asarray(initial_value(init, rng), dtype=dtype))
        p.name = name
        names.append(name)
        params.append(p)
    env = dict(zip(names, params))
    ast = setup.ast

    def forward(inputs: dict) -> Tensor:
        return expr.evaluate(ast, {**env, **inputs} if inputs else env, functions=TENSOR_FUNCTIONS)
    return Model(names, params, forward)


def initial_value(init, rng: np.random.Generator) -> np.ndarray:
    """The initial value of an expression's parameter (a ``ParamInit``), drawn from ``rng`` if random."""
    shape = tuple(int(s) for s in (init.shape or ()))
    kind = init.init
    if kind == "value":
        value = np.asarray(init.value, dtype=np.float64)
        return np.broadcast_to(value, shape).copy() if shape and value.shape != shape else value
    if kind == "zeros":
        return np.zeros(shape)
    if kind == "ones":
        return np.ones(shape)
    if kind == "normal":
        return rng.normal(0.0, float(init.std), shape)
    return rng.uniform(float(init.low), float(init.high), shape)       # "uniform" (INITS)


def build_optimizer(variant_spec: Variant, params: list[Parameter]):
    """The ``gradviz.optim`` optimizer the variant names, over ``params``."""
    kind = variant_spec.optimizer.kind
    hyper = dict(variant_spec.optimizer.hyper)
    if "betas" in hyper:
        hyper["betas"] = tuple(float(b) for b in hyper["betas"])
    for key in ("lr", "eps", "weight_decay", "momentum", "dampening", "alpha", "lr_decay",
                "initial_accumulator_value"):
        if key in hyper:
            hyper[key] = float(hyper[key])
    return getattr(optim, OPTIMIZER_CLASSES[kind])(params, **hyper)


def build_scheduler(variant_spec: Variant, optimizer):
    """The ``gradviz.optim.lr_scheduler`` scheduler of the variant over ``optimizer``, or None.
    OneCycleLR's ``total_steps`` left out means the loop's steps."""
    spec = variant_spec.loop.scheduler
    if spec is None:
        return None
    hyper = dict(spec.hyper)
    if spec.kind == "onecycle" and hyper.get("total_steps") is None:
        hyper["total_steps"] = variant_spec.loop.steps
    if "milestones" in hyper:
        hyper["milestones"] = list(hyper["milestones"])
    return getattr(lr_scheduler, SCHEDULER_CLASSES[spec.kind])(optimizer, **hyper)


def build_scaler(setup: Setup) -> amp.GradScaler | None:
    """A GradScaler for a float16 run with loss scaling, else None."""
    loop = setup.variant_spec.loop
    return amp.GradScaler(**loop.scaler) if setup.float16 and loop.loss_scaling else None


def build_loss(setup: Setup) -> Callable[[Tensor, Tensor], Tensor] | None:
    """``loss_fn(pred, target)`` with the scenario's reduction (in float32 under autocast, as
    PyTorch's); None for an objective (the objective is the loss)."""
    if setup.objective:
        return None
    loss = LOSS_FUNCTIONS[setup.scenario.loss.kind]
    reduction = setup.scenario.loss.reduction
    if setup.autocast_dtype is not None:
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


def check(setup: Setup, model: Model, loss_fn: Callable | None) -> None:
    """Run one forward pass and the loss on the first micro-batch (no graph), or raise SessionError.

    ``validate`` has already checked names and shapes; this runs them for real, the safety net for
    whatever it could not foresee."""
    if setup.objective:
        inputs, target = {}, None
    else:
        inputs, target = batch_tensors(setup.data, slice(0, setup.micro_size))
    try:
        with no_grad(), np.errstate(all="ignore"):
            with amp.autocast(dtype=setup.autocast_dtype) if setup.autocast_dtype else contextlib.nullcontext():
                pred = model.forward(inputs)
                if loss_fn is not None:
                    loss_fn(pred, target)
    except Exception as exc:           # user-facing: shapes, dtypes, unknown names
        raise SessionError(f"the model or the loss cannot run on this data: {one_line(exc)}") from None


def build(scenario: Scenario, variant: int = 0) -> tuple[Setup, Model]:
    """Prepare, build and check a variant as the Session does, raising the same SessionErrors, for
    code that needs its data and initial parameters but no run (the exporter)."""
    setup = prepare(scenario, variant)
    model = build_model(setup)
    check(setup, model, build_loss(setup))
    return setup, model


def module_types(setup: Setup) -> dict[str, str]:
    """Class names of the modules a trace groups nodes by: "0" -> "Linear", "loss" -> "MSELoss"."""
    types = {m.name: m.kind for m in setup.scenario.model.layer_modules()}
    if not setup.objective:
        for micro_batch in range(setup.accumulation_steps):
            name = loss_module_name(micro_batch, setup.accumulation_steps)
            types[name] = LOSS_CLASSES[setup.scenario.loss.kind]
    return types
