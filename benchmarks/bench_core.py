"""Time one full training step (zero_grad, forward, loss, backward, step) in gradviz and PyTorch.

    python benchmarks/bench_core.py          # from the repo root

Cases, each written once against the shared API (``L`` is ``gradviz`` or ``torch``):
  (a) the seed example: w * x + b, MSE, SGD(lr=0.1) on one point;
  (b) an MLP 2-16-16-1 with tanh on 256 points, BCE-with-logits, Adam;
  (c) case (b) with ``gradviz.trace.record()`` on, a new recorder per step (PyTorch: plain (b)).
The figure is the median time of one step over STEPS steps (after WARMUP), and the ratio is
gradviz time / PyTorch time: 1.0 means as fast as PyTorch, 0.25 four times faster.
PyTorch runs on one thread (``torch.set_num_threads(1)``), float32, in the same process.

Then a table over model sizes from the tutorial up to the scenario limits (benchmarks/sizes.py):
the same loop written once for both (``sizes.twin_step``: the row's scenario's model, data, loss,
optimizer and seed), ms per step over the row's steps (best of its repeats, full batch), the ratio,
the step's matmuls alone in numpy and torch (their ratio is the floor where BLAS dominates) and the
regime. bench_session.py prints the same rows with the Session (History recorded) next to them.

    python benchmarks/bench_core.py --quick      # fewer steps, no row at the limits
"""
from __future__ import annotations

import os

for _variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ[_variable] = "1"          # numpy's BLAS on one thread, like torch.set_num_threads(1)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sizes  # noqa: E402

import gradviz  # noqa: E402
import gradviz.nn as gnn  # noqa: E402
import gradviz.optim as goptim  # noqa: E402
from gradviz.training.build import prepare  # noqa: E402

try:
    import torch
except ImportError:
    torch = None

WARMUP, STEPS = 50, 1000

# Measurements behind choices in the core (numpy on one CPU thread; where the core's comments say
# only *that* a form was chosen, the numbers are here):
# - functions._sum_rows: numpy's ``g.sum(axis=0)`` on a C-contiguous 256 x 16 float32 matrix calls
#   its inner loop once per row (about 7 us); ``np.einsum("ij->j", g)`` adds the same rows in the
#   same order 2-4x faster.
# - functions._expand_reduced: filling ``np.empty(shape)`` from the reduced gradient is faster than
#   ``np.broadcast_to`` (plus a copy) for the small arrays of these cases.
# - functions._mean_fw / _clamp_fw: numpy's Python wrappers (``_methods._mean``, ``_methods._clip``)
#   cost as much as, or more than, the reduction or the maximum/minimum itself on small arrays;
#   numpy's mixed-type scalar division is slow next to Python's float division (the same float64 op).
# - optim.optimizer._increment_step: numpy's in-place add on a 0-d float32 array costs about 1 us,
#   more than the rest of a parameter's bookkeeping in a step.
# - optim.optimizer._copy_state: ``copy.deepcopy`` of a state dict of arrays costs several times
#   more than copying each array; it runs twice per parameter in every traced step (case c).
# targets for gradviz time / PyTorch time (at most), from the project brief
TARGETS = {"a": 0.25, "b": 0.5, "c": 1.0}


def _libs(L):
    """(nn, optim, functional) for gradviz or torch."""
    if L is gradviz:
        return gnn, goptim, gnn.functional
    return torch.nn, torch.optim, torch.nn.functional


def seed_example(L):
    """w=1, b=0, x=2, y=4, (w x + b - y)^2, SGD(lr=0.1)."""
    _, optim, _ = _libs(L)
    w = L.tensor(1.0, requires_grad=True)
    b = L.tensor(0.0, requires_grad=True)
    x, y = L.tensor(2.0), L.tensor(4.0)
    opt = optim.SGD([w, b], lr=0.1)

    def step():
        opt.zero_grad()
        loss = (w * x + b - y) ** 2
        loss.backward()
        opt.step()
        return loss
    return step


