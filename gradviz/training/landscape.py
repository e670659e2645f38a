"""The loss landscape: the loss on the whole data set over a grid of two scalar parameters.

    land = landscape(setup, initial, history, "w", "b", n=100)     # what Session.landscape returns

Every other parameter stays at its initial value. Expression and objective models are evaluated
once on grid-shaped tensors (float64; ``sum`` and ``mean`` reduce the last axis), checked against
the plain forward at three grid points, and evaluated point by point if that check fails. Layers
models are evaluated batched in float32 (a contour plot needs no more), changing only what a grid
point changes (see :meth:`_Surface.layers_block`).
"""
from __future__ import annotations

from types import MappingProxyType

import numpy as np

from .._tensor import Tensor, float64, from_array, no_grad
from ..nn import functional as F
from ..scenario import expr
from .build import LOSS_FUNCTIONS, TENSOR_FUNCTIONS, SessionError, Setup, one_line, tensor_function
from .history import History, Landscape, element_names, parse_element

__all__ = ["landscape", "scalar_parameters"]

LANDSCAPE_BLOCK = 1 << 18                # elements per array when evaluating a landscape in blocks

# Landscapes evaluate on a leading grid axis: reductions run over the last axis and keep it.
_GRID_FUNCTIONS = MappingProxyType(dict(
    TENSOR_FUNCTIONS, sum=tensor_function(lambda t: t.sum(-1, keepdim=True) if t.ndim else t),
    mean=tensor_function(lambda t: t.mean(-1, keepdim=True) if t.ndim else t)))


def scalar_parameters(initial: dict[str, np.ndarray]) -> list[str]:
    """Every name :func:`landscape` accepts: scalar parameters, and elements like ``0.weight[1,0]``."""
    out: list[str] = []
    for name, value in initial.items():
        out.extend(element_names(name, value.shape))
    return out


def landscape(setup: Setup, initial: dict[str, np.ndarray], history: History, p1: str, p2: str,
              n: int = 100, x_range=None, y_range=None, progress=None) -> Landscape:
    """The loss on the whole data set over an ``n`` x ``n`` grid of two scalar parameters (or
    elements), the others at their ``initial`` values. Default ranges cover the trajectory recorded
    in ``history`` with a 25% margin and at least +-1 around the start.

    ``progress(done, total)``, if given, is called after every block of grid points (``total`` =
    n * n); an exception it raises stops the computation and propagates (a cancelled job)."""
    surface = _Surface(setup, initial)
    a, b = surface.resolve(p1), surface.resolve(p2)
    if a == b:
        raise SessionError(f"the two landscape axes must differ (both are {p1!r})")
    n = int(n)
    if n < 2:
        raise SessionError(f"a landscape needs n >= 2 grid points, found {n}")
    x_range = surface.default_range(a, history) if x_range is None else tuple(map(float, x_range))
    y_range = surface.default_range(b, history) if y_range is None else tuple(map(float, y_range))
    xs, ys = np.linspace(*x_range, n), np.linspace(*y_range, n)
    gx, gy = np.meshgrid(xs, ys)                  # gx[i, j] = xs[j], gy[i, j] = ys[i]
    report = None
    if progress is not None:
        def report(done: int, total: int) -> None:
            try:
                progress(done, total)
            except BaseException as exc:
                raise _Stop(exc) from None
    try:
        with no_grad(), np.errstate(all="ignore"):
            z = surface.grid_loss({a: gx.ravel(), b: gy.ravel()}, report)
    except _Stop as stop:
        raise stop.args[0] from None
    return Landscape(p1, p2, xs, ys, z.reshape(n, n))


class _Stop(BaseException):
    """Carries what a ``progress`` callback raised past grid_loss's fallbacks (``except Exception``)."""


def _broadcast(t: Tensor, shape: tuple) -> Tensor:
    return t if tuple(t.shape) == tuple(shape) else from_array(np.broadcast_to(t._data, shape))


