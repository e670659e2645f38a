"""The scenario files bench_responsiveness.py measures by default (benchmarks/limit_files.py) load with
the loader and sit at the documented limits they stand for. (How the window copes with them is the
benchmark's business, not asserted here.)"""
from __future__ import annotations

import sys
from pathlib import Path

from gradviz.scenario import LIMITS, estimate_graph_nodes, load

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import limit_files  # noqa: E402


def test_the_limit_files_load_and_are_at_their_limits(tmp_path):
    paths = {p.name: p for p in limit_files.generate(tmp_path)}        # generate() loads each one
    assert set(paths) == set(limit_files.FILES)
    data = load(paths["limit_data.toml"])
    assert data.data.n == LIMITS["max_points"]
    assert paths["limit_mlp.toml"].stat().st_size > 0.9 * LIMITS["max_file_bytes"]
    mlp = load(paths["limit_mlp.toml"])
    assert len(mlp.model.layers) == LIMITS["max_layers"]
    graph = estimate_graph_nodes(load(paths["limit_expression.toml"]))
    assert 0.75 * LIMITS["max_graph_nodes"] < graph <= LIMITS["max_graph_nodes"]
    micro = load(paths["limit_micro_batches.toml"])
    assert estimate_graph_nodes(micro) > 0.9 * LIMITS["max_graph_nodes"]
    variants = load(paths["limit_variants.toml"])
    assert len(variants.variants()) == LIMITS["max_comparisons"] + 1
    from gradviz.training.script import ScriptRun, run_script
    source = paths["limit_modules.py"].read_text()
    result = run_script(source, paths["limit_modules.py"], trace_iterations=1)
    assert result.error is None
    nodes = len(ScriptRun(result).trace_iteration(0).nodes)     # (more than the limit would raise here)
    assert LIMITS["max_graph_nodes"] - 4 < nodes <= LIMITS["max_graph_nodes"]


def test_the_quick_files_load(tmp_path):
    assert len(limit_files.generate(tmp_path, quick=True)) == len(limit_files.FILES)
