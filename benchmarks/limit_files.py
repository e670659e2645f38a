"""Scenario files at the documented limits (``schema.LIMITS``, docs/scenarios.md), for bench_responsiveness.py.

    python benchmarks/limit_files.py DIR [--quick]      # writes the files into DIR and describes them

One file per way a scenario can be large; each is the largest of its kind that the loader
(``gradviz.scenario.load``) accepts, found by asking the loader rather than by copying the limits'
arithmetic, so the files follow the limits (and a per-document budget, if the loader gains one)
without edits here:

- ``limit_data.toml``: the largest data, ``max_points`` generated moons, on the widest two-hidden-layer
  MLP (2-256-256-1, BCE, Adam, 100 full-batch steps: the case that froze the window);
- ``limit_mlp.toml``: the largest MLP, ``max_layers`` entries as wide as ``max_param_elements`` allows
  (``sizes.LIMIT_LAYERS``: 64 features, 10 classes), as many steps as ``max_recorded_values`` allows,
  on inline data filling the file to just under ``max_file_bytes`` (full-precision floats: the
  largest file to edit and save);
- ``limit_expression.toml``: the largest expression, a one-hidden-layer tanh net written out term by
  term (``a0*tanh(b0*x+c0) + ...``) up to the parser's node limit, with as many micro-batches as
  ``max_graph_nodes`` allows (a traced graph at the graph-size limit);
- ``limit_micro_batches.toml``: the most micro-batches, ``w * x + b`` with the largest
  ``accumulation_steps`` the loader accepts (``max_graph_nodes`` caps it before
  ``max_accumulation_steps``);
- ``limit_variants.toml``: the most variants, the main run and ``max_comparisons`` comparisons (one per
  optimizer setting) of the widest 8-layer MLP on moons, each with as many steps as the loader
  accepts (``max_recorded_values`` per run; fewer if the loader counts the whole document);
- ``limit_modules.py``: the most modules, a PyTorch script of as many Linear(4, 4) + Tanh blocks as
  ``max_graph_nodes`` allows (498: 1,998 nodes, 499 foldable modules; the one graph that is at the
  limit folded or not). A TOML model cannot have that many layers (``max_layers``), a script can.

``--quick`` writes small versions of the same six shapes (seconds, not minutes, to run).
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from gradviz.scenario import LIMITS, ScenarioError, load, loads  # noqa: E402
from gradviz.scenario.toml_source import MAX_ARRAY_VALUES  # noqa: E402

FILE_FILL = 0.985          # of max_file_bytes: the largest file stays just under the limit

COMPARISON_OPTIMIZERS = [           # one per [[comparison]] of the variants file, in order
    'kind = "sgd", lr = 0.05',
    'kind = "sgd", lr = 0.05, momentum = 0.9',
    'kind = "sgd", lr = 0.05, momentum = 0.9, nesterov = true',
    'kind = "adam", lr = 0.01, amsgrad = true',
    'kind = "adamw", lr = 0.01',
    'kind = "rmsprop", lr = 0.001',
    'kind = "rmsprop", lr = 0.001, momentum = 0.9, centered = true',
    'kind = "adagrad", lr = 0.05',
]


COMMENTED_HEAD = """# a scenario near the size limit
[scenario]
title = "big moons"   # the title
seed = 1

[model]
layers = [2, 8, 1]

[loss]
kind = "bce_with_logits"

# the optimizer, with momentum
[optimizer]
kind = "sgd"
lr = 0.1
momentum = 0.9  # heavy ball

[loop]
steps = 20

[[comparison]]
name = "adam"
optimizer = { kind = "adam", lr = 0.01 }

