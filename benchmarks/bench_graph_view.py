"""Frame time of the graph view while animating: position change + full viewport repaint, offscreen;
and, at the graph-size limit, what changing iteration and expanding/collapsing a module cost.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_graph_view.py [--frames 600] [--size 1400x800]
                                                                    [--only limit|frames]

Two graphs: a traced MLP 2-32-32-32-1 (tensor ops: ~20 nodes) and a ~300-node graph (a deep
Sequential of 50 Linear(4, 4) + Tanh blocks).  Each frame = ``player.seek(i)`` (the view updates
the items that changed) + ``viewport().repaint()`` (a synchronous full repaint) + processEvents.
Targets: median <= 8 ms, p99 <= 16 ms.  Both the main thread's CPU time (what the view costs)
and wall time (inflated when other processes share the CPU) are printed, with the load average.

At the graph-size limit (``LIMITS["max_graph_nodes"]`` nodes: a Sequential of Linear(4, 4) + Tanh
blocks traced over several consecutive iterations, and a generated layers scenario with 32
micro-batches traced by its Session) it reports: an iteration change (``player.set_replay`` of the
next iteration's Replay, until the view is drawn; the Replay itself is built beforehand, it is not
the view's cost), whether the items were kept (same objects), expanding and collapsing single
modules (folded, and with every other module expanded), expanding and collapsing all of them (until
drawn: a large graph's fold is laid out in a worker and placed in slices, with the longest turn of
the event loop meanwhile), and frame times with every module folded and with every module expanded; times are the
main thread's CPU time (``time.thread_time``), not inflated by other processes sharing the machine.  Target: an
iteration change and an expand/collapse well under 50 ms, frames within 8 ms median.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
from PySide6 import QtWidgets  # noqa: E402

import gradviz as gv  # noqa: E402
from gradviz import nn, trace  # noqa: E402
from gradviz.optim import SGD  # noqa: E402
from gradviz.view.replay import Replay  # noqa: E402


class _Trace:
    def __init__(self, **kw):
        self.__dict__.update(kw)


def traced_mlp(sizes, batch=16, seed=0):
    """One recorded SGD iteration of Sequential(Linear, Tanh, ..., Linear) with MSE."""
    return traced_iterations(sizes, batch, seed, 1)[0]


def traced_iterations(sizes, batch=16, seed=0, iterations=1):
    """``iterations`` consecutive recorded SGD iterations of Sequential(Linear, Tanh, ..., Linear) with
    MSE: the same graph, other values."""
    gv.manual_seed(seed)
    layers = []
    for i in range(len(sizes) - 1):
        layers.append(nn.Linear(sizes[i], sizes[i + 1]))
        if i < len(sizes) - 2:
            layers.append(nn.Tanh())
    model = nn.Sequential(*layers)
    rng = np.random.default_rng(seed)
    x = gv.tensor(rng.normal(size=(batch, sizes[0])).astype(np.float32))
    y = gv.tensor(rng.normal(size=(batch, sizes[-1])).astype(np.float32))
    x.name, y.name = "x", "y"
    params = dict(model.named_parameters())
    opt = SGD(list(params.values()), lr=0.05, momentum=0.9)
    traces = []
    for k in range(iterations):
        before = {n: p.detach().numpy().copy() for n, p in params.items()}
        grads = {n: None if p.grad is None else p.grad.numpy().copy() for n, p in params.items()}
        with trace.record() as rec:
            rec.phase("zero_grad")
            opt.zero_grad()
            rec.phase("forward")
            pred = model(x)
            rec.phase("loss")
            loss = nn.functional.mse_loss(pred, y)
            rec.phase("backward")
            loss.backward()
            rec.phase("step")
            opt.step()
        traces.append(_Trace(iteration=k, nodes=dict(rec.nodes), events=list(rec.events),
                             param_nodes={n: rec.find(p) for n, p in params.items()}, loss_node=rec.find(loss),
                             grads_before=grads, params_before=before,
                             params_after={n: p.detach().numpy().copy() for n, p in params.items()}))
    return traces


def session_traces(layers, accumulation_steps, iterations):
    """Traces of the first ``iterations`` steps of a generated layers scenario (moons, tanh, SGD with
    momentum), recorded by its Session as the app does."""
    from gradviz.scenario import loads
    from gradviz.training.session import Session

    toml = (f'[scenario]\ntitle = "bench"\nseed = 0\n\n[model]\nlayers = {list(layers)}\nactivation = "tanh"\n\n'
            f'[data]\nkind = "moons"\nn = 256\nnoise = 0.1\n\n[loss]\nkind = "mse"\n\n'
            f'[optimizer]\nkind = "sgd"\nlr = 0.05\nmomentum = 0.9\n\n'
            f'[loop]\nsteps = {iterations + 1}\naccumulation_steps = {accumulation_steps}\n')
    session = Session(loads(toml))
    return [session.trace_iteration(k) for k in range(iterations)]


def bench(name, tr, frames, size, app, zoom=None):
    from ui.document import Document
    from ui.graph import GraphView
    from ui.player import Player
    from ui.view_state import ViewState

    t0 = time.perf_counter()
    replay = Replay(tr)
    player = Player(replay)
    view = GraphView(player, ViewState(Document()))
    view.resize(*size)
    view.show()
    app.processEvents()
    build = time.perf_counter() - t0
    if zoom is not None:                          # zoomed in: readable text, the view follows the cursor
        view.set_zoom(zoom)
    n = len(replay)
    for i in range(min(n, 50)):                  # warm up caches (frames, glyphs)
        player.seek(i)
        view.viewport().repaint()
    app.processEvents()
    wall, cpu, upd, minimal = [], [], [], []
    for k in range(frames):
        i = (k + 1) % n
        a, ta = time.perf_counter(), time.thread_time()
        player.seek(i)
        b = time.perf_counter()
        view.viewport().update()          # full-viewport repaint, merged with the items' own updates
        app.processEvents()
        wall.append(time.perf_counter() - a)
        cpu.append(time.thread_time() - ta)
        upd.append(b - a)
    for k in range(frames):               # what the app does: only the changed regions repaint
        i = (k + 1) % n
        ta = time.thread_time()
        player.seek(i)
        app.processEvents()
        minimal.append(time.thread_time() - ta)
    wall, cpu, upd, minimal = (np.array(t) * 1e3 for t in (wall, cpu, upd, minimal))
    scale = view.transform().m11()
    print(f"{name}: {len(tr.nodes)} nodes, {len(replay.edges)} edges, {len(tr.events)} events, "
          f"view {size[0]}x{size[1]} at zoom {scale:.2f}{' (fit to view)' if zoom is None else ''}, "
          f"build {build * 1e3:.0f} ms")
    for label, t in (("full repaint, CPU", cpu), ("full repaint, wall", wall),
                     ("changed regions, CPU", minimal), ("view update only, wall", upd)):
        print(f"  {label:24s} median {np.median(t):6.2f} ms   p99 {np.percentile(t, 99):6.2f} ms   "
              f"max {t.max():6.2f} ms")
    view.close()
    view.deleteLater()
    app.processEvents()
    return float(np.median(cpu)), float(np.percentile(cpu, 99))


def clock() -> float:
    """The limit section's clock: the main thread's CPU time (what the view costs, whatever else runs)."""
    return time.thread_time()


def _stats(t) -> str:
    t = np.asarray(t) * 1e3
    return f"median {np.median(t):7.1f} ms   max {t.max():7.1f} ms   (n={len(t)})"


def _set_all_collapsed(view, collapsed: bool) -> None:
    modules = view.collapsible_modules()
    if hasattr(view, "set_modules_collapsed"):         # one relayout for all of them
        view.set_modules_collapsed(modules, collapsed)
    else:                                              # (before it existed: the same, by hand)
        view._collapsed = set(modules) if collapsed else set()
        view._rebuild()


def _frames(view, player, app, frames) -> tuple[np.ndarray, np.ndarray]:
    """CPU ms per frame: seek + full repaint, and seek + only the changed regions (what the app does)."""
    n = len(player.replay)
    for i in range(min(n, 50)):
        player.seek(i)
        view.viewport().repaint()
    app.processEvents()
    full, minimal = [], []
    for k in range(frames):
        ta = time.thread_time()
        player.seek((k + 1) % n)
        view.viewport().update()
        app.processEvents()
        full.append(time.thread_time() - ta)
    for k in range(frames):
        ta = time.thread_time()
        player.seek((k + 1) % n)
        app.processEvents()
        minimal.append(time.thread_time() - ta)
    return np.array(full) * 1e3, np.array(minimal) * 1e3


def _iteration_changes(view, player, app, replays, position) -> tuple[list, list, list]:
    """Each iteration change: the wall time of ``set_replay`` until drawn, the longest the event loop
    then waits (the boxes are sized in slices afterwards on a large graph), and the share of items kept."""
    times, stalls, kept = [], [], []
    for replay in replays[1:] + replays[:1]:
        before = {k: id(g.root) for k, g in view.node_items.items()}
        t = clock()
        player.set_replay(replay, position)
        app.processEvents()
        view.viewport().repaint()
        longest = clock() - t
        times.append(longest)
        job = getattr(view, "_spec_job", None)
        while (job is not None and not job.done() and view._spec_job is job) or view._build_job is not None:
            t = clock()
            app.processEvents()
            longest = max(longest, clock() - t)
        stalls.append(longest)
        after = {k: id(g.root) for k, g in view.node_items.items()}
        kept.append(sum(after.get(k) == v for k, v in before.items()) / max(len(before), 1))
    return times, stalls, kept


def _report_changes(label, view, player, app, replays, position) -> None:
    times, stalls, kept = _iteration_changes(view, player, app, replays, position)
    print(f"  {label:29s} {_stats(times)}   longest stall {max(stalls) * 1e3:6.1f} ms   "
          f"items kept {min(kept):.0%}..{max(kept):.0%}")


def _until_drawn(view, app, change) -> tuple[float, float]:
    """``change()``, then the event loop until the view has drawn it (a large graph's fold is laid out in
    a worker and placed in slices, a rebuild is built in slices): (total, longest turn) in seconds."""
    from ui.graph.build_job import _reaping_in
    t0 = t = clock()
    change()
    app.processEvents()
    view.viewport().repaint()
    longest = clock() - t
    while view._refold_job is not None or view._build_job is not None or _reaping_in(view.scene()) or \
            (view._spec_job is not None and not view._spec_job.done()):
        t = clock()
        app.processEvents()
        view.viewport().repaint()
        longest = max(longest, clock() - t)
        time.sleep(0.001)                          # (a layout's worker gets the GIL)
    return clock() - t0, longest


def _fold_each(view, app, modules, label: str, collapse_first: bool = False) -> None:
    """Expand and collapse (or collapse and expand) each of ``modules``: until drawn, and the longest turn."""
    expand, collapse, stalls = [], [], []
    for m in modules:
        for collapsed in ((True, False) if collapse_first else (False, True)):
            total, longest = _until_drawn(view, app, lambda m=m, c=collapsed: view.set_collapsed(m, c))
            (collapse if collapsed else expand).append(total)
            stalls.append(longest)
    print(f"  expand one module{label:10s}   {_stats(expand)}   longest stall {max(stalls) * 1e3:6.1f} ms")
    print(f"  collapse one module{label:8s}   {_stats(collapse)}")


def bench_limit(name, traces, frames, size, app) -> None:
    """Iteration changes, expand/collapse and frames of a graph at the size limit (module docstring)."""
    from ui.document import Document
    from ui.graph import GraphView
    from ui.player import Player
    from ui.view_state import ViewState

    replays = [Replay(tr) for tr in traces]
    t0 = clock()
    player = Player(replays[0])
    view = GraphView(player, ViewState(Document()))
    view.resize(*size)
    view.show()
    app.processEvents()
    while view._build_job is not None:                         # a large graph is built in slices
        app.processEvents()
    build = clock() - t0
    modules = view.collapsible_modules()
    position = replays[0].phase_range("backward")[0] + 3      # mid-iteration: values and gradients show
    player.seek(position)
    print(f"{name}: {len(traces[0].nodes)} nodes, {len(replays[0].edges)} edges, {len(traces[0].events)} events, "
          f"{len(modules)} modules, {view.visible_node_count()} boxes folded, build {build * 1e3:.0f} ms")
    for replay in replays:                                     # the Replay's own frame walk is not the view's
        replay.frame(position)
        replay.frame(0)
    _report_changes("iteration change, folded", view, player, app, replays, position)
    view.set_zoom(1.0)
    _report_changes("... zoomed in (100 %)", view, player, app, replays, position)
    _report_changes("... at the first event", view, player, app, replays, 0)
    view.fit()
    picks = [modules[i] for i in np.linspace(0, len(modules) - 1, min(6, len(modules))).astype(int)]
    _fold_each(view, app, picks, "")
    view.fit()
    full, minimal = _frames(view, player, app, frames)
    print(f"  frames, folded, fit: full repaint CPU {_stats(full / 1e3)}; changed regions {_stats(minimal / 1e3)}")
    total, longest = _until_drawn(view, app, lambda: _set_all_collapsed(view, False))
    print(f"  expand all modules            {_stats([total])}   longest stall {longest * 1e3:6.1f} ms   "
          f"{view.visible_node_count()} boxes")
    view.fit()
    _report_changes("iteration change, expanded", view, player, app, replays, position)
    view.fit()
    full, minimal = _frames(view, player, app, frames)
    print(f"  frames, expanded, fit: full repaint CPU {_stats(full / 1e3)}; changed regions {_stats(minimal / 1e3)}")
    view.set_zoom(1.0)
    full, minimal = _frames(view, player, app, frames)
    print(f"  frames, expanded, 100 %: full repaint CPU {_stats(full / 1e3)}; changed regions "
          f"{_stats(minimal / 1e3)}")
    _fold_each(view, app, picks, ", expanded", collapse_first=True)
    total, longest = _until_drawn(view, app, lambda: _set_all_collapsed(view, True))
    print(f"  collapse all modules          {_stats([total])}   longest stall {longest * 1e3:6.1f} ms")
    view.close()
    view.deleteLater()
    app.processEvents()


def limit_blocks() -> int:
    """Linear(4, 4) + Tanh blocks within the graph-size limit: those of ``limit_files.py``'s
    limit_modules.py, the same graph as a script for bench_responsiveness."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import limit_files

    return limit_files.modules_blocks()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--size", default="1400x800")
    ap.add_argument("--only", choices=("limit", "frames"), default=None)
    ap.add_argument("--iterations", type=int, default=4, help="consecutive iterations traced at the limit")
    args = ap.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    if hasattr(os, "getloadavg"):
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; target: median <= 8 ms, p99 <= 16 ms")
    if args.only != "limit":
        mlp = traced_mlp((2, 32, 32, 32, 1))
        deep = traced_mlp((4,) * 76 + (1,), batch=8)        # 75 Linear(4, 4) + Tanh blocks: ~300 nodes
        bench("MLP 2-32-32-32-1", mlp, args.frames, size, app)
        bench("MLP 2-32-32-32-1", mlp, args.frames, size, app, zoom=1.0)
        bench("deep MLP, 75 x (Linear(4,4)+Tanh)", deep, args.frames, size, app)
        bench("deep MLP, 75 x (Linear(4,4)+Tanh)", deep, args.frames, size, app, zoom=1.0)
    if args.only != "frames":
        frames = min(args.frames, 300)
        bench_limit("layers [2, 8, 8, 8, 8, 8, 8, 1] x 32 micro-batches (Session)",
                    session_traces([2, 8, 8, 8, 8, 8, 8, 1], 32, args.iterations), frames, size, app)
        blocks = limit_blocks()
        bench_limit(f"graph-size limit: {blocks} x (Linear(4,4)+Tanh)",
                    traced_iterations((4,) * (blocks + 1) + (1,), batch=8, iterations=args.iterations),
                    frames, size, app)


if __name__ == "__main__":
    main()
