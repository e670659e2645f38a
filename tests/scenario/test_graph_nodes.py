"""The loader's node-count estimate (``LIMITS["max_graph_nodes"]``) against the real traced graph of
every bundled scenario: the estimate must not undercount, and stays close (its per-loss counts follow
PyTorch's graphs: one fused node for mse / bce_with_logits, LogSoftmax + NllLoss for cross_entropy)."""
import pytest

from gradviz.scenario import estimate_graph_nodes, load
from gradviz.scenario.bundled import bundled
from gradviz.training.session import Session

PATHS = bundled()


@pytest.mark.parametrize("path", PATHS, ids=[p.stem for p in PATHS])
def test_estimate_covers_the_traced_graph(path):
    scenario = load(path)
    traced = len(Session(scenario).trace_iteration(0).nodes)
    estimate = estimate_graph_nodes(scenario)
    assert traced <= estimate <= 2 * traced + 10, (scenario.loss.kind, traced, estimate)
