"""The data and the model's fit at one iteration, for the Data view: no Qt.

    fit = DataFit(session)                 # once per run: its data, model and History
    fit.kind                               # "regression", "surface", "binary", "multiclass" or "" (why_not says why)
    fit.points(k)                          # the model on the data points: outputs, predicted class, correct?
    fit.curve(k)                           # one input: the model's curve (a probability for two classes)
    fit.grid(k)                            # two inputs: probability / class regions / prediction over a grid
    fit.boundary(k)                        # two classes: the p = 0.5 contour as line segments
    fit.unit_maps(k, "0")                  # a layers model: each unit's output over the input plane

Iteration ``k`` means the parameters the loss at step k was computed with (``History.params`` row
k, the value *before* step k). A reduced History (``stride > 1``) keeps only every stride-th row:
the nearest kept step at or before k is used and ``shown_step(k)`` says which.

.. note::
    The data points are evaluated by the core's own ops (``F.linear``, ``Tensor.tanh``, the expression
    evaluator with the Session's functions) under ``no_grad``, on whole arrays at once, at the run's
    precision (float32 master copies, the forward under autocast for float16/bfloat16 runs, exactly
    as the Session's step does). So the class of a data point here is, bit for bit, the class the
    training forward gave it (on the full batch), and so are the ring marks and the accuracy.
    The maps drawn over a grid take one shortcut for a float32/float64 layers model: the same
    ``x @ W.T + b`` in the run's dtype, but numpy's own float32 ``tanh``/``exp`` where the core rounds
    a float64 result (an ulp or so per tanh, a few float32 ulps at the output; about 20 times
    faster: 100 x 100 samples in a few ms).
    Everything is drawn in float64.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np

from gradviz import amp
from gradviz._tensor import Tensor, from_array, no_grad
from gradviz.nn import functional as F
from gradviz.scenario import expr
from gradviz.training.build import TENSOR_FUNCTIONS, prepare

__all__ = ["CURVE_POINTS", "GRID_N", "Curve", "DataFit", "GridFit", "LayerChoice", "PointFit", "UnitMaps",
           "contour_segments", "grid_extent"]

GRID_N = 100                  # 100 x 100 samples of the input plane
CURVE_POINTS = 200            # samples of a one-input model's curve
UNIT_GRID_STEP = 2            # unit maps: every 2nd sample of the grid (50 x 50 per unit)
MARGIN = 0.15                 # the plotted range: the data's plus this share of its span on each side
GRID_BLOCK_ROWS = 1024        # grid samples per matmul (see DataFit._fast_outputs)
CACHE_BYTES = 64 * 2 ** 20    # evaluated grids kept (a few iterations back and forth), newest first
PROBE_POINTS = 16             # the model's output width is read from its output on this many points
EXPENSIVE = 1_000_000         # points x widest layer above which drawing an iteration is slow (``expensive``)
_ACTIVATION_LEVELS = {"Tanh": (-1.0, 1.0), "Sigmoid": (0.0, 1.0)}


@dataclass(frozen=True)
class PointFit:
    """The model on the data points at one iteration. ``output``: the prediction (regression), the
    probability of class 1 (two classes) or of the predicted class (several); ``predicted``: the
    class (int) or None for a regression; ``correct``: per point, or None for a regression."""
    output: np.ndarray
    predicted: np.ndarray | None
    correct: np.ndarray | None

    @property
    def accuracy(self) -> float | None:
        return None if self.correct is None or not len(self.correct) else float(self.correct.mean())


@dataclass(frozen=True)
class Curve:
    """A one-input model over its input: ``y`` the prediction (or the probability of class 1)."""
    x: np.ndarray
    y: np.ndarray


@dataclass(frozen=True)
class GridFit:
    """A two-input model over a grid: samples at ``xs`` (columns) by ``ys`` (rows).

    ``values[row, col]`` is the model at ``(xs[col], ys[row])``: the probability of class 1 (two
    classes), the prediction (a regression surface) or the probability of the predicted class
    (several classes, whose ``classes[row, col]`` is the argmax); ``classes`` is None otherwise.
    """
    xs: np.ndarray
    ys: np.ndarray
    values: np.ndarray
    classes: np.ndarray | None = None

    def pixel_rect(self) -> tuple[float, float, float, float]:
        """``(left, bottom, width, height)`` of an image with one pixel centred on each sample."""
        return _pixel_rect(self.xs, self.ys)


@dataclass(frozen=True)
class LayerChoice:
    """A module of a layers model whose outputs the unit maps can show."""
    module: str               # "0", "1", ... as torch.nn.Sequential names it (and the graph groups by)
    kind: str                 # "Linear", "Tanh", ...
    units: int
    title: str                # "0 · Linear: 16 units (before tanh)"


@dataclass(frozen=True)
class UnitMaps:
    """Each unit's output over the input plane: ``values[unit, row, col]`` at ``(xs[col], ys[row])``,
    drawn between ``levels`` (tanh: -1..1, sigmoid: 0..1, else symmetric about 0 over every unit,
    so 0 is the middle colour)."""
    choice: LayerChoice
    xs: np.ndarray
    ys: np.ndarray
    values: np.ndarray
    levels: tuple[float, float]

    def pixel_rect(self) -> tuple[float, float, float, float]:
        return _pixel_rect(self.xs, self.ys)


def _pixel_rect(xs: np.ndarray, ys: np.ndarray) -> tuple[float, float, float, float]:
    dx = (xs[-1] - xs[0]) / max(len(xs) - 1, 1)
    dy = (ys[-1] - ys[0]) / max(len(ys) - 1, 1)
    return float(xs[0] - dx / 2), float(ys[0] - dy / 2), float(dx * len(xs)), float(dy * len(ys))


def grid_extent(values: np.ndarray, margin: float = MARGIN) -> tuple[float, float]:
    """The data's range along one axis widened by ``margin`` of its span (at least +-0.5 around a
    single value), so points never sit on the border."""
    finite = values[np.isfinite(values)]
    if not len(finite):
        return -1.0, 1.0
    lo, hi = float(finite.min()), float(finite.max())
    pad = (hi - lo) * margin if hi > lo else max(0.5, abs(lo) * 0.5)
    return lo - pad, hi + pad


class DataFit:
    """What the Data view shows for one run (a ``Session``): the data it trained on and its model.

    ``kind`` says what can be drawn; when it is "" ``why_not`` says, in a sentence or two, what the
    view would show and why it cannot here (an objective has no data; a script; too many inputs).
    """

    def __init__(self, session):
        self.session = session
        scenario = session.scenario
        self.scenario = scenario
        self.kind = ""
        self.why_not = ""
        self.why_not_heading = ""              # a few words above why_not ("No data to draw")
        self.dims = 0
        self.classes = 0
        self.input_names: list[str] = []
        self.target_name = "y"
        self.x = np.zeros((0, 0))
        self.y = np.zeros(0)
        self.extent: list[tuple[float, float]] = []
        self.layers: list[LayerChoice] = []
        self._modules = []
        self.expensive = False                 # an iteration's points and grid are slow to evaluate
        self._cache: dict = {}
        self._points_cache: dict = {}
        model = scenario.model.kind
        data = getattr(session, "data", None)
        if getattr(scenario, "script", None) is not None or data is None:
            self.why_not_heading = "A script's data is in its code"
            self.why_not = ("The Data view draws a scenario's data points and the model's fit over them. "
                            "A script keeps its data and model in its own code, so there is nothing here "
                            "to evaluate: open a scenario (.toml) with data to see its fit.")
            return
        if model == "objective":
            self.why_not_heading = "No data to draw"
            self.why_not = ("The Data view draws a model's fit to data points (a curve through them, or a "
                            "decision boundary between classes). This scenario minimises an objective, a "
                            "function of its parameters alone, with no data: the Parameter space tab shows "
                            "its landscape instead.")
            return
        self._setup = prepare(scenario, session.variant_index)
        self._inputs = {name: np.asarray(values) for name, values in data.inputs.items()}
        self.target_name = data.target_name
        if model == "layers":
            x = self._inputs["x"]
            self.input_names = [f"x{i + 1}" for i in range(x.shape[1])] if x.shape[1] > 1 else ["x"]
            self.x = np.asarray(x, dtype=np.float64)
        else:
            self.input_names = list(self._inputs)
            self.x = np.stack([np.asarray(v, dtype=np.float64).reshape(-1) for v in self._inputs.values()], axis=1)
        self.dims = self.x.shape[1]
        self._loss = loss = scenario.loss.kind
        target = np.asarray(data.target)
        out = self._outputs(self._params_row(0), {n: v[:PROBE_POINTS] for n, v in self._inputs.items()})[-1]
        units = 1 if out.ndim < 2 else out.shape[1]
        if loss == "cross_entropy":
            self.y = target.reshape(-1).astype(np.int64)
            self.classes = units
        elif loss == "bce_with_logits":
            self.y = (np.asarray(target, dtype=np.float64).reshape(len(self.x), -1)[:, 0] > 0.5).astype(np.int64)
            self.classes = 2
        else:
            self.y = np.asarray(target, dtype=np.float64).reshape(len(self.x), -1)[:, 0]
        names = ", ".join(self.input_names)
        if loss in ("mse", "l1"):
            if units != 1:
                self.why_not = (f"The Data view draws a regression with one output (a curve or a map); this "
                                f"model predicts {units} values per point.")
            elif self.dims == 1:
                self.kind = "regression"
            elif self.dims == 2:
                self.kind = "surface"
            else:
                self.why_not = (f"The Data view draws a regression over one input (a curve) or two (a map); "
                                f"this model has {self.dims} inputs ({names}).")
        elif loss == "bce_with_logits":
            if units != 1:
                self.why_not = f"Two-class models output one logit per point; this one outputs {units}."
            elif self.dims in (1, 2):
                self.kind = "binary"
            else:
                self.why_not = (f"The Data view draws a decision boundary over one or two inputs; this model has "
                                f"{self.dims} inputs ({names}).")
        else:
            if self.dims == 2:
                self.kind = "multiclass"
            else:
                self.why_not = (f"The Data view draws class regions over a plane of two inputs; this model has "
                                f"{self.dims} input{'s' if self.dims != 1 else ''} ({names}).")
        if self.why_not:
            self.why_not_heading = "This model's fit cannot be drawn here"
        self.extent = [grid_extent(self.x[:, i]) for i in range(self.dims)]
        width = max([int(w) for w in scenario.model.layers] if model == "layers" else [units])
        # evaluating the model on every point (accuracy, residuals) costs about points x widest layer
        self.expensive = len(self.x) * max(width, 1) > EXPENSIVE
        if model == "layers":
            self._modules = scenario.model.layer_modules()
            if self.kind and self.dims == 2:
                self.layers = [self._choice(i, m) for i, m in enumerate(self._modules)]

    # -- the parameters of an iteration ------------------------------------------------------------
    @property
    def history(self):
        return self.session.history

    def _rows(self) -> np.ndarray:
        h = self.history
        if h is None or not h.param_names:
            return np.zeros(1, dtype=np.int64)
        steps = h.param_row_steps()
        return steps[:len(h.params[h.param_names[0]])]

    def _row_of(self, k: int) -> int:
        rows = self._rows()
        return max(0, int(np.searchsorted(rows, int(k), "right")) - 1)

    def shown_step(self, k: int) -> int:
        """The step whose parameters are drawn for iteration ``k`` (k itself unless the History was
        reduced, or the run has not reached it yet)."""
        return int(self._rows()[self._row_of(k)])

    def params_at(self, k: int) -> dict[str, np.ndarray]:
        """The parameters at iteration ``k`` (``History.params``' row, at the run's dtype)."""
        return self._params_row(self._row_of(k))

    def _params_row(self, row: int) -> dict[str, np.ndarray]:
        h = self.history
        if h is None or not h.param_names:          # no step recorded yet: the initial values
            return dict(getattr(self.session, "_initial", {}))
        return {name: h.params[name][row] for name in h.param_names}

    # -- evaluating the model ------------------------------------------------------------------------
    def _outputs(self, params: dict[str, np.ndarray], inputs: dict[str, np.ndarray],
                 exact: bool = True) -> list[np.ndarray]:
        """The model on ``inputs`` (named as the Session feeds them) with ``params``: the output of each
        module in order for a layers model (the last is the model's output), else ``[output]``.
        ``exact=False``: the drawing shortcut of the module docstring, where it applies."""
        setup = self._setup
        if not exact and self.scenario.model.kind == "layers" and setup.autocast_dtype is None:
            return self._fast_outputs(params, inputs["x"])
        autocast = amp.autocast(dtype=setup.autocast_dtype) if setup.autocast_dtype else contextlib.nullcontext()
        tensors = {name: from_array(np.asarray(v)) for name, v in params.items()}
        with no_grad(), np.errstate(all="ignore"), autocast:
            if self.scenario.model.kind == "layers":
                h: Tensor = from_array(inputs["x"])
                outputs = []
                for m in self.scenario.model.layer_modules():
                    if m.kind == "Linear":
                        h = F.linear(h, tensors[f"{m.name}.weight"], tensors[f"{m.name}.bias"])
                    else:
                        h = getattr(h, m.kind.lower())()       # Tanh/ReLU/Sigmoid.forward: x.tanh() ...
                    outputs.append(h._data)
                return outputs
            env = {**tensors, **{name: from_array(v) for name, v in inputs.items()}}
            out = expr.evaluate(setup.ast, env, functions=TENSOR_FUNCTIONS)
            out = out._data if isinstance(out, Tensor) else np.asarray(out)
            n = len(next(iter(inputs.values())))
            return [np.broadcast_to(out, (n,) + out.shape[1:]) if out.ndim == 0 or out.shape[0] != n else out]

    def _fast_outputs(self, params: dict[str, np.ndarray], x: np.ndarray) -> list[np.ndarray]:
        """A layers model in plain numpy at the run's dtype (the grid's maps only; see the docstring).

        .. note::
            The core's ``x @ W.T + b``, but in blocks of ``GRID_BLOCK_ROWS`` rows: each block is too
            small for the BLAS to spread over threads, and a threaded small matmul on a busy machine
            waits for a free core (p95 of a 100 x 100 grid: 14 ms threaded, 6 ms in blocks on a loaded
            2-core machine; the bundled MLP gives the same bits either way).
        """
        h, outputs = x, []
        with np.errstate(all="ignore"):
            for m in self.scenario.model.layer_modules():
                if m.kind == "Linear":
                    weight_t = params[f"{m.name}.weight"].T
                    out = np.empty((len(h), weight_t.shape[1]), dtype=np.result_type(h, weight_t))
                    for i in range(0, len(h), GRID_BLOCK_ROWS):
                        np.matmul(h[i:i + GRID_BLOCK_ROWS], weight_t, out=out[i:i + GRID_BLOCK_ROWS])
                    out += params[f"{m.name}.bias"]
                    h = out
                elif m.kind == "Tanh":
                    h = np.tanh(h)
                elif m.kind == "ReLU":
                    h = np.maximum(h, 0)
                else:
                    h = 1 / (1 + np.exp(-h))
                outputs.append(h)
        return outputs

    def _feed(self, X: np.ndarray) -> dict[str, np.ndarray]:
        """Input rows ``X`` (n, dims) as the model's named inputs, in the run's dtype."""
        X = np.ascontiguousarray(X, dtype=self._setup.dtype)
        if self.scenario.model.kind == "layers":
            return {"x": X}
        return {name: np.ascontiguousarray(X[:, i]) for i, name in enumerate(self._inputs)}

    def predict(self, k: int, X: np.ndarray) -> np.ndarray:
        """The model's raw output (prediction or logits) at iteration ``k`` on input rows ``X``, float64."""
        out = self._outputs(self.params_at(k), self._feed(np.asarray(X, dtype=np.float64).reshape(-1, self.dims)))
        return np.asarray(out[-1], dtype=np.float64)

    def _interpret(self, raw: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(what is drawn, class) from raw outputs: a prediction, or a probability and its class."""
        n = raw.shape[0]
        if self._loss == "bce_with_logits":
            logit = np.asarray(raw, dtype=np.float64).reshape(n, -1)[:, 0]
            with np.errstate(over="ignore"):
                p = 1.0 / (1.0 + np.exp(-logit))
            return p, (logit > 0).astype(np.int64)
        if self._loss == "cross_entropy":
            z = np.asarray(raw, dtype=np.float64).reshape(n, -1)
            cls = np.argmax(np.asarray(raw).reshape(n, -1), axis=1)      # argmax at the run's dtype
            with np.errstate(invalid="ignore", over="ignore"):
                z = z - z.max(axis=1, keepdims=True)
                e = np.exp(z)
                p = e / e.sum(axis=1, keepdims=True)
            return np.take_along_axis(p, cls[:, None], axis=1)[:, 0], cls
        return np.asarray(raw, dtype=np.float64).reshape(n, -1)[:, 0], None

    def points(self, k: int) -> PointFit:
        """The model on the data points at iteration ``k`` (the very arrays the Session trained on)."""
        key = ("points", id(self.history), self._row_of(k))
        found = self._points_cache.get(key)
        if found is None:
            raw = self._outputs(self.params_at(k), self._inputs)[-1]
            output, cls = self._interpret(raw)
            found = PointFit(output, cls, None if cls is None else cls == self.y)
            self._points_cache = {key: found}
        return found

    def curve(self, k: int, n: int = CURVE_POINTS) -> Curve:
        """One input: the model's prediction (two classes: the probability of class 1) over the range."""
        lo, hi = self.extent[0]
        xs = np.linspace(lo, hi, n)
        output, _cls = self._interpret(self.predict(k, xs[:, None]))
        return Curve(xs, output)

    def _grid_axes(self, n: int, extent=None, shape=None) -> tuple[np.ndarray, np.ndarray]:
        (x0, x1), (y0, y1) = extent or self.extent
        nx, ny = shape or (n, n)
        return np.linspace(x0, x1, int(nx)), np.linspace(y0, y1, int(ny))

    def _grid_outputs(self, k: int, n: int, extent=None, shape=None) -> list[np.ndarray]:
        """Every module's output over the grid at iteration ``k`` (the last few are cached)."""
        extent = tuple(tuple(map(float, e)) for e in (extent or self.extent))
        shape = tuple(map(int, shape or (n, n)))
        key = (id(self.history), self._row_of(k), extent, shape)
        found = self._cache.get(key)
        if found is None:
            xs, ys = self._grid_axes(n, extent, shape)
            X = np.stack(np.meshgrid(xs, ys), axis=-1).reshape(-1, 2)     # row-major: rows = y, columns = x
            found = self._outputs(self.params_at(k), self._feed(X), exact=False)
            self._cache[key] = found
            # the oldest go first; the newest always stays (a wide model's grid can be tens of MB)
            while len(self._cache) > 1 and sum(a.nbytes for v in self._cache.values() for a in v) > CACHE_BYTES:
                self._cache.pop(next(iter(self._cache)))
        return found

    def grid(self, k: int, n: int = GRID_N, *, extent=None, shape=None) -> GridFit:
        """Two inputs: the model over an ``n`` x ``n`` grid of the data's range at iteration ``k``;
        ``extent`` ``((x0, x1), (y0, y1))`` and ``shape`` ``(columns, rows)`` choose another grid
        (the range a plot shows, sampled as finely as its pixels need)."""
        xs, ys = self._grid_axes(n, extent, shape)
        values, cls = self._interpret(self._grid_outputs(k, n, extent, shape)[-1])
        rows, cols = len(ys), len(xs)
        return GridFit(xs, ys, values.reshape(rows, cols), None if cls is None or self.kind == "binary"
                       else cls.reshape(rows, cols))

    def boundary(self, k: int, n: int = GRID_N, *, extent=None, shape=None) -> np.ndarray:
        """Two classes: the decision boundary p = 0.5 as line segments ``(m, 2, 2)`` in data coordinates."""
        g = self.grid(k, n, extent=extent, shape=shape)
        return contour_segments(g.values, 0.5, g.xs, g.ys)

    def unit_maps(self, k: int, module: str, n: int = GRID_N, step: int = UNIT_GRID_STEP) -> UnitMaps:
        """Each unit's output of ``module`` over the input plane (every ``step``-th sample of the grid)."""
        i = next(i for i, c in enumerate(self.layers) if c.module == module)
        choice = self.layers[i]
        out = np.asarray(self._grid_outputs(k, n)[i], dtype=np.float64).reshape(n, n, -1)[::step, ::step]
        xs, ys = self._grid_axes(n)
        values = np.ascontiguousarray(np.moveaxis(out, -1, 0))
        levels = _ACTIVATION_LEVELS.get(choice.kind)
        if levels is None:                    # Linear, ReLU: symmetric, so 0 is the middle colour
            finite = np.abs(values[np.isfinite(values)])
            top = float(finite.max()) if len(finite) and finite.max() > 0 else 1.0
            levels = (-top, top)
        return UnitMaps(choice, xs[::step], ys[::step], values, levels)

    def _choice(self, i: int, m) -> LayerChoice:
        last = i == len(self._modules) - 1
        units = m.out_features
        if m.kind == "Linear":
            after = self._modules[i + 1].kind.lower() if not last else ""
            what = ("the output logits" if self.classes > 2 else "the output logit" if self.classes == 2
                    else "the output") if last else f"before {after}"
            title = f"{m.name} · Linear: {units} unit{'s' if units != 1 else ''} ({what})"
        else:
            title = f"{m.name} · {m.kind}: {units} unit{'s' if units != 1 else ''}"
        return LayerChoice(m.name, m.kind, units, title)

    def hidden_layer(self, module: str) -> LayerChoice | None:
        """The layer choice of a module name (a graph node's top-level module), or None."""
        return next((c for c in self.layers if c.module == module), None)


def contour_segments(z: np.ndarray, level: float, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Marching squares, vectorised: where the field ``z[row, col]`` (at ``(xs[col], ys[row])``)
    crosses ``level``, as line segments ``(m, 2, 2)`` (``[[x0, y0], [x1, y1]]``), crossings
    interpolated linearly along cell edges. A saddle cell (4 crossings) is split by its centre value.
    Non-finite samples count as below the level."""
    z = np.where(np.isfinite(z), z, -np.inf).astype(np.float64)
    above = z > level

    def cross(a, b, pa, pb):
        with np.errstate(invalid="ignore", divide="ignore"):
            t = np.clip(np.nan_to_num((level - a) / (b - a), nan=0.5, posinf=0.5, neginf=0.5), 0.0, 1.0)
        return pa + t * (pb - pa)

    X, Y = np.meshgrid(xs, ys)
    # edges of cell (r, c): bottom (r, c)-(r, c+1), top (r+1, c)-(r+1, c+1), left (r, c)-(r+1, c), right
    h_cut = above[:, :-1] != above[:, 1:]
    hx, hy = cross(z[:, :-1], z[:, 1:], X[:, :-1], X[:, 1:]), Y[:, :-1]
    v_cut = above[:-1, :] != above[1:, :]
    vx, vy = X[:-1, :], cross(z[:-1, :], z[1:, :], Y[:-1, :], Y[1:, :])
    edges = [  # (cut, x, y) per cell, in the order bottom, right, top, left
        (h_cut[:-1, :], hx[:-1, :], hy[:-1, :]), (v_cut[:, 1:], vx[:, 1:], vy[:, 1:]),
        (h_cut[1:, :], hx[1:, :], hy[1:, :]), (v_cut[:, :-1], vx[:, :-1], vy[:, :-1]),
    ]
    cut = np.stack([e[0] for e in edges], axis=-1)                       # (rows-1, cols-1, 4)
    px = np.stack([e[1] for e in edges], axis=-1)
    py = np.stack([e[2] for e in edges], axis=-1)
    count = cut.sum(axis=-1)
    segments = []
    two = count == 2
    if two.any():
        c, xx, yy = cut[two], px[two], py[two]
        order = np.argsort(~c, axis=1, kind="stable")[:, :2]             # the two cut edges
        a = np.stack([np.take_along_axis(xx, order[:, :1], 1)[:, 0], np.take_along_axis(yy, order[:, :1], 1)[:, 0]], 1)
        b = np.stack([np.take_along_axis(xx, order[:, 1:], 1)[:, 0], np.take_along_axis(yy, order[:, 1:], 1)[:, 0]], 1)
        segments.append(np.stack([a, b], axis=1))
    four = count == 4
    if four.any():
        centre = (z[:-1, :-1] + z[:-1, 1:] + z[1:, :-1] + z[1:, 1:])[four] / 4
        corner_above = above[:-1, :-1][four]                             # bottom-left corner
        xx, yy = px[four], py[four]
        # the centre on the bottom-left corner's side joins it to the top-right one: the other two
        # corners are cut off (bottom+right, top+left); otherwise bottom+left and top+right
        joined = (centre > level) == corner_above
        first = np.where(joined, 1, 3)                                   # partner of edge 0 (bottom)
        pairs = [(np.zeros_like(first), first), (2 * np.ones_like(first), 4 - first)]
        for e0, e1 in pairs:
            a = np.stack([xx[np.arange(len(e0)), e0], yy[np.arange(len(e0)), e0]], 1)
            b = np.stack([xx[np.arange(len(e1)), e1], yy[np.arange(len(e1)), e1]], 1)
            segments.append(np.stack([a, b], axis=1))
    return np.concatenate(segments) if segments else np.zeros((0, 2, 2))
