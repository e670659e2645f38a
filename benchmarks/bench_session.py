"""Time headless Session runs against the same loop in PyTorch: the tutorial, then a table of model
sizes from the tutorial up to the scenario limits (benchmarks/sizes.py).

    python benchmarks/bench_session.py            # from the repo root; a few minutes
    python benchmarks/bench_session.py --quick    # fewer steps, no row at the limits

The first figure is ``Session(tutorial).run()`` with ``loop.steps = 10_000``: building nothing
new per step, but recording every step into the History (loss, parameters, grads, state). The
PyTorch figure is the bare loop a user would write (``torch.set_num_threads(1)``, float32, the
scenario's optimizer), recording nothing. Both: the median of REPEATS runs. Also printed, not
asserted: 100 x 100 loss landscapes of the bundled Rosenbrock and two-moons MLP scenarios.

The table (one row per size in sizes.py, full batch, float32, one thread everywhere):
- Session: ``Session(scenario).run()`` of the row's steps, per step (History recorded; building
  the Session is not timed, ``run()``'s own History allocation is), the best of the repeats: re-runs
  and a new Session's first run, each taking the memory the last run released from the pool of
  released History memory (gradviz/training/history_pool.py); 1st run: the first ``run()`` of a
  Session with that pool emptied, into fresh memory (every page of the History faulted in as it is
  first written); pooled: a new Session's first run (the app's case: every run is a new Session)
  taking the memory the previous Session released;
- engine: the Session's own step engine (``Engine(setup).step(k)``) with no History buffer: the
  Session's loop without recording, so Session/engine is what the History costs;
- core: the same model, data, loss, optimizer and seed written as a plain loop on gradviz
  (``sizes.twin_step``), no History; torch: that loop on torch in this process;
- each figure is the best of the row's repeats, interleaved (Session, core, torch, Session, ...),
  in CPU time of this process (``--wall``: wall-clock time; see sizes.py);
- History MB: the nbytes of the arrays the returned History holds (views of one buffer counted
  once); B/value: that over steps x parameter elements; peak MB: tracemalloc's peak during one more
  ``run()`` (numpy's allocations and the History pool's fresh memory included; the last History
  held and the pool emptied, so that this run allocates its own as a first run does), and of the
  core loop for comparison (torch's own allocator is not traced);
- GEMM: the step's matmuls alone in numpy / torch (sizes.gemm_seconds), its share of torch's step
  names the regime, and numpy/torch is the physical floor of GradViz/torch where BLAS dominates;
- act: the step's activations alone, forward and backward, in GradViz / torch
  (sizes.activation_seconds): a float32 tanh with torch's bits is the float64 tanh rounded once,
  computed without libm from 8,192 elements on (gradviz/_fastmath.py); floor: torch's step with
  its matmuls and activations taking GradViz's times (sizes.floor_ratio), the limit of
  GradViz/torch while those two kernels stay what they are.
"""
from __future__ import annotations

import os

