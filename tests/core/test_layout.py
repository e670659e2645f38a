"""gradviz.layout: layered DAG layout.  Geometric invariants run over a table of graphs; crossing
counts are checked against brute-force O(E^2) counters, not against numbers from our own output."""
from __future__ import annotations

import itertools
import random
import subprocess
import sys
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gradviz.view.layout import Layout, LayoutNode, _count_inversions, count_crossings, layered_layout

EPS = 1e-9


# ------------------------------------------------------------------------------------ helpers


def mlp_graph(depth: int, accumulation_steps: int = 1):
    """A computation graph shaped like a traced MLP: per layer h @ W, + b, relu; MSE loss chain."""
    nodes, edges = [], []

    def node(*inputs):
        v = len(nodes)
        nodes.append(v)
        edges.extend((u, v) for u in inputs)
        return v

    params = [(node(), node()) for _ in range(depth)]
    losses = []
    for _ in range(accumulation_steps):
        h, target = node(), node()
        for w, b in params:
            h = node(node(node(h, w), b))
        losses.append(node(node(node(h, target))))
    total = losses[0]
    for loss in losses[1:]:
        total = node(total, loss)
    return nodes, edges


def sized(ids, sizes=((120, 48), (60, 30), (200, 90), (10, 0))):
    return [LayoutNode(v, *sizes[i % len(sizes)]) for i, v in enumerate(ids)]


def brute_count_crossings(layers, edges) -> int:
    layer_of = {v: i for i, ids in enumerate(layers) for v in ids}
    pos = {v: p for ids in layers for p, v in enumerate(ids)}
    segs = []
    for a, b in edges:
        if layer_of[a] > layer_of[b]:
            a, b = b, a
        segs.append((layer_of[a], pos[a], pos[b]))
    return sum(
        1
        for (la, a, b), (lc, c, d) in itertools.combinations(segs, 2)
        if la == lc and (a - c) * (b - d) < 0
    )


def brute_geometric_crossings(layout: Layout) -> int:
    """Pairs of route segments spanning the same column gap whose end points swap order."""
    segs = [(p[0], p[1], q[1]) for pts in layout.routes.values() for p, q in zip(pts, pts[1:])]
    return sum(
        1 for (xa, a, b), (xc, c, d) in itertools.combinations(segs, 2) if xa == xc and (a - c) * (b - d) < 0
    )


def node_sizes(nodes):
    specs = [n if isinstance(n, LayoutNode) else LayoutNode(n) for n in nodes]
    return {n.id: n for n in specs}


def degrees(nodes, edges):
    ids = [n.id if isinstance(n, LayoutNode) else n for n in nodes]
    ins = {v: 0 for v in ids}
    outs = {v: 0 for v in ids}
    for a, b in set(edges):
        outs[a] += 1
        ins[b] += 1
    return ins, outs


# ------------------------------------------------------------------------ table of graphs

GRAPHS = {
    "empty": ([], []),
    "one node": ([7], []),
    "isolated nodes": ([3, 1, 2], []),
    "chain": (list(range(5)), [(0, 1), (1, 2), (2, 3), (3, 4)]),
    "diamond": (list("abcd"), [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]),
    "x*x multi-edge": (["x", "mul", "out"], [("x", "mul"), ("x", "mul"), ("mul", "out")]),
    "long edges": (list(range(6)), [(0, 1), (1, 2), (2, 3), (3, 4), (0, 4), (1, 5), (5, 4), (0, 3)]),
    "two components": (list(range(7)), [(0, 1), (1, 2), (3, 4), (5, 6), (4, 6)]),
    "edges reversed order": (list(range(5)), [(3, 4), (2, 3), (1, 2), (0, 1), (0, 4)]),
    "mlp": mlp_graph(3),
    "mlp 3 micro-batches": mlp_graph(3, 3),
    "mixed sizes": (sized(range(8)), [(0, 2), (1, 2), (2, 4), (3, 4), (4, 7), (5, 6), (6, 7), (0, 6)]),
    "negative ids": ([-5, -1, -3], [(-5, -1), (-3, -1)]),
    "fan-out leaf": (list(range(8)), [(0, k) for k in range(1, 7)] + [(k, 7) for k in range(1, 7)]),
}
GRAPH_IDS = list(GRAPHS)