[data]  # two features, labels 0/1
"""


def commented_moons(points: int, size: int = 0, seed: int = 0) -> str:
    """A commented scenario with ``points`` inline 2-feature points (2 decimals), padded with
    comment lines to ``size`` bytes."""
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(points, 2)).round(2)
    ys = (xs[:, 0] * xs[:, 1] > 0).astype(int)
    rows = "".join(f"[{a!r}, {b!r}],\n" for a, b in xs.tolist())
    text = COMMENTED_HEAD + "x = [\n" + rows + "]\ny = [" + ", ".join(map(str, ys.tolist())) + "]  # labels\n"
    line = "# " + "notes " * 13 + "\n"
    return text + line * max(0, (size - len(text)) // len(line))


def accepted(text: str, name: str = "<limit file>") -> bool:
    try:
        loads(text, name=name)
    except ScenarioError:
        return False
    return True


def largest(build: Callable[[int], str], low: int, high: int) -> tuple[int, str]:
    """The largest ``k`` in ``low..high`` whose ``build(k)`` the loader accepts (``build(low)`` must be
    accepted; acceptance is assumed monotone in ``k``), and its text."""
    best = build(low)
    if not accepted(best):
        loads(best)                                  # raises the loader's own message
    while low < high:
        mid = (low + high + 1) // 2
        text = build(mid)
        if accepted(text):
            low, best = mid, text
        else:
            high = mid - 1
    return low, best


def widest(features: int, outputs: int, layers: int) -> list[int]:
    """``features-w-...-w-outputs`` with ``layers`` entries and the widest ``w`` within the limits."""
    hidden = layers - 2
    for w in range(LIMITS["max_layer_width"], 0, -1):
        count = features * w + w + (hidden - 1) * (w * w + w) + w * outputs + outputs
        if count <= LIMITS["max_param_elements"]:
            return [features] + [w] * hidden + [outputs]
    raise ValueError("no model fits")


def parameters(layers: list[int]) -> int:
    return sum(a * b + b for a, b in zip(layers, layers[1:]))


def header(title: str, description: str) -> str:
    return f'[scenario]\ntitle = "{title}"\ndescription = "{description}"\nseed = 0\n\n'


# -- the five files ---------------------------------------------------------------------------------

def limit_data(quick: bool) -> str:
    points = 10_000 if quick else LIMITS["max_points"]
    width = 64 if quick else LIMITS["max_layer_width"]
    steps = 20 if quick else 100
    return (header(f"largest data: {points} moons, 2-{width}-{width}-1",
                   "max_points generated points, full batch, the widest two hidden layers")
            + f'[model]\nlayers = [2, {width}, {width}, 1]\nactivation = "tanh"\n\n'
            + f'[data]\nkind = "moons"\nn = {points}\nnoise = 0.1\n\n'
            + '[loss]\nkind = "bce_with_logits"\n\n[optimizer]\nkind = "adam"\nlr = 0.01\n\n'
            + f"[loop]\nsteps = {steps}\n")


def _class_rows(points: int, features: int, classes: int, seed: int = 0) -> tuple[list[str], list[int]]:
    """Gaussian points (each row as TOML text, full-precision floats) labelled by the largest of
    ``classes`` random projections."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((points, features))
    y = (x @ rng.standard_normal((features, classes))).argmax(axis=1)
    return ["[" + ", ".join(repr(float(v)) for v in row) + "]" for row in x], [int(c) for c in y]


def limit_mlp(quick: bool) -> str:
    features, classes = LIMITS["max_features"], 10
    layers = [features, 64, 64, classes] if quick else widest(features, classes, LIMITS["max_layers"])
    steps = 30 if quick else LIMITS["max_recorded_values"] // parameters(layers)
    label = "-".join(map(str, layers))
    head = (header(f"largest MLP: {label}", "max_layers entries as wide as max_param_elements allows, "
                   "as many steps as max_recorded_values allows, inline data filling the file")
            + f'[model]\nlayers = {layers}\nactivation = "tanh"\n\n')
    tail = ('\n[loss]\nkind = "cross_entropy"\n\n[optimizer]\nkind = "adam"\nlr = 0.001\n\n'
            f"[loop]\nsteps = {steps}\n")
    most = 200 if quick else MAX_ARRAY_VALUES // features
    rows, labels = _class_rows(most, features, classes)
    budget = int(LIMITS["max_file_bytes"] * FILE_FILL)

    def text(n: int) -> str:
        return (head + "[data]\nx = [\n" + ",\n".join(rows[:n]) + "\n]\n"
                + f"y = {labels[:n]}\n" + tail)

    n = most
    if not quick:                 # the most rows under the size budget (rows are about equally long)
        fixed = len(text(0).encode())
        per_row = (len(text(most).encode()) - fixed) / most
        n = min(most, int((budget - fixed) / per_row))
        while n > 1 and len(text(n).encode()) > budget:
            n -= 1
    while not accepted(text(n)) and n > 16:
        n = int(n * 0.95)
    return text(n)


def _expression(terms: int) -> tuple[str, str]:
    expression = " + ".join(f"a{i}*tanh(b{i}*x + c{i})" for i in range(terms))
    rng = np.random.default_rng(0)
    values = "\n".join(f"a{i} = {rng.normal(0, 0.5):.4f}\nb{i} = {rng.normal(0, 2):.4f}\nc{i} = {rng.normal(0, 1):.4f}"
                       for i in range(terms))
    return expression, values


def limit_expression(quick: bool) -> str:
    points = 600

    def build_terms(terms: int, accumulation: int = 1) -> str:
        expression, values = _expression(terms)
        return (header(f"largest expression: {terms} tanh units written out",
                       "an expression at the parser's node limit, as many micro-batches as max_graph_nodes allows")
                + f'[model]\nexpression = "{expression}"\n\n[model.parameters]\n{values}\n\n'
                + f'[data]\nkind = "linear"\nn = {points}\nnoise = 0.1\n\n'
                + '[loss]\nkind = "mse"\n\n[optimizer]\nkind = "adam"\nlr = 0.01\n\n'
                + f"[loop]\nsteps = {20 if quick else 100}\naccumulation_steps = {accumulation}\n")

    if quick:
        return build_terms(10, 2)
    terms, _ = largest(build_terms, 1, 200)
    divisors = [a for a in range(1, points + 1) if points % a == 0]
    best = 0
    for i, a in enumerate(divisors):            # accumulation_steps must divide the batch (all points)
        if accepted(build_terms(terms, a)):
            best = i
        else:
            break
    return build_terms(terms, divisors[best])


