"""Model sizes from the tutorial up to the scenario limits, shared by bench_core.py and bench_session.py.

Each row is a real ``Scenario``: a TOML string read by the loader (``gradviz.scenario.loads``), and
for the one data set too large for a scenario file (100,000 points x 64 features) the same scenario
with its inline ``[data]`` replaced by ``dataclasses.replace`` (the Session validates it as it would
any scenario). The PyTorch twin of a row is the loop a user would write, written once against the
shared API (``L`` is ``gradviz`` or ``torch``): the same model, data, loss, optimizer and seed as the
Session's step (zero_grad, forward, loss, backward, step), recording nothing.

Regimes. The matmuls of a step (for each Linear: ``x @ W.T``, ``g.T @ x`` and, except for the first,
``g @ W``) are timed alone in numpy and in torch ("GEMM"). Where they are at least half of torch's
step the row is *BLAS-bound*: no framework can beat its BLAS there, and the physical limit of
GradViz/torch is the numpy/torch GEMM ratio (about 1.0: both are one thread of an optimised sgemm).
Where they are under a fifth the row is *dispatch-bound*: per-op overhead (torch's is ~10 us an op)
dominates and GradViz's thinner dispatch wins; in between, *mixed*.

Time is the process's CPU time (``time.process_time``: user + system, so page faults count) unless
``--wall`` asks for wall-clock time: every side computes on one thread, so on an idle machine the
two agree, and on a shared one CPU time is not inflated by other processes' load.

The scripts set OPENBLAS_NUM_THREADS / MKL_NUM_THREADS / OMP_NUM_THREADS to 1 before numpy is
imported and call ``torch.set_num_threads(1)``: both sides compute on one thread.
"""
from __future__ import annotations

import dataclasses
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gradviz.scenario import DEFAULT_SCENARIO, LIMITS, DataSpec, Scenario, bundled_path, load, loads  # noqa: E402
from gradviz.scenario.schema import ACTIVATION_CLASSES, OPTIMIZER_CLASSES  # noqa: E402

THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS")
TOML_POINTS = 256          # inline data written into the TOML string; more points are replaced in
clock = time.process_time  # the tables' clock; the scripts' --wall sets time.perf_counter
LOSS_FUNCTIONS = {"mse": "mse_loss", "l1": "l1_loss", "bce_with_logits": "binary_cross_entropy_with_logits",
                  "cross_entropy": "cross_entropy"}


@dataclass(frozen=True)
class Size:
    """One row: a scenario (TOML, without ``[loop]``) and how long to run it."""
    label: str                 # "2-16-16-1"
    toml: str                  # [scenario], [model], [data], [loss], [optimizer]
    steps: int                 # optimizer steps of the full run (full batch)
    quick_steps: int           # with --quick (0: the row is skipped)
    repeats: int = 3           # timed runs of each kind; the best is reported
    features: tuple[int, int, int] | None = None   # (points, features, classes) of generated inline data
    note: str = ""


def _layers(title: str, layers: list[int], data: str, loss: str, optimizer: str) -> str:
    return (f'[scenario]\ntitle = "{title}"\nseed = 0\n\n[model]\nlayers = {layers}\nactivation = "tanh"\n\n'
            f"[data]\n{data}\n\n[loss]\nkind = \"{loss}\"\n\n[optimizer]\n{optimizer}\n")


MOONS = 'kind = "moons"\nn = {n}\nnoise = 0.1'
ADAM = 'kind = "adam"\nlr = 0.01'
MOMENTUM = 'kind = "sgd"\nlr = 0.05\nmomentum = 0.9'


def _widest_deep(features: int, outputs: int, layers: int, limit: int) -> list[int]:
    """``features-w-...-w-outputs`` with ``layers`` entries and the widest ``w`` within ``limit`` elements."""
    hidden = layers - 2
    for w in range(LIMITS["max_layer_width"], 0, -1):
        count = features * w + w + (hidden - 1) * (w * w + w) + w * outputs + outputs
        if count <= limit:
            return [features] + [w] * hidden + [outputs]
    raise ValueError("no model fits")


LIMIT_LAYERS = _widest_deep(LIMITS["max_features"], 10, LIMITS["max_layers"], LIMITS["max_param_elements"])