@pytest.fixture(params=GRAPH_IDS)
def graph(request):
    nodes, edges = GRAPHS[request.param]
    return nodes, edges, layered_layout(nodes, edges)


def test_every_node_placed_once_in_one_layer(graph):
    nodes, _edges, layout = graph
    ids = [n.id if isinstance(n, LayoutNode) else n for n in nodes]
    flat = [v for layer in layout.layers for v in layer]
    assert sorted(map(repr, flat)) == sorted(map(repr, ids))
    assert set(layout.positions) == set(ids)
    assert all(layout.layers), "no empty layers"


def test_edges_go_left_to_right(graph):
    _nodes, edges, layout = graph
    for a, b in edges:
        assert layout.positions[a][0] < layout.positions[b][0]


def test_columns_share_x_and_are_as_wide_as_their_widest_node(graph):
    nodes, _edges, layout = graph
    size = node_sizes(nodes)
    left = 0.0
    for layer in layout.layers:
        width = max(size[v].width for v in layer)
        for v in layer:
            assert layout.positions[v][0] == pytest.approx(left + width / 2)
        left += width + 80.0
    assert layout.width == pytest.approx(max(left - 80.0, 0.0))


def test_sinks_in_last_layer_and_leaves_next_to_their_consumer(graph):
    nodes, edges, layout = graph
    layer_of = {v: k for k, ids in enumerate(layout.layers) for v in ids}
    ins, outs = degrees(nodes, edges)
    succ = {}
    for a, b in edges:
        succ.setdefault(a, []).append(b)
    for v in layer_of:
        if ins[v] and not outs[v]:
            assert layer_of[v] == len(layout.layers) - 1
        if outs[v] and not ins[v]:
            assert layer_of[v] == min(layer_of[s] for s in succ[v]) - 1


def test_layers_run_top_to_bottom_without_overlap(graph):
    nodes, _edges, layout = graph
    size = node_sizes(nodes)
    for layer in layout.layers:
        for a, b in zip(layer, layer[1:]):
            gap = layout.positions[b][1] - layout.positions[a][1]
            assert gap >= (size[a].height + size[b].height) / 2 + 24.0 - EPS
        for a, b in itertools.combinations(layer, 2):  # every pair, not only neighbours
            dy = abs(layout.positions[a][1] - layout.positions[b][1])
            assert dy >= (size[a].height + size[b].height) / 2 + 24.0 - EPS


def test_drawing_fits_its_bounding_box_from_the_origin(graph):
    nodes, _edges, layout = graph
    size = node_sizes(nodes)
    if not nodes:
        assert (layout.width, layout.height) == (0.0, 0.0)
        return
    lefts = [x - size[v].width / 2 for v, (x, _y) in layout.positions.items()]
    tops = [y - size[v].height / 2 for v, (_x, y) in layout.positions.items()]
    rights = [x + size[v].width / 2 for v, (x, _y) in layout.positions.items()]
    bottoms = [y + size[v].height / 2 for v, (_x, y) in layout.positions.items()]
    route_ys = [y for pts in layout.routes.values() for _x, y in pts]
    assert min(lefts) >= -EPS and max(rights) <= layout.width + EPS
    assert min(tops + route_ys) == pytest.approx(0.0, abs=1e-6)
    assert max(bottoms + route_ys) <= layout.height + 1e-6
    assert min(tops + route_ys) >= -1e-6


def test_routes_run_from_source_centre_to_target_centre_column_by_column(graph):
    _nodes, edges, layout = graph
    assert set(layout.routes) == set(edges), "one route per distinct edge"
    assert layout.edges == list(edges), "input edges kept as given, repeats included"
    column_xs = sorted({x for x, _y in layout.positions.values()})
    for (a, b), pts in layout.routes.items():
        assert pts[0] == layout.positions[a]
        assert pts[-1] == layout.positions[b]
        xs = [x for x, _y in pts]
        i = column_xs.index(xs[0])
        assert xs == column_xs[i : i + len(xs)], "one point per column, no column skipped"


def test_crossings_match_brute_force_on_the_geometry(graph):
    _nodes, _edges, layout = graph
    assert layout.crossings() == brute_geometric_crossings(layout)


