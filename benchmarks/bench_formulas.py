"""Time building the formula text of every event (gradviz.view.formulas), as the caption does each frame.

    python benchmarks/bench_formulas.py          # from the repo root

For every bundled scenario, every run (variant) and iteration 1, the trace is recorded once; then for
each event ``formulas_for_frame(replay, frame)`` (what the caption shows) and, for the event's node,
``formulas_for_frame(replay, frame, node=...)`` (what the inspector shows) are built ``REPEATS``
times.  Frames are taken beforehand (the player has them already), the first build of each is the
cold one (templates parsed, the replay indexed) and is reported apart.

Target: the caption's formulas under 1 ms per event, worst event of every scenario (median of repeats).
"""
from __future__ import annotations

import gc
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gradviz.scenario import bundled_path  # noqa: E402
from gradviz.scenario.bundled import bundled  # noqa: E402
from gradviz.scenario.loader import load  # noqa: E402
from gradviz.training.session import Session  # noqa: E402
from gradviz.view.formulas import formulas_for_frame  # noqa: E402
from gradviz.view.replay import Replay  # noqa: E402

TARGET_MS = 1.0
REPEATS = 7
ITERATION = 1


def _time(*args, **kwargs) -> float:
    """Milliseconds to build ``formulas_for_frame(*args, **kwargs)`` once."""
    start = time.perf_counter()
    formulas_for_frame(*args, **kwargs)
    return (time.perf_counter() - start) * 1e3


def bench(stem: str) -> list[tuple]:
    rows = []
    scenario = load(bundled_path(stem))
    for variant in range(len(scenario.variants())):
        replay = Replay(Session(scenario, variant).trace_iteration(ITERATION))
        frames = list(replay)
        gc.collect()                      # recording the trace left garbage: its collection is not ours
        cold = max(_time(replay, f) for f in frames)
        caption, inspector, count = [], [], 0
        for f in frames:
            caption.append(statistics.median(_time(replay, f) for _ in range(REPEATS)))
            node = f.event_node
            if node is not None:
                inspector.append(statistics.median(_time(replay, f, node=node) for _ in range(REPEATS)))
            count += len(formulas_for_frame(replay, f))
        rows.append((stem, variant, len(frames), count, statistics.mean(caption), max(caption), cold,
                     max(inspector, default=0.0)))
    return rows


def main() -> int:
    stems = [p.stem for p in bundled()]
    print(f"{'scenario':<30} {'run':>3} {'events':>6} {'formulas':>8} {'mean ms':>8} {'worst ms':>8} "
          f"{'cold ms':>8} {'node ms':>8}")
    ok = True
    worst_all = 0.0
    for stem in stems:
        for row in bench(stem):
            stem_, variant, events, count, mean, worst, cold, node = row
            worst_all = max(worst_all, worst)
            ok &= worst < TARGET_MS
            print(f"{stem_:<30} {variant:>3} {events:>6} {count:>8} {mean:>8.3f} {worst:>8.3f} {cold:>8.3f} "
                  f"{node:>8.3f}")
    print(f"worst event over every scenario: {worst_all:.3f} ms (target < {TARGET_MS} ms)")
    print("all targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
