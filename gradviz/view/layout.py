"""Layered (Sugiyama) layout of a computation graph: plain geometry, no Qt.

    layout = layered_layout(nodes, edges)
    layout.positions[node_id]        # centre (x, y) of a node's box
    layout.routes[(src, dst)]        # polyline from src centre to dst centre
    layout.crossings()               # edge crossings in the drawing

Coordinates follow Qt's scene convention: x grows with the layer (inputs left, loss right), y grows
downwards, and the drawing's bounding box (node boxes and route points) is ``[0, width] x
[0, height]`` -- it starts at the origin, it is *not* centred on it.

The four classic steps, all iterative (a 10,000-node chain needs no recursion) and deterministic
(no set iteration order, no randomness: the same input always gives the same drawing):

1. **Layering.**  Longest path from the sources: ``layer(v) = 1 + max(layer(u) for u -> v)``.
   If ``sinks_last``, every sink (a node with inputs but no consumers, e.g. the loss) moves to the
   last layer.  Then ops fed only by sources (``w.T``, ``1 - y``), and the chains growing from
   them through nodes with a single consumer, go *as late as possible*, consumers first:
   ``layer(v) = min(layer(w) for v -> w) - 1``, so ``w.T`` sits right before its matmul instead
   of in column 1 with an edge across the drawing.  Other ops keep their longest-path layer.
   Last, sources are *tightened* the same way, so a parameter leaf sits right next to the op
   that consumes it instead of in column 0.  Isolated nodes (no edges at all) stay in layer 0.
2. **Dummy nodes.** An edge spanning k > 1 layers becomes a chain through k - 1 dummy nodes; the
   dummies are the bends of the edge's route.
3. **Crossing minimisation.** Barycenter heuristic, ``sweeps`` sweeps alternating down (order
   a layer by the mean position of its inputs) and up (of its consumers); the best ordering seen
   (fewest crossings, the initial one included) wins.  It stops early at 0 crossings or when a
   down and an up sweep change nothing.  The initial order is the
   order of ``nodes``; barycenter ties keep the current relative order (a stable sort), so ties
   are resolved by the original node order unless a previous sweep had a reason to swap them.
   Crossings between layers i and i+1 are counted as inversions of a sorted edge list, in
   O(E log V) per layer pair.
4. **Coordinates.**  Each column is as wide as its widest node, and the columns are
   ``layer_gap`` apart: ``x(k) = sum(width(j) + layer_gap for j < k) + width(k) / 2``, so columns of
   leaves and small ops take less room than a column holding a wide matrix.  Within a
   column the order is fixed; y minimises the weighted squared vertical edge length

   .. math::  \\min_y \\sum_{(u,v)} \\omega_{uv} (y_u - y_v)^2 \\quad \\text{s.t.} \\quad
              y_{i+1} - y_i \\ge (h_i + h_{i+1}) / 2 + \\text{node\\_gap}

   over the segments of the proper graph (dummies included), by block coordinate descent: with
   its neighbours fixed, a column's optimum is an isotonic regression (pool adjacent violators)
   of its nodes' weighted neighbour means, shifted by the cumulative separations.  Columns only
   see their neighbours, so all even columns are solved at once, then all odd ones, for a fixed
   number of passes, starting from each column stacked and centred.  ``omega`` is 1 between real
   nodes, 2 between a real and a dummy node, 8 between dummies, so long edges run straight
   (Gansner et al.'s priorities), and x 0.1 on a segment leaving a leaf, so the data path runs
   straight and parameters hang off it.

Multi-edges (``x * x`` gives ``(x, mul)`` twice) are drawn, routed and counted as one edge.
Connected components are ordered and placed independently and stacked top to bottom in the order
of their first node in ``nodes``.
"""
from __future__ import annotations

from bisect import bisect_right
from collections import deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass

import numpy as np

__all__ = ["LayoutNode", "Layout", "layered_layout", "count_crossings"]

# Segment weights in the y objective, by the number of dummy ends (Gansner, Koutsofios, North & Vo,
# 1993): long edges run straight.  Segments leaving a leaf (parameter, input, target) weigh little,
# so the data path stays straight and the leaves hang off it, instead of every leaf pulling its
# consumer sideways and the chain drifting by a node's height per op.
_OMEGA = (1.0, 2.0, 8.0)
_OMEGA_LEAF = 0.1
_Y_PASSES = 8  # red-black coordinate passes; more barely changes the drawing
_INSORT_MAX = 1024  # below this many edges per layer pair, bisect.insort beats a Fenwick tree