def limit_micro_batches(quick: bool) -> str:
    per_micro = 4                               # examples in each micro-batch

    def build(accumulation: int) -> str:
        batch = accumulation * per_micro
        return (header(f"most micro-batches: {accumulation} per step",
                       "w * x + b with the largest accumulation_steps the loader accepts")
                + '[model]\nexpression = "w * x + b"\n\n[model.parameters]\nw = 1.0\nb = 0.0\n\n'
                + f'[data]\nkind = "linear"\nn = {batch}\nnoise = 0.1\n\n'
                + '[loss]\nkind = "mse"\n\n[optimizer]\nkind = "sgd"\nlr = 0.1\n\n'
                + f"[loop]\nsteps = {10 if quick else 50}\nbatch_size = {batch}\naccumulation_steps = {accumulation}\n")

    if quick:
        return build(16)
    return largest(build, 1, LIMITS["max_accumulation_steps"])[1]


def limit_variants(quick: bool) -> str:
    layers = [2, 32, 32, 1] if quick else widest(2, 1, LIMITS["max_layers"])
    comparisons = COMPARISON_OPTIMIZERS[:LIMITS["max_comparisons"]]
    points = 500 if quick else 1_000
    label = "-".join(map(str, layers))

    def build(steps: int) -> str:
        text = (header(f"most variants: {1 + len(comparisons)} runs of {label}, {steps} steps",
                       "the main run and max_comparisons comparisons, each as long as the loader accepts")
                + f'[model]\nlayers = {layers}\nactivation = "tanh"\n\n'
                + f'[data]\nkind = "moons"\nn = {points}\nnoise = 0.1\n\n'
                + '[loss]\nkind = "bce_with_logits"\n\n[optimizer]\nkind = "adam"\nlr = 0.01\n\n'
                + f"[loop]\nsteps = {steps}\n")
        for i, optimizer in enumerate(comparisons):
            text += f'\n[[comparison]]\nname = "run {i + 1}"\noptimizer = {{ {optimizer} }}\n'
        return text

    if quick:
        return build(30)
    return largest(build, 1, LIMITS["max_recorded_values"] // parameters(layers))[1]


def modules_blocks() -> int:
    """Linear(4, 4) + Tanh blocks whose traced graph fits ``max_graph_nodes`` (4 nodes each, 6 more)."""
    return (LIMITS["max_graph_nodes"] - 6) // 4


def limit_modules(quick: bool) -> str:
    blocks = 40 if quick else modules_blocks()
    return (f"# The most modules: {blocks} x (Linear(4, 4) + Tanh), each a foldable module\n"
            "import torch\nimport torch.nn as nn\n\ntorch.manual_seed(0)\n"
            f"model = nn.Sequential(*[m for _ in range({blocks}) for m in (nn.Linear(4, 4), nn.Tanh())],\n"
            "                      nn.Linear(4, 1))\n"
            "x, y = torch.randn(8, 4), torch.randn(8, 1)\n"
            "optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)\n"
            "for step in range(6):\n    optimizer.zero_grad()\n"
            "    loss = nn.functional.mse_loss(model(x), y)\n    loss.backward()\n    optimizer.step()\n")


FILES: dict[str, Callable[[bool], str]] = {
    "limit_data.toml": limit_data,
    "limit_mlp.toml": limit_mlp,
    "limit_expression.toml": limit_expression,
    "limit_micro_batches.toml": limit_micro_batches,
    "limit_variants.toml": limit_variants,
    "limit_modules.py": limit_modules,
}


def generate(directory: str | Path, quick: bool = False, names: list[str] | None = None) -> list[Path]:
    """Write the files (all, or ``names``) into ``directory``; each is loaded back with the loader
    (a file it refuses raises its ScenarioError). -> their paths."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for name, build in FILES.items():
        if names and name not in names:
            continue
        path = directory / name
        path.write_text(build(quick), encoding="utf-8")
        if path.suffix == ".toml":
            load(path)
        else:                             # a script: it compiles (the app runs it; the test traces it)
            compile(path.read_text(encoding="utf-8"), str(path), "exec")
        paths.append(path)
    return paths


def describe(path: Path) -> str:
    """One line: the file's title, size, variants, steps and graph size (as the loader estimates it)."""
    from gradviz.scenario import estimate_graph_nodes
    if path.suffix == ".py":
        return f"{path.name}: {path.read_text(encoding='utf-8').splitlines()[0][2:]} (a script)"
    scenario = load(path)
    variants = scenario.variants()
    steps = sum(v.loop.steps for v in variants)
    return (f"{path.name}: {scenario.title} | {path.stat().st_size / 1e6:.2f} MB, {len(variants)} run(s), "
            f"{steps} steps in all, about {estimate_graph_nodes(scenario)} graph nodes")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory")
    parser.add_argument("--quick", action="store_true", help="small versions of the same files")
    args = parser.parse_args(argv)
    for path in generate(args.directory, args.quick):
        print(describe(path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
