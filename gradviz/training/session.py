"""The one training loop: runs what a Scenario describes on the core and records it.

    session = Session(scenario)            # builds model, data, loss, optimizer (and GradScaler)
    history = session.run()                # every optimizer step, as numpy arrays
    trace = session.trace_iteration(12)    # step 12 again, node by node, bit for bit
    land = session.landscape("w", "b")     # the loss over a grid of two scalars

The loop is exactly ``docs/contracts.md`` ("One optimizer step k") and the math is the core's:
the Session only calls ``forward``, the loss, ``backward()``, ``zero_grad()`` and ``step()`` in the
order the toggles say, and copies what it sees into preallocated arrays. Nothing here is random
except through the seeds in the scenario, so the same file gives the same numbers, and a step can
be replayed exactly from a checkpoint (that is how ``trace_iteration`` works).
"""
from __future__ import annotations

import contextlib
import copy
import math
from dataclasses import dataclass
from types import MappingProxyType
from typing import Callable, Iterator

import numpy as np

from .. import amp, optim, trace
from ..trace import Trace
from .history import History, Landscape, element_names, parse_element
from ..nn import Linear, Parameter, ReLU, Sequential, Sigmoid, Tanh
from ..nn import functional as F
from ..scenario import expr
from ..scenario.datasets import make_dataset
from ..scenario.schema import LIMITS, LOSS_CLASSES, OPTIMIZER_CLASSES, Scenario, Variant
from ..tensor import Tensor, float16, float32, float64, int64, manual_seed, no_grad

__all__ = ["Session", "SessionError", "History", "Landscape", "run_all", "batch_order",
           "TENSOR_FUNCTIONS"]

HISTORY_BYTES_LIMIT = 2 * 1024 ** 3      # refuse runs whose recorded arrays would not fit in memory
CHUNK = 200                              # steps between divergence checks / progress calls in run()
LANDSCAPE_BLOCK = 1 << 18                # elements per array when evaluating a landscape in blocks


def loss_module_name(micro_batch: int, accumulation_steps: int) -> str:
    """The module name a traced loss's ops are grouped under: one group per micro-batch (no dots:
    a dot would make it a sub-module of the first)."""
    return "loss" if accumulation_steps == 1 else f"loss (micro-batch {micro_batch + 1})"


class SessionError(ValueError):
    """A scenario that cannot run as written (shapes, names, sizes); ``str()`` is one line."""


def _call(method: Callable) -> Callable:
    """A Tensor method callable on Python numbers too (``exp(2)`` in an expression)."""
    def f(value):
        return method(value if isinstance(value, Tensor) else Tensor(value))
    f.__name__ = method.__name__
    return f


TENSOR_FUNCTIONS = MappingProxyType({
    name: _call(getattr(Tensor, name)) for name in ("tanh", "sigmoid", "relu", "exp", "log", "sqrt", "abs",
                                                     "sum", "mean")})

# Landscapes evaluate on a leading grid axis: reductions run over the last axis and keep it.
_GRID_FUNCTIONS = MappingProxyType(dict(
    TENSOR_FUNCTIONS, sum=_call(lambda t: t.sum(-1, keepdim=True) if t.ndim else t),
    mean=_call(lambda t: t.mean(-1, keepdim=True) if t.ndim else t)))

_LOSSES = {"mse": F.mse_loss, "l1": F.l1_loss, "bce_with_logits": F.binary_cross_entropy_with_logits,
           "cross_entropy": F.cross_entropy}
_ACTIVATIONS = {"tanh": Tanh, "relu": ReLU, "sigmoid": Sigmoid}
_DTYPES = {"float64": float64, "float32": float32, "float16": float32}   # float16: float32 master copies


def batch_order(n: int, batch_size: int, shuffle: bool, seed: int) -> Iterator[np.ndarray]:
    """One index array per optimizer step, forever (docs/contracts.md; the exporter copies it)."""
    rng = np.random.default_rng(seed + 1)      # only for shuffling
    per_epoch = n // batch_size                # a partial last batch is dropped
    while True:
        order = rng.permutation(n) if shuffle else np.arange(n)
        for i in range(per_epoch):
            yield order[i * batch_size:(i + 1) * batch_size]


class _BatchOrder:
    """:func:`batch_order` with a state that can be saved and restored (for exact replays)."""

    def __init__(self, n: int, batch_size: int, shuffle: bool, seed: int):
        self.n, self.batch_size, self.shuffle = n, batch_size, shuffle
        self.rng = np.random.default_rng(seed + 1)
        self.per_epoch = n // batch_size
        self.position = self.per_epoch          # the next call starts an epoch
        self.order: np.ndarray | None = None

    def next(self) -> tuple[int, np.ndarray | None]:
        """(position in the epoch, indices); indices are None when not shuffling (use the position)."""
        if self.position == self.per_epoch:
            self.order = self.rng.permutation(self.n) if self.shuffle else None
            self.position = 0
        i = self.position
        self.position += 1
        if self.order is None:
            return i, None
        return i, self.order[i * self.batch_size:(i + 1) * self.batch_size]

    def get_state(self):
        return copy.deepcopy(self.rng.bit_generator.state), self.order, self.position

    def set_state(self, state) -> None:
        self.rng.bit_generator.state = copy.deepcopy(state[0])
        self.order, self.position = state[1], state[2]