def test_deterministic_and_independent_of_edge_order(graph):
    nodes, edges, layout = graph
    assert layered_layout(nodes, edges) == layout
    for seed in range(3):
        shuffled = list(edges)
        random.Random(seed).shuffle(shuffled)
        other = layered_layout(nodes, shuffled)
        assert [sorted(map(repr, layer)) for layer in other.layers] == [
            sorted(map(repr, layer)) for layer in layout.layers
        ]
        # edges are canonicalised, so the whole drawing is the same
        assert (other.positions, other.layers, other.routes) == (layout.positions, layout.layers, layout.routes)


# --------------------------------------------------------------------------- specific cases


def test_empty_and_single_node():
    assert layered_layout([], []) == Layout({}, [], [], {}, 0.0, 0.0)
    one = layered_layout([LayoutNode(3, width=50, height=20)], [])
    assert one.positions == {3: (25.0, 10.0)}
    assert (one.layers, one.routes, one.width, one.height) == ([[3]], {}, 50.0, 20.0)


def test_ids_and_default_layout_nodes_are_interchangeable():
    nodes, edges = mlp_graph(2)
    assert layered_layout(nodes, edges) == layered_layout([LayoutNode(v) for v in nodes], edges)


def test_longest_path_layering_with_tightened_leaves():
    #   x -> mm <- W,  mm -> add <- b,  add -> loss <- y      (W, b, y are leaves)
    nodes = ["W", "b", "y", "x", "mm", "add", "loss"]
    edges = [("x", "mm"), ("W", "mm"), ("mm", "add"), ("b", "add"), ("add", "loss"), ("y", "loss")]
    layout = layered_layout(nodes, edges)
    layer_of = {v: k for k, ids in enumerate(layout.layers) for v in ids}
    assert layer_of == {"x": 0, "W": 0, "mm": 1, "b": 1, "add": 2, "y": 2, "loss": 3}


@pytest.mark.parametrize(
    "sinks_last, expected",
    [(True, {"a": 0, "b": 1, "c": 2, "d": 3, "side": 3}), (False, {"a": 0, "b": 1, "c": 2, "d": 3, "side": 1})],
)
def test_sinks_last_moves_dangling_outputs_to_the_end(sinks_last, expected):
    nodes = ["a", "b", "c", "d", "side"]
    edges = [("a", "b"), ("b", "c"), ("c", "d"), ("a", "side")]
    layout = layered_layout(nodes, edges, sinks_last=sinks_last)
    assert {v: k for k, ids in enumerate(layout.layers) for v in ids} == expected


def test_components_are_stacked_in_input_order_without_sharing_rows():
    nodes = list(range(6))
    edges = [(3, 4), (4, 5), (0, 1), (1, 2)]  # component {0,1,2} listed first in nodes
    layout = layered_layout(nodes, edges)
    ys = {v: layout.positions[v][1] for v in nodes}
    assert max(ys[v] for v in (0, 1, 2)) + 48 + 24 <= min(ys[v] for v in (3, 4, 5)) + EPS


def test_multi_edge_is_one_route_and_no_crossing():
    layout = layered_layout(["x", "mul"], [("x", "mul"), ("x", "mul")])
    assert list(layout.routes) == [("x", "mul")]
    assert layout.edges == [("x", "mul"), ("x", "mul")]
    assert layout.crossings() == 0


def test_gaps_set_the_spacing():
    layout = layered_layout([LayoutNode(0, 100, 40), LayoutNode(1, 100, 40), LayoutNode(2, 60, 10)],
                            [(0, 2), (1, 2)], layer_gap=30.0, node_gap=5.0)
    assert layout.positions[2][0] - layout.positions[0][0] == pytest.approx(50 + 30 + 30)
    assert layout.positions[1][1] - layout.positions[0][1] == pytest.approx(45.0)
    assert layout.width == pytest.approx(190.0)