@dataclass(frozen=True)
class LayoutNode:
    """A node's identity and the size of the box the view will draw for it."""

    id: int
    width: float = 120.0
    height: float = 48.0


@dataclass
class Layout:
    """Where everything goes.  Coordinates are centres; the bounding box is [0,width]x[0,height]."""

    positions: dict[int, tuple[float, float]]
    layers: list[list[int]]  # node ids per layer, top to bottom (dummies excluded)
    edges: list[tuple[int, int]]  # the input edges, as given (multi-edges kept)
    routes: dict[tuple[int, int], list[tuple[float, float]]]  # one polyline per distinct edge
    width: float
    height: float

    def crossings(self) -> int:
        """Edge crossings in the drawing, read from the geometry (route segments between columns).

        Segments that share an end point do not cross.
        """
        layer_of = {v: i for i, ids in enumerate(self.layers) for v in ids}
        gaps: dict[int, list[tuple[float, float]]] = {}
        for (src, _dst), points in self.routes.items():
            first = layer_of[src]
            for k in range(len(points) - 1):
                gaps.setdefault(first + k, []).append((points[k][1], points[k + 1][1]))
        return sum(_count_inversions([b for _a, b in sorted(segs)]) for segs in gaps.values())


def count_crossings(layers: Sequence[Sequence[Hashable]], edges: Sequence[tuple[Hashable, Hashable]]) -> int:
    """Number of pairwise crossings of straight edges between adjacent layers.

    ``layers`` lists node ids top to bottom per layer; every edge must join adjacent layers (in
    either direction -- insert dummy nodes for longer edges).  Each edge in the list counts, so a
    repeated edge crossing another counts twice; edges sharing an end point never cross.
    Two edges (a, b) and (c, d) from layer i to i+1 cross iff pos(a) < pos(c) and pos(b) > pos(d);
    sorting the edges by (pos(a), pos(b)) turns that into counting inversions of the pos(b) list.
    """
    layer_of: dict[Hashable, int] = {}
    pos: dict[Hashable, int] = {}
    for i, ids in enumerate(layers):
        for p, v in enumerate(ids):
            if v in layer_of:
                raise ValueError(f"node {v!r} appears twice in layers")
            layer_of[v], pos[v] = i, p
    gaps: list[list[tuple[int, int]]] = [[] for _ in layers]
    for a, b in edges:
        for v in (a, b):
            if v not in layer_of:
                raise ValueError(f"edge ({a!r}, {b!r}) refers to unknown node {v!r}")
        la, lb = layer_of[a], layer_of[b]
        if lb == la + 1:
            gaps[la].append((pos[a], pos[b]))
        elif la == lb + 1:
            gaps[lb].append((pos[b], pos[a]))
        else:
            raise ValueError(f"edge ({a!r}, {b!r}) does not join adjacent layers ({la} and {lb})")
    return sum(_count_inversions([b for _a, b in sorted(g)]) for g in gaps)


