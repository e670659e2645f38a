"""How fast the optimizer dashboards redraw (offscreen Qt, every plot visible in the grid layout).

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_dashboard.py [--steps 100000] [--quick]

1. refresh after a re-run: a Document runs the scenario for ``--steps`` optimizer steps (every
   variant), then every plot is refreshed from the complete Histories (the derived-series caches
   cleared, as a new run clears them) and repainted synchronously. Median over repeats.
   The loss landscape (computed once per run by the Session, only when its range changed) is timed
   separately.
2. frame time while the player animates: the main window with the dashboards in a grid; each frame
   is one player event (``step_forward``), and at the end of an iteration the next iteration is
   loaded (what "Continue into next iteration" does), which moves every plot's cursor and the
   current-step markers. A frame = the step plus processing every resulting paint.
   Also reported: the dashboards' share alone (cursor moves + repaint, no graph).

3. opening and the grid (``--turns``, also alone with ``--only-turns``): the longest event-loop turn
   while the main window is built and shown with the MLP on two moons (the first tab's panel is made
   then, the others when first shown), and while the dashboards switch from tabs to the grid after
   the series changed (every hidden panel has a refresh to catch up): the panels come one per turn,
   each refreshing in a turn of its own. Median and max over ``--repeats``.

Target: frame time within one 60 Hz frame (16.7 ms) offscreen; no turn over ~30 ms.
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

FRAME_TARGET_MS = 1000 / 60


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f} ms"


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


def scenarios(steps: int, quick: bool):
    from gradviz.scenario import bundled_path, load
    tutorial = load(bundled_path("01_tutorial_wx_b"))
    tutorial.loop.steps = steps
    race = load(bundled_path("04_rosenbrock_race"))
    race.comparisons = [v for v in race.comparisons if v.name == "Adam"]   # main SGD + Adam
    race.loop.steps = steps
    for v in race.comparisons:
        v.loop.steps = steps
    return [("w*x+b, 1 variant", tutorial)] + ([] if quick else [("Rosenbrock SGD vs Adam, 2 variants", race)])


def bench_refresh(app, name, scenario, repeats: int) -> None:
    from ui.dashboards import Dashboards
    from ui.document import Document
    from ui.view_state import ViewState

    doc = Document()
    dash = Dashboards(doc, ViewState(doc))
    dash.set_layout_mode("grid")
    dash.resize(1600, 900)
    dash.show()
    app.processEvents()
    t0 = time.perf_counter()
    doc.set_scenario(scenario)
    doc.finish_now()                      # the run itself (not what we time below)
    run_s = time.perf_counter() - t0
    app.processEvents()
    dash.finish_pending()                 # every panel made and shown in the grid

    space = dash.space
    t0 = time.perf_counter()
    space._landscape_key = None
    space.refresh()
    landscape_s = time.perf_counter() - t0

    times = []
    for _ in range(repeats):
        for p in dash.panels:
            p.cache.clear()
        t0 = time.perf_counter()
        dash.refresh()
        for p in dash.panels:
            p.view.viewport().repaint()
        times.append(time.perf_counter() - t0)
    steps = doc.histories[0].steps
    print(f"{name}: {steps} steps x {len(doc.histories)} variant(s), run {run_s:.1f} s")
    print(f"  refresh all plots + repaint   median {ms(statistics.median(times))}   "
          f"min {ms(min(times))}   (n={repeats})")
    print(f"  parameter space incl. landscape {ms(landscape_s)}")
    dash.close()
    dash.deleteLater()
    app.processEvents()


def bench_frames(app, frames: int) -> None:
    from gradviz.scenario import bundled_path
    from ui.app import make_window

    window = make_window(str(bundled_path("04_rosenbrock_race")))
    window.resize(1600, 1000)
    window.show()
    window.document.finish_now()
    app.processEvents()
    dash = window.dashboards
    dash.set_layout_mode("grid")
    window.dashboards_dock.show()
    window.set_iteration(0)
    for _ in range(5):
        app.processEvents()

    # 1) the dashboards alone: move every cursor and current-step marker, then paint
    only = []
    for k in range(frames):
        t0 = time.perf_counter()
        dash.set_iteration(k % 2000)
        app.processEvents()
        only.append(time.perf_counter() - t0)

    # 2) the whole window animating: one player event per frame, the next iteration at the end
    player = window.player
    frame_times, iteration_frames = [], []
    k = 0
    for _ in range(frames):
        t0 = time.perf_counter()
        if player.at_end:
            k += 1
            window.set_iteration(k)
            kind = iteration_frames
        else:
            player.step_forward()
            kind = frame_times
        app.processEvents()
        kind.append(time.perf_counter() - t0)
    everything = frame_times + iteration_frames
    print("frames, main window 1600x1000, dashboards in a grid (Rosenbrock race, 6 variants):")
    print(f"  dashboards only (cursor + markers)  median {ms(statistics.median(only))}   "
          f"p95 {ms(percentile(only, 95))}")
    print(f"  player event frames                 median {ms(statistics.median(frame_times))}   "
          f"p95 {ms(percentile(frame_times, 95))}   (n={len(frame_times)})")
    if iteration_frames:
        print(f"  frames that load the next iteration median {ms(statistics.median(iteration_frames))}   "
              f"p95 {ms(percentile(iteration_frames, 95))}   (n={len(iteration_frames)}; includes "
              f"trace_iteration and the graph)")
    verdict = "within" if statistics.median(everything) <= FRAME_TARGET_MS / 1000 else "OVER"
    print(f"  all frames median {ms(statistics.median(everything))}: {verdict} the {FRAME_TARGET_MS:.1f} ms target")
    window.document.modified = False
    window.close()


class Gaps:
    """The longest gap between the ticks of a 5 ms timer: the longest event-loop turn meanwhile."""

    def __init__(self):
        from PySide6 import QtCore
        self.timer = QtCore.QTimer()
        self.timer.setInterval(5)
        self.timer.timeout.connect(self._tick)
        self.longest = 0.0
        self._last = 0.0

    def start(self) -> None:
        self.longest, self._last = 0.0, time.perf_counter()
        self.timer.start()

    def _tick(self) -> None:
        now = time.perf_counter()
        self.longest = max(self.longest, now - self._last)
        self._last = now

    def stop(self) -> float:
        self.timer.stop()
        return self.longest


def spin(app, until, timeout: float = 20.0) -> None:
    end = time.perf_counter() + timeout
    while not until() and time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.001)


def bench_turns(app, repeats: int) -> None:
    from PySide6 import QtCore

    from gradviz.scenario import bundled_path
    from ui.app import make_window
    from ui.dashboards.panel import slices

    opens, builds, grids, turns = [], [], [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        window = make_window(str(bundled_path("07_mlp_two_moons")))
        builds.append(time.perf_counter() - t0)
        window.resize(1400, 860)
        window.show()
        app.processEvents()
        opens.append(time.perf_counter() - t0)          # one turn: nothing else runs meanwhile
        window.document.finish_now()
        window.traces.wait()
        dash = window.dashboards
        spin(app, lambda: False, 0.5)
        dash.selection.set_labels([s.label for s in dash.selection.series if s.kind == "element"][:4])
        app.processEvents()
        gaps = Gaps()
        gaps.start()
        first = slices().turns
        QtCore.QTimer.singleShot(10, lambda dash=dash: dash.set_layout_mode("grid"))
        spin(app, lambda dash=dash: dash.layout_mode == "grid" and not slices().jobs
             and len(dash.made_panels()) == 7 and all(p.isVisible() for p in dash.made_panels()))
        spin(app, lambda: False, 0.3)
        grids.append(gaps.stop())
        turns.append(slices().turns - first)
        window.document.modified = False
        window.close()
        window.deleteLater()
        app.processEvents()
        QtCore.QCoreApplication.sendPostedEvents(None, QtCore.QEvent.Type.DeferredDelete.value)
    print(f"opening and the grid, MLP on two moons, 1400x860 (n={repeats}):")
    print(f"  build the main window            median {ms(statistics.median(builds))}   max {ms(max(builds))}")
    print(f"  build + show (one turn)          median {ms(statistics.median(opens))}   max {ms(max(opens))}")
    print(f"  tabs -> grid, longest turn       median {ms(statistics.median(grids))}   max {ms(max(grids))}   "
          f"({statistics.median(turns):.0f} turns)")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--frames", type=int, default=300)
    parser.add_argument("--quick", action="store_true", help="only the one-variant run")
    parser.add_argument("--only-turns", action="store_true", help="only the opening and grid turns")
    args = parser.parse_args()
    from PySide6 import QtCore, QtWidgets
    # never touch the user's settings (window layout, recent files)
    QtCore.QSettings.setDefaultFormat(QtCore.QSettings.Format.IniFormat)
    import tempfile
    QtCore.QSettings.setPath(QtCore.QSettings.Format.IniFormat, QtCore.QSettings.Scope.UserScope,
                             tempfile.mkdtemp())
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([sys.argv[0]])
    from ui.dialogs import settings
    from ui.welcome import SEEN_KEY
    settings().setValue(SEEN_KEY, True)
    if args.only_turns:
        bench_turns(app, args.repeats)
        return 0
    for name, scenario in scenarios(args.steps, args.quick):
        bench_refresh(app, name, scenario, args.repeats)
    bench_frames(app, args.frames)
    bench_turns(app, args.repeats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
