"""Time a 10,000-step headless Session run of the tutorial against the same loop in PyTorch.

    python benchmarks/bench_session.py          # from the repo root

The gradviz figure is ``Session(tutorial).run()`` with ``loop.steps = 10_000``: building nothing
new per step, but recording every step into the History (loss, parameters, grads, state). The
PyTorch figure is the bare loop a user would write (``torch.set_num_threads(1)``, float32, the
scenario's optimizer), recording nothing. Both: the median of REPEATS runs. Also printed, not
asserted: 100 x 100 loss landscapes of the bundled Rosenbrock and two-moons MLP scenarios.
"""
from __future__ import annotations

import dataclasses
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gradviz.scenario import DEFAULT_SCENARIO, bundled_path, load  # noqa: E402
from gradviz.scenario.schema import OPTIMIZER_CLASSES  # noqa: E402
from gradviz.training.session import Session  # noqa: E402

STEPS = 10_000
REPEATS = 5

# Why layers landscapes are evaluated in float32 (gradviz/training/landscape.py): numpy's float32
# tanh/exp are about 10x faster than float64's, and a contour plot needs no more precision.


def median_time(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def tutorial():
    sc = load(bundled_path(DEFAULT_SCENARIO))
    return dataclasses.replace(sc, loop=dataclasses.replace(sc.loop, steps=STEPS))


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


def main() -> None:
    sc = tutorial()
    assert sc.model.expression.replace(" ", "") == "w*x+b", "the PyTorch twin below is written for w * x + b"
    h = Session(sc).run()
    t_gradviz = median_time(lambda: Session(sc).run())
    print(f"tutorial, {STEPS} steps ({sc.optimizer.label()}): gradviz Session.run  "
          f"{t_gradviz * 1e3:8.1f} ms  ({t_gradviz / STEPS * 1e6:.1f} us/step, History recorded)")
    try:
        import torch
    except ImportError:
        print("PyTorch not installed: no ratio")
    else:
        torch.set_num_threads(1)
        final = torch_loop(sc)
        assert abs(final[0] - float(h.params["w"][-1])) < 1e-6, (final, h.params["w"][-1])
        t_torch = median_time(lambda: torch_loop(sc))
        print(f"tutorial, {STEPS} steps: PyTorch loop           {t_torch * 1e3:8.1f} ms  "
              f"({t_torch / STEPS * 1e6:.1f} us/step)")
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


if __name__ == "__main__":
    main()
