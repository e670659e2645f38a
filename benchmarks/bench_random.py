"""Time gradviz's torch-compatible random streams against torch's own, in the same process.

    python benchmarks/bench_random.py          # from the repo root

Each row draws the same numbers in both (asserted), and prints the best of REPEATS runs (the least
disturbed by other processes; both libraries alike) and the ratio gradviz / torch. The headline is an
MLP's initialisation: ``Linear(784, 128), Linear(128, 10)``, 101,770 parameters, as ``nn.Linear``
draws them (kaiming_uniform_ then uniform_), float32 and float64. torch runs with one thread, as in
the other benchmarks.
"""
from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import gradviz as gv  # noqa: E402

REPEATS = 15
SIZES = (784, 128, 10)


def best_time(fn, repeats: int = REPEATS) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def mlp(lib, dtype):
    return [lib.nn.Linear(a, b, dtype=dtype) for a, b in zip(SIZES, SIZES[1:])]


def cases(torch):
    """(label, gradviz draw, torch draw): each returns something ``values()`` turns into an array."""
    return [
        ("MLP init 784-128-10, float32", lambda: mlp(gv, gv.float32), lambda: mlp(torch, torch.float32)),
        ("MLP init 784-128-10, float64", lambda: mlp(gv, gv.float64), lambda: mlp(torch, torch.float64)),
        ("randn(100_000) float32", lambda: gv.randn(100_000), lambda: torch.randn(100_000)),
        ("randn(100_000) float64", lambda: gv.randn(100_000, dtype=gv.float64),
         lambda: torch.randn(100_000, dtype=torch.float64)),
        ("rand(100_000) float32", lambda: gv.rand(100_000), lambda: torch.rand(100_000)),
        ("randint(0, 10, (100_000,))", lambda: gv.randint(0, 10, (100_000,)), lambda: torch.randint(0, 10, (100_000,))),
        ("randperm(60_000)", lambda: gv.randperm(60_000), lambda: torch.randperm(60_000)),
        ("randn(3) (a small draw)", lambda: gv.randn(3), lambda: torch.randn(3)),
    ]


def values(x) -> np.ndarray:
    """The numbers drawn: a tensor's, or an MLP's parameters in order."""
    if isinstance(x, list):
        return np.concatenate([values(p).ravel() for layer in x for p in (layer.weight, layer.bias)])
    return np.asarray(x.data) if isinstance(x, gv.Tensor) else x.detach().numpy()


def main() -> None:
    try:
        import torch
    except ImportError:
        torch = None
    if torch is None:
        print("PyTorch not installed: gradviz timings only")
        for label, ours, _ in cases(None):
            print(f"{label:32s} gradviz {best_time(ours) * 1e3:8.2f} ms")
        return
    torch.set_num_threads(1)
    print(f"{'':32s} {'gradviz':>10s} {'torch':>10s} {'ratio':>8s}")
    for label, ours, theirs in cases(torch):
        gv.manual_seed(0)
        torch.manual_seed(0)
        assert np.array_equal(values(ours()), values(theirs())), label
        t_ours, t_theirs = best_time(ours), best_time(theirs)
        print(f"{label:32s} {t_ours * 1e3:8.2f}ms {t_theirs * 1e3:8.2f}ms {t_ours / t_theirs:7.1f}x")


if __name__ == "__main__":
    main()