def test_narrow_columns_take_less_room():
    # x (30 wide) -> op (200) -> loss (60): each column only as wide as what it holds
    nodes = [LayoutNode("x", 30, 20), LayoutNode("op", 200, 40), LayoutNode("loss", 60, 30)]
    layout = layered_layout(nodes, [("x", "op"), ("op", "loss")], layer_gap=10.0)
    assert {v: p[0] for v, p in layout.positions.items()} == {"x": 15.0, "op": 140.0, "loss": 280.0}
    assert layout.width == pytest.approx(310.0)
    uniform = 3 * 200 + 2 * 10
    assert layout.width < 0.6 * uniform


def traced_mlp_with_transposes(depth: int):
    """What a trace of ``h @ W.T + b`` per layer looks like: the permute of W is an op fed by a leaf."""
    nodes, edges = [], []

    def node(name, *inputs):
        nodes.append(name)
        edges.extend((u, name) for u in inputs)
        return name

    params = [(node(f"W{k}"), node(f"b{k}")) for k in range(depth)]
    h = node("x")
    for k, (w, b) in enumerate(params):
        wt = node(f"W{k}.T", w)
        h = node(f"relu{k}", node(f"add{k}", node(f"mm{k}", h, wt), b))
    node("mean", node("loss", h, node("y")))
    return nodes, edges


def test_op_fed_only_by_leaves_sits_right_before_its_consumer():
    nodes, edges = traced_mlp_with_transposes(6)
    layout = layered_layout(nodes, edges)
    layer_of = {v: k for k, ids in enumerate(layout.layers) for v in ids}
    for k in range(6):
        assert layer_of[f"W{k}.T"] == layer_of[f"mm{k}"] - 1, "the permute of a weight goes next to its matmul"
        assert layer_of[f"W{k}"] == layer_of[f"W{k}.T"] - 1, "and its leaf follows it"
        assert layer_of[f"b{k}"] == layer_of[f"add{k}"] - 1
    spans = [layer_of[b] - layer_of[a] for a, b in set(edges)]
    assert max(spans) == 1, "no edge crosses a column"
    assert layer_of["mean"] == len(layout.layers) - 1


def test_chains_fed_by_leaves_move_late_and_data_branches_stay_early():
    #   x -> a -> b -> c -> d -> out          the data path
    #   w -> wt -> wr -> d                    a chain fed by a leaf (permute, reshape): late
    #   one, y -> rsub -> m -> out            1 - y: late, next to its consumer m
    #   a -> side -> out                      a branch of the data path: stays early
    nodes = ["x", "w", "one", "y", "a", "b", "c", "wt", "wr", "d", "side", "rsub", "m", "out"]
    edges = [("x", "a"), ("a", "b"), ("b", "c"), ("c", "d"), ("d", "m"), ("m", "out"),
             ("w", "wt"), ("wt", "wr"), ("wr", "d"), ("one", "rsub"), ("y", "rsub"), ("rsub", "m"),
             ("a", "side"), ("side", "out")]
    layout = layered_layout(nodes, edges)
    layer_of = {v: k for k, ids in enumerate(layout.layers) for v in ids}
    assert layer_of == {"x": 0, "a": 1, "b": 2, "c": 3, "d": 4, "m": 5, "out": 6,
                        "w": 1, "wt": 2, "wr": 3, "one": 3, "y": 3, "rsub": 4, "side": 2}


def test_leaf_fed_op_with_several_consumers_goes_before_the_first():
    # w.T computed once and used by two matmuls at different depths: it stays before the first
    nodes = ["x", "w", "wt", "m1", "r1", "m2", "out"]
    edges = [("x", "m1"), ("w", "wt"), ("wt", "m1"), ("m1", "r1"), ("r1", "m2"), ("wt", "m2"), ("m2", "out")]
    layer_of = {v: k for k, ids in enumerate(layered_layout(nodes, edges).layers) for v in ids}
    assert (layer_of["w"], layer_of["wt"], layer_of["m1"], layer_of["m2"]) == (0, 1, 2, 4)


def twisted(k: int):
    """root -> t_i -> b_(k-1-i) -> sink: the input order has k(k-1)/2 crossings, reversing the
    b's has none.  Connected on purpose: separate components are stacked and never cross."""
    tops, bottoms = [f"t{i}" for i in range(k)], [f"b{i}" for i in range(k)]
    edges = [("root", t) for t in tops] + [(t, b) for t, b in zip(tops, reversed(bottoms))]
    return ["root", *tops, *bottoms, "sink"], edges + [(b, "sink") for b in bottoms]