def mlp(L):
    """2-16-16-1 tanh MLP on 256 two-class points, BCE-with-logits, Adam(lr=1e-2)."""
    nn, optim, F = _libs(L)
    rng = np.random.default_rng(0)
    points = rng.standard_normal((256, 2)).astype(np.float32)
    labels = (points[:, 0] * points[:, 1] > 0).astype(np.float32)[:, None]
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 16), nn.Tanh(), nn.Linear(16, 1))
    x, y = L.tensor(points), L.tensor(labels)
    opt = optim.Adam(model.parameters(), lr=1e-2)

    def step():
        opt.zero_grad()
        loss = F.binary_cross_entropy_with_logits(model(x), y)
        loss.backward()
        opt.step()
        return loss
    return step


def traced(step):
    def run():
        with gradviz.trace.record():
            return step()
    return run


def median_step_time(step) -> float:
    for _ in range(WARMUP):
        step()
    times = []
    for _ in range(STEPS):
        start = time.perf_counter()
        step()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def size_table(quick: bool, clock: str) -> None:
    """core vs torch over sizes.SIZES (the Session's rows without the Session)."""
    print()
    print(f"Sizes from the tutorial to the limits: ms per optimizer step ({clock}, best of the row's "
          "repeats), full batch, float32, one thread")
    print(f"{'#':<2} {'model':<20} {'params':>7} {'points':>7} {'steps':>6} {'core':>8} {'torch':>8} "
          f"{'core/torch':>10} {'GEMM np':>8} {'GEMM th':>8} {'floor':>6} {'regime':>14}  data, loss, optimizer")
    for i, size in enumerate(sizes.selected(quick), 1):
        steps = sizes.steps_of(size, quick)
        sc = sizes.scenario(size, steps)
        data = prepare(sc).data
        core, theirs = [], []
        for _ in range(size.repeats):
            core.append(sizes.run_twin(gradviz, sc, data, steps)[0])
            if torch is not None:
                theirs.append(sizes.run_twin(torch, sc, data, steps)[0])
        c, t = sizes.best_of(core) / steps, sizes.best_of(theirs) / steps
        gn, gt = sizes.gemm_seconds(sc, data.n, torch, repeats=1 if data.n > 10_000 else 3)
        floor = f"{gn / gt:6.2f}" if gt > 0 else f"{'-':>6}"
        regime = f"{sizes.regime(gt, t)} ({gt / t:.0%})" if torch is not None else "?"
        print(f"{i:<2} {size.label:<20} {sizes.parameter_count(sc):>7,} {data.n:>7,} {steps:>6} {c * 1e3:>8.3f} "
              f"{t * 1e3:>8.3f} {c / t:>10.2f} {gn * 1e3:>8.3f} {gt * 1e3:>8.3f} {floor} {regime:>14}  {size.note}",
              flush=True)
    print("  (GEMM np / th: ms of the step's matmuls alone in numpy / torch; floor = their ratio, the "
          "limit of gradviz/torch where BLAS dominates; regime: the GEMM share of torch's step)")


def main() -> None:
    global STEPS
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps, no row at the limits")
    parser.add_argument("--wall", action="store_true", help="the table in wall-clock time (default: CPU time)")
    args = parser.parse_args()
    clock = sizes.use_wall_clock(args.wall)
    if args.quick:
        STEPS = 200
    if torch is not None:
        torch.set_num_threads(1)
    print(f"median time of one training step over {STEPS} steps; PyTorch "
          + (f"{torch.__version__} with torch.set_num_threads(1)" if torch else "not installed"))
    print(f"{'case':<44} {'gradviz':>10} {'torch':>10} {'gradviz/torch':>14} {'target':>7}")
    cases = [("a", "(a) seed example w*x+b, SGD", seed_example, False),
             ("b", "(b) MLP 2-16-16-1 tanh, 256 pts, BCE, Adam", mlp, False),
             ("c", "(c) = (b) with trace.record() per step", mlp, True)]
    for key, title, build, record in cases:
        step = build(gradviz)
        ours = median_step_time(traced(step) if record else step)
        theirs = median_step_time(build(torch)) if torch else float("nan")
        ratio = ours / theirs
        verdict = "ok" if ratio <= TARGETS[key] else "SLOW"
        print(f"{title:<44} {ours * 1e6:>8.1f}us {theirs * 1e6:>8.1f}us {ratio:>14.2f} "
              f"{'<=' + str(TARGETS[key]):>7} {verdict if torch else ''}")
    size_table(args.quick, clock)


if __name__ == "__main__":
    with contextlib.suppress(KeyboardInterrupt):
        main()