SIZES: list[Size] = [
    Size("tutorial w*x+b", "", 10_000, 1_000, 3, note="the bundled tutorial, MSE, SGD(lr=0.1)"),
    Size("2-16-16-1", _layers("2-16-16-1", [2, 16, 16, 1], MOONS.format(n=256), "bce_with_logits", ADAM),
         1_000, 200, 5, note="moons 256 pts, BCE, Adam"),
    Size("2-64-64-1", _layers("2-64-64-1", [2, 64, 64, 1], MOONS.format(n=2_000), "bce_with_logits", ADAM),
         1_000, 100, 3, note="moons 2,000 pts, BCE, Adam"),
    Size("2-128x3-1", _layers("2-128x3-1", [2, 128, 128, 128, 1], MOONS.format(n=256), "bce_with_logits", ADAM),
         1_000, 100, 3, note="moons 256 pts, BCE, Adam"),
    Size("2-128x3-1 SGD", _layers("2-128x3-1", [2, 128, 128, 128, 1], MOONS.format(n=256), "mse", MOMENTUM),
         1_000, 100, 3, note="moons 256 pts, MSE, SGD(momentum=0.9)"),
    Size("64-256-256-10", _layers("64-256-256-10", [64, 256, 256, 10], "", "cross_entropy", ADAM),
         500, 50, 3, features=(256, 64, 10), note="64 features x 256 pts, 10 classes, CE, Adam (max width)"),
    Size("-".join(map(str, LIMIT_LAYERS[:2])) + f"x{len(LIMIT_LAYERS) - 2}-10 (limits)",
         _layers("limits", LIMIT_LAYERS, "", "cross_entropy", ADAM), 2, 0, 2,
         features=(LIMITS["max_points"], LIMITS["max_features"], 10),
         note=f"{LIMITS['max_points']:,} pts x {LIMITS['max_features']} features, {LIMITS['max_layers']} layers, "
              "CE, Adam"),
]


def use_wall_clock(wall: bool) -> str:
    """Set the tables' clock; -> its description for the table's title."""
    global clock
    clock = time.perf_counter if wall else time.process_time
    return "wall-clock time" if wall else "CPU time of this process"


def selected(quick: bool) -> list[Size]:
    return [s for s in SIZES if s.quick_steps] if quick else list(SIZES)


def steps_of(size: Size, quick: bool) -> int:
    return size.quick_steps if quick else size.steps


def _classes_data(points: int, features: int, classes: int, seed: int = 0) -> tuple[list, list]:
    """Gaussian points labelled by the largest of ``classes`` random projections (learnable)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((points, features)).round(4)
    y = (x @ rng.standard_normal((features, classes))).argmax(axis=1)
    return x.tolist(), y.tolist()


def scenario(size: Size, steps: int) -> Scenario:
    """The row's Scenario with ``loop.steps = steps`` (full batch), read by the loader."""
    if not size.toml:
        sc = load(bundled_path(DEFAULT_SCENARIO))
    else:
        text = size.toml
        x = y = None
        if size.features:
            x, y = _classes_data(*size.features)
            text = text.replace("[data]\n", f"[data]\nx = {x[:TOML_POINTS]}\ny = {y[:TOML_POINTS]}\n")
        sc = loads(text, name=size.label)
        if size.features and len(x) > TOML_POINTS:
            sc = dataclasses.replace(sc, data=DataSpec(kind="inline", x=x, y=y))
    return dataclasses.replace(sc, loop=dataclasses.replace(sc.loop, steps=steps))


def parameter_count(sc: Scenario) -> int:
    if sc.model.kind == "layers":
        return sum(int(np.prod(shape)) for m in sc.model.layer_modules() for _, shape in m.parameters())
    return len(sc.model.parameters)


# -- the loop a user would write, for gradviz and torch ---------------------------------------------

def _libs(L):
    return L.nn, L.optim, L.nn.functional


def twin_step(L, sc: Scenario, data):
    """A fresh model, optimizer and data (``data``: the Session's ``Data``) on ``L``; -> ``step()``
    running one optimizer step and returning the loss tensor."""
    nn, optim, F = _libs(L)
    opt_class = getattr(optim, OPTIMIZER_CLASSES[sc.optimizer.kind])
    loss_fn = getattr(F, LOSS_FUNCTIONS[sc.loss.kind])
    reduction = sc.loss.reduction
    y = L.tensor(data.target)
    if sc.model.kind == "layers":
        L.manual_seed(sc.seed)
        modules = [nn.Linear(m.in_features, m.out_features) if m.kind == "Linear"
                   else getattr(nn, ACTIVATION_CLASSES[sc.model.activation])()
                   for m in sc.model.layer_modules()]
        model = nn.Sequential(*modules)
        params = list(model.parameters())
        x = L.tensor(data.inputs["x"])

        def forward():
            return model(x)
    else:
        assert sc.model.expression.replace(" ", "") == "w*x+b", "the twin is written for w * x + b"
        w = L.tensor(float(sc.model.parameters["w"].value), requires_grad=True)
        b = L.tensor(float(sc.model.parameters["b"].value), requires_grad=True)
        params = [w, b]
        x = L.tensor(data.inputs["x"])

        def forward():
            return w * x + b
    opt = opt_class(params, **sc.optimizer.hyper)

    def step():
        opt.zero_grad()
        loss = loss_fn(forward(), y, reduction=reduction)
        loss.backward()
        opt.step()
        return loss
    return step