# Crafted graphs whose input order has crossings although a crossing-free drawing exists.
CRAFTED = [
    ("reversed matching of 3", *twisted(3), 3),
    ("reversed matching of 6", *twisted(6), 15),
    (
        "two interleaved trees",  # a->{x,z}, b->{y,w}: the order x y z w makes a-z cross b-y
        ["r", "a", "b", "x", "y", "z", "w", "out"],
        [("r", "a"), ("r", "b"), ("a", "x"), ("b", "y"), ("a", "z"), ("b", "w")]
        + [(v, "out") for v in "xyzw"],
        1,
    ),
    (
        "three layers twisted twice",
        ["root", "a", "b", "c", "p", "q", "r", "x", "y", "z"],
        [("root", v) for v in "abc"]
        + [("a", "r"), ("b", "q"), ("c", "p"), ("p", "z"), ("q", "x"), ("r", "y")],
        5,
    ),
]


@pytest.mark.parametrize("name, nodes, edges, naive", CRAFTED, ids=[c[0] for c in CRAFTED])
def test_barycenter_untangles_crafted_graphs(name, nodes, edges, naive):
    initial = layered_layout(nodes, edges, sweeps=0)  # the input order, nothing moved
    assert initial.crossings() == naive
    assert count_crossings(initial.layers, edges) == naive
    layout = layered_layout(nodes, edges)
    assert layout.crossings() == 0
    assert count_crossings(layout.layers, edges) == 0


def test_separate_components_never_cross():
    # the same reversed matching as twisted(4), but without root and sink: four components
    nodes = ["t0", "t1", "t2", "t3", "b0", "b1", "b2", "b3"]
    edges = [("t0", "b3"), ("t1", "b2"), ("t2", "b1"), ("t3", "b0")]
    assert layered_layout(nodes, edges, sweeps=0).crossings() == 0


def test_accumulated_micro_batches_keep_few_crossings():
    nodes, edges = mlp_graph(10, 4)
    assert layered_layout(nodes, edges).crossings() < layered_layout(nodes, edges, sweeps=0).crossings()


def test_ten_thousand_node_chain():
    n = 10_000
    layout = layered_layout(range(n), [(i, i + 1) for i in range(n - 1)])
    assert len(layout.layers) == n
    assert layout.positions[n - 1][0] > layout.positions[0][0]
    assert {y for _x, y in layout.positions.values()} == {24.0}, "a chain is a straight line"


def test_ten_thousand_node_chain_given_backwards_with_long_edge():
    n = 10_000
    edges = [(i, i + 1) for i in reversed(range(n - 1))] + [(0, n - 1)]
    layout = layered_layout(range(n), edges)
    assert len(layout.routes[(0, n - 1)]) == n


def test_thousand_node_graph_is_fast_enough():
    nodes, edges = mlp_graph(70, 4)
    assert len(nodes) > 1000
    t0 = time.perf_counter()
    layered_layout(nodes, edges)
    assert time.perf_counter() - t0 < 0.5  # 10x the benchmark target, to stay clear of CI noise


# -------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "nodes, edges, message",
    [
        ([1, 2], [(1, 2), (2, 1)], r"graph has a cycle: (1 -> 2 -> 1|2 -> 1 -> 2)"),
        ([1], [(1, 1)], r"graph has a cycle: 1 -> 1"),
        ([0, 1, 2, 3], [(0, 1), (1, 2), (2, 3), (3, 1)],
         r"graph has a cycle: (1 -> 2 -> 3 -> 1|2 -> 3 -> 1 -> 2|3 -> 1 -> 2 -> 3)"),
        ([1, 2], [(1, 3)], r"unknown node 3"),
        ([1, 2], [(0, 2)], r"unknown node 0"),
        ([], [(0, 1)], r"unknown node 0"),
        ([1, 1], [], r"duplicate node id 1"),
        ([LayoutNode(1, width=-1)], [], r"negative size"),
    ],
)
def test_bad_graphs_raise(nodes, edges, message):
    with pytest.raises(ValueError, match=message):
        layered_layout(nodes, edges)