for _variable in ("OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "OMP_NUM_THREADS"):
    os.environ[_variable] = "1"          # numpy's BLAS on one thread, like torch.set_num_threads(1)

import argparse  # noqa: E402
import dataclasses  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import tracemalloc  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import sizes  # noqa: E402

import gradviz  # noqa: E402
from gradviz.scenario import DEFAULT_SCENARIO, bundled_path, load  # noqa: E402
from gradviz.scenario.schema import OPTIMIZER_CLASSES  # noqa: E402
from gradviz.training.build import prepare  # noqa: E402
from gradviz.training.engine import Engine  # noqa: E402
from gradviz.training.history_pool import POOL  # noqa: E402
from gradviz.training.session import Session  # noqa: E402

STEPS = 10_000
REPEATS = 5
HISTORY_OVER_CORE = 1.10      # target: Session (History recorded) at most 10% over the bare core loop

# Why layers landscapes are evaluated in float32 (gradviz/training/landscape.py): numpy's float32
# tanh/exp are about 10x faster than float64's, and a contour plot needs no more precision.


def median_time(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def tutorial(steps: int = STEPS):
    sc = load(bundled_path(DEFAULT_SCENARIO))
    return dataclasses.replace(sc, loop=dataclasses.replace(sc.loop, steps=steps))


def torch_loop(sc):
    """The tutorial's loop written directly in PyTorch: w * x + b, MSE, the scenario's optimizer."""
    import torch
    params = {name: torch.tensor(float(init.value), requires_grad=True)
              for name, init in sc.model.parameters.items()}
    w, b = params["w"], params["b"]
    x, y = torch.tensor(sc.data.x), torch.tensor(sc.data.y)
    opt = getattr(torch.optim, OPTIMIZER_CLASSES[sc.optimizer.kind])([w, b], **sc.optimizer.hyper)
    mse = torch.nn.functional.mse_loss
    for _ in range(sc.loop.steps):
        opt.zero_grad()
        loss = mse(w * x + b, y, reduction=sc.loss.reduction)
        loss.backward()
        opt.step()
    return w.item(), b.item()


def history_bytes(history) -> int:
    """The nbytes of every numpy array reachable from ``history``'s fields (dicts, lists, nested
    objects), each underlying buffer counted once however many views of it there are."""
    seen_objects: set[int] = set()
    buffers: dict[int, int] = {}

    def walk(value) -> None:
        if id(value) in seen_objects:
            return
        seen_objects.add(id(value))
        if isinstance(value, np.ndarray):
            root = value
            while isinstance(root.base, np.ndarray):
                root = root.base
            buffers[id(root)] = root.nbytes
        elif isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)
        elif hasattr(value, "__dict__") and not isinstance(value, type):
            for item in vars(value).values():
                walk(item)
        elif hasattr(value, "__slots__"):
            for slot in value.__slots__:
                walk(getattr(value, slot, None))

    walk(history)
    return sum(buffers.values())


def traced_peak(fn) -> int:
    """tracemalloc's peak (bytes) while ``fn()`` runs, plus the fresh memory the History pool mapped
    meanwhile (mmap, which tracemalloc does not see; the History's arrays, alive to the end)."""
    fresh = POOL.stats().fresh_bytes
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] + POOL.stats().fresh_bytes - fresh
    finally:
        tracemalloc.stop()


def measure(size: sizes.Size, steps: int, torch) -> dict:
    sc = sizes.scenario(size, steps)
    POOL.clear()                  # the first run: fresh memory, not what the last row released
    session = Session(sc)
    data = session.data
    params = sizes.parameter_count(sc)
    row = dict(size=size, steps=steps, params=params, points=data.n, session=[], engine=[], core=[], torch=[])
    setup = prepare(sc)
    for repeat in range(size.repeats):
        if repeat == 1:           # a new Session: its first run takes the memory the last one released
            del session
            session = Session(sc)
        start = sizes.clock()
        h = session.run()
        row["session"].append(sizes.clock() - start)
        row.setdefault("session_first", row["session"][0])
        if repeat == 1:
            row["session_pooled"] = row["session"][1]
        row["recorded"] = h.steps
        row["loss_session"] = float(h.loss[h.steps - 1]) if h.steps else float("nan")
        row["history"] = history_bytes(h)
        row["stride"] = getattr(h, "stride", 1)       # > 1: a History reduced to fit its memory budget
        del h
        engine = Engine(setup)
        start = sizes.clock()
        with np.errstate(all="ignore"):          # as Session.run
            for k in range(steps):
                engine.step(k)
        row["engine"].append(sizes.clock() - start)
        del engine
        seconds, row["loss_core"] = sizes.run_twin(gradviz, sc, data, steps)
        row["core"].append(seconds)
        if torch is not None:
            seconds, row["loss_torch"] = sizes.run_twin(torch, sc, data, steps)
            row["torch"].append(seconds)
    held = session.history      # kept alive: the traced run allocates its History afresh, as a first run does
    POOL.clear()
    row["peak_session"] = traced_peak(session.run)
    del held
    row["peak_core"] = traced_peak(lambda: sizes.run_twin(gradviz, sc, data, steps))
    row["gemm_numpy"], row["gemm_torch"] = sizes.gemm_seconds(sc, data.n, torch,
                                                              repeats=1 if data.n > 10_000 else 3)
    row["act_numpy"] = sizes.activation_seconds(gradviz, sc, data.n, repeats=1 if data.n > 10_000 else 3)
    row["act_torch"] = (sizes.activation_seconds(torch, sc, data.n, repeats=1 if data.n > 10_000 else 3)
                        if torch is not None else float("nan"))
    return row


