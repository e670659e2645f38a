"""Time each bundled script from "run" to its first frame, through the warm worker, and what
recording costs against the same script run on the core without a recorder.

    python benchmarks/bench_scripts.py          # from the repo root

"to first frame" = ``ScriptWorker.submit`` until the ScriptResult is back in this process plus
``Replay(trace)`` and ``frame(0)`` of its first traced iteration (what the app needs before it can
draw), with the worker already warm (target: under 300 ms). "recording" = ``run_script`` in this
process with its recorder (its default policy: the first TRACE_ITERATIONS iterations traced node by
node, the rest History only; the app traces those in the background) over ``record=False`` (target:
under 2x). The median of REPEATS runs;
printed, not asserted. Also printed: the worker's warm-up time and the transfer of a large result.
"""
from __future__ import annotations

import pickle
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gradviz.scenario.script_source import read_script  # noqa: E402
from gradviz.script_checks import bundled_scripts  # noqa: E402
from gradviz.training.script import run_script  # noqa: E402
from gradviz.training.worker import ScriptWorker  # noqa: E402
from gradviz.view.replay import Replay  # noqa: E402

REPEATS = 5
FIRST_FRAME_TARGET = 0.300
OVERHEAD_TARGET = 2.0
LARGE = """import torch
torch.manual_seed(0)
w = torch.randn({n}, {n}, requires_grad=True)
optimizer = torch.optim.Adam([w], lr=0.01)
for i in range({steps}):
    optimizer.zero_grad()
    (w * w).sum().backward()
    optimizer.step()
"""


def median_time(fn, *args, repeats=REPEATS, **kwargs) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        fn(*args, **kwargs)
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def first_frame(worker: ScriptWorker, source: str, path: str):
    result = worker.run(source, path, timeout=60)
    if result.error is None and result.traces:
        Replay(result.traces[min(result.traces)]).frame(0)
    return result


def main() -> int:
    with ScriptWorker() as worker:
        started = time.perf_counter()
        assert worker.wait_ready(), "the worker did not start"
        print(f"worker warm-up (numpy + gradviz imported, one tiny loop run): {time.perf_counter() - started:.2f} s")
        print(f"{'script':<30} {'iters':>5} {'first frame':>12} {'in-process':>11} {'no recorder':>12} "
              f"{'overhead':>9}")
        for path in bundled_scripts():
            source = read_script(path)
            result = first_frame(worker, source, str(path))
            if result.error is not None:
                print(f"{path.stem:<30} failed: {result.error}")
                continue
            frame = median_time(first_frame, worker, source, str(path))
            run_script(source, str(path))          # warm, as the worker is: first-call caches, imports
            recorded = median_time(run_script, source, str(path))
            bare = median_time(run_script, source, str(path), record=False)
            ratio = recorded / bare
            marks = ("" if frame < FIRST_FRAME_TARGET else " (over 300 ms)") + (
                "" if ratio < OVERHEAD_TARGET else " (over 2x)")
            print(f"{path.stem:<30} {result.iterations:>5} {frame * 1000:>9.0f} ms {recorded * 1000:>8.0f} ms "
                  f"{bare * 1000:>9.0f} ms {ratio:>8.2f}x{marks}")

        print("\nlarge results (one Adam parameter, every iteration traced):")
        for n, steps in ((100, 50), (300, 20), (600, 10)):
            source = LARGE.format(n=n, steps=steps)
            run_time = median_time(worker.run, source, "large.py", timeout=120, repeats=3, trace_iterations=None)
            result = worker.run(source, "large.py", timeout=120, trace_iterations=None)
            here = median_time(run_script, source, "large.py", repeats=3, trace_iterations=None)
            size = len(pickle.dumps(result, protocol=pickle.HIGHEST_PROTOCOL))
            print(f"  {n}x{n}, {steps} iterations: result {size / 2**20:6.1f} MB, through the worker "
                  f"{run_time * 1000:5.0f} ms, in-process {here * 1000:5.0f} ms "
                  f"(transfer and fork: {max(0.0, run_time - here) * 1000:4.0f} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