def layered_layout(
    nodes: Sequence[LayoutNode] | Sequence[int],
    edges: Sequence[tuple[int, int]],
    *,
    layer_gap: float = 80.0,
    node_gap: float = 24.0,
    sweeps: int = 8,
    sinks_last: bool = True,
) -> Layout:
    """Lay out a DAG in columns, data flowing left to right (see the module docstring).

    ``nodes`` are LayoutNode or bare ids (default size); their order is the initial ordering and
    breaks ties.  Raises ValueError for duplicate ids, an edge to an unknown node, or a cycle.
    """
    if node_gap <= 0 or layer_gap < 0:
        raise ValueError(f"need node_gap > 0 and layer_gap >= 0, got {node_gap} and {layer_gap}")
    if sweeps < 0:
        raise ValueError(f"sweeps must be >= 0, got {sweeps}")
    specs = [v if isinstance(v, LayoutNode) else LayoutNode(v) for v in nodes]
    index: dict[int, int] = {}
    for i, s in enumerate(specs):
        if s.id in index:
            raise ValueError(f"duplicate node id {s.id!r}")
        if s.width < 0 or s.height < 0:
            raise ValueError(f"node {s.id!r} has a negative size")
        index[s.id] = i
    edge_list = [(a, b) for a, b in edges]
    n = len(specs)
    if n == 0:
        if edge_list:
            a, b = edge_list[0]
            raise ValueError(f"edge ({a!r}, {b!r}) refers to unknown node {a!r}")
        return Layout({}, [], [], {}, 0.0, 0.0)

    pair_set = set()
    for a, b in edge_list:
        for v in (a, b):
            if v not in index:
                raise ValueError(f"edge ({a!r}, {b!r}) refers to unknown node {v!r}")
        if a == b:
            raise ValueError(f"graph has a cycle: {a!r} -> {a!r}")
        pair_set.add((index[a], index[b]))
    pairs = sorted(pair_set)  # canonical: independent of the edge list's order and repeats
    succ: list[list[int]] = [[] for _ in range(n)]
    pred: list[list[int]] = [[] for _ in range(n)]
    for u, v in pairs:
        succ[u].append(v)
        pred[v].append(u)

    layer = _assign_layers(specs, succ, pred, sinks_last)
    comp, n_comps = _components(n, pairs)

    node_layer, is_dummy, up, down, chains = _insert_dummies(layer, pairs)

    # Initial order per component and layer: nodes in input order, each long edge's dummies right
    # after its source, so they start near it.
    n_layers = max(layer) + 1
    lo, hi = [n_layers] * n_comps, [0] * n_comps
    for i in range(n):
        c = comp[i]
        lo[c], hi[c] = min(lo[c], layer[i]), max(hi[c], layer[i])
    comp_layers = [[[] for _ in range(hi[c] - lo[c] + 1)] for c in range(n_comps)]
    for u in range(n):
        c = comp[u]
        comp_layers[c][layer[u] - lo[c]].append(u)
        for v in succ[u]:
            for d in chains[(u, v)]:
                comp_layers[c][node_layer[d] - lo[c]].append(d)

    pos = [0] * len(node_layer)
    half_h = [s.height / 2.0 for s in specs] + [0.0] * (len(node_layer) - n)
    nbrs, nbr_w = _neighbour_weights(up, down, is_dummy)
    for c in range(n_comps):
        comp_layers[c] = _order_layers(comp_layers[c], up, down, pos, sweeps)
    y = _assign_y(comp_layers, lo, nbrs, nbr_w, half_h, node_gap)
    comp_gap = 2.0 * node_gap
    cursor = 0.0
    for cl in comp_layers:  # stack the components top to bottom
        top = min(y[v] - half_h[v] for lay in cl for v in lay)
        bottom = max(y[v] + half_h[v] for lay in cl for v in lay)
        shift = cursor - top
        for lay in cl:
            for v in lay:
                y[v] += shift
        cursor += bottom - top + comp_gap

    col_w = [0.0] * n_layers  # each column as wide as its widest node: leaf columns stay narrow
    for i, s in enumerate(specs):
        col_w[layer[i]] = max(col_w[layer[i]], s.width)
    xs, left = [], 0.0
    for w in col_w:
        xs.append(left + w / 2.0)
        left += w + layer_gap
    positions = {s.id: (xs[layer[i]], y[i]) for i, s in enumerate(specs)}
    layers_out: list[list[int]] = [[] for _ in range(n_layers)]
    for c in range(n_comps):
        for k, lay in enumerate(comp_layers[c]):
            layers_out[lo[c] + k].extend(specs[v].id for v in lay if v < n)
    routes = {}
    for u, v in pairs:
        a, b = specs[u].id, specs[v].id
        routes[(a, b)] = [positions[a], *((xs[node_layer[d]], y[d]) for d in chains[(u, v)]), positions[b]]
    width = left - layer_gap
    height = cursor - comp_gap
    return Layout(positions, layers_out, edge_list, routes, width, height)


# ----------------------------------------------------------------------------------- layering


def _assign_layers(specs, succ, pred, sinks_last) -> list[int]:
    n = len(specs)
    indeg = [len(p) for p in pred]
    queue = deque(i for i in range(n) if indeg[i] == 0)
    layer = [0] * n
    topo: list[int] = []
    while queue:  # Kahn's topological order; longest path from the sources on the way
        u = queue.popleft()
        topo.append(u)
        nxt = layer[u] + 1
        for v in succ[u]:
            if layer[v] < nxt:
                layer[v] = nxt
            indeg[v] -= 1
            if indeg[v] == 0:
                queue.append(v)
    if len(topo) < n:
        raise ValueError(f"graph has a cycle: {_find_cycle(specs, pred, indeg)}")
    if sinks_last:
        last = max(layer)
        for i in range(n):
            if not succ[i] and pred[i]:
                layer[i] = last
    # As late as possible: an op fed only by leaves (w.T, 1 - y) and the single-consumer chains
    # growing from it sit right before their first consumer, not in column 1 with an edge across
    # the drawing.  Other ops keep their longest-path layer: side branches of the data path start
    # where their input is.
    late = [False] * n
    for v in topo:
        late[v] = bool(pred[v]) and all(not pred[u] or (late[u] and len(succ[u]) == 1) for u in pred[v])
    for v in reversed(topo):  # consumers first, so a chain follows its last link
        if late[v] and succ[v]:
            layer[v] = min(layer[s] for s in succ[v]) - 1
    for i in range(n):  # tighten sources: a leaf sits one column before its first consumer
        if not pred[i] and succ[i]:
            layer[i] = min(layer[v] for v in succ[i]) - 1
    return layer


