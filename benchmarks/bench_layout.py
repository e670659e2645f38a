"""Time gradviz.view.layout.layered_layout on graphs shaped like real computation graphs.

    python benchmarks/bench_layout.py          # from the repo root

Shapes (node ids in creation order, as a trace would list them):
  mlp        tensor MLP, one forward: per layer  h @ W (W a leaf), + b (leaf), relu; then an MSE
             loss chain (sub y, pow 2, mean).  Deep and thin.
  mlp-T      the same with  h @ W.T  as a trace records it: the permute of W is an op fed only by a
             leaf, which as-late-as-possible layering puts right before its matmul.
  mlp-accum  the same MLP run on 4 micro-batches that share the weights (gradient accumulation):
             every W and b leaf fans out to 4 ops; the losses are summed.
  neurons    micrograd-style scalar MLP: every weight is a leaf, every product and partial sum is
             a node, so inputs and activations fan out to every neuron of the next layer.

Target: <= 50 ms (median) for the ~1,000-node graphs.  ``span`` is the longest edge, in columns
crossed (1 = between adjacent columns), ``width`` the drawing's width at the default node size.
"""
from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from gradviz.view.layout import layered_layout  # noqa: E402

TARGET_MS = 50.0
REPEATS = 15


class _Graph:
    def __init__(self) -> None:
        self.nodes: list[int] = []
        self.edges: list[tuple[int, int]] = []

    def node(self, *inputs: int) -> int:
        v = len(self.nodes)
        self.nodes.append(v)
        self.edges.extend((u, v) for u in inputs)
        return v


def mlp_graph(depth: int, accumulation_steps: int = 1,
              transpose: bool = False) -> tuple[list[int], list[tuple[int, int]]]:
    """Tensor MLP forward + MSE loss, ``accumulation_steps`` forwards sharing the parameters."""
    g = _Graph()
    params = [(g.node(), g.node()) for _ in range(depth)]  # (W, b) leaves, created with the model
    losses = []
    for _ in range(accumulation_steps):
        h, target = g.node(), g.node()  # x, y leaves
        for k, (w, b) in enumerate(params):
            h = g.node(g.node(h, g.node(w) if transpose else w), b)  # matmul (of W.T), add
            if k < depth - 1:
                h = g.node(h)  # relu
        loss = g.node(g.node(g.node(h, target)))  # mean(pow(sub(out, y), 2))
        losses.append(g.node(loss) if accumulation_steps > 1 else loss)  # / accumulation_steps
    total = losses[0]
    for loss in losses[1:]:
        total = g.node(total, loss)
    return g.nodes, g.edges


def neuron_graph(sizes: list[int]) -> tuple[list[int], list[tuple[int, int]]]:
    """micrograd-style scalar MLP: sum(w_i * x_i) + b -> tanh per neuron, then sum of squares."""
    g = _Graph()
    xs = [g.node() for _ in range(sizes[0])]
    for n_out in sizes[1:]:
        outs = []
        for _ in range(n_out):
            acc = g.node()  # bias leaf
            for x in xs:
                acc = g.node(acc, g.node(g.node(), x))  # acc + w * x, w a leaf
            outs.append(g.node(acc))  # tanh
        xs = outs
    target = g.node()
    return g.nodes, g.edges + [(xs[0], g.node(g.node(xs[0], target)))]


SHAPES = {
    "mlp": [lambda: mlp_graph(20), lambda: mlp_graph(60), lambda: mlp_graph(200)],
    "mlp-T": [lambda: mlp_graph(20, transpose=True), lambda: mlp_graph(200, transpose=True)],
    "mlp-accum": [lambda: mlp_graph(4, 4), lambda: mlp_graph(20, 4), lambda: mlp_graph(70, 4)],
    "neurons": [lambda: neuron_graph([3, 4, 4, 1]), lambda: neuron_graph([3, 8, 8, 1]),
                lambda: neuron_graph([4, 16, 16, 1])],
}


def bench(nodes, edges, repeats: int = REPEATS):
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        layout = layered_layout(nodes, edges)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), layout


def main() -> int:
    print(f"{'shape':<10} {'nodes':>6} {'edges':>6} {'layers':>6} {'median ms':>10} {'crossings':>9} "
          f"{'span':>5} {'width':>8}")
    ok = True
    for shape, makers in SHAPES.items():
        for make in makers:
            nodes, edges = make()
            ms, layout = bench(nodes, edges)
            crossings, n_layers = layout.crossings(), len(layout.layers)
            span = max((len(route) - 1 for route in layout.routes.values()), default=0)
            flag = ""
            if len(nodes) >= 900:
                passed = ms <= TARGET_MS
                ok &= passed
                flag = f"  target <= {TARGET_MS:.0f} ms: {'PASS' if passed else 'FAIL'}"
            print(f"{shape:<10} {len(nodes):>6} {len(edges):>6} {n_layers:>6} {ms:>10.2f} {crossings:>9} "
                  f"{span:>5} {layout.width:>8.0f}{flag}")
    print("all targets met" if ok else "TARGET MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