@dataclass
class _Checkpoint:
    """Everything step k depends on, taken before it: enough to replay it exactly."""
    params: list[np.ndarray]
    grads: list[np.ndarray | None]
    optimizer: dict
    scaler: dict | None
    batches: tuple | None


@dataclass
class _Data:
    """The data set, converted once: inputs for the model and the target, in the run's dtype."""
    n: int
    inputs: dict[str, np.ndarray]     # expression: one (n,) column per input name; layers: {"x": (n, d)}
    target: np.ndarray | None
    target_name: str


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."


def _parse_element(text: str) -> tuple[str, tuple[int, ...]]:
    parsed = parse_element(text)
    if parsed is None:
        raise SessionError(f"expected a parameter name like 'w' or '0.weight[1,0]', found {text!r}")
    return parsed


class _Buffer:
    """Preallocated History arrays for ``total`` steps, filled in place as the run goes."""

    def __init__(self, names: list[str], params: list[Parameter], total: int, accumulation_steps: int):
        self.names, self.total = names, total
        self.loss = np.full(total, np.nan)
        self.micro = np.full((total, accumulation_steps), np.nan)
        self.params = [np.empty((total + 1,) + p.shape, dtype=p.dtype) for p in params]
        for values, p in zip(self.params, params):
            values[0] = p.data
        self.grads = [np.full((total,) + p.shape, np.nan, dtype=p.dtype) for p in params]
        self.grad_none = [np.zeros(total, dtype=bool) for _ in params]
        self.state: list[dict[str, np.ndarray]] = [{} for _ in params]
        self.grad_scale = np.ones(total)
        self.skipped = np.zeros(total, dtype=bool)

    def record_state(self, i: int, k: int, state: dict) -> None:
        arrays = self.state[i]
        for key, value in state.items():
            values = arrays.get(key)
            if values is None:
                value = np.asarray(value)
                dtype = value.dtype if value.dtype.kind == "f" and value.ndim else np.float64
                values = arrays[key] = np.full((self.total,) + value.shape, np.nan, dtype=dtype)
            values[k] = value

    def first_bad(self, start: int, stop: int, check_grads: bool) -> tuple[int, str] | None:
        """The first step in [start, stop) whose loss, grads or new params are not finite, and why."""
        if stop <= start:
            return None
        found: list[tuple[int, str]] = []

        def first(mask: np.ndarray, what: str, values: np.ndarray) -> None:
            hits = np.flatnonzero(mask)
            if hits.size:
                k = start + int(hits[0])
                found.append((k, f"{what} is {_kind(values[k])}"))

        first(~np.isfinite(self.loss[start:stop]), "loss", self.loss)
        for name, grads, none in zip(self.names, self.grads, self.grad_none):
            if check_grads:
                rows = grads[start:stop].reshape(stop - start, -1)
                first(~np.isfinite(rows).all(axis=1) & ~none[start:stop], f"the gradient of {name}", grads)
        for name, params in zip(self.names, self.params):
            rows = params[start + 1:stop + 1].reshape(stop - start, -1)
            first(~np.isfinite(rows).all(axis=1), f"{name}", params[1:])
        if not found:
            return None
        return min(found, key=lambda item: item[0])     # ties keep the order above: loss, grads, params

    def history(self, variant: str, steps: int, diverged_at: int | None, message: str,
                copy_out: bool = False) -> History:
        def cut(a: np.ndarray, n: int) -> np.ndarray:
            return a[:n].copy() if copy_out else a[:n]
        return History(
            variant=variant, param_names=list(self.names), steps=steps,
            accumulation_steps=self.micro.shape[1], loss=cut(self.loss, steps),
            micro_losses=cut(self.micro, steps),
            params={n: cut(a, steps + 1) for n, a in zip(self.names, self.params)},
            grads={n: cut(a, steps) for n, a in zip(self.names, self.grads)},
            state={n: {key: cut(a, steps) for key, a in s.items()} for n, s in zip(self.names, self.state)},
            grad_scale=cut(self.grad_scale, steps), skipped=cut(self.skipped, steps),
            diverged_at=diverged_at, message=message)


def _kind(values) -> str:
    values = np.asarray(values)
    return "nan" if np.isnan(values).any() else "inf"