def _find_cycle(specs, pred, indeg) -> str:
    """Nodes Kahn's algorithm could not order all have a predecessor among themselves: walk back."""
    v = next(i for i, d in enumerate(indeg) if d > 0)
    seen: dict[int, int] = {}
    path: list[int] = []
    while v not in seen:
        seen[v] = len(path)
        path.append(v)
        v = next(u for u in pred[v] if indeg[u] > 0)
    cycle = path[seen[v]:][::-1]  # walked against the edges: reverse to follow them
    return " -> ".join(repr(specs[i].id) for i in [*cycle, cycle[0]])


def _insert_dummies(layer, pairs):
    """The proper graph: every edge spanning k > 1 layers becomes a chain through k - 1 dummies.

    Dummies get indices after the real nodes; ``up[v]``/``down[v]`` are v's neighbours in the
    previous/next layer; ``chains[(u, v)]`` lists the dummies of edge u -> v, left to right.
    """
    n = len(layer)
    node_layer = list(layer)
    is_dummy = [False] * n
    up: list[list[int]] = [[] for _ in range(n)]
    down: list[list[int]] = [[] for _ in range(n)]
    chains: dict[tuple[int, int], list[int]] = {}
    for u, v in pairs:
        prev, chain = u, []
        for k in range(layer[u] + 1, layer[v]):
            d = len(node_layer)
            node_layer.append(k)
            is_dummy.append(True)
            up.append([prev])
            down.append([])
            down[prev].append(d)
            chain.append(d)
            prev = d
        down[prev].append(v)
        up[v].append(prev)
        chains[(u, v)] = chain
    return node_layer, is_dummy, up, down, chains