class _Surface:
    """The loss of one variant as a function of its parameters' values, on the whole data set."""

    def __init__(self, setup: Setup, initial: dict[str, np.ndarray]):
        self.setup, self.scenario, self.data, self.ast = setup, setup.scenario, setup.data, setup.ast
        self.initial = initial

    def resolve(self, text: str) -> tuple[str, tuple[int, ...]]:
        """``"0.weight[1,0]"`` -> ``("0.weight", (1, 0))``, checked against the parameters."""
        parsed = parse_element(text)
        if parsed is None:
            raise SessionError(f"expected a parameter name like 'w' or '0.weight[1,0]', found {text!r}")
        name, index = parsed
        if name not in self.initial:
            raise SessionError(f"unknown parameter {name!r}; available: {', '.join(self.initial)}")
        shape = self.initial[name].shape
        if len(index) != len(shape) or any(not 0 <= i < n for i, n in zip(index, shape)):
            hint = name if shape == () else f"{name}[{','.join('0' for _ in shape)}]"
            raise SessionError(f"{text!r} is not a scalar element: {name} has shape {shape} (e.g. {hint!r})")
        return name, index

    def default_range(self, element: tuple[str, tuple], history: History) -> tuple[float, float]:
        name, index = element
        start = float(self.initial[name][index])
        values = np.asarray([start])
        if history.steps:
            values = np.asarray(history.params[name][(slice(None),) + index], dtype=np.float64)
            values = values[np.isfinite(values)]
        lo, hi = float(values.min()), float(values.max())
        margin = 0.25 * (hi - lo)
        return min(lo - margin, start - 1.0), max(hi + margin, start + 1.0)

    def grid_loss(self, grid: dict[tuple[str, tuple], np.ndarray], progress=None) -> np.ndarray:
        """Loss at each grid point (float64); vectorised, checked against the plain path at a few
        points, and the plain path point by point if the vectorised form does not apply."""
        size = len(next(iter(grid.values())))
        if self.scenario.model.kind == "layers":
            width = max(int(s) for s in self.scenario.model.layers)
        else:
            width = max(v.size for v in self.initial.values())
        block = max(1, LANDSCAPE_BLOCK // (width * max(self.data.n, 1)))
        out = np.empty(size)
        try:
            for start in range(0, size, block):
                part = {key: values[start:start + block] for key, values in grid.items()}
                out[start:start + block] = self.grid_block(part)
                if progress is not None:
                    progress(min(size, start + block), size)
            probes = sorted({0, size // 2, size - 1})
            exact = [self.point_loss({key: values[i] for key, values in grid.items()}) for i in probes]
            # float32 for layers models: the probes catch wrong broadcasting, not rounding
            if np.allclose(out[probes], exact, rtol=1e-4, atol=1e-6, equal_nan=True):
                return out
        except Exception:
            pass
        try:
            out = np.empty(size)
            for i in range(size):
                out[i] = self.point_loss({key: values[i] for key, values in grid.items()})
                if progress is not None and (i % 64 == 63 or i == size - 1):
                    progress(i + 1, size)
            return out
        except Exception as exc:     # e.g. an expression that only fits the micro-batch's length
            raise SessionError(f"the loss cannot be evaluated on the whole data set ({self.data.n} "
                               f"points) for the landscape: {one_line(exc)}") from None

    def values64(self, changes: dict) -> dict[str, np.ndarray]:
        values = {n: v.astype(np.float64) for n, v in self.initial.items()}
        for (name, index), value in changes.items():
            values[name][index] = value
        return values

    def data64(self) -> tuple[dict[str, Tensor], Tensor | None]:
        inputs = {}
        for name, values in self.data.inputs.items():
            t = from_array(values.astype(np.float64))
            t.name = name
            inputs[name] = t
        target = self.data.target
        if target is not None and target.dtype.kind == "f":
            target = target.astype(np.float64)
        return inputs, None if target is None else from_array(target)

    def loss_of(self, pred: Tensor, target: Tensor, grid_axes: int) -> np.ndarray:
        """Per-point loss with the scenario's reduction, over every axis after the grid axes."""
        kind, reduction = self.scenario.loss.kind, self.scenario.loss.reduction
        if kind == "cross_entropy":
            lead = pred.shape[:-2]
            flat = pred.reshape(-1, pred.shape[-1])
            labels = np.broadcast_to(target._data, lead + target.shape).reshape(-1)
            per = F.cross_entropy(flat, labels, reduction="none").reshape(lead + target.shape)
        else:
            shape = np.broadcast_shapes(pred.shape, target.shape)
            per = LOSS_FUNCTIONS[kind](_broadcast(pred, shape), from_array(np.broadcast_to(target._data, shape)),
                                       reduction="none")
        axes = tuple(range(grid_axes, per.ndim))
        if not axes:
            return per._data
        return (per.mean(axes) if reduction == "mean" else per.sum(axes))._data

    def point_loss(self, changes: dict) -> float:
        """The loss with some elements changed, by the plain (training) forward path, in float64."""
        values = self.values64(changes)
        tensors = {n: from_array(v) for n, v in values.items()}
        model = self.scenario.model
        if model.kind == "layers":
            h = self.data64()[0]["x"]
            for module in model.layer_modules():
                if module.kind == "Linear":
                    (weight, _), (bias, _) = module.parameters()
                    h = F.linear(h, tensors[weight], tensors[bias])
                else:
                    h = getattr(h, model.activation)()
            return float(self.loss_of(h, self.data64()[1], 0))
        inputs, target = self.data64()
        value = expr.evaluate(self.ast, {**tensors, **inputs}, functions=TENSOR_FUNCTIONS)
        value = value if isinstance(value, Tensor) else Tensor(value, dtype=float64)
        if model.kind == "objective":
            return float(value._data)
        return float(self.loss_of(value, target, 0))

    def grid_block(self, grid: dict) -> np.ndarray:
        g = len(next(iter(grid.values())))
        if self.scenario.model.kind == "layers":
            return self.layers_block(grid, g)
        env: dict[str, Tensor] = {}
        for name, value in self.initial.items():
            env[name] = from_array(value.astype(np.float64))
        for (name, index), values in grid.items():
            base = self.initial[name].astype(np.float64)
            if base.ndim == 0:
                env[name] = from_array(values.reshape(g, 1).copy())
            else:
                full = np.repeat(base[None], g, axis=0)
                full[(slice(None),) + index] = values
                env[name] = from_array(full)
        inputs, target = self.data64()
        value = expr.evaluate(self.ast, {**env, **inputs}, functions=_GRID_FUNCTIONS)
        value = value if isinstance(value, Tensor) else Tensor(value, dtype=float64)
        if self.scenario.model.kind == "objective":
            return np.broadcast_to(value._data.reshape(-1) if value.ndim else value._data, (g,))
        shape = np.broadcast_shapes(value.shape, (g,) + target.shape)
        return self.loss_of(_broadcast(value, shape), target, 1)

    def layers_block(self, grid: dict, g: int) -> np.ndarray:
        """Batched forward of a layers model in float32 (a contour plot needs no more).

        Changing ``W[i, j]`` (or ``b[i]``) of a layer changes only output column i, by
        ``(w - W[i, j]) * h[:, j]`` (or ``b - b[i]``). So activations are kept as a shared
        ``(N, width)`` part plus the few columns that vary over the grid, ``(g, N)`` each, until
        a later layer mixes them into every column; only from there on is the grid dense,
        ``(g, N, width)``.
        """
        activation = self.scenario.model.activation
        params = {n: from_array(v.astype(np.float32)) for n, v in self.initial.items()}
        target = self.data.target
        target = from_array(target if target.dtype.kind != "f" else target.astype(np.float32))
        base = from_array(self.data.inputs["x"].astype(np.float32))       # shared part (N, width)
        cols: dict[int, Tensor] = {}                                         # varying columns (g, N)
        dense: Tensor | None = None                                          # everything varies (g, N, width)
        n = base.shape[0]

        def onehot(i: int, width: int) -> Tensor:
            e = np.zeros(width, dtype=np.float32)
            e[i] = 1.0
            return from_array(e)

        def column(j: int) -> Tensor:       # input column j of the current layer: (g, N) or (N,)
            if dense is not None:
                return dense[..., j]
            return cols[j] if j in cols else base[:, j]

        for module in self.scenario.model.layer_modules():
            if module.kind != "Linear":     # the activation, on whatever varies and the shared part
                if dense is not None:
                    dense = getattr(dense, activation)()
                else:
                    base = getattr(base, activation)()
                    cols = {i: getattr(values, activation)() for i, values in cols.items()}
                continue
            width = module.out_features
            (weight_name, _), (bias_name, _) = module.parameters()
            weight, bias = params[weight_name], params[bias_name]
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
                if name not in (weight_name, bias_name):
                    continue
                delta = from_array((values - self.initial[name][index]).astype(np.float32).reshape(g, 1))
                term = delta * column(index[1]) if name == weight_name else delta
                i = index[0]
                if z_dense is not None:
                    z_dense = z_dense + term.reshape(g, -1, 1) * onehot(i, width)
                else:
                    z_cols[i] = (z_cols[i] if i in z_cols else z_base[:, i]) + term
            if z_dense is not None:
                dense, cols = z_dense, {}
            else:
                base, cols = z_base, z_cols
        if dense is None:
            dense = _broadcast(base, (g,) + base.shape)
            for i, values in cols.items():
                dense = dense + (values - base[:, i]).reshape(g, n, 1) * onehot(i, base.shape[-1])
        return self.loss_of(dense, target, 1).astype(np.float64)