@pytest.mark.parametrize("kwargs", [{"node_gap": 0.0}, {"layer_gap": -1.0}, {"sweeps": -1}])
def test_bad_parameters_raise(kwargs):
    with pytest.raises(ValueError):
        layered_layout([0, 1], [(0, 1)], **kwargs)


@pytest.mark.parametrize(
    "layers, edges, message",
    [
        ([[0], [1], [2]], [(0, 2)], "adjacent"),
        ([[0], [1]], [(0, 5)], "unknown node 5"),
        ([[0], [0]], [], "twice"),
    ],
)
def test_count_crossings_rejects_bad_input(layers, edges, message):
    with pytest.raises(ValueError, match=message):
        count_crossings(layers, edges)


# ---------------------------------------------------------------------------- property tests


@st.composite
def layered_graphs(draw):
    sizes = draw(st.lists(st.integers(1, 6), min_size=1, max_size=5))
    layers, next_id = [], 0
    for size in sizes:
        layers.append(list(range(next_id, next_id + size)))
        next_id += size
    candidates = [(a, b) for k in range(len(layers) - 1) for a in layers[k] for b in layers[k + 1]]
    if not candidates:
        return layers, []
    edges = draw(st.lists(st.sampled_from(candidates), max_size=30))  # repeats allowed
    flips = draw(st.lists(st.booleans(), min_size=len(edges), max_size=len(edges)))
    return layers, [(b, a) if f else (a, b) for (a, b), f in zip(edges, flips)]


@given(layered_graphs())
@settings(max_examples=300, deadline=None)
def test_count_crossings_matches_brute_force(graph):
    layers, edges = graph
    assert count_crossings(layers, edges) == brute_count_crossings(layers, edges)


@given(st.lists(st.integers(-5, 5), max_size=60))
@settings(max_examples=300, deadline=None)
def test_inversion_counters_agree_with_brute_force(seq):
    brute = sum(1 for i, j in itertools.combinations(range(len(seq)), 2) if seq[i] > seq[j])
    assert _count_inversions(seq) == brute
    assert _count_inversions(seq, insort_max=0) == brute  # the Fenwick-tree path


@st.composite
def random_dags(draw):
    n = draw(st.integers(1, 14))
    ids = draw(st.lists(st.integers(-1000, 1000), min_size=n, max_size=n, unique=True))
    pairs = [(i, j) for i in range(n) for j in range(i + 1, n)]
    chosen = draw(st.lists(st.sampled_from(pairs), max_size=25)) if pairs else []
    order = draw(st.permutations(range(n)))  # node list need not be topological
    sizes = draw(st.lists(st.tuples(st.integers(0, 200), st.integers(0, 80)), min_size=n, max_size=n))
    nodes = [LayoutNode(ids[i], *map(float, sizes[i])) for i in order]
    return nodes, [(ids[i], ids[j]) for i, j in chosen]


@given(random_dags())
@settings(max_examples=200, deadline=None)
def test_random_dags_satisfy_the_layout_invariants(dag):
    nodes, edges = dag
    layout = layered_layout(nodes, edges)
    size = node_sizes(nodes)
    ins, outs = degrees(nodes, edges)
    layer_of = {v: k for k, ids in enumerate(layout.layers) for v in ids}
    for a, b in edges:
        assert layout.positions[a][0] < layout.positions[b][0]
    for v in layer_of:
        if ins[v] and not outs[v]:
            assert layer_of[v] == len(layout.layers) - 1
    for layer in layout.layers:
        for a, b in itertools.combinations(layer, 2):
            dy = abs(layout.positions[a][1] - layout.positions[b][1])
            assert dy >= (size[a].height + size[b].height) / 2 + 24.0 - EPS
    for (a, b), pts in layout.routes.items():
        assert pts[0] == layout.positions[a] and pts[-1] == layout.positions[b]
    crossings = layout.crossings()
    assert crossings == brute_geometric_crossings(layout)
    assert crossings <= layered_layout(nodes, edges, sweeps=0).crossings(), "best ordering kept"
    assert layered_layout(nodes, list(reversed(edges))).layers == layout.layers


def test_core_does_not_import_qt():
    code = (
        "import sys, gradviz.view.layout; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('PySide6', 'pyqtgraph', 'ui')]; "
        "assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