def run_twin(L, sc: Scenario, data, steps: int) -> tuple[float, float]:
    """(seconds for ``steps`` steps of a fresh twin, final loss); building is not timed."""
    step = twin_step(L, sc, data)
    loss = None
    start = clock()
    for _ in range(steps):
        loss = step()
    elapsed = clock() - start
    return elapsed, float(loss.item())


# -- the matmuls alone --------------------------------------------------------------------------------

def gemm_seconds(sc: Scenario, points: int, torch=None, repeats: int = 3) -> tuple[float, float]:
    """(numpy, torch) seconds of one step's matmuls, float32, one thread: for each Linear ``x @ W.T``,
    ``g.T @ x`` and (not for the first) ``g @ W``; (0, 0) for an expression model."""
    if sc.model.kind != "layers":
        return 0.0, 0.0
    rng = np.random.default_rng(0)
    shapes = [(m.in_features, m.out_features) for m in sc.model.layer_modules() if m.kind == "Linear"]
    arrays = [(rng.standard_normal((points, i), dtype=np.float32), rng.standard_normal((o, i), dtype=np.float32),
               rng.standard_normal((points, o), dtype=np.float32)) for i, o in shapes]

    def gemms(triples):
        def run():
            for k, (x, w, g) in enumerate(triples):
                x @ w.T
                g.T @ x
                if k:
                    g @ w
        return run

    t_numpy = best_time(gemms(arrays), repeats)
    if torch is None:
        return t_numpy, float("nan")
    return t_numpy, best_time(gemms([tuple(torch.from_numpy(a) for a in triple) for triple in arrays]), repeats)


def best_time(fn, repeats: int) -> float:
    """The best of ``repeats`` timed calls of ``fn`` (``clock``), after one untimed call."""
    fn()
    times = []
    for _ in range(repeats):
        start = clock()
        fn()
        times.append(clock() - start)
    return min(times)


def activation_seconds(L, sc: Scenario, points: int, repeats: int = 3) -> float:
    """Seconds of one step's activations on ``L`` (``gradviz`` or ``torch``), forward and backward,
    float32: for each activation module its function (``L.tanh``, ...) on the previous Linear's
    output, then ``backward`` of a gradient of that shape; 0 for an expression model.

    Why: a float32 ``tanh`` (or ``sigmoid``) has torch's bits in GradViz only when it is the float64
    function rounded once (gradviz/functions.py ``_libm``). On a CPU without AVX-512, numpy's float64
    ``tanh`` is libm's scalar loop (15-30 ns an element); gradviz/_fastmath.py gives the same bits in
    numpy's vector ops (tanh 5-7 ns, exp 7-12 ns); with AVX-512 numpy's own float64 ``tanh`` is
    vectorized (1.4 ns, 1.8 ns with the conversions) and is taken instead. Both stay above torch's
    SLEEF float32 code (0.3-4 ns, depending on the CPU): where activations are a large share of torch's
    step they set a floor of their own, like the matmuls (``floor`` in bench_session). The backward
    adds torch's fused ``1 - s*s`` (functions._tanh_bw), computed in float64."""
    if sc.model.kind != "layers":
        return 0.0
    rng = np.random.default_rng(1)
    width, shapes = None, []
    for m in sc.model.layer_modules():
        if m.kind == "Linear":
            width = m.out_features
        elif width is not None:
            shapes.append((points, width))
    if not shapes:
        return 0.0
    function = getattr(L, sc.model.activation)
    pairs = [(rng.uniform(-3, 3, shape).astype(np.float32), rng.standard_normal(shape, dtype=np.float32))
             for shape in shapes]

    def run():
        for x, g in pairs:
            t = L.tensor(x, requires_grad=True)
            function(t).backward(L.tensor(g))

    return best_time(run, repeats)


def floor_ratio(torch_step: float, gemm: tuple[float, float], activations: tuple[float, float]) -> float:
    """GradViz/torch if GradViz did everything else as fast as torch: torch's step with its matmuls and
    activations replaced by numpy's (GradViz's) times of the same work."""
    (gemm_np, gemm_th), (act_np, act_th) = gemm, activations
    return (torch_step - gemm_th - act_th + gemm_np + act_np) / torch_step


def regime(gemm_torch: float, torch_step: float) -> str:
    share = gemm_torch / torch_step if torch_step > 0 else 0.0
    if share >= 0.5:
        return "BLAS"
    return "dispatch" if share < 0.2 else "mixed"


def best_of(times: list[float]) -> float:
    return min(times) if times else float("nan")


def median(times: list[float]) -> float:
    return statistics.median(times) if times else float("nan")