def _components(n: int, pairs) -> tuple[list[int], int]:
    """Connected components (union-find), numbered by their first node in input order."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for u, v in pairs:
        ru, rv = find(u), find(v)
        if ru != rv:
            parent[max(ru, rv)] = min(ru, rv)
    number: dict[int, int] = {}
    comp = [number.setdefault(find(i), len(number)) for i in range(n)]
    return comp, len(number)


# ------------------------------------------------------------------------- crossing minimisation


def _count_inversions(seq: Sequence, insort_max: int = _INSORT_MAX) -> int:
    """Pairs i < j with seq[i] > seq[j] (strictly), in O(n log n) comparisons."""
    n = len(seq)
    if n < 2:
        return 0
    total = 0
    if n <= insort_max:  # memmove-backed insertion: fastest for the small lists layouts produce
        seen: list = []
        for s in seq:
            i = bisect_right(seen, s)
            total += len(seen) - i
            seen.insert(i, s)
        return total
    ranks = {v: r for r, v in enumerate(sorted(set(seq)), 1)}
    tree = [0] * (len(ranks) + 1)  # Fenwick tree over ranks: counts of values seen so far
    size = len(tree)
    for i, s in enumerate(seq):
        r = ranks[s]
        j, at_most = r, 0
        while j:
            at_most += tree[j]
            j &= j - 1
        total += i - at_most
        j = r
        while j < size:
            tree[j] += 1
            j += j & -j
    return total


def _layers_crossings(layers, down, pos) -> int:
    total = 0
    for north in layers[:-1]:
        seq = []
        for u in north:
            nb = down[u]
            if len(nb) == 1:
                seq.append(pos[nb[0]])
            elif nb:
                seq.extend(sorted([pos[v] for v in nb]))
        total += _count_inversions(seq)
    return total


def _order_layers(layers, up, down, pos, sweeps):
    """Barycenter sweeps (down uses the layer above, up the layer below); best ordering wins."""
    for lay in layers:
        for i, v in enumerate(lay):
            pos[v] = i
    best = [lay[:] for lay in layers]
    if len(layers) < 2:
        return best
    best_count = _layers_crossings(layers, down, pos)
    unchanged = 0
    for s in range(sweeps):
        if best_count == 0 or unchanged >= 2:  # optimal, or a down and an up sweep both idle
            break
        if s % 2 == 0:
            order, ref = range(1, len(layers)), up
        else:
            order, ref = range(len(layers) - 2, -1, -1), down
        changed = False
        for k in order:
            lay = layers[k]
            if len(lay) < 2:
                continue
            keys = []
            for v in lay:
                nb = ref[v]
                if len(nb) == 1:
                    keys.append(pos[nb[0]])
                elif nb:
                    keys.append(sum([pos[u] for u in nb]) / len(nb))
                else:
                    keys.append(pos[v])  # no neighbour that way: stay put
            new = [lay[i] for i in sorted(range(len(lay)), key=keys.__getitem__)]  # stable
            if new != lay:
                changed = True
                layers[k] = new
                for i, v in enumerate(new):
                    pos[v] = i
        unchanged = 0 if changed else unchanged + 1
        if changed:
            count = _layers_crossings(layers, down, pos)
            if count < best_count:
                best_count, best = count, [lay[:] for lay in layers]
    for lay in best:
        for i, v in enumerate(lay):
            pos[v] = i
    return best


# ------------------------------------------------------------------------ coordinate assignment


def _neighbour_weights(up, down, is_dummy):
    """Neighbours of every node in the adjacent columns and the weight omega of each segment."""

    def omega(a: int, b: int) -> float:  # segment a -> b
        w = _OMEGA[is_dummy[a] + is_dummy[b]]
        return w * _OMEGA_LEAF if not up[a] and not is_dummy[a] else w

    nbrs, weights = [], []
    for v in range(len(up)):
        nbrs.append(up[v] + down[v])
        weights.append([omega(u, v) for u in up[v]] + [omega(v, u) for u in down[v]])
    return nbrs, weights


def _assign_y(comp_layers, lo, nbrs, nbr_w, half_h, node_gap) -> list[float]:
    """y of every node: columns stacked and centred, then relaxed (see the module docstring).

    Columns only interact with their neighbours, so all even columns are solved at once given the
    odd ones, then all odd ones (red-black block coordinate descent): the weighted neighbour means
    come from one numpy gather per half-pass; only the isotonic fits run in Python.
    """
    y = [0.0] * len(half_h)
    off = [0.0] * len(half_h)  # cumulative minimum separation from the top of the column
    by_parity: tuple[list, list] = ([], [])
    for c, layers in enumerate(comp_layers):
        for k, lay in enumerate(layers):
            acc = 0.0
            for i in range(1, len(lay)):
                acc += half_h[lay[i - 1]] + half_h[lay[i]] + node_gap
                off[lay[i]] = acc
            for v in lay:
                y[v] = off[v] - acc / 2.0
            if len(layers) > 1:  # a single column has no neighbours to move towards
                by_parity[(lo[c] + k) % 2].append(lay)
    plans = []
    for columns in by_parity:
        ids = [v for lay in columns for v in lay]
        if not ids:
            continue
        totals = [sum(nbr_w[v]) for v in ids]  # every node here has at least one neighbour
        counts = [len(nbrs[v]) for v in ids]
        starts = np.zeros(len(ids), dtype=np.intp)
        np.cumsum(counts[:-1], out=starts[1:])
        weights = np.array([w for v in ids for w in nbr_w[v]]) / np.repeat(totals, counts)
        spans, a = [], 0
        for lay in columns:
            if len(lay) > 1:
                spans.append((a, a + len(lay)))
            a += len(lay)
        neighbours = np.array([u for v in ids for u in nbrs[v]], dtype=np.intp)
        plans.append((np.array(ids, dtype=np.intp), neighbours, weights, starts,
                      np.array([off[v] for v in ids]), spans, totals))
    if not plans:
        return y
    ys = np.array(y)
    for _ in range(_Y_PASSES):
        for ids, neighbours, weights, starts, offsets, spans, totals in plans:
            z = np.add.reduceat(weights * ys[neighbours], starts) - offsets
            if spans:
                zl = z.tolist()
                for a, b in spans:
                    zl[a:b] = _isotonic(zl[a:b], totals[a:b])
                z = np.array(zl)
            ys[ids] = z + offsets
    return ys.tolist()


def _isotonic(targets, weights) -> list[float]:
    """Weighted least-squares nondecreasing fit (pool adjacent violators), O(n)."""
    means: list[float] = []
    totals: list[float] = []
    counts: list[int] = []
    for t, w in zip(targets, weights):
        m, c = t, 1
        while means and means[-1] > m:
            pw = totals.pop()
            m = (means.pop() * pw + m * w) / (pw + w)
            w += pw
            c += counts.pop()
        means.append(m)
        totals.append(w)
        counts.append(c)
    out: list[float] = []
    for m, c in zip(means, counts):
        out.extend([m] * c)
    return out