class _Engine:
    """One live copy of the model, optimizer, scaler and batch order, and the step that drives them.

    The Session keeps one engine for the recorded run and another for replays, so that tracing
    an iteration never disturbs a run in progress.
    """

    def __init__(self, session: "Session"):
        self.session = session
        loop = session.variant.loop
        self.loop = loop
        self.names, self.params, self.forward = session._build_model()
        self.objective = session.scenario.model.kind == "objective"
        self.dtype = _DTYPES[loop.precision]
        self.float16 = loop.precision == "float16"
        self.acc = int(loop.accumulation_steps)
        self.optimizer = _make_optimizer(session.variant, self.params)
        self.scaler = amp.GradScaler(**loop.scaler) if self.float16 and loop.loss_scaling else None
        self.zero_before = loop.zero_grad == "before_backward"
        self.zero_after = loop.zero_grad == "after_step"
        self.set_to_none = bool(loop.set_to_none)
        reduction = session.scenario.loss.reduction
        loss = _LOSSES[session.scenario.loss.kind]
        if self.float16:
            loss = amp.autocast_float32(loss)      # PyTorch runs its losses in float32 under autocast
        self.loss_fn = lambda pred, target: loss(pred, target, reduction)
        data = session._data
        self.data = data
        self.batches: _BatchOrder | None = None
        self._cache: dict[int, list] = {}
        if not self.objective:
            self.batch_size = session._batch_size
            self.micro_size = self.batch_size // self.acc
            self.batches = _BatchOrder(data.n, self.batch_size, loop.shuffle, session.scenario.seed)

    # -- data ---------------------------------------------------------------------------------
    def _tensors(self, rows) -> tuple[dict[str, Tensor], Tensor]:
        inputs = {}
        for name, values in self.data.inputs.items():
            t = Tensor._wrap(values[rows])
            t.name = name
            inputs[name] = t
        target = Tensor._wrap(self.data.target[rows])
        target.name = self.data.target_name
        return inputs, target

    def micro_batches(self) -> list:
        """[(inputs, target)] for the next optimizer step (an empty dict and None for objectives)."""
        if self.objective:
            return self._cache.setdefault(0, [({}, None)] * self.acc)
        position, order = self.batches.next()
        if order is None:         # no shuffling: the same batches every epoch, built once
            cached = self._cache.get(position)
            if cached is None:
                start, mb = position * self.batch_size, self.micro_size
                cached = self._cache[position] = [self._tensors(slice(start + j * mb, start + (j + 1) * mb))
                                                  for j in range(self.acc)]
            return cached
        mb = self.micro_size
        return [self._tensors(order[j * mb:(j + 1) * mb]) for j in range(self.acc)]

    # -- one optimizer step (docs/contracts.md) -------------------------------------------------
    def step(self, k: int, buf: _Buffer | None = None, rec=None) -> Tensor:
        """Run optimizer step k; record into ``buf`` (if given). Returns the last micro-batch's loss."""
        optimizer, scaler, acc = self.optimizer, self.scaler, self.acc
        if self.zero_before:
            if rec is not None:
                rec.phase("zero_grad", 0, k)
            optimizer.zero_grad(self.set_to_none)
        total = 0.0
        loss = None
        for j, (inputs, target) in enumerate(self.micro_batches()):
            if rec is not None:
                rec.phase("forward", j, k)
            with amp.autocast(dtype=float16) if self.float16 else contextlib.nullcontext():
                pred = self.forward(inputs)
                if rec is not None:
                    rec.phase("loss", j, k)
                if self.objective:
                    loss = pred
                elif rec is not None:       # group the loss's ops so the graph view can fold them into one box
                    with trace.module_scope(loss_module_name(j, acc)):
                        loss = self.loss_fn(pred, target)
                else:
                    loss = self.loss_fn(pred, target)
            value = loss.item()
            total += value
            if buf is not None:
                buf.micro[k, j] = value
            if acc > 1 and self.loop.divide_loss:
                loss = loss / acc
            if rec is not None:
                rec.phase("backward", j, k)
            if scaler is not None:
                if buf is not None and j == 0:
                    buf.grad_scale[k] = scaler.get_scale()
                scaler.scale(loss).backward()
            else:
                loss.backward()
        if rec is not None:
            rec.phase("step", 0, k)
        if scaler is not None:
            scaler.unscale_(optimizer)          # so that the grads recorded are the ones step() sees
        if buf is not None:
            buf.loss[k] = total / acc
            for i, p in enumerate(self.params):
                if p.grad is None:
                    buf.grad_none[i][k] = True
                else:
                    buf.grads[i][k] = p.grad._data
        if scaler is not None:
            scaler.step(optimizer)
            scaler.update()
        else:
            optimizer.step()
        if buf is not None:
            if scaler is not None:
                buf.skipped[k] = scaler.last_step_skipped()
            state = optimizer.state
            for i, p in enumerate(self.params):
                buf.params[i][k + 1] = p._data
                s = state.get(p)
                if s:
                    buf.record_state(i, k, s)
        if self.zero_after:
            if rec is not None:
                rec.phase("zero_grad_after", 0, k)
            optimizer.zero_grad(self.set_to_none)
        return loss

    # -- checkpoints ----------------------------------------------------------------------------
    def checkpoint(self) -> _Checkpoint:
        return _Checkpoint(
            params=[p.data.copy() for p in self.params],
            grads=[None if p.grad is None else p.grad.data.copy() for p in self.params],
            optimizer=copy.deepcopy(self.optimizer.state_dict()),
            scaler=None if self.scaler is None else dict(self.scaler.state_dict()),
            batches=None if self.batches is None else self.batches.get_state())

    def restore(self, c: _Checkpoint) -> None:
        for p, value, grad in zip(self.params, c.params, c.grads):
            np.copyto(p.data, value)
            p.grad = None if grad is None else Tensor._wrap(grad.copy())
        self.optimizer.load_state_dict(copy.deepcopy(c.optimizer))
        if self.scaler is not None:
            self.scaler.load_state_dict(c.scaler)
        if self.batches is not None:
            self.batches.set_state(c.batches)


