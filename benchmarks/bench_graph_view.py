"""Frame time of the graph view while animating: position change + full viewport repaint, offscreen.

    QT_QPA_PLATFORM=offscreen python benchmarks/bench_graph_view.py [--frames 600] [--size 1400x800]

Two graphs: a traced MLP 2-32-32-32-1 (tensor ops: ~20 nodes) and a ~300-node graph (a deep
Sequential of 50 Linear(4, 4) + Tanh blocks).  Each frame = ``player.seek(i)`` (the view updates
the items that changed) + ``viewport().repaint()`` (a synchronous full repaint) + processEvents.
Targets: median <= 8 ms, p99 <= 16 ms.  Both the main thread's CPU time (what the view costs)
and wall time (inflated when other processes share the CPU) are printed, with the load average.
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
    before = {n: p.detach().numpy().copy() for n, p in params.items()}
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
    return _Trace(iteration=0, nodes=dict(rec.nodes), events=list(rec.events),
                  param_nodes={n: rec.find(p) for n, p in params.items()}, loss_node=rec.find(loss),
                  grads_before={n: None for n in params}, params_before=before,
                  params_after={n: p.detach().numpy().copy() for n, p in params.items()})


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


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--frames", type=int, default=600)
    ap.add_argument("--size", default="1400x800")
    args = ap.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    app = QtWidgets.QApplication.instance() or QtWidgets.QApplication([])
    if hasattr(os, "getloadavg"):
        print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs; target: median <= 8 ms, p99 <= 16 ms")
    mlp = traced_mlp((2, 32, 32, 32, 1))
    deep = traced_mlp((4,) * 76 + (1,), batch=8)        # 75 Linear(4, 4) + Tanh blocks: ~300 nodes
    bench("MLP 2-32-32-32-1", mlp, args.frames, size, app)
    bench("MLP 2-32-32-32-1", mlp, args.frames, size, app, zoom=1.0)
    bench("deep MLP, 75 x (Linear(4,4)+Tanh)", deep, args.frames, size, app)
    bench("deep MLP, 75 x (Linear(4,4)+Tanh)", deep, args.frames, size, app, zoom=1.0)


if __name__ == "__main__":
    main()