def print_table(rows: list[dict], has_torch: bool, clock: str) -> None:
    print()
    print(f"Sizes from the tutorial to the limits: ms per optimizer step ({clock}, best of the row's "
          "repeats), full batch, float32, one thread")
    print("targets: Session/torch <= 0.5 up to ~5,000 parameters (dispatch-bound), <= 1.0 at every size; "
          f"Session/core <= {HISTORY_OVER_CORE:.2f} (History recording costs <= 10%); History at the run's "
          "precision (float32: 4 B per recorded value)")
    print(f"{'#':<2} {'model':<20} {'params':>7} {'points':>7} {'steps':>6} {'Session':>8} {'1st run':>8} "
          f"{'pooled':>8} {'engine':>8} {'core':>8} "
          f"{'torch':>8} {'S/torch':>8} {'target':>7} {'core/torch':>10} {'S/core':>7} {'S/engine':>8} {'GEMM np':>8} "
          f"{'GEMM th':>8} {'act np':>7} {'act th':>7} {'floor':>6} {'regime':>24}")
    for i, r in enumerate(rows, 1):
        steps = r["steps"]
        s, c = sizes.best_of(r["session"]) / steps, sizes.best_of(r["core"]) / steps
        e = sizes.best_of(r["engine"]) / steps
        t = sizes.best_of(r["torch"]) / steps if has_torch else float("nan")
        target = 0.5 if r["params"] <= 5_000 else 1.0
        s_t, c_t, s_c = s / t, c / t, s / c
        verdict = "" if not has_torch else ("ok" if s_t <= target else "SLOW")
        history = "ok" if s_c <= HISTORY_OVER_CORE else "over"
        gn, gt = r["gemm_numpy"], r["gemm_torch"]
        an, at = r["act_numpy"], r["act_torch"]
        floor = f"{sizes.floor_ratio(t, (gn, gt), (an, at)):6.2f}" if gt > 0 and has_torch else f"{'-':>6}"
        share = gt / t if gt > 0 and has_torch else 0.0
        act_share = at / t if at > 0 and has_torch else 0.0
        regime = f"{sizes.regime(gt, t) if has_torch else '?'} (GEMM {share:.0%}, act {act_share:.0%})"
        first = r["session_first"] / steps
        pooled = r.get("session_pooled", float("nan")) / steps
        print(f"{i:<2} {r['size'].label:<20} {r['params']:>7,} {r['points']:>7,} {steps:>6} {s * 1e3:>8.3f} "
              f"{first * 1e3:>8.3f} {pooled * 1e3:>8.3f} {e * 1e3:>8.3f} {c * 1e3:>8.3f} {t * 1e3:>8.3f} {s_t:>8.2f} "
              f"{'<=' + str(target):>7} {c_t:>10.2f} "
              f"{s_c:>7.2f} {s / e:>8.2f} {gn * 1e3:>8.3f} {gt * 1e3:>8.3f} {an * 1e3:>7.3f} {at * 1e3:>7.3f} "
              f"{floor} {regime:>24}  {verdict} {history}")
    print("  (1st run: a Session's first run, its History in fresh memory (page faults); pooled: a new Session's "
          "first run, in the memory the last one released; Session: the best run)")
    print("  (engine: the Session's step engine with no History; S/engine: what recording the History costs; "
          "ok/over: S/core against the History target)")
    print("  (GEMM np / th: ms of the step's matmuls alone in numpy / torch; act np / th: ms of its activations, "
          "forward and backward, in GradViz / torch (a float32 tanh with torch's bits is the float64 one rounded once: "
          "sizes.activation_seconds); floor: GradViz/torch if everything but these ran as fast as torch's; "
          "regime: the GEMM share of torch's step, and the activations' share)")
    print()
    print(f"{'#':<2} {'model':<20} {'History MB':>10} {'B/value':>8} {'peak MB Session':>15} "
          f"{'peak MB core':>12} {'final loss Session':>18} {'core':>12} {'torch':>12}  data, loss, optimizer")
    for i, r in enumerate(rows, 1):
        steps = r["steps"]
        per_value = r["history"] / max(1, steps * r["params"])
        note = r["size"].note
        if r["recorded"] != steps:
            note += f"  (the Session stopped after {r['recorded']} steps)"
        if r["stride"] > 1:
            note += f"  (History reduced: every {r['stride']}th step of params/grads/state)"
        print(f"{i:<2} {r['size'].label:<20} {r['history'] / 2 ** 20:>10.1f} {per_value:>8.1f} "
              f"{r['peak_session'] / 2 ** 20:>15.1f} {r['peak_core'] / 2 ** 20:>12.1f} "
              f"{r['loss_session']:>18.6g} {r['loss_core']:>12.6g} {r.get('loss_torch', float('nan')):>12.6g}  {note}")
    print("  (History MB: nbytes of the History's arrays; B/value: per step and parameter element "
          "(params, grads and optimizer state together); peak MB: tracemalloc's peak of one run())")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer steps, no row at the limits")
    parser.add_argument("--wall", action="store_true", help="the table in wall-clock time (default: CPU time)")
    args = parser.parse_args()
    clock = sizes.use_wall_clock(args.wall)
    steps = STEPS // 10 if args.quick else STEPS
    sc = tutorial(steps)
    assert sc.model.expression.replace(" ", "") == "w*x+b", "the PyTorch twin below is written for w * x + b"
    h = Session(sc).run()
    t_gradviz = median_time(lambda: Session(sc).run())
    print(f"tutorial, {steps} steps ({sc.optimizer.label()}): gradviz Session.run  "
          f"{t_gradviz * 1e3:8.1f} ms  ({t_gradviz / steps * 1e6:.1f} us/step, History recorded)")
    try:
        import torch
    except ImportError:
        torch = None
        print("PyTorch not installed: no ratio")
    else:
        torch.set_num_threads(1)
        final = torch_loop(sc)
        assert abs(final[0] - float(h.params["w"][-1])) < 1e-6, (final, h.params["w"][-1])
        t_torch = median_time(lambda: torch_loop(sc))
        print(f"tutorial, {steps} steps: PyTorch loop           {t_torch * 1e3:8.1f} ms  "
              f"({t_torch / steps * 1e6:.1f} us/step)")
        print(f"ratio gradviz / PyTorch: {t_gradviz / t_torch:.2f}")

    for stem, p1, p2 in (("04_rosenbrock_race", None, None), ("07_mlp_two_moons", "0.weight[0,0]", "0.weight[0,1]"),
                         ("07_mlp_two_moons", "0.weight[3,1]", "2.weight[5,3]"),
                         ("07_mlp_two_moons", "4.weight[0,2]", "4.bias[0]")):
        s = Session(load(bundled_path(stem)))
        s.run()
        names = s.scalar_parameters()
        p1, p2 = p1 or names[0], p2 or names[1]
        t = median_time(lambda s=s, p1=p1, p2=p2: s.landscape(p1, p2, n=100), repeats=3)
        print(f"landscape 100x100 {stem} ({p1}, {p2}): {t * 1e3:7.1f} ms")

    rows = []
    for size in sizes.selected(args.quick):
        row = measure(size, sizes.steps_of(size, args.quick), torch)
        if len(rows) < 2 and torch is not None:     # the twins compute what the Session does
            for key in ("loss_core", "loss_torch"):
                assert abs(row[key] - row["loss_session"]) <= 1e-4 * max(1e-3, abs(row["loss_session"])), row
        rows.append(row)
        print(f"  measured {size.label} ({row['params']:,} parameters, {row['points']:,} points, "
              f"{row['steps']} steps)", flush=True)
    print_table(rows, torch is not None, clock)


if __name__ == "__main__":
    main()