def _make_optimizer(variant: Variant, params: list[Parameter]):
    kind = variant.optimizer.kind
    if kind not in OPTIMIZER_CLASSES:
        raise SessionError(f"unknown optimizer {kind!r}; expected one of {', '.join(OPTIMIZER_CLASSES)}")
    hyper = dict(variant.optimizer.hyper)
    if "betas" in hyper:
        hyper["betas"] = tuple(float(b) for b in hyper["betas"])
    for key in ("lr", "eps", "weight_decay", "momentum", "dampening", "alpha", "lr_decay",
                "initial_accumulator_value"):
        if key in hyper:
            hyper[key] = float(hyper[key])
    try:
        return getattr(optim, OPTIMIZER_CLASSES[kind])(params, **hyper)
    except (TypeError, ValueError) as exc:
        raise SessionError(f"optimizer {kind}: {_one_line(exc)}") from None


class Session:
    """Runs one variant of a scenario (0 = the main run, i = ``scenario.comparisons[i - 1]``).

    Building checks the scenario by running one forward pass and the loss on the first
    micro-batch, so a bad expression or a shape mismatch is a ``SessionError`` here, not later.
    """

    def __init__(self, scenario: Scenario, variant: int = 0):
        variants = scenario.variants()
        if not 0 <= variant < len(variants):
            which = ("only the main run, 0" if len(variants) == 1 else
                     f"{len(variants)}: 0 = main run, 1..{len(variants) - 1} = comparisons")
            raise SessionError(f"variant {variant} does not exist: the scenario has {which}")
        self.scenario = scenario
        self.variant_index = variant
        self.variant: Variant = variants[variant]
        loop = self.variant.loop
        if loop.precision not in _DTYPES:
            raise SessionError(f"unknown precision {loop.precision!r}; expected one of {', '.join(_DTYPES)}")
        if int(loop.accumulation_steps) < 1:
            raise SessionError(f"accumulation_steps must be at least 1, found {loop.accumulation_steps}")
        if scenario.loss.kind not in _LOSSES:
            raise SessionError(f"unknown loss {scenario.loss.kind!r}; expected one of {', '.join(_LOSSES)}")
        self._dtype = _DTYPES[loop.precision]
        self._ast = None
        kind = scenario.model.kind
        if kind in ("expression", "objective"):
            try:
                self._ast = expr.parse(scenario.model.expression)
            except expr.ExprError as exc:
                raise SessionError(f"model.expression: {_one_line(exc)}") from None
        elif kind != "layers":
            raise SessionError(f"unknown model kind {kind!r}; expected expression, objective or layers")
        self._data = self._load_data()
        self._batch_size = None
        if kind != "objective":
            n = self._data.n
            size = n if loop.batch_size is None else int(loop.batch_size)
            if not 1 <= size <= n:
                raise SessionError(f"batch_size {size} must be from 1 to the number of data points ({n})")
            if size // int(loop.accumulation_steps) < 1:
                raise SessionError(f"batch_size {size} cannot be split into {loop.accumulation_steps} "
                                   "micro-batches")
            self._batch_size = size
        self._engine = _Engine(self)
        self.param_names: list[str] = list(self._engine.names)
        self._initial = {n: p.data.copy() for n, p in zip(self.param_names, self._engine.params)}
        self._check()
        self._replay: _Engine | None = None
        self._checkpoints: dict[int, _Checkpoint] = {0: self._engine.checkpoint()}
        self._every = 1
        self._buffer = _Buffer(self.param_names, self._engine.params, 0, self._engine.acc)
        self._done = 0
        self._total = 0
        self._diverged_at: int | None = None
        self._message = ""
        self._history: History | None = None

    # -- building -----------------------------------------------------------------------------
    def _load_data(self) -> _Data:
        scenario = self.scenario
        spec, kind = scenario.data, scenario.model.kind
        if kind == "objective":
            return _Data(0, {}, None, spec.target_name)
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
            raise SessionError(f"data: {_one_line(exc)}") from None
        if x.ndim not in (1, 2) or y.ndim not in (1, 2) or len(x) != len(y) or len(x) == 0:
            raise SessionError(f"data: x has shape {x.shape} and y {y.shape}: expected the same number "
                               "of rows (x as (n,) or (n, features))")
        n = len(x)
        if classes:
            if not np.array_equal(y, np.round(y)):
                raise SessionError("data.y must be class indices (integers) for cross_entropy")
            y = y.reshape(n).astype(int64)
        dtype = self._dtype
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
        return _Data(n, inputs, target, spec.target_name)

    def _build_model(self) -> tuple[list[str], list[Parameter], Callable]:
        """Fresh parameters at their initial values, and ``forward(inputs) -> Tensor``."""
        model, dtype = self.scenario.model, self._dtype
        if model.kind == "layers":
            manual_seed(self.scenario.seed)
            activation = _ACTIVATIONS.get(model.activation)
            if activation is None:
                raise SessionError(f"unknown activation {model.activation!r}; expected one of "
                                   f"{', '.join(_ACTIVATIONS)}")
            modules = []
            sizes = [int(s) for s in model.layers]
            for i in range(len(sizes) - 1):
                modules.append(Linear(sizes[i], sizes[i + 1], dtype=dtype))
                if i < len(sizes) - 2:
                    modules.append(activation())
            net = Sequential(*modules)
            named = list(net.named_parameters())
            for name, p in named:
                p.name = name
            return [n for n, _ in named], [p for _, p in named], lambda inputs: net(inputs["x"])
        rng = np.random.default_rng(self.scenario.seed)
        names, params = [], []
        for name, init in model.parameters.items():
            p = Parameter(np.asarray(_initial_value(name, init, rng), dtype=dtype))
            p.name = name
            names.append(name)
            params.append(p)
        if not params:
            raise SessionError("the model has no parameters to train")
        env = dict(zip(names, params))
        ast = self._ast

        def forward(inputs: dict) -> Tensor:
            return expr.evaluate(ast, {**env, **inputs} if inputs else env, functions=TENSOR_FUNCTIONS)
        return names, params, forward

    def _check(self) -> None:
        """Run one forward pass and the loss on the first micro-batch (no graph), or raise SessionError."""
        engine, kind = self._engine, self.scenario.model.kind
        if self._ast is not None:
            known = set(self.param_names) | set(self._data.inputs)
            used = expr.names(self._ast)
            unknown = [n for n in used if n not in known]
            if unknown:
                raise SessionError(f"model.expression uses unknown name {unknown[0]!r}; available: "
                                   f"{', '.join(sorted(known))}")
            if not set(used) & set(self.param_names):
                raise SessionError("model.expression uses none of the parameters, so nothing can be trained")
        if kind == "objective":
            inputs, target = {}, None
        else:
            inputs, target = engine._tensors(slice(0, engine.micro_size))
        try:
            with no_grad(), np.errstate(all="ignore"):
                with amp.autocast(dtype=float16) if engine.float16 else contextlib.nullcontext():
                    pred = engine.forward(inputs)
                    if not isinstance(pred, Tensor):
                        raise SessionError("model.expression does not depend on any parameter")
                    loss = pred if kind == "objective" else engine.loss_fn(pred, target)
        except SessionError:
            raise
        except Exception as exc:           # user-facing: shapes, dtypes, unknown names
            raise SessionError(f"the model or the loss cannot run on this data: {_one_line(exc)}") from None
        if kind != "objective" and self.scenario.loss.kind != "cross_entropy" and pred.shape != target.shape:
            raise SessionError(f"the model's output has shape {tuple(pred.shape)} but the target "
                               f"{tuple(target.shape)}")
        if loss.numel() != 1:
            raise SessionError(f"the {'objective' if kind == 'objective' else 'loss'} must be one number, "
                               f"found shape {tuple(loss.shape)}")

    @property
    def data(self) -> _Data:
        """The data set as the loop feeds it: ``inputs`` by name, ``target``, in the run's dtype."""
        return self._data

    # -- running --------------------------------------------------------------------------------
    @property
    def history(self) -> History:
        """What the current (or last) run recorded so far."""
        if self._history is None:
            self._history = self._buffer.history(self.variant.name, self._done, self._diverged_at, self._message)
        return self._history

    def run(self, steps: int | None = None, progress=None) -> History:
        """Run from the initial state for ``steps`` (default ``loop.steps``) optimizer steps.

        ``progress(done, total)`` is called every few hundred steps; returning False cancels (the
        History then holds the steps done, and ``message`` says so). Divergence stops the run and
        is reported in the History; it never raises.
        """
        chunk = CHUNK if progress is None else max(1, min(CHUNK, (steps or self.variant.loop.steps) // 100))
        for done, total in self._run(steps, chunk):
            if progress is not None and progress(done, total) is False:
                self._finish(f"cancelled after {done} of {total} steps")
                break
        return self.history

    def run_chunked(self, chunk: int = 200) -> Iterator[tuple[int, int]]:
        """Run from the initial state, yielding ``(done, total)`` after every ``chunk`` steps;
        ``self.history`` grows in between (the UI redraws from it)."""
        return self._run(None, max(1, int(chunk)))

    def _run(self, steps: int | None, chunk: int) -> Iterator[tuple[int, int]]:
        total = int(self.variant.loop.steps if steps is None else steps)
        if total < 0:
            raise SessionError(f"steps must be >= 0, found {total}")
        self._reset(total)
        engine, buf = self._engine, self._buffer
        check_grads = engine.scaler is None
        every, checkpoints = self._every, self._checkpoints
        while self._done < total:
            start = self._done
            stop = min(total, start + chunk)
            k = start
            try:
                with np.errstate(all="ignore"):
                    for k in range(start, stop):
                        if k % every == 0 and k not in checkpoints:
                            checkpoints[k] = engine.checkpoint()
                        engine.step(k, buf)
                        if math.isnan(buf.loss[k]) or math.isinf(buf.loss[k]):
                            stop = k + 1
                            break
            except Exception as exc:
                bad = buf.first_bad(start, k, check_grads)
                if bad is None:
                    self._done = k
                    self._finish(f"stopped at step {k}: {_one_line(exc)}")
                    raise SessionError(f"step {k}: {_one_line(exc)}") from None
                stop = k
            bad = buf.first_bad(start, stop, check_grads)
            if bad is not None:
                at, what = bad
                self._done = at + 1
                self._diverged_at = at
                for c in [c for c in checkpoints if c > at]:
                    del checkpoints[c]
                self._finish(f"diverged at step {at}: {what}")
                yield self._done, total
                return
            self._done = stop
            self._history = None
            yield stop, total
        self._finish("")

    def _reset(self, total: int) -> None:
        engine = self._engine
        engine.restore(self._checkpoints[0])
        self._checkpoints = {0: self._checkpoints[0]}
        self._every = max(1, total // 64)
        elements = sum(p.data.size * p.data.itemsize for p in engine.params)
        needed = total * elements * 4          # params, grads and (about) two state arrays per step
        if needed > HISTORY_BYTES_LIMIT:
            raise SessionError(f"recording {total} steps of {sum(p.data.size for p in engine.params)} "
                               f"parameter values needs about {needed / 1024 ** 3:.1f} GB; "
                               "use fewer steps or a smaller model")
        self._buffer = _Buffer(self.param_names, engine.params, total, engine.acc)
        self._done, self._total = 0, total
        self._diverged_at, self._message = None, ""
        self._history = None

    def _finish(self, message: str) -> None:
        """Freeze the History (trimmed to the steps done, so the preallocated rest is freed)."""
        if message and not self._message:
            self._message = message
        self._history = self._buffer.history(self.variant.name, self._done, self._diverged_at, self._message,
                                             copy_out=self._done < self._buffer.total)

    # -- replaying one iteration ------------------------------------------------------------------
    def trace_iteration(self, k: int) -> Trace:
        """Optimizer step ``k`` (0-based) node by node: restore the state before it from the nearest
        checkpoint, replay the steps in between without recording, then record step k."""
        k = int(k)
        limit = max(self._done, self.variant.loop.steps)
        if not 0 <= k < limit:
            raise IndexError(f"iteration {k} is out of range (0..{limit - 1})")
        if self._diverged_at is not None and k > self._diverged_at:
            raise IndexError(f"iteration {k} is after the run diverged (at step {self._diverged_at})")
        if self._replay is None:
            self._replay = _Engine(self)
        engine = self._replay
        start = max(c for c in self._checkpoints if c <= k)
        engine.restore(self._checkpoints[start])
        with np.errstate(all="ignore"):
            for s in range(start, k):
                engine.step(s)
            names, params = self.param_names, engine.params
            grads_before = {n: None if p.grad is None else p.grad.data.copy() for n, p in zip(names, params)}
            params_before = {n: p.data.copy() for n, p in zip(names, params)}
            with trace.record() as rec:
                param_nodes = {n: rec.node_id(p) for n, p in zip(names, params)}
                loss = engine.step(k, rec=rec)
            params_after = {n: p.data.copy() for n, p in zip(names, params)}
        if len(rec.nodes) > LIMITS["max_graph_nodes"]:
            raise SessionError(f"iteration {k} has {len(rec.nodes)} graph nodes, more than "
                               f"{LIMITS['max_graph_nodes']}: use fewer accumulation steps")
        input_nodes: dict[str, list[int]] = {}
        for nid, info in rec.nodes.items():
            if info.kind == "input" and (info.label in self._data.inputs or info.label == self._data.target_name):
                input_nodes.setdefault(info.label, []).append(nid)
        return Trace(iteration=k, nodes=rec.nodes, events=rec.events, param_nodes=param_nodes,
                     loss_node=rec.find(loss), grads_before=grads_before, params_before=params_before,
                     params_after=params_after, micro_batches=engine.acc, input_nodes=input_nodes,
                     module_types=self._module_types(engine))

    def _module_types(self, engine) -> dict[str, str]:
        """Class names of the modules the trace groups nodes by: "0" -> "Linear", "loss" -> "MSELoss"."""
        model, types = self.scenario.model, {}
        if model.kind == "layers":
            for i in range(len(model.layers) - 1):
                types[str(2 * i)] = "Linear"
                if i < len(model.layers) - 2:
                    types[str(2 * i + 1)] = _ACTIVATIONS[model.activation].__name__
        if not engine.objective:
            for j in range(engine.acc):
                types[loss_module_name(j, engine.acc)] = LOSS_CLASSES[self.scenario.loss.kind]
        return types

    # -- loss landscape --------------------------------------------------------------------------
    def scalar_parameters(self) -> list[str]:
        """Every name :meth:`landscape` accepts: scalar parameters, and elements like ``0.weight[1,0]``."""
        out: list[str] = []
        for name in self.param_names:
            out.extend(element_names(name, self._initial[name].shape))
        return out

    def _resolve(self, text: str) -> tuple[str, tuple[int, ...]]:
        name, index = _parse_element(text)
        if name not in self._initial:
            raise SessionError(f"unknown parameter {name!r}; available: {', '.join(self.param_names)}")
        shape = self._initial[name].shape
        if len(index) != len(shape) or any(not 0 <= i < n for i, n in zip(index, shape)):
            hint = name if shape == () else f"{name}[{','.join('0' for _ in shape)}]"
            raise SessionError(f"{text!r} is not a scalar element: {name} has shape {shape} (e.g. {hint!r})")
        return name, index

    def _default_range(self, element: tuple[str, tuple]) -> tuple[float, float]:
        name, index = element
        start = float(self._initial[name][index])
        values = np.asarray([start])
        h = self.history
        if h.steps:
            values = np.asarray(h.params[name][(slice(None),) + index], dtype=np.float64)
            values = values[np.isfinite(values)]
        lo, hi = float(values.min()), float(values.max())
        margin = 0.25 * (hi - lo)
        return min(lo - margin, start - 1.0), max(hi + margin, start + 1.0)

    def landscape(self, p1: str, p2: str, n: int = 100, x_range=None, y_range=None) -> Landscape:
        """The loss on the whole data set over an ``n`` x ``n`` grid of two scalar parameters (or
        elements), the others at their initial values. Default ranges cover the recorded trajectory
        with a 25% margin and at least +-1 around the start."""
        a, b = self._resolve(p1), self._resolve(p2)
        if a == b:
            raise SessionError(f"the two landscape axes must differ (both are {p1!r})")
        n = int(n)
        if n < 2:
            raise SessionError(f"a landscape needs n >= 2 grid points, found {n}")
        x_range = self._default_range(a) if x_range is None else tuple(map(float, x_range))
        y_range = self._default_range(b) if y_range is None else tuple(map(float, y_range))
        xs, ys = np.linspace(*x_range, n), np.linspace(*y_range, n)
        gx, gy = np.meshgrid(xs, ys)                  # gx[i, j] = xs[j], gy[i, j] = ys[i]
        with no_grad(), np.errstate(all="ignore"):
            z = self._grid_loss({a: gx.ravel(), b: gy.ravel()})
        return Landscape(p1, p2, xs, ys, z.reshape(n, n))

    def _grid_loss(self, grid: dict[tuple[str, tuple], np.ndarray]) -> np.ndarray:
        """Loss at each grid point (float64); vectorised, checked against the plain path at a few
        points, and the plain path point by point if the vectorised form does not apply."""
        size = len(next(iter(grid.values())))
        if self.scenario.model.kind == "layers":
            width = max(int(s) for s in self.scenario.model.layers)
        else:
            width = max(v.size for v in self._initial.values())
        block = max(1, LANDSCAPE_BLOCK // (width * max(self._data.n, 1)))
        out = np.empty(size)
        try:
            for start in range(0, size, block):
                part = {key: values[start:start + block] for key, values in grid.items()}
                out[start:start + block] = self._grid_block(part)
            probes = sorted({0, size // 2, size - 1})
            exact = [self._point_loss({key: values[i] for key, values in grid.items()}) for i in probes]
            # float32 for layers models: the probes catch wrong broadcasting, not rounding
            if np.allclose(out[probes], exact, rtol=1e-4, atol=1e-6, equal_nan=True):
                return out
        except Exception:
            pass
        try:
            return np.array([self._point_loss({key: values[i] for key, values in grid.items()})
                             for i in range(size)])
        except Exception as exc:     # e.g. an expression that only fits the micro-batch's length
            raise SessionError(f"the loss cannot be evaluated on the whole data set ({self._data.n} "
                               f"points) for the landscape: {_one_line(exc)}") from None

    def _values64(self, changes: dict) -> dict[str, np.ndarray]:
        values = {n: v.astype(np.float64) for n, v in self._initial.items()}
        for (name, index), value in changes.items():
            values[name][index] = value
        return values

    def _data64(self) -> tuple[dict[str, Tensor], Tensor | None]:
        inputs = {}
        for name, values in self._data.inputs.items():
            t = Tensor._wrap(values.astype(np.float64))
            t.name = name
            inputs[name] = t
        target = self._data.target
        if target is not None and target.dtype.kind == "f":
            target = target.astype(np.float64)
        return inputs, None if target is None else Tensor._wrap(target)

    def _loss_of(self, pred: Tensor, target: Tensor, grid_axes: int) -> np.ndarray:
        """Per-point loss with the scenario's reduction, over every axis after the grid axes."""
        kind, reduction = self.scenario.loss.kind, self.scenario.loss.reduction
        if kind == "cross_entropy":
            lead = pred.shape[:-2]
            flat = pred.reshape(-1, pred.shape[-1])
            labels = np.broadcast_to(target.data, lead + target.shape).reshape(-1)
            per = F.cross_entropy(flat, labels, reduction="none").reshape(lead + target.shape)
        else:
            shape = np.broadcast_shapes(pred.shape, target.shape)
            per = _LOSSES[kind](_broadcast(pred, shape), Tensor._wrap(np.broadcast_to(target.data, shape)),
                                reduction="none")
        axes = tuple(range(grid_axes, per.ndim))
        if not axes:
            return per.data
        return (per.mean(axes) if reduction == "mean" else per.sum(axes)).data

    def _point_loss(self, changes: dict) -> float:
        """The loss with some elements changed, by the plain (training) forward path, in float64."""
        values = self._values64(changes)
        tensors = {n: Tensor._wrap(v) for n, v in values.items()}
        if self.scenario.model.kind == "layers":
            h = self._data64()[0]["x"]
            sizes = self.scenario.model.layers
            for i in range(len(sizes) - 1):
                h = F.linear(h, tensors[f"{2 * i}.weight"], tensors[f"{2 * i}.bias"])
                if i < len(sizes) - 2:
                    h = getattr(h, self.scenario.model.activation)()
            return float(self._loss_of(h, self._data64()[1], 0))
        inputs, target = self._data64()
        value = expr.evaluate(self._ast, {**tensors, **inputs}, functions=TENSOR_FUNCTIONS)
        value = value if isinstance(value, Tensor) else Tensor(value, dtype=float64)
        if self.scenario.model.kind == "objective":
            return float(value.data)
        return float(self._loss_of(value, target, 0))

    def _grid_block(self, grid: dict) -> np.ndarray:
        g = len(next(iter(grid.values())))
        if self.scenario.model.kind == "layers":
            return self._grid_block_layers(grid, g)
        env: dict[str, Tensor] = {}
        for name, value in self._initial.items():
            env[name] = Tensor._wrap(value.astype(np.float64))
        for (name, index), values in grid.items():
            base = self._initial[name].astype(np.float64)
            if base.ndim == 0:
                env[name] = Tensor._wrap(values.reshape(g, 1).copy())
            else:
                full = np.repeat(base[None], g, axis=0)
                full[(slice(None),) + index] = values
                env[name] = Tensor._wrap(full)
        inputs, target = self._data64()
        value = expr.evaluate(self._ast, {**env, **inputs}, functions=_GRID_FUNCTIONS)
        value = value if isinstance(value, Tensor) else Tensor(value, dtype=float64)
        if self.scenario.model.kind == "objective":
            return np.broadcast_to(value.data.reshape(-1) if value.ndim else value.data, (g,))
        shape = np.broadcast_shapes(value.shape, (g,) + target.shape)
        return self._loss_of(_broadcast(value, shape), target, 1)

    def _grid_block_layers(self, grid: dict, g: int) -> np.ndarray:
        """Batched forward in float32 (a contour plot needs no more, and numpy's float32 tanh/exp
        are ~10x faster than float64's).

        Changing ``W[i, j]`` (or ``b[i]``) of a layer changes only output column i, by
        ``(w - W[i, j]) * h[:, j]`` (or ``b - b[i]``). So activations are kept as a shared
        ``(N, width)`` part plus the few columns that vary over the grid, ``(g, N)`` each, until
        a later layer mixes them into every column; only from there on is the grid dense,
        ``(g, N, width)``.
        """
        sizes = [int(s) for s in self.scenario.model.layers]
        activation = self.scenario.model.activation
        params = {n: Tensor._wrap(v.astype(np.float32)) for n, v in self._initial.items()}
        target = self._data.target
        target = Tensor._wrap(target if target.dtype.kind != "f" else target.astype(np.float32))
        base = Tensor._wrap(self._data.inputs["x"].astype(np.float32))    # shared part (N, width)
        cols: dict[int, Tensor] = {}                                         # varying columns (g, N)
        dense: Tensor | None = None                                          # everything varies (g, N, width)
        n = base.shape[0]

        def onehot(i: int, width: int) -> Tensor:
            e = np.zeros(width, dtype=np.float32)
            e[i] = 1.0
            return Tensor._wrap(e)

        def column(j: int) -> Tensor:       # input column j of the current layer: (g, N) or (N,)
            if dense is not None:
                return dense[..., j]
            return cols[j] if j in cols else base[:, j]

        for layer in range(len(sizes) - 1):
            module, width = 2 * layer, sizes[layer + 1]
            weight, bias = params[f"{module}.weight"], params[f"{module}.bias"]
            z_cols: dict[int, Tensor] = {}
            z_dense = None
            if dense is not None:
                z_dense = F.linear(dense.reshape(-1, dense.shape[-1]), weight, bias).reshape(g, n, width)
            else:
                z_base = F.linear(base, weight, bias)
                if cols:          # the varying inputs reach every output column
                    z_dense = z_base
                    for j, values in cols.items():
                        z_dense = z_dense + (values - base[:, j]).reshape(g, n, 1) * weight[:, j]
            for (name, index), values in grid.items():
                if name not in (f"{module}.weight", f"{module}.bias"):
                    continue
                delta = Tensor._wrap((values - self._initial[name][index]).astype(np.float32).reshape(g, 1))
                term = delta * column(index[1]) if name.endswith("weight") else delta
                i = index[0]
                if z_dense is not None:
                    z_dense = z_dense + term.reshape(g, -1, 1) * onehot(i, width)
                else:
                    z_cols[i] = (z_cols[i] if i in z_cols else z_base[:, i]) + term
            last = layer == len(sizes) - 2

            def act(t: Tensor) -> Tensor:
                return t if last else getattr(t, activation)()
            if z_dense is not None:
                dense, cols = act(z_dense), {}
            else:
                base, cols = act(z_base), {i: act(values) for i, values in z_cols.items()}
        if dense is None:
            dense = _broadcast(base, (g,) + base.shape)
            for i, values in cols.items():
                dense = dense + (values - base[:, i]).reshape(g, n, 1) * onehot(i, base.shape[-1])
        return self._loss_of(dense, target, 1).astype(np.float64)


def _broadcast(t: Tensor, shape: tuple) -> Tensor:
    return t if tuple(t.shape) == tuple(shape) else Tensor._wrap(np.broadcast_to(t.data, shape))


def _initial_value(name: str, init, rng: np.random.Generator) -> np.ndarray:
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


def run_all(scenario: Scenario) -> list[History]:
    """Run the main variant and every comparison; one History each, in ``scenario.variants()`` order."""
    return [Session(scenario, i).run() for i in range(len(scenario.variants()))]
